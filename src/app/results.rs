//! Results of a selection (experts' scores) or an evaluation: drafts for the publicity
//! period, objections and publication. The numbers come from the ledger (never from the live counters) and are
//! computed by `domain::results`; freezing them is one chain entry, and publication seals the
//! chain.

use std::collections::{BTreeMap, HashSet};

use super::Services;
use crate::domain::campaign::Kind;
use crate::domain::rating::RaterGroup;
use crate::domain::record::Actor;
use crate::domain::results::{self, FreezeRefusal, FreezeState, Stage};
use crate::domain::score::Level;
use crate::store::{
    Campaign, Candidate, CandidateQuery, CandidateStatus, ExpertScore, Frozen, NewExpertScore,
    NewObjection, Objection, ResultInputs, StoreError,
};

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("refused: {0:?}")]
    Refused(FreezeRefusal),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times a freeze is computed again when the chain moved under it.
const ATTEMPTS: usize = 5;

pub fn freeze_state<'a>(c: &'a Campaign, inputs: Option<&ResultInputs>) -> FreezeState<'a> {
    FreezeState {
        is_draft: c.is_draft,
        published: c.published_seq.is_some(),
        phases: &c.phases,
        last_frozen: inputs.and_then(|i| i.last_frozen),
        open_objections: inputs.map_or(0, |i| i.open_objections),
    }
}

/// The results the inputs give: a selection's ranking, or an evaluation's scores.
pub fn compute(stage: Stage, inputs: &ResultInputs) -> Result<results::Results, StoreError> {
    let campaign = inputs.campaign.state();
    if campaign.kind == Kind::Evaluation {
        let targets: Vec<_> = inputs.targets.iter().map(|t| t.state()).collect();
        let mut ratings: BTreeMap<(i64, RaterGroup), results::Counts> = BTreeMap::new();
        for r in &inputs.ratings {
            let (Some(group), Some(level)) = (RaterGroup::parse(&r.group), Level::parse(&r.level))
            else {
                return Err(StoreError::Corrupt(format!(
                    "rating {} / {}",
                    r.group, r.level
                )));
            };
            ratings
                .entry((r.target_id, group))
                .or_default()
                .add(level, r.n);
        }
        return Ok(results::compute_evaluation(
            stage,
            &results::EvaluationInputs {
                campaign: &campaign,
                targets: targets.iter().collect(),
                ratings: &ratings,
            },
        ));
    }
    let categories: Vec<_> = inputs.categories.iter().map(|c| c.state()).collect();
    let candidates: Vec<_> = inputs.candidates.iter().map(|c| c.state()).collect();
    Ok(results::compute(
        stage,
        &results::Inputs {
            campaign: &campaign,
            categories: categories.iter().collect(),
            candidates: candidates.iter().collect(),
            votes: &inputs.votes,
            expert_totals: &inputs.expert_totals,
        },
    ))
}

/// Freezes a draft (for the publicity period) or the final results (publication). Computed
/// from one snapshot of the ledger and frozen only if the chain has not moved since.
pub async fn freeze(
    services: &Services,
    actor: &Actor,
    campaign_id: i64,
    stage: Stage,
) -> Result<Frozen, ResultsError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let inputs = services.store.result_inputs(campaign_id).await?;
        let now = services.now();
        results::may_freeze(stage, &freeze_state(&inputs.campaign, Some(&inputs)), now)
            .map_err(ResultsError::Refused)?;
        let r = compute(stage, &inputs)?;
        if stage == Stage::Final && has_publicity(&inputs.campaign) {
            same_as_draft(services, &r).await?;
        }
        let hash =
            results::snapshot_hash(&r).map_err(|e| StoreError::Corrupt(format!("results: {e}")))?;
        match services
            .store
            .freeze_results(actor, &r, &hash, inputs.head.0, now)
            .await
        {
            Err(StoreError::HeadMoved) if attempt < ATTEMPTS => continue,
            Err(StoreError::Published) => {
                return Err(ResultsError::Refused(FreezeRefusal::Published));
            }
            Ok(frozen) => {
                tracing::info!(
                    campaign_id,
                    stage = stage.as_str(),
                    seq = frozen.seq,
                    snapshot_hash = %frozen.snapshot_hash,
                    "results frozen"
                );
                metrics::counter!("results_frozen_total", "stage" => stage.as_str()).increment(1);
                return Ok(frozen);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn has_publicity(c: &Campaign) -> bool {
    c.phases
        .iter()
        .any(|w| w.phase == crate::domain::campaign::Phase::Publicity)
}

/// After a publicity period, the final results are the draft the public saw (a change since
/// needs a new draft, publicized in its window).
async fn same_as_draft(services: &Services, r: &results::Results) -> Result<(), ResultsError> {
    let draft = services
        .store
        .frozen_results(r.campaign_id, Stage::Draft)
        .await?
        .ok_or(ResultsError::Refused(FreezeRefusal::DraftNotFrozen))?;
    let publicized = results::Results {
        stage: Stage::Final,
        ..draft.results
    };
    if &publicized != r {
        return Err(ResultsError::Refused(FreezeRefusal::ChangedSinceDraft));
    }
    Ok(())
}

/// An expert's sheet: the approved candidates of their categories, and their own scores.
pub struct Sheet {
    pub candidates: Vec<Candidate>,
    pub scores: Vec<ExpertScore>,
}

pub async fn sheet(
    services: &Services,
    campaign_id: i64,
    expert_id: i64,
) -> Result<Sheet, StoreError> {
    let categories: HashSet<i64> = services
        .store
        .expert_assignments(campaign_id)
        .await?
        .into_iter()
        .filter(|a| a.staff_id == expert_id)
        .flat_map(|a| a.category_ids)
        .collect();
    let all = CandidateQuery {
        limit: u32::MAX,
        ..Default::default()
    };
    let candidates = services
        .store
        .list_candidates(campaign_id, None, &all)
        .await?
        .into_iter()
        .filter(|c| categories.contains(&c.category_id) && c.status == CandidateStatus::Approved)
        .collect();
    let scores = services
        .store
        .expert_scores(campaign_id, Some(expert_id))
        .await?;
    Ok(Sheet { candidates, scores })
}

/// Records an expert's score of a candidate; checks the points against the criteria first.
pub async fn score(
    services: &Services,
    actor: &Actor,
    campaign: &Campaign,
    expert_id: i64,
    candidate_id: i64,
    points: BTreeMap<String, i64>,
) -> Result<ExpertScore, StoreError> {
    let total = results::check_points(&campaign.rules.results, &points)?;
    let s = services
        .store
        .record_expert_score(
            actor,
            &NewExpertScore {
                campaign_id: campaign.id,
                staff_id: expert_id,
                candidate_id,
                points,
                total,
                at: services.now(),
            },
        )
        .await?;
    metrics::counter!("expert_scores_total").increment(1);
    Ok(s)
}

/// An expert's progress, for organizers.
pub struct Progress {
    pub staff_id: i64,
    pub username: String,
    pub category_ids: Vec<i64>,
    pub expected: usize,
    pub missing: Vec<i64>,
}

pub async fn progress(services: &Services, campaign_id: i64) -> Result<Vec<Progress>, StoreError> {
    let all = CandidateQuery {
        limit: u32::MAX,
        ..Default::default()
    };
    let candidates = services
        .store
        .list_candidates(campaign_id, None, &all)
        .await?;
    let scores = services.store.expert_scores(campaign_id, None).await?;
    let scored: HashSet<(i64, i64)> = scores
        .iter()
        .map(|s| (s.staff_id, s.candidate_id))
        .collect();
    Ok(services
        .store
        .expert_assignments(campaign_id)
        .await?
        .into_iter()
        .map(|a| {
            let expected: Vec<i64> = candidates
                .iter()
                .filter(|c| {
                    a.category_ids.contains(&c.category_id) && c.status == CandidateStatus::Approved
                })
                .map(|c| c.id)
                .collect();
            let missing = expected
                .iter()
                .copied()
                .filter(|c| !scored.contains(&(a.staff_id, *c)))
                .collect();
            Progress {
                staff_id: a.staff_id,
                username: a.username,
                category_ids: a.category_ids,
                expected: expected.len(),
                missing,
            }
        })
        .collect())
}

/// An objection as a citizen sends it, checked by the handler.
pub struct ObjectionInput {
    pub candidate_id: Option<i64>,
    pub name: Option<String>,
    pub contact: String,
    pub content: String,
}

/// The vault binds a sealed contact to its campaign, so it cannot be moved to another.
fn seal_context(campaign_id: i64) -> String {
    format!("objection campaign {campaign_id}")
}

/// Records an objection during the publicity period; the name and contact are sealed.
pub async fn object(
    services: &Services,
    campaign: &Campaign,
    input: ObjectionInput,
) -> Result<Objection, ResultsError> {
    if campaign.published_seq.is_some() {
        return Err(StoreError::Published.into());
    }
    let now = services.now();
    let state = freeze_state(campaign, None);
    // The store checks that a draft is frozen; the window is checked here.
    let open = results::in_publicity(
        &FreezeState {
            last_frozen: Some(Stage::Draft),
            ..state
        },
        now,
    );
    if !open {
        return Err(StoreError::Closed("not_in_publicity").into());
    }
    let context = seal_context(campaign.id);
    let o = services
        .store
        .add_objection(&NewObjection {
            campaign_id: campaign.id,
            candidate_id: input.candidate_id,
            name_enc: input
                .name
                .as_deref()
                .map(|n| services.vault.seal(n, &context)),
            contact_enc: services.vault.seal(&input.contact, &context),
            content: input.content,
            at: now,
        })
        .await?;
    tracing::info!(
        campaign_id = campaign.id,
        objection_id = o.id,
        seq = o.seq,
        "objection received"
    );
    Ok(o)
}

/// An objection's name and contact in clear, for organizers only.
pub fn open_contact(services: &Services, o: &Objection) -> (Option<String>, String) {
    let context = seal_context(o.campaign_id);
    let name = o.name_enc.as_deref().map(|n| {
        services
            .vault
            .open(n, &context)
            .unwrap_or_else(|_| "（无法解密）".into())
    });
    let contact = services
        .vault
        .open(&o.contact_enc, &context)
        .unwrap_or_else(|_| "（无法解密）".into());
    (name, contact)
}
