//! Campaigns: kinds, phases with their windows, and the rules citizens vote under.
//!
//! `current_phase` is derived from the windows and the clock, never stored, so that a change
//! of a window takes effect at once and there is no state to drift.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Selection,
    Evaluation,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Selection => "selection",
            Kind::Evaluation => "evaluation",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [Kind::Selection, Kind::Evaluation]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Nomination,
    Voting,
    Review,
    Publicity,
    Published,
}

/// One phase's window, `[starts_at, ends_at)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhaseWindow {
    pub phase: Phase,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Where a campaign stands: a draft (not visible to citizens), or open, in the phase whose
/// window holds now (or between phases).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CurrentPhase {
    Draft,
    NotStarted,
    Nomination,
    Voting,
    Review,
    Publicity,
    Published,
    Between,
    Ended,
}

pub fn current_phase(is_draft: bool, phases: &[PhaseWindow], now: DateTime<Utc>) -> CurrentPhase {
    if is_draft {
        return CurrentPhase::Draft;
    }
    if let Some(w) = phases
        .iter()
        .find(|w| w.starts_at <= now && now < w.ends_at)
    {
        return match w.phase {
            Phase::Nomination => CurrentPhase::Nomination,
            Phase::Voting => CurrentPhase::Voting,
            Phase::Review => CurrentPhase::Review,
            Phase::Publicity => CurrentPhase::Publicity,
            Phase::Published => CurrentPhase::Published,
        };
    }
    match (
        phases.iter().map(|w| w.starts_at).min(),
        phases.iter().map(|w| w.ends_at).max(),
    ) {
        (Some(first), _) if now < first => CurrentPhase::NotStarted,
        (_, Some(last)) if now >= last => CurrentPhase::Ended,
        (None, None) => CurrentPhase::NotStarted,
        _ => CurrentPhase::Between,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ShowCounts {
    Live,
    RankOnly,
    Hidden,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FraudPolicy {
    Record,
    Quarantine,
}

/// The rules a campaign's citizens vote under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    pub votes_per_day: u32,
    pub votes_per_candidate_per_day: u32,
    pub max_candidates_per_ballot: u32,
    pub votes_per_campaign: Option<u32>,
    pub show_counts: ShowCounts,
    #[serde(default = "default_fraud_policy")]
    pub fraud_policy: FraudPolicy,
    #[serde(default)]
    pub challenge_bits: u8,
    /// Thresholds of the risk signals (see `domain::risk`).
    #[serde(default)]
    pub risk: RiskThresholds,
    /// How an evaluation rates (see `domain::rating`); unused by selections.
    #[serde(default)]
    pub evaluation: super::rating::EvaluationRules,
    /// How the final ranking weighs votes and experts (see `domain::results`); unused by
    /// evaluations.
    #[serde(default)]
    pub results: super::results::ResultRules,
}

/// The thresholds of the risk signals (see `domain::risk`), and what the campaign does with
/// the flags they raise.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct RiskThresholds {
    /// False: no signal is gathered and no ballot is flagged (the cost of the checks can be
    /// measured against this).
    pub enabled: bool,
    /// Above how many distinct voters on one device, one address or one network (/24 or
    /// /64) within `window_secs` a ballot is flagged.
    pub voters_per_device: u32,
    pub voters_per_ip: u32,
    pub voters_per_network: u32,
    pub window_secs: u32,
    /// A voter whose first login is fewer seconds ago is a new account (0: never).
    pub min_account_age_secs: u32,
    /// Above how many distinct voters casting the very same set of two or more candidates
    /// within `burst_secs` a ballot is flagged.
    pub identical_ballots: u32,
    pub burst_secs: u32,
    /// A candidate surges when its share of the last two minutes' votes is more than
    /// `surge_factor` times its share of the ten minutes before, on at least
    /// `surge_min_votes` votes.
    pub surge_factor: u32,
    pub surge_min_votes: u32,
    /// The flags that hold a ballot under the `quarantine` policy; the others are recorded
    /// (and raise the challenge) only.
    pub hold: Vec<RiskFlag>,
    /// Extra proof-of-work bits a flagged ballot needs, when the campaign asks for a proof.
    pub raise_bits: u8,
}

/// A risk flag a ballot can carry (see `domain::risk`).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RiskFlag {
    /// More voters than allowed on the ballot's device lately.
    SharedDevice,
    /// More voters than allowed from the ballot's address lately.
    SharedIp,
    /// More voters than allowed from the ballot's network (/24 or /64) lately.
    SharedNetwork,
    /// Many voters cast this very set of candidates within a short burst.
    IdenticalBurst,
    /// The voter's account was first seen minutes ago.
    NewAccount,
    /// A candidate of the ballot gets a far larger share of the votes than it did lately.
    CandidateSurge,
}

impl Default for RiskThresholds {
    /// A family may share a phone, a hospital's staff one address: generous enough for
    /// those, far below a farm's hundreds. A young account or a surging candidate alone is
    /// common among honest citizens (most open the mini-program for the first time to vote,
    /// and a candidate's colleagues vote together), so by default those flags do not hold.
    fn default() -> Self {
        Self {
            enabled: true,
            voters_per_device: 3,
            voters_per_ip: 20,
            voters_per_network: 50,
            window_secs: 600,
            min_account_age_secs: 600,
            identical_ballots: 20,
            burst_secs: 60,
            surge_factor: 5,
            surge_min_votes: 30,
            hold: vec![
                RiskFlag::SharedDevice,
                RiskFlag::SharedIp,
                RiskFlag::SharedNetwork,
                RiskFlag::IdenticalBurst,
            ],
            raise_bits: 4,
        }
    }
}

fn default_fraud_policy() -> FraudPolicy {
    FraudPolicy::Record
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            votes_per_day: 10,
            votes_per_candidate_per_day: 1,
            max_candidates_per_ballot: 10,
            votes_per_campaign: None,
            show_counts: ShowCounts::Live,
            fraud_policy: FraudPolicy::Record,
            challenge_bits: 0,
            risk: RiskThresholds::default(),
            evaluation: Default::default(),
            results: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 0, 0, 0).unwrap()
    }

    fn windows() -> Vec<PhaseWindow> {
        vec![
            PhaseWindow {
                phase: Phase::Nomination,
                starts_at: at(1),
                ends_at: at(5),
            },
            PhaseWindow {
                phase: Phase::Voting,
                starts_at: at(6),
                ends_at: at(10),
            },
        ]
    }

    #[test]
    fn the_current_phase_follows_the_windows_and_the_clock() {
        let w = windows();
        assert_eq!(current_phase(true, &w, at(7)), CurrentPhase::Draft);
        assert_eq!(current_phase(false, &w, at(1)), CurrentPhase::Nomination);
        assert_eq!(current_phase(false, &w, at(5)), CurrentPhase::Between);
        assert_eq!(current_phase(false, &w, at(6)), CurrentPhase::Voting);
        assert_eq!(current_phase(false, &w, at(10)), CurrentPhase::Ended);
        assert_eq!(
            current_phase(false, &w, at(1) - chrono::Duration::seconds(1)),
            CurrentPhase::NotStarted
        );
    }

    #[test]
    fn rules_default_the_fraud_policy_and_refuse_unknown_fields() {
        let r: Rules = serde_json::from_str(
            r#"{"votes_per_day":5,"votes_per_candidate_per_day":1,"max_candidates_per_ballot":3,"votes_per_campaign":null,"show_counts":"rank_only"}"#,
        )
        .unwrap();
        assert_eq!(r.fraud_policy, FraudPolicy::Record);
        assert_eq!(r.challenge_bits, 0);
        assert!(serde_json::from_str::<Rules>(r#"{"votes":1}"#).is_err());
    }
}

/// A value at fault and why, for 422 answers: `field` is a path such as `phases[1].ends_at`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The organizer-set settings of a campaign, checked as a whole (a change of one field is
/// checked against the others).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub title: String,
    pub description: String,
    pub timezone: String,
    pub phases: Vec<PhaseWindow>,
    pub rules: Rules,
}

pub const MAX_BALLOT_CANDIDATES: u32 = 100;
pub const MAX_CHALLENGE_BITS: u8 = 24;

pub fn validate(s: &Settings) -> Result<(), FieldError> {
    let title_len = s.title.trim().chars().count();
    if !(1..=100).contains(&title_len) {
        return Err(field_error("title", "标题须为1至100个字"));
    }
    if s.description.chars().count() > 5000 {
        return Err(field_error("description", "说明不能超过5000个字"));
    }
    if s.timezone.parse::<chrono_tz::Tz>().is_err() {
        return Err(field_error("timezone", "时区无效，例如 Asia/Shanghai"));
    }
    validate_phases(&s.phases)?;
    validate_rules(&s.rules)
}

fn validate_phases(phases: &[PhaseWindow]) -> Result<(), FieldError> {
    for (i, w) in phases.iter().enumerate() {
        if w.ends_at <= w.starts_at {
            return Err(field_error(
                format!("phases[{i}].ends_at"),
                "阶段结束时间须晚于开始时间",
            ));
        }
        if phases[..i].iter().any(|o| o.phase == w.phase) {
            return Err(field_error(
                format!("phases[{i}].phase"),
                "同一阶段不能设置两次",
            ));
        }
    }
    // Every pair: no overlap, and a later phase (in the order nomination → published) never
    // starts before an earlier one ends.
    for (i, a) in phases.iter().enumerate() {
        for (j, b) in phases.iter().enumerate() {
            if i == j {
                continue;
            }
            if a.phase < b.phase && b.starts_at < a.ends_at {
                let field = format!("phases[{j}].starts_at");
                let message = if b.ends_at <= a.starts_at {
                    format!(
                        "{}阶段不能早于{}阶段",
                        phase_name(b.phase),
                        phase_name(a.phase)
                    )
                } else {
                    format!(
                        "{}阶段与{}阶段时间重叠",
                        phase_name(b.phase),
                        phase_name(a.phase)
                    )
                };
                return Err(field_error(field, message));
            }
        }
    }
    Ok(())
}

pub fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Nomination => "推荐",
        Phase::Voting => "投票",
        Phase::Review => "评审",
        Phase::Publicity => "公示",
        Phase::Published => "发布",
    }
}

fn validate_rules(r: &Rules) -> Result<(), FieldError> {
    if !(1..=1000).contains(&r.votes_per_day) {
        return Err(field_error(
            "rules.votes_per_day",
            "每日票数须在1到1000之间",
        ));
    }
    if r.votes_per_candidate_per_day == 0 || r.votes_per_candidate_per_day > r.votes_per_day {
        return Err(field_error(
            "rules.votes_per_candidate_per_day",
            "每位候选人每日票数须至少为1，且不能超过每日票数",
        ));
    }
    if r.max_candidates_per_ballot == 0
        || r.max_candidates_per_ballot > r.votes_per_day
        || r.max_candidates_per_ballot > MAX_BALLOT_CANDIDATES
    {
        return Err(field_error(
            "rules.max_candidates_per_ballot",
            "每次最多投票人数须至少为1，且不能超过每日票数和100",
        ));
    }
    if let Some(total) = r.votes_per_campaign
        && total < r.votes_per_candidate_per_day
    {
        return Err(field_error(
            "rules.votes_per_campaign",
            "活动总票数不能少于每位候选人每日票数",
        ));
    }
    if r.challenge_bits > MAX_CHALLENGE_BITS {
        return Err(field_error(
            "rules.challenge_bits",
            "工作量证明难度不能超过24",
        ));
    }
    super::results::validate_rules(&r.results)?;
    let t = &r.risk;
    for (name, value) in [
        ("voters_per_device", t.voters_per_device),
        ("voters_per_ip", t.voters_per_ip),
        ("voters_per_network", t.voters_per_network),
        ("identical_ballots", t.identical_ballots),
        ("surge_min_votes", t.surge_min_votes),
    ] {
        if !(1..=100_000).contains(&value) {
            return Err(field_error(
                format!("rules.risk.{name}"),
                "风险阈值须在1到100000之间",
            ));
        }
    }
    for (name, value) in [("window_secs", t.window_secs), ("burst_secs", t.burst_secs)] {
        if !(60..=86_400).contains(&value) {
            return Err(field_error(
                format!("rules.risk.{name}"),
                "统计时段须在60到86400秒之间",
            ));
        }
    }
    if t.min_account_age_secs > 30 * 86_400 {
        return Err(field_error(
            "rules.risk.min_account_age_secs",
            "新账号时长不能超过30天",
        ));
    }
    if !(2..=100).contains(&t.surge_factor) {
        return Err(field_error(
            "rules.risk.surge_factor",
            "票数异常倍数须在2到100之间",
        ));
    }
    if t.raise_bits > MAX_CHALLENGE_BITS {
        return Err(field_error(
            "rules.risk.raise_bits",
            "工作量证明难度不能超过24",
        ));
    }
    check_evaluation(&r.evaluation)?;
    Ok(())
}

fn check_evaluation(e: &super::rating::EvaluationRules) -> Result<(), FieldError> {
    let mut seen = std::collections::HashSet::new();
    for (i, g) in e.groups.iter().enumerate() {
        if !seen.insert(g.group) {
            return Err(field_error(
                format!("rules.evaluation.groups[{i}].group"),
                "评议群体不能重复",
            ));
        }
        if g.weight > 1000 {
            return Err(field_error(
                format!("rules.evaluation.groups[{i}].weight"),
                "权重须在0到1000之间",
            ));
        }
    }
    if e.groups.iter().all(|g| g.weight == 0) {
        return Err(field_error(
            "rules.evaluation.groups",
            "至少一个评议群体的权重须大于0",
        ));
    }
    let p = &e.level_points;
    if p.satisfied > 100
        || p.basically_satisfied > p.satisfied
        || p.unsatisfied > p.basically_satisfied
    {
        return Err(field_error(
            "rules.evaluation.level_points",
            "各等级分值须在0到100之间，且满意 ≥ 基本满意 ≥ 不满意",
        ));
    }
    if e.annual.total() != 100 {
        return Err(field_error(
            "rules.evaluation.annual",
            "年度考评各项分值之和须为100",
        ));
    }
    Ok(())
}

/// Candidate status changes an organizer may make: nominated → approved or rejected;
/// approved → withdrawn (its votes stay on the record).
pub fn status_change_allowed(from: &str, to: &str) -> bool {
    matches!(
        (from, to),
        ("nominated", "approved") | ("nominated", "rejected") | ("approved", "withdrawn")
    )
}

#[cfg(test)]
mod validation_tests {
    use super::*;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, day, 0, 0, 0).unwrap()
    }

    fn settings(phases: Vec<PhaseWindow>) -> Settings {
        Settings {
            title: "评选".into(),
            description: String::new(),
            timezone: "Asia/Shanghai".into(),
            phases,
            rules: Rules::default(),
        }
    }

    fn w(phase: Phase, a: u32, b: u32) -> PhaseWindow {
        PhaseWindow {
            phase,
            starts_at: at(a),
            ends_at: at(b),
        }
    }

    #[test]
    fn good_settings_pass() {
        assert_eq!(
            validate(&settings(vec![
                w(Phase::Nomination, 1, 5),
                w(Phase::Voting, 5, 10)
            ])),
            Ok(())
        );
        assert_eq!(validate(&settings(vec![])), Ok(()));
    }

    #[test]
    fn bad_windows_name_the_field() {
        let e = validate(&settings(vec![w(Phase::Nomination, 5, 1)])).unwrap_err();
        assert_eq!(e.field, "phases[0].ends_at");
        let e = validate(&settings(vec![
            w(Phase::Nomination, 1, 6),
            w(Phase::Voting, 5, 10),
        ]))
        .unwrap_err();
        assert_eq!(e.field, "phases[1].starts_at");
        assert!(e.message.contains("重叠"));
        let e = validate(&settings(vec![
            w(Phase::Voting, 1, 3),
            w(Phase::Nomination, 5, 10),
        ]))
        .unwrap_err();
        assert_eq!(e.field, "phases[0].starts_at");
        assert!(e.message.contains("不能早于"), "{}", e.message);
        let e = validate(&settings(vec![
            w(Phase::Voting, 1, 3),
            w(Phase::Voting, 5, 10),
        ]))
        .unwrap_err();
        assert_eq!(e.field, "phases[1].phase");
    }

    #[test]
    fn impossible_rules_and_bad_zones_name_the_field() {
        let mut s = settings(vec![]);
        s.rules.votes_per_candidate_per_day = 20;
        assert_eq!(
            validate(&s).unwrap_err().field,
            "rules.votes_per_candidate_per_day"
        );
        let mut s = settings(vec![]);
        s.rules.votes_per_day = 0;
        assert_eq!(validate(&s).unwrap_err().field, "rules.votes_per_day");
        let mut s = settings(vec![]);
        s.rules.max_candidates_per_ballot = 11;
        assert_eq!(
            validate(&s).unwrap_err().field,
            "rules.max_candidates_per_ballot"
        );
        let mut s = settings(vec![]);
        s.rules.votes_per_campaign = Some(0);
        assert_eq!(validate(&s).unwrap_err().field, "rules.votes_per_campaign");
        let mut s = settings(vec![]);
        s.timezone = "Mars/Base".into();
        assert_eq!(validate(&s).unwrap_err().field, "timezone");
        let mut s = settings(vec![]);
        s.title = " ".into();
        assert_eq!(validate(&s).unwrap_err().field, "title");
    }

    #[test]
    fn candidate_status_changes() {
        assert!(status_change_allowed("nominated", "approved"));
        assert!(status_change_allowed("approved", "withdrawn"));
        assert!(!status_change_allowed("rejected", "approved"));
        assert!(!status_change_allowed("withdrawn", "approved"));
    }
}
