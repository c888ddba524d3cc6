//! A selection's final ranking: the public vote and the experts' scores combined per category,
//! in exact integer arithmetic, so that anyone can recompute every published number from the
//! audit chain (see `docs/verification.md`, and `tools/verify_results.py` for a second
//! implementation).
//!
//! Per candidate, with `v` its counted votes, `V` the most votes in its category, `S` the sum
//! of the expert totals kept (one highest and one lowest dropped from five or more), `n` how
//! many were kept and `M` the most points the criteria allow:
//!
//! `score = pw·v/V + ew·S/(n·M)` points, rounded half up to hundredths once, at the end.
//!
//! Ties are ordered by votes, then by number (编号): every candidate has its own rank.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::campaign::{FieldError, Phase, PhaseWindow};
use super::rating::{GroupWeight, RaterGroup};
use super::record::TargetState;
use super::record::{CampaignState, CandidateState, CategoryState, id_str};
use super::score::{Level, LevelPoints};

/// From how many expert scores on a candidate the highest and the lowest are dropped.
pub const TRIM_FROM: usize = 5;

/// How a campaign's final ranking weighs the public vote and the experts (`rules.results`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ResultRules {
    /// Points of the public vote, out of 100.
    pub public_weight: u32,
    /// Points of the experts' review, out of 100 (`public_weight + expert_weight = 100`).
    pub expert_weight: u32,
    /// What experts score each candidate on.
    pub criteria: Vec<Criterion>,
}

impl Default for ResultRules {
    fn default() -> Self {
        Self {
            public_weight: 100,
            expert_weight: 0,
            criteria: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    /// A short ASCII key, as in a score's `points`.
    pub key: String,
    /// What it is, shown to experts (医德医风, 业务能力, …).
    pub name: String,
    /// The most points an expert may give on it.
    pub max: u32,
}

impl ResultRules {
    /// The most points an expert's total can reach.
    pub fn max_points(&self) -> i64 {
        self.criteria.iter().map(|c| i64::from(c.max)).sum()
    }
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

pub fn validate_rules(r: &ResultRules) -> Result<(), FieldError> {
    if r.public_weight + r.expert_weight != 100 {
        return Err(field_error(
            "rules.results.expert_weight",
            "大众投票与专家评审的权重之和须为100",
        ));
    }
    if r.expert_weight > 0 && r.criteria.is_empty() {
        return Err(field_error(
            "rules.results.criteria",
            "专家评审有权重时须设定评分项",
        ));
    }
    if r.criteria.len() > 20 {
        return Err(field_error("rules.results.criteria", "评分项不能超过20项"));
    }
    let mut keys = std::collections::HashSet::new();
    for (i, c) in r.criteria.iter().enumerate() {
        let key_ok = (1..=32).contains(&c.key.len())
            && c.key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok {
            return Err(field_error(
                format!("rules.results.criteria[{i}].key"),
                "评分项代码须为1至32个小写字母、数字或下划线",
            ));
        }
        if !keys.insert(c.key.as_str()) {
            return Err(field_error(
                format!("rules.results.criteria[{i}].key"),
                "评分项代码重复",
            ));
        }
        if !(1..=50).contains(&c.name.trim().chars().count()) {
            return Err(field_error(
                format!("rules.results.criteria[{i}].name"),
                "评分项名称须为1至50个字",
            ));
        }
        if !(1..=1000).contains(&c.max) {
            return Err(field_error(
                format!("rules.results.criteria[{i}].max"),
                "评分项满分须在1至1000之间",
            ));
        }
    }
    Ok(())
}

/// Checks an expert's points against the criteria: every criterion once, each within
/// `0..=max`, nothing else. Returns the total.
pub fn check_points(
    rules: &ResultRules,
    points: &BTreeMap<String, i64>,
) -> Result<i64, FieldError> {
    if rules.criteria.is_empty() {
        return Err(field_error("points", "本活动不设专家评审"));
    }
    for key in points.keys() {
        if !rules.criteria.iter().any(|c| &c.key == key) {
            return Err(field_error(format!("points.{key}"), "没有这个评分项"));
        }
    }
    let mut total = 0;
    for c in &rules.criteria {
        let Some(p) = points.get(&c.key) else {
            return Err(field_error(
                format!("points.{}", c.key),
                format!("请为“{}”打分", c.name),
            ));
        };
        if !(0..=i64::from(c.max)).contains(p) {
            return Err(field_error(
                format!("points.{}", c.key),
                format!("“{}”的分数须在0至{}之间", c.name, c.max),
            ));
        }
        total += p;
    }
    Ok(total)
}

/// Whether results are a draft for the publicity period or the final, published ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Draft,
    Final,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Draft => "draft",
            Stage::Final => "final",
        }
    }

    /// The kind of the chain entry that freezes results of this stage.
    pub fn entry_kind(self) -> &'static str {
        match self {
            Stage::Draft => super::record::kinds::RESULTS_DRAFT,
            Stage::Final => super::record::kinds::RESULTS_PUBLISHED,
        }
    }
}

/// The frozen results of a campaign: what is hashed into `snapshot_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Results {
    #[serde(with = "id_str")]
    #[schema(value_type = String)]
    pub campaign_id: i64,
    pub title: String,
    pub stage: Stage,
    /// A selection's weights (absent for an evaluation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Method>,
    /// A selection's ranking per category (empty for an evaluation).
    pub categories: Vec<CategoryResult>,
    /// An evaluation's scores per target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evaluation: Option<EvaluationResults>,
}

/// An evaluation's results: per target, its ratings per level and per rater group, the
/// satisfaction rate and the weighted score, over the whole campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EvaluationResults {
    pub level_points: LevelPoints,
    pub groups: Vec<GroupWeight>,
    pub targets: Vec<TargetResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TargetResult {
    #[serde(with = "id_str")]
    #[schema(value_type = String)]
    pub target_id: i64,
    pub code: String,
    pub name: String,
    #[serde(with = "id_str::option")]
    #[schema(value_type = Option<String>)]
    pub parent_id: Option<i64>,
    #[serde(flatten)]
    pub counts: Counts,
    /// (满意 + 基本满意) / rated, four places; null when nothing was rated.
    pub satisfaction_rate: Option<String>,
    /// `Σ weight × group score / Σ weight` over the weighted groups that rated, two places.
    pub weighted_score: Option<String>,
    /// The groups that rated the target, by name.
    pub groups: Vec<GroupCounts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    pub rated: u64,
    pub satisfied: u64,
    pub basically_satisfied: u64,
    pub unsatisfied: u64,
}

impl Counts {
    pub fn add(&mut self, level: Level, n: u64) {
        self.rated += n;
        match level {
            Level::Satisfied => self.satisfied += n,
            Level::BasicallySatisfied => self.basically_satisfied += n,
            Level::Unsatisfied => self.unsatisfied += n,
        }
    }

    /// The ratings' points, summed.
    fn points(&self, p: &LevelPoints) -> i128 {
        i128::from(self.satisfied) * i128::from(p.satisfied)
            + i128::from(self.basically_satisfied) * i128::from(p.basically_satisfied)
            + i128::from(self.unsatisfied) * i128::from(p.unsatisfied)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct GroupCounts {
    pub group: RaterGroup,
    pub weight: u32,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Method {
    pub public_weight: u32,
    pub expert_weight: u32,
    pub max_expert_points: i64,
    pub trim_from: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CategoryResult {
    #[serde(with = "id_str")]
    #[schema(value_type = String)]
    pub id: i64,
    pub name: String,
    pub winners: u32,
    pub candidates: Vec<CandidateResult>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CandidateResult {
    pub rank: u32,
    #[serde(with = "id_str")]
    #[schema(value_type = String)]
    pub candidate_id: i64,
    pub number: i64,
    pub name: String,
    pub unit: String,
    pub votes: i64,
    /// `100·v/V`, a decimal string with two places.
    pub vote_points: String,
    /// Expert scores kept after trimming.
    pub expert_count: u32,
    /// `100·S/(n·M)`, or null with no expert score.
    pub expert_points: Option<String>,
    /// The final score, a decimal string with two places.
    pub score: String,
    pub winner: bool,
}

/// What the results are computed from: the campaign's recorded state (from the chain's
/// replay or from the database), the counted votes and the experts' totals per candidate.
pub struct Inputs<'a> {
    pub campaign: &'a CampaignState,
    pub categories: Vec<&'a CategoryState>,
    pub candidates: Vec<&'a CandidateState>,
    pub votes: &'a BTreeMap<i64, i64>,
    pub expert_totals: &'a HashMap<i64, Vec<i64>>,
}

/// A non-negative exact fraction.
#[derive(Debug, Clone, Copy)]
struct Ratio {
    num: i128,
    den: i128,
}

impl Ratio {
    const ZERO: Ratio = Ratio { num: 0, den: 1 };

    fn new(num: i128, den: i128) -> Self {
        if den == 0 {
            Self::ZERO
        } else {
            Self { num, den }
        }
    }

    fn add(self, o: Ratio) -> Ratio {
        Ratio {
            num: self.num * o.den + o.num * self.den,
            den: self.den * o.den,
        }
        .reduced()
    }

    /// In lowest terms, so that sums over many groups stay far from overflow.
    fn reduced(self) -> Ratio {
        let (mut a, mut b) = (self.num.abs(), self.den.abs());
        while b != 0 {
            (a, b) = (b, a % b);
        }
        if a <= 1 {
            self
        } else {
            Ratio {
                num: self.num / a,
                den: self.den / a,
            }
        }
    }

    /// Rounded half up to hundredths.
    fn hundredths(self) -> i128 {
        self.places(2)
    }

    /// Rounded half up to `places` decimal places, as an integer of that unit.
    fn places(self, places: u32) -> i128 {
        let unit = 10i128.pow(places);
        (2 * self.num * unit + self.den) / (2 * self.den)
    }
}

/// Hundredths as a decimal string: 9140 → "91.40".
pub fn format_hundredths(h: i128) -> String {
    format!("{}.{:02}", h / 100, h % 100)
}

/// Ten-thousandths as a decimal string: 8305 → "0.8305".
fn format_rate(t: i128) -> String {
    format!("{}.{:04}", t / 10_000, t % 10_000)
}

/// The experts' totals a candidate keeps: all of them, or without one highest and one lowest
/// from `TRIM_FROM` on. Returns how many were kept and their sum.
pub fn kept(totals: &[i64]) -> (i64, i64) {
    let sum: i64 = totals.iter().sum();
    if totals.len() >= TRIM_FROM {
        let (lo, hi) = (
            totals.iter().min().copied().unwrap_or(0),
            totals.iter().max().copied().unwrap_or(0),
        );
        (totals.len() as i64 - 2, sum - lo - hi)
    } else {
        (totals.len() as i64, sum)
    }
}

pub fn compute(stage: Stage, input: &Inputs<'_>) -> Results {
    let rules = &input.campaign.rules.results;
    let max_points = rules.max_points();
    let mut categories: Vec<&CategoryState> = input.categories.clone();
    categories.sort_by_key(|c| c.id);
    let categories = categories
        .into_iter()
        .map(|cat| {
            let members: Vec<&CandidateState> = input
                .candidates
                .iter()
                .copied()
                .filter(|c| c.category_id == cat.id && c.status == "approved")
                .collect();
            let votes_of = |c: &CandidateState| input.votes.get(&c.id).copied().unwrap_or(0);
            let most = members.iter().map(|c| votes_of(c)).max().unwrap_or(0);
            let mut rows: Vec<(i128, CandidateResult)> = members
                .iter()
                .map(|c| {
                    let v = votes_of(c);
                    let totals = input
                        .expert_totals
                        .get(&c.id)
                        .map(Vec::as_slice)
                        .unwrap_or(&[]);
                    let (n, s) = kept(totals);
                    let public = Ratio::new(
                        i128::from(rules.public_weight) * i128::from(v),
                        i128::from(most),
                    );
                    let experts = Ratio::new(
                        i128::from(rules.expert_weight) * i128::from(s),
                        i128::from(n) * i128::from(max_points),
                    );
                    let score = public.add(experts).hundredths();
                    let expert_points = (n > 0 && max_points > 0).then(|| {
                        format_hundredths(
                            Ratio::new(100 * i128::from(s), i128::from(n) * i128::from(max_points))
                                .hundredths(),
                        )
                    });
                    let row = CandidateResult {
                        rank: 0,
                        candidate_id: c.id,
                        number: c.number,
                        name: c.name.clone(),
                        unit: c.unit.clone(),
                        votes: v,
                        vote_points: format_hundredths(
                            Ratio::new(100 * i128::from(v), i128::from(most)).hundredths(),
                        ),
                        expert_count: n as u32,
                        expert_points,
                        score: format_hundredths(score),
                        winner: false,
                    };
                    (score, row)
                })
                .collect();
            rows.sort_by(|(a, x), (b, y)| {
                b.cmp(a)
                    .then(y.votes.cmp(&x.votes))
                    .then(x.number.cmp(&y.number))
                    .then(x.candidate_id.cmp(&y.candidate_id))
            });
            let candidates = rows
                .into_iter()
                .enumerate()
                .map(|(i, (_, mut row))| {
                    row.rank = i as u32 + 1;
                    row.winner = row.rank <= cat.winners;
                    row
                })
                .collect();
            CategoryResult {
                id: cat.id,
                name: cat.name.clone(),
                winners: cat.winners,
                candidates,
            }
        })
        .collect();
    Results {
        campaign_id: input.campaign.id,
        title: input.campaign.title.clone(),
        stage,
        method: Some(Method {
            public_weight: rules.public_weight,
            expert_weight: rules.expert_weight,
            max_expert_points: max_points,
            trim_from: TRIM_FROM as u32,
        }),
        categories,
        evaluation: None,
    }
}

/// What an evaluation's results are computed from: its recorded state and the counted
/// ratings per target and rater group.
pub struct EvaluationInputs<'a> {
    pub campaign: &'a CampaignState,
    pub targets: Vec<&'a TargetState>,
    pub ratings: &'a BTreeMap<(i64, RaterGroup), Counts>,
}

/// An evaluation's results: every target (by id), its own ratings over the whole campaign.
pub fn compute_evaluation(stage: Stage, input: &EvaluationInputs<'_>) -> Results {
    let rules = &input.campaign.rules.evaluation;
    let weight_of = |g: RaterGroup| {
        rules
            .groups
            .iter()
            .find(|w| w.group == g)
            .map_or(0, |w| w.weight)
    };
    let mut targets: Vec<&TargetState> = input.targets.clone();
    targets.sort_by_key(|t| t.id);
    let targets = targets
        .into_iter()
        .map(|t| {
            let mut groups: Vec<GroupCounts> = input
                .ratings
                .range((t.id, RaterGroup::Public)..=(t.id, RaterGroup::Supervisor))
                .filter(|(_, c)| c.rated > 0)
                .map(|((_, g), c)| GroupCounts {
                    group: *g,
                    weight: weight_of(*g),
                    counts: *c,
                })
                .collect();
            groups.sort_by_key(|g| g.group.as_str());
            let mut all = Counts::default();
            let (mut sum, mut weights) = (Ratio::ZERO, 0i128);
            for g in &groups {
                all.add(Level::Satisfied, g.counts.satisfied);
                all.add(Level::BasicallySatisfied, g.counts.basically_satisfied);
                all.add(Level::Unsatisfied, g.counts.unsatisfied);
                if g.weight > 0 {
                    let score = Ratio::new(
                        g.counts.points(&rules.level_points),
                        i128::from(g.counts.rated),
                    );
                    sum = sum.add(Ratio::new(score.num * i128::from(g.weight), score.den));
                    weights += i128::from(g.weight);
                }
            }
            let rate = (all.rated > 0).then(|| {
                format_rate(
                    Ratio::new(
                        i128::from(all.satisfied + all.basically_satisfied),
                        i128::from(all.rated),
                    )
                    .places(4),
                )
            });
            let weighted = (weights > 0)
                .then(|| format_hundredths(Ratio::new(sum.num, sum.den * weights).hundredths()));
            TargetResult {
                target_id: t.id,
                code: t.code.clone(),
                name: t.name.clone(),
                parent_id: t.parent_id,
                counts: all,
                satisfaction_rate: rate,
                weighted_score: weighted,
                groups,
            }
        })
        .collect();
    Results {
        campaign_id: input.campaign.id,
        title: input.campaign.title.clone(),
        stage,
        method: None,
        categories: Vec::new(),
        evaluation: Some(EvaluationResults {
            level_points: rules.level_points,
            groups: rules.groups.clone(),
            targets,
        }),
    }
}

/// Why results cannot be frozen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeRefusal {
    NotOpen,
    Published,
    VotingNotEnded,
    NoPublicityPhase,
    DraftNotFrozen,
    PublicityNotEnded,
    PublicityEnded,
    ObjectionsPending,
    ChangedSinceDraft,
}

impl FreezeRefusal {
    pub fn code(self) -> &'static str {
        match self {
            FreezeRefusal::NotOpen => "campaign_not_open",
            FreezeRefusal::Published => "campaign_published",
            FreezeRefusal::VotingNotEnded => "voting_not_ended",
            FreezeRefusal::NoPublicityPhase => "no_publicity_phase",
            FreezeRefusal::DraftNotFrozen => "draft_not_frozen",
            FreezeRefusal::PublicityNotEnded => "publicity_not_ended",
            FreezeRefusal::ObjectionsPending => "objections_pending",
            FreezeRefusal::PublicityEnded => "publicity_ended",
            FreezeRefusal::ChangedSinceDraft => "results_changed_since_draft",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            FreezeRefusal::NotOpen => "活动尚未开放",
            FreezeRefusal::Published => "本活动结果已发布，不能再作任何更改",
            FreezeRefusal::VotingNotEnded => "投票尚未结束，不能生成结果",
            FreezeRefusal::NoPublicityPhase => "本活动未设公示期，请直接发布结果",
            FreezeRefusal::DraftNotFrozen => "本活动设有公示期，请先生成拟表彰名单并公示",
            FreezeRefusal::PublicityNotEnded => "公示期尚未结束，不能发布结果",
            FreezeRefusal::ObjectionsPending => "还有未答复的异议，请逐一答复后再发布",
            FreezeRefusal::PublicityEnded => {
                "公示期已结束，不能再生成拟表彰名单；如需重新公示，请先延长公示期"
            }
            FreezeRefusal::ChangedSinceDraft => {
                "公示之后结果有变化，请重新生成拟表彰名单并在公示期内公示"
            }
        }
    }
}

/// Where a campaign stands, as freezing results needs it.
pub struct FreezeState<'a> {
    pub is_draft: bool,
    pub published: bool,
    pub phases: &'a [PhaseWindow],
    pub last_frozen: Option<Stage>,
    pub open_objections: i64,
}

fn window(phases: &[PhaseWindow], phase: Phase) -> Option<&PhaseWindow> {
    phases.iter().find(|w| w.phase == phase)
}

/// Whether a citizen may object now: a draft is frozen and the publicity window holds now.
pub fn in_publicity(s: &FreezeState<'_>, now: DateTime<Utc>) -> bool {
    !s.published
        && s.last_frozen == Some(Stage::Draft)
        && window(s.phases, Phase::Publicity).is_some_and(|w| w.starts_at <= now && now < w.ends_at)
}

/// Whether results of `stage` can be frozen now. Voting must have ended; a campaign with a
/// publicity period publishes only after a draft went through it with every objection
/// answered. A draft can be frozen again (after an upheld objection, say) until publication.
pub fn may_freeze(
    stage: Stage,
    s: &FreezeState<'_>,
    now: DateTime<Utc>,
) -> Result<(), FreezeRefusal> {
    if s.is_draft {
        return Err(FreezeRefusal::NotOpen);
    }
    if s.published {
        return Err(FreezeRefusal::Published);
    }
    if window(s.phases, Phase::Voting).is_some_and(|w| now < w.ends_at) {
        return Err(FreezeRefusal::VotingNotEnded);
    }
    let publicity = window(s.phases, Phase::Publicity);
    match (stage, publicity) {
        (Stage::Draft, None) => Err(FreezeRefusal::NoPublicityPhase),
        // A draft is for the public to see: frozen while the publicity period can still
        // show it.
        (Stage::Draft, Some(w)) if now >= w.ends_at => Err(FreezeRefusal::PublicityEnded),
        (Stage::Draft, Some(_)) => Ok(()),
        (Stage::Final, None) => Ok(()),
        (Stage::Final, Some(w)) => {
            if s.last_frozen != Some(Stage::Draft) {
                Err(FreezeRefusal::DraftNotFrozen)
            } else if now < w.ends_at {
                Err(FreezeRefusal::PublicityNotEnded)
            } else if s.open_objections > 0 {
                Err(FreezeRefusal::ObjectionsPending)
            } else {
                Ok(())
            }
        }
    }
}

/// `sha256(canonical(results))` in hex: the snapshot hash.
pub fn snapshot_hash(results: &Results) -> Result<String, super::audit::CanonicalError> {
    use sha2::Digest;
    let value = serde_json::to_value(results).unwrap_or_default();
    let text = super::audit::canonical(&value)?;
    Ok(super::audit::to_hex(
        &sha2::Sha256::digest(text.as_bytes()).into(),
    ))
}

/// The first difference between results recorded in the chain and results recomputed, named
/// by category, candidate and field; None when they are the same.
pub fn first_difference(recorded: &Results, recomputed: &Results) -> Option<String> {
    if recorded == recomputed {
        return None;
    }
    if recorded.method != recomputed.method {
        return Some("the method (weights) differs from the campaign's rules".into());
    }
    if recorded.campaign_id != recomputed.campaign_id || recorded.title != recomputed.title {
        return Some("the campaign id or title differs".into());
    }
    if recorded.stage != recomputed.stage {
        return Some("the stage differs from the entry's kind".into());
    }
    if let (Some(a), Some(b)) = (&recorded.evaluation, &recomputed.evaluation)
        && a != b
    {
        if a.targets.len() != b.targets.len() {
            return Some("the targets differ".into());
        }
        for (x, y) in a.targets.iter().zip(&b.targets) {
            if x != y {
                return Some(format!(
                    "target {} ({}): published {}, recount {}",
                    y.target_id,
                    y.code,
                    serde_json::to_string(x).unwrap_or_default(),
                    serde_json::to_string(y).unwrap_or_default()
                ));
            }
        }
        return Some("the evaluation's weights or level points differ".into());
    }
    let ids = |r: &Results| r.categories.iter().map(|c| c.id).collect::<Vec<_>>();
    if ids(recorded) != ids(recomputed) {
        return Some("the categories differ".into());
    }
    for (a, b) in recorded.categories.iter().zip(&recomputed.categories) {
        if a.candidates.len() != b.candidates.len() {
            return Some(format!(
                "category {} lists {} candidates; the recount gives {}",
                a.id,
                a.candidates.len(),
                b.candidates.len()
            ));
        }
        for (x, y) in a.candidates.iter().zip(&b.candidates) {
            if x != y {
                let (rx, ry) = (
                    serde_json::to_value(x).unwrap_or_default(),
                    serde_json::to_value(y).unwrap_or_default(),
                );
                let fields: Vec<String> = match (rx, ry) {
                    (serde_json::Value::Object(p), serde_json::Value::Object(q)) => p
                        .iter()
                        .filter(|(k, v)| q.get(*k) != Some(*v))
                        .map(|(k, v)| format!("{k}: published {v}, recount {}", q[k]))
                        .collect(),
                    _ => vec![],
                };
                return Some(format!(
                    "category {}, rank {}: {}",
                    a.id,
                    x.rank,
                    fields.join("; ")
                ));
            }
        }
        if a != b {
            return Some(format!("category {} differs (name or winners)", a.id));
        }
    }
    Some("the results differ".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::campaign::{Kind, Rules};
    use chrono::TimeZone;

    fn campaign(pw: u32, ew: u32) -> CampaignState {
        CampaignState {
            id: 5,
            kind: Kind::Selection,
            title: "最美医生".into(),
            description: String::new(),
            timezone: "Asia/Shanghai".into(),
            phases: vec![],
            rules: Rules {
                results: ResultRules {
                    public_weight: pw,
                    expert_weight: ew,
                    criteria: vec![
                        Criterion {
                            key: "ethics".into(),
                            name: "医德医风".into(),
                            max: 60,
                        },
                        Criterion {
                            key: "skill".into(),
                            name: "业务能力".into(),
                            max: 40,
                        },
                    ],
                },
                ..Rules::default()
            },
            draft: false,
        }
    }

    fn candidate(id: i64, number: i64, status: &str) -> CandidateState {
        CandidateState {
            id,
            category_id: 1,
            number,
            name: format!("候选人{number}"),
            unit: "县人民医院".into(),
            department: String::new(),
            title: String::new(),
            photo_url: String::new(),
            story: String::new(),
            status: status.into(),
            reason: String::new(),
        }
    }

    fn category(winners: u32) -> CategoryState {
        CategoryState {
            id: 1,
            name: "十大最美医生".into(),
            winners,
        }
    }

    /// The example worked by hand in docs/verification.md.
    #[test]
    fn the_worked_example_gives_the_documented_numbers() {
        let c = campaign(40, 60);
        let cat = category(2);
        let (a, b, z, gone) = (
            candidate(11, 1, "approved"),
            candidate(12, 2, "approved"),
            candidate(13, 3, "approved"),
            candidate(14, 4, "withdrawn"),
        );
        let votes = BTreeMap::from([(11, 300), (12, 240), (14, 999)]);
        let experts = HashMap::from([
            (11, vec![90, 80, 85, 70, 95]),
            (12, vec![95, 90, 92]),
            (14, vec![100]),
        ]);
        let r = compute(
            Stage::Final,
            &Inputs {
                campaign: &c,
                categories: vec![&cat],
                candidates: vec![&z, &b, &a, &gone],
                votes: &votes,
                expert_totals: &experts,
            },
        );
        let rows = &r.categories[0].candidates;
        type Row<'a> = (u32, i64, &'a str, &'a str, Option<&'a str>, u32, bool);
        let got: Vec<Row<'_>> = rows
            .iter()
            .map(|x| {
                (
                    x.rank,
                    x.candidate_id,
                    x.score.as_str(),
                    x.vote_points.as_str(),
                    x.expert_points.as_deref(),
                    x.expert_count,
                    x.winner,
                )
            })
            .collect();
        // A: 40·300/300 + 60·255/300 = 40 + 51; B: 40·240/300 + 60·277/300 = 32 + 55.4.
        assert_eq!(
            got,
            vec![
                (1, 11, "91.00", "100.00", Some("85.00"), 3, true),
                (2, 12, "87.40", "80.00", Some("92.33"), 3, true),
                (3, 13, "0.00", "0.00", None, 0, false),
            ]
        );
        assert_eq!(r.method.map(|m| m.max_expert_points), Some(100));
    }

    #[test]
    fn ties_go_to_more_votes_then_the_lower_number_and_rounding_is_half_up() {
        // Public vote only: v/V·100 with V = 3 gives 33.333… and 66.666….
        let c = campaign(100, 0);
        let cat = category(1);
        let cands = [
            candidate(1, 7, "approved"),
            candidate(2, 3, "approved"),
            candidate(3, 5, "approved"),
            candidate(4, 9, "approved"),
        ];
        let votes = BTreeMap::from([(1, 1), (2, 1), (3, 3), (4, 2)]);
        let r = compute(
            Stage::Draft,
            &Inputs {
                campaign: &c,
                categories: vec![&cat],
                candidates: cands.iter().collect(),
                votes: &votes,
                expert_totals: &HashMap::new(),
            },
        );
        let order: Vec<(i64, &str)> = r.categories[0]
            .candidates
            .iter()
            .map(|x| (x.number, x.score.as_str()))
            .collect();
        assert_eq!(
            order,
            vec![(5, "100.00"), (9, "66.67"), (3, "33.33"), (7, "33.33")]
        );
        // Half up at exactly .xx5: 1/8 = 0.125 → 0.13 hundredths of a point.
        assert_eq!(Ratio::new(1, 800).hundredths(), 0);
        assert_eq!(
            format_hundredths(Ratio::new(125, 1000).hundredths()),
            "0.13"
        );
        assert_eq!(
            format_hundredths(Ratio::new(1249, 10000).hundredths()),
            "0.12"
        );
    }

    #[test]
    fn a_category_without_votes_scores_on_experts_alone() {
        let c = campaign(50, 50);
        let cat = category(1);
        let a = candidate(1, 1, "approved");
        let experts = HashMap::from([(1, vec![100, 50])]);
        let r = compute(
            Stage::Final,
            &Inputs {
                campaign: &c,
                categories: vec![&cat],
                candidates: vec![&a],
                votes: &BTreeMap::new(),
                expert_totals: &experts,
            },
        );
        let x = &r.categories[0].candidates[0];
        assert_eq!(
            (x.score.as_str(), x.vote_points.as_str()),
            ("37.50", "0.00")
        );
        assert_eq!(x.expert_points.as_deref(), Some("75.00"));
    }

    #[test]
    fn trimming_drops_one_highest_and_one_lowest_from_five_scores() {
        assert_eq!(kept(&[10, 20, 30, 40]), (4, 100));
        assert_eq!(kept(&[10, 20, 30, 40, 50]), (3, 90));
        assert_eq!(kept(&[50, 50, 50, 50, 50, 0]), (4, 200));
        assert_eq!(kept(&[]), (0, 0));
    }

    #[test]
    fn points_must_cover_every_criterion_within_its_range() {
        let rules = campaign(40, 60).rules.results;
        let ok = BTreeMap::from([("ethics".to_string(), 60), ("skill".to_string(), 0)]);
        assert_eq!(check_points(&rules, &ok), Ok(60));
        let missing = BTreeMap::from([("ethics".to_string(), 10)]);
        assert_eq!(
            check_points(&rules, &missing).unwrap_err().field,
            "points.skill"
        );
        let over = BTreeMap::from([("ethics".to_string(), 61), ("skill".to_string(), 1)]);
        assert_eq!(
            check_points(&rules, &over).unwrap_err().field,
            "points.ethics"
        );
        let extra = BTreeMap::from([
            ("ethics".to_string(), 1),
            ("skill".to_string(), 1),
            ("charm".to_string(), 1),
        ]);
        assert_eq!(
            check_points(&rules, &extra).unwrap_err().field,
            "points.charm"
        );
    }

    #[test]
    fn weights_must_add_up_and_experts_need_criteria() {
        let mut r = ResultRules::default();
        assert!(validate_rules(&r).is_ok());
        r.expert_weight = 10;
        assert_eq!(
            validate_rules(&r).unwrap_err().field,
            "rules.results.expert_weight"
        );
        r.public_weight = 90;
        assert_eq!(
            validate_rules(&r).unwrap_err().field,
            "rules.results.criteria"
        );
    }

    #[test]
    fn an_edited_number_is_named_by_category_rank_and_field() {
        let c = campaign(100, 0);
        let cat = category(1);
        let a = candidate(1, 1, "approved");
        let votes = BTreeMap::from([(1, 4)]);
        let input = Inputs {
            campaign: &c,
            categories: vec![&cat],
            candidates: vec![&a],
            votes: &votes,
            expert_totals: &HashMap::new(),
        };
        let good = compute(Stage::Final, &input);
        let mut edited = good.clone();
        edited.categories[0].candidates[0].votes = 5;
        assert_eq!(first_difference(&good, &good), None);
        let why = first_difference(&edited, &good).unwrap();
        assert!(
            why.contains("category 1, rank 1: votes: published 5, recount 4"),
            "{why}"
        );
        assert_ne!(
            snapshot_hash(&good).unwrap(),
            snapshot_hash(&edited).unwrap()
        );
    }

    fn day(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, d, 0, 0, 0).unwrap()
    }

    #[test]
    fn freezing_waits_for_the_end_of_voting_and_publication_for_the_publicity() {
        let phases = vec![
            PhaseWindow {
                phase: Phase::Voting,
                starts_at: day(1),
                ends_at: day(10),
            },
            PhaseWindow {
                phase: Phase::Publicity,
                starts_at: day(11),
                ends_at: day(18),
            },
        ];
        let mut s = FreezeState {
            is_draft: false,
            published: false,
            phases: &phases,
            last_frozen: None,
            open_objections: 0,
        };
        assert_eq!(
            may_freeze(Stage::Draft, &s, day(9)),
            Err(FreezeRefusal::VotingNotEnded)
        );
        assert_eq!(may_freeze(Stage::Draft, &s, day(10)), Ok(()));
        assert_eq!(
            may_freeze(Stage::Draft, &s, day(18)),
            Err(FreezeRefusal::PublicityEnded)
        );
        assert_eq!(
            may_freeze(Stage::Final, &s, day(20)),
            Err(FreezeRefusal::DraftNotFrozen)
        );
        s.last_frozen = Some(Stage::Draft);
        assert!(!in_publicity(&s, day(10)));
        assert!(in_publicity(&s, day(12)));
        assert_eq!(
            may_freeze(Stage::Final, &s, day(12)),
            Err(FreezeRefusal::PublicityNotEnded)
        );
        s.open_objections = 1;
        assert_eq!(
            may_freeze(Stage::Final, &s, day(18)),
            Err(FreezeRefusal::ObjectionsPending)
        );
        s.open_objections = 0;
        assert_eq!(may_freeze(Stage::Final, &s, day(18)), Ok(()));
        s.published = true;
        assert_eq!(
            may_freeze(Stage::Final, &s, day(19)),
            Err(FreezeRefusal::Published)
        );
        assert!(!in_publicity(&s, day(12)));

        // Without a publicity period: straight to publication, and no draft.
        let voting_only = &phases[..1];
        let s = FreezeState {
            phases: voting_only,
            published: false,
            last_frozen: None,
            ..s
        };
        assert_eq!(may_freeze(Stage::Final, &s, day(10)), Ok(()));
        assert_eq!(
            may_freeze(Stage::Draft, &s, day(10)),
            Err(FreezeRefusal::NoPublicityPhase)
        );
    }

    #[test]
    fn an_evaluation_scores_each_target_over_its_weighted_groups() {
        let mut c = campaign(100, 0);
        c.kind = Kind::Evaluation;
        let unit = TargetState {
            id: 1,
            code: "H01".into(),
            name: "医院".into(),
            parent_id: None,
        };
        let dept = TargetState {
            id: 2,
            code: "H01-JZ".into(),
            name: "急诊科".into(),
            parent_id: Some(1),
        };
        let counts = |s, b, u| Counts {
            rated: s + b + u,
            satisfied: s,
            basically_satisfied: b,
            unsatisfied: u,
        };
        // Citizens (40): (3·100 + 60) / 4 = 90; a supervisor (10): 0 → (3600 + 0) / 50 = 72.
        let ratings = BTreeMap::from([
            ((1, RaterGroup::Public), counts(3, 1, 0)),
            ((1, RaterGroup::Supervisor), counts(0, 0, 1)),
        ]);
        let r = compute_evaluation(
            Stage::Final,
            &EvaluationInputs {
                campaign: &c,
                targets: vec![&dept, &unit],
                ratings: &ratings,
            },
        );
        let ev = r.evaluation.expect("an evaluation's results");
        let hospital = &ev.targets[0];
        assert_eq!(hospital.counts, counts(3, 1, 1));
        assert_eq!(hospital.satisfaction_rate.as_deref(), Some("0.8000"));
        assert_eq!(hospital.weighted_score.as_deref(), Some("72.00"));
        assert_eq!(hospital.groups.len(), 2);
        assert_eq!(ev.targets[1].weighted_score, None);
        assert!(r.method.is_none() && r.categories.is_empty());
    }
}
