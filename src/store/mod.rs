//! The relational ledger: what the service needs from a database, named as one trait, with
//! one implementation per backend chosen once at start from `DATABASE_URL`.
//!
//! PostgreSQL is the production record; SQLite is the embedded default. Both run the same
//! test suite. SQL lives in `postgres.rs` and `sqlite.rs` only; each backend has its own
//! migrations under `migrations/`.

#[macro_use]
mod sql;
mod postgres;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::config::{DatabaseKind, Settings};
use crate::domain::audit::Entry;
use crate::domain::campaign::{FieldError, Kind, PhaseWindow, Rules};
use crate::domain::keyed::VoterId;
use crate::domain::rating::{Level, RaterGroup};
use crate::domain::record::{
    Actor, CampaignState, CandidateState, CategoryState, Snapshot, TargetState,
};
use crate::domain::results;
use crate::domain::review;
use crate::domain::score::Component;
use crate::domain::staff::Role;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was broken; the string names what was duplicated.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration error: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    #[error("invalid: {0}")]
    Invalid(#[from] FieldError),
    /// The batch this write was part of failed (the cause is logged once, by the batcher).
    #[error("batch failed: {0}")]
    BatchFailed(String),
    #[error("candidate status cannot change from {from} to {to}")]
    BadTransition { from: String, to: String },
    /// A read shared by several callers failed (the cause is logged once, where it happened).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The ledger refused one ballot of a batch (checked again under the chain's lock).
    #[error("ballot refused: {0:?}")]
    Refused(BallotRefusal),
    #[error("rating refused: {0:?}")]
    RatingRefused(RatingRefusal),
    /// The campaign's results are published: its chain is sealed and nothing can change.
    #[error("the campaign is published")]
    Published,
    /// The chain moved past the head a computation was based on; compute again.
    #[error("the chain moved on")]
    HeadMoved,
    /// Refused in the campaign's present state; the string names the state's error code.
    #[error("refused: {0}")]
    Closed(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BallotRefusal {
    /// The campaign was not in its voting phase at the ballot's time.
    VotingClosed,
    /// A candidate of the ballot is not (or no longer) approved.
    NotApproved,
    /// The voter is blocked in the campaign.
    VoterBlocked,
}

/// Why the ledger refused a rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingRefusal {
    /// The campaign was not an evaluation in its voting phase at the rating's time.
    VotingClosed,
    /// No such target in the campaign.
    UnknownTarget,
    /// The voter already rated this target in this period.
    AlreadyRated,
    /// The voter used the day's ratings.
    DailyExhausted,
    /// The survey was answered already.
    SurveyAnswered,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A staff account as the login check needs it.
#[derive(Clone)]
pub struct StaffAccount {
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub password_hash: String,
    pub failed_logins: u32,
    pub locked_until: Option<DateTime<Utc>>,
    pub disabled: bool,
}

/// Who a valid staff token belongs to.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub staff_id: i64,
    pub username: String,
    pub role: Role,
    /// The unit a `unit_handler` nominates for.
    pub unit: Option<String>,
    /// The rater group of a rater account (party member, leader, supervisor).
    pub rater_group: Option<RaterGroup>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StaffSummary {
    #[serde(serialize_with = "crate::http::id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewCampaign {
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub timezone: String,
    pub phases: Vec<PhaseWindow>,
    pub rules: Rules,
}

#[derive(Debug, Clone)]
pub struct Campaign {
    pub id: i64,
    pub kind: Kind,
    pub title: String,
    pub description: String,
    pub timezone: String,
    pub phases: Vec<PhaseWindow>,
    pub rules: Rules,
    pub is_draft: bool,
    pub created_at: DateTime<Utc>,
    /// The seq of the `results.published` entry, once published.
    pub published_seq: Option<i64>,
    /// Moved on by every change of the campaign's row, candidates or blocklist (the
    /// database's triggers, migration 0015).
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct Category {
    pub id: i64,
    pub campaign_id: i64,
    pub name: String,
    pub winners: u32,
}

#[derive(Debug, Clone)]
pub struct NewCandidate {
    pub category_id: i64,
    pub name: String,
    pub unit: String,
    pub department: String,
    pub title: String,
    pub photo_url: String,
    pub story: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateStatus {
    Nominated,
    Approved,
    Rejected,
    Withdrawn,
}

impl CandidateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nominated => "nominated",
            Self::Approved => "approved",
            Self::Rejected => "rejected",
            Self::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Nominated,
            Self::Approved,
            Self::Rejected,
            Self::Withdrawn,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: i64,
    pub campaign_id: i64,
    pub category_id: i64,
    pub number: i64,
    pub name: String,
    pub unit: String,
    pub department: String,
    pub title: String,
    pub photo_url: String,
    pub story: String,
    pub status: CandidateStatus,
    pub reason: String,
}

/// A change of campaign settings: absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct CampaignPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub timezone: Option<String>,
    pub phases: Option<Vec<PhaseWindow>>,
    pub rules: Option<Rules>,
}

/// An entry whose body is still the stored JSON text.
#[derive(Debug, Clone)]
pub struct RawEntry {
    pub seq: i64,
    pub kind: String,
    pub body: String,
    pub prev_hash: String,
    pub hash: String,
}

/// A ballot to record: checked, its quotas taken.
#[derive(Debug, Clone)]
pub struct NewBallot {
    pub campaign_id: i64,
    pub voter_id: String,
    pub candidate_ids: Vec<i64>,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub remaining_today: u32,
    pub cast_at: DateTime<Utc>,
    /// The quota day (campaign time zone) the ballot counted against.
    pub quota_day: chrono::NaiveDate,
    /// `counted`, or `quarantined` (held apart from the public counts until reviewed).
    pub status: &'static str,
    /// Risk flags (see `domain::risk`).
    pub flags: Vec<&'static str>,
    /// Keyed hash of the client's device id, when it sent one.
    pub device_hash: Option<String>,
    /// Keyed hashes of the client's address and of its network (/24 or /64), when known.
    pub ip_hash: Option<String>,
    pub network_hash: Option<String>,
    /// The campaign's version the vote path checked the ballot against (window, candidates,
    /// blocked voters), if it did: while it is still the campaign's, the ledger need not
    /// check them again.
    pub checked_version: Option<i64>,
}

impl NewBallot {
    /// The ballot's audit entry body. The device, address and network hashes stay in the
    /// ledger (for the review); the chain carries what a recount needs.
    pub fn entry_body(&self) -> serde_json::Value {
        serde_json::json!({
            "kind": "ballot",
            "at": self.cast_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "campaign_id": self.campaign_id.to_string(),
            "voter_id": self.voter_id,
            "candidate_ids": self.candidate_ids.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "status": self.status,
            "flags": self.flags,
        })
    }

    pub fn flags_text(&self) -> String {
        serde_json::to_string(&self.flags).unwrap_or_else(|_| "[]".into())
    }
}

/// A rating to record.
#[derive(Debug, Clone)]
pub struct NewRating {
    pub campaign_id: i64,
    pub target_id: i64,
    /// A citizen's voter id, or `staff:<id>` for staff raters.
    pub voter_id: String,
    pub group: RaterGroup,
    pub level: Level,
    pub comment: String,
    pub period: String,
    pub quota_day: chrono::NaiveDate,
    /// Ratings a voter may give per quota day.
    pub per_day: u32,
    /// The survey record this rating answers (SMS surveys): marked answered in the same
    /// transaction, once.
    pub survey_record_id: Option<i64>,
    pub idempotency_key: Option<String>,
    pub request_hash: String,
    pub rated_at: DateTime<Utc>,
}

impl NewRating {
    /// The rating's audit entry body. The comment itself stays in the ledger (it may name
    /// people); the chain carries its SHA-256, so a published comment can be checked.
    pub fn entry_body(&self) -> serde_json::Value {
        use sha2::Digest;
        serde_json::json!({
            "kind": "rating",
            "at": self.rated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "campaign_id": self.campaign_id.to_string(),
            "voter_id": self.voter_id,
            "target_id": self.target_id.to_string(),
            "group": self.group.as_str(),
            "channel": self.group.channel(),
            "level": self.level.as_str(),
            "period": self.period,
            "comment_sha256": (!self.comment.is_empty())
                .then(|| hex::encode(sha2::Sha256::digest(self.comment.as_bytes()))),
            "status": "counted",
        })
    }
}

/// A recorded rating and its place in the chain.
#[derive(Debug, Clone)]
pub struct Rating {
    pub id: i64,
    pub campaign_id: i64,
    pub target_id: i64,
    pub voter_id: String,
    pub group: String,
    pub level: String,
    pub period: String,
    pub request_hash: String,
    pub seq: i64,
    pub receipt: String,
    pub status: String,
    pub rated_at: DateTime<Utc>,
    /// The opinion an unsatisfied rating with a comment became.
    pub opinion_id: Option<i64>,
}

/// Ratings of one target by one group at one level (counted ratings only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingCount {
    pub target_id: i64,
    pub group: String,
    pub level: String,
    pub n: u64,
}

/// An opinion for a unit to answer.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Opinion {
    #[serde(serialize_with = "crate::http::id_as_string")]
    #[schema(value_type = String)]
    pub id: i64,
    #[serde(serialize_with = "crate::http::id_as_string")]
    #[schema(value_type = String)]
    pub campaign_id: i64,
    #[serde(serialize_with = "crate::http::id_as_string")]
    #[schema(value_type = String)]
    pub target_id: i64,
    pub unit_code: String,
    pub comment: String,
    /// `open`, `answered` or `closed`.
    pub status: String,
    /// Whether the unit found the opinion to be true; null until answered.
    pub verified: Option<bool>,
    /// What the unit did.
    pub action: String,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A unit's answer to an opinion.
#[derive(Debug, Clone)]
pub struct OpinionAnswer {
    pub verified: bool,
    pub action: String,
    pub close: bool,
    pub at: DateTime<Utc>,
}

/// Which opinions to list.
#[derive(Debug, Clone, Default)]
pub struct OpinionQuery {
    pub campaign_id: Option<i64>,
    /// Only this unit's (a unit handler sees no other).
    pub unit_code: Option<String>,
    pub status: Option<String>,
    pub after_id: Option<i64>,
    pub limit: u32,
}

/// A service record to import, checked: its phone number sealed and hashed.
#[derive(Debug, Clone)]
pub struct NewSurveyRecord {
    pub target_id: i64,
    pub visited_on: chrono::NaiveDate,
    pub phone_hash: String,
    pub phone_enc: String,
}

/// A fresh survey token for `claim_sends` to give a record that has none: its SHA-256, and
/// the token sealed by the vault (bound to that hash) so that a send again can carry it.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub hash: String,
    pub sealed: String,
}

/// The token a claimed send carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimedToken {
    /// The `i`-th of the tokens given to `claim_sends`: the record had none.
    Fresh(usize),
    /// The one an earlier attempt gave the record (sealed, with its hash), kept: a send again
    /// carries the same link, so that the first SMS, if it arrived, still opens the survey.
    Kept { hash: String, sealed: String },
}

/// A survey SMS to send, claimed by this instance until its lease ends.
#[derive(Debug, Clone)]
pub struct ClaimedSend {
    pub id: i64,
    pub campaign_id: i64,
    /// `None` when the number was cleared (retention) before the send.
    pub phone_enc: Option<String>,
    pub attempts: u32,
    pub token: ClaimedToken,
}

/// What `claim_sends` did.
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub sends: Vec<ClaimedSend>,
    /// Due sends whose survey was answered meanwhile (the first link arrived): settled
    /// `sent`, not claimed.
    pub answered: u64,
}

/// A survey SMS whose outcome is unknown, claimed by this instance for a status query until
/// its lease ends.
#[derive(Debug, Clone)]
pub struct UnknownSend {
    pub id: i64,
    pub campaign_id: i64,
    /// `None` when the number was cleared (retention): the gateway cannot be asked.
    pub phone_enc: Option<String>,
    pub attempts: u32,
    /// Why the outcome is unknown (`timeout: outcome unknown`, `interrupted: outcome unknown`).
    pub reason: String,
    /// When the last attempt was claimed (`None` for a claim made before 0013 timed them).
    pub attempted_at: Option<DateTime<Utc>>,
    pub unknown_at: DateTime<Utc>,
    /// Status queries that failed so far.
    pub failed_queries: u32,
    /// Its survey was answered: the link arrived, whatever the gateway says.
    pub answered: bool,
}

/// What became of a send of unknown outcome, once the gateway was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled<'a> {
    /// The gateway took it: sent (at about `at`).
    Sent { at: DateTime<Utc> },
    /// The gateway never took it: queued again at `retry_at`.
    Requeued {
        reason: &'a str,
        retry_at: DateTime<Utc>,
    },
    /// The gateway could not tell: failed for good.
    Failed { reason: &'a str },
}

/// A survey as its page shows it.
#[derive(Debug, Clone)]
pub struct SurveyView {
    pub record_id: i64,
    pub campaign_id: i64,
    pub target_id: i64,
    pub target_name: String,
    /// The unit's name, when the target is a department of it.
    pub unit_name: Option<String>,
    pub visited_on: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub answered: bool,
}

/// Points an organizer enters for a unit's component of the annual score.
#[derive(Debug, Clone)]
pub struct EnteredPoints {
    pub campaign_id: i64,
    pub target_id: i64,
    pub year: String,
    pub component: Component,
    pub points: rust_decimal::Decimal,
    pub at: DateTime<Utc>,
}

/// A review decision to make (see `domain::review`).
#[derive(Debug, Clone)]
pub struct Decision {
    pub campaign_id: i64,
    pub action: review::Action,
    pub reason: String,
    pub select: Selection,
    pub at: DateTime<Utc>,
}

/// Which ballots a decision is about; of those, it moves the ones whose status it can move.
#[derive(Debug, Clone)]
pub enum Selection {
    /// By their seqs (receipts' places in the chain).
    Seqs(Vec<i64>),
    /// A cluster: the ballots sharing `key` by `by`, cast in `[from, to)`.
    Cluster {
        by: review::ClusterBy,
        key: String,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    },
}

/// A decision on the record.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The decision's entry.
    pub seq: i64,
    pub hash: String,
    pub action: review::Action,
    /// The seqs of the ballots it moved.
    pub ballots: Vec<i64>,
    /// How the public counts move, per candidate.
    pub votes: std::collections::BTreeMap<i64, i64>,
}

/// A blocklist row of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub subject: BlockSubject,
    /// A voter id, or a normalized CIDR range.
    pub value: String,
    pub blocked: bool,
    pub reason: String,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockSubject {
    Voter,
    Network,
}

impl BlockSubject {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockSubject::Voter => "voter",
            BlockSubject::Network => "network",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "voter" => Some(BlockSubject::Voter),
            "network" => Some(BlockSubject::Network),
            _ => None,
        }
    }
}

impl Block {
    pub fn state(&self) -> crate::domain::record::BlockState {
        crate::domain::record::BlockState {
            subject: self.subject.as_str().into(),
            value: self.value.clone(),
            blocked: self.blocked,
            reason: self.reason.clone(),
        }
    }
}

/// Entries linked after a chain head, ready to be written: the entries, their canonical
/// texts (what is hashed and stored), and the new head.
pub struct Linked {
    pub entries: Vec<Entry>,
    pub texts: Vec<String>,
    pub head: (i64, String),
}

/// Links `bodies` after `head` (seq, hash). Pure: the caller holds the head's lock and writes.
pub fn chain(head: (i64, String), bodies: Vec<serde_json::Value>) -> StoreResult<Linked> {
    link_after(head, canonical_bodies(bodies)?)
}

/// Entry bodies with their canonical texts: the part of linking that does not depend on the
/// head, so that it can be done before the head is known.
pub fn canonical_bodies(
    bodies: Vec<serde_json::Value>,
) -> StoreResult<Vec<(serde_json::Value, String)>> {
    bodies
        .into_iter()
        .map(|body| {
            let text = crate::domain::audit::canonical(&body)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((body, text))
        })
        .collect()
}

/// Links bodies (with their canonical texts) after `head` (seq, hash).
pub fn link_after(
    head: (i64, String),
    bodies: Vec<(serde_json::Value, String)>,
) -> StoreResult<Linked> {
    use crate::domain::audit;
    let (mut seq, head_hash) = head;
    let mut prev =
        audit::from_hex(&head_hash).ok_or_else(|| StoreError::Corrupt("audit head hash".into()))?;
    let mut entries = Vec::with_capacity(bodies.len());
    let mut texts = Vec::with_capacity(bodies.len());
    for (body, text) in bodies {
        let hash = audit::link(&prev, &text);
        seq += 1;
        let kind = body
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        entries.push(Entry {
            seq,
            kind,
            body,
            prev_hash: audit::to_hex(&prev),
            hash: audit::to_hex(&hash),
        });
        texts.push(text);
        prev = hash;
    }
    Ok(Linked {
        entries,
        texts,
        head: (seq, audit::to_hex(&prev)),
    })
}

/// How a ballot's candidates are stored: a JSON array of id strings, in the ballot's order.
pub fn candidate_ids_text(b: &NewBallot) -> StoreResult<String> {
    let ids: Vec<String> = b.candidate_ids.iter().map(|c| c.to_string()).collect();
    serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A recorded ballot and its place in the chain.
#[derive(Debug, Clone)]
pub struct Ballot {
    pub id: i64,
    pub campaign_id: i64,
    pub voter_id: String,
    pub candidate_ids: Vec<i64>,
    pub request_hash: String,
    pub remaining_today: u32,
    pub seq: i64,
    pub receipt: String,
    pub status: String,
    pub cast_at: DateTime<Utc>,
}

/// Where a new target hangs in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetParent {
    Root,
    Id(i64),
    /// A code already in the campaign or given to an earlier target of the same call.
    Code(String),
}

#[derive(Debug, Clone)]
pub struct NewTarget {
    pub code: String,
    pub name: String,
    pub parent: TargetParent,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub id: i64,
    pub campaign_id: i64,
    pub code: String,
    pub name: String,
    pub parent_id: Option<i64>,
}

impl Campaign {
    pub fn state(&self) -> CampaignState {
        CampaignState {
            id: self.id,
            kind: self.kind,
            title: self.title.clone(),
            description: self.description.clone(),
            timezone: self.timezone.clone(),
            phases: self.phases.clone(),
            rules: self.rules.clone(),
            draft: self.is_draft,
        }
    }
}

impl Category {
    pub fn state(&self) -> CategoryState {
        CategoryState {
            id: self.id,
            name: self.name.clone(),
            winners: self.winners,
        }
    }
}

impl Candidate {
    pub fn state(&self) -> CandidateState {
        CandidateState {
            id: self.id,
            category_id: self.category_id,
            number: self.number,
            name: self.name.clone(),
            unit: self.unit.clone(),
            department: self.department.clone(),
            title: self.title.clone(),
            photo_url: self.photo_url.clone(),
            story: self.story.clone(),
            status: self.status.as_str().into(),
            reason: self.reason.clone(),
        }
    }
}

impl Target {
    pub fn state(&self) -> TargetState {
        TargetState {
            id: self.id,
            code: self.code.clone(),
            name: self.name.clone(),
            parent_id: self.parent_id,
        }
    }
}

/// An expert's categories in a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertAssignment {
    pub staff_id: i64,
    pub username: String,
    pub category_ids: Vec<i64>,
}

/// An expert's score of a candidate, to record.
#[derive(Debug, Clone)]
pub struct NewExpertScore {
    pub campaign_id: i64,
    pub staff_id: i64,
    pub candidate_id: i64,
    pub points: std::collections::BTreeMap<String, i64>,
    pub total: i64,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpertScore {
    pub staff_id: i64,
    pub candidate_id: i64,
    pub points: std::collections::BTreeMap<String, i64>,
    pub total: i64,
    pub seq: i64,
    pub receipt: String,
    pub scored_at: DateTime<Utc>,
}

/// What results are computed from, read in one snapshot with the chain's head at that moment.
#[derive(Debug, Clone)]
pub struct ResultInputs {
    pub head: (i64, String),
    pub campaign: Campaign,
    pub categories: Vec<Category>,
    pub candidates: Vec<Candidate>,
    /// Counted votes per candidate, from the ledger.
    pub votes: std::collections::BTreeMap<i64, i64>,
    /// Every expert total per candidate.
    pub expert_totals: std::collections::HashMap<i64, Vec<i64>>,
    /// An evaluation's targets and its counted ratings per target, group and level.
    pub targets: Vec<Target>,
    pub ratings: Vec<RatingCount>,
    /// The latest frozen results' stage, if any.
    pub last_frozen: Option<results::Stage>,
    pub open_objections: i64,
}

/// Results frozen in the chain.
#[derive(Debug, Clone)]
pub struct Frozen {
    pub campaign_id: i64,
    /// The seq of the entry that froze them.
    pub seq: i64,
    pub results: results::Results,
    pub snapshot_hash: String,
    /// The chain's head just before the freezing entry.
    pub head_seq: i64,
    pub head_hash: String,
    pub frozen_at: DateTime<Utc>,
}

/// An objection to a draft result, as received.
#[derive(Debug, Clone)]
pub struct NewObjection {
    pub campaign_id: i64,
    pub candidate_id: Option<i64>,
    /// The name and contact, sealed by the vault.
    pub name_enc: Option<String>,
    pub contact_enc: String,
    pub content: String,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Objection {
    pub id: i64,
    pub campaign_id: i64,
    pub candidate_id: Option<i64>,
    pub name_enc: Option<String>,
    pub contact_enc: String,
    pub content: String,
    /// `open` or `answered`.
    pub status: String,
    /// `upheld` or `rejected` once answered.
    pub verdict: Option<String>,
    pub answer: Option<String>,
    pub seq: i64,
    pub created_at: DateTime<Utc>,
    pub answered_at: Option<DateTime<Utc>>,
}

/// Which candidates a citizen's list asks for. `after_number` is the cursor.
#[derive(Debug, Clone, Default)]
pub struct CandidateQuery {
    pub category_id: Option<i64>,
    /// Matches the name or unit (substring) or the number (exactly).
    pub text: Option<String>,
    pub after_number: Option<i64>,
    pub limit: u32,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn kind(&self) -> DatabaseKind;
    async fn ping(&self) -> StoreResult<()>;

    /// The embedded default's own secret: made once and kept in the database, so that voter
    /// ids stay stable across restarts without a secret in configuration.
    async fn local_secret(&self) -> StoreResult<String>;

    // Staff accounts and sessions.
    async fn create_staff(
        &self,
        username: &str,
        password_hash: &str,
        role: Role,
        unit: Option<&str>,
    ) -> StoreResult<i64>;
    async fn find_staff(&self, username: &str) -> StoreResult<Option<StaffAccount>>;
    async fn list_staff(&self) -> StoreResult<Vec<StaffSummary>>;
    /// Adds one failed login atomically and returns the failures in a row now.
    async fn add_login_failure(&self, staff_id: i64) -> StoreResult<u32>;
    /// Locks the account until `until` and starts the count again.
    async fn lock_staff(&self, staff_id: i64, until: DateTime<Utc>) -> StoreResult<()>;
    async fn reset_login_failures(&self, staff_id: i64) -> StoreResult<()>;
    async fn create_session(
        &self,
        digest: &str,
        staff_id: i64,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The session for a token digest, if it exists and was not revoked (expiry is the
    /// caller's to check).
    async fn find_session(&self, digest: &str) -> StoreResult<Option<StaffSession>>;
    async fn revoke_session(&self, digest: &str, at: DateTime<Utc>) -> StoreResult<()>;
    /// Makes an account a rater of a group (party member, leader, supervisor), or not.
    async fn set_rater_group(&self, staff_id: i64, group: Option<RaterGroup>) -> StoreResult<()>;

    // Citizens.
    /// Records a login; returns when the voter was first seen.
    async fn touch_voter(&self, voter: &VoterId, now: DateTime<Utc>) -> StoreResult<DateTime<Utc>>;

    // Campaign administration. Every write appends its audit entry in the same transaction:
    // there is never a change without its entry, nor an entry without its change.
    async fn create_campaign(&self, actor: &Actor, c: &NewCampaign) -> StoreResult<Campaign>;
    /// Applies the patch to the current settings, checks the result as a whole
    /// (`StoreError::Invalid` names the field) and records which fields changed.
    async fn update_campaign(
        &self,
        actor: &Actor,
        campaign_id: i64,
        patch: &CampaignPatch,
    ) -> StoreResult<Campaign>;
    async fn open_campaign(&self, actor: &Actor, campaign_id: i64) -> StoreResult<Campaign>;
    async fn add_category(
        &self,
        actor: &Actor,
        campaign_id: i64,
        name: &str,
        winners: u32,
    ) -> StoreResult<Category>;
    async fn update_category(
        &self,
        actor: &Actor,
        campaign_id: i64,
        category_id: i64,
        name: Option<&str>,
        winners: Option<u32>,
    ) -> StoreResult<Category>;
    /// Adds candidates (one, or a whole import) with numbers never used before in the campaign.
    async fn add_candidates(
        &self,
        actor: &Actor,
        campaign_id: i64,
        list: &[NewCandidate],
        status: CandidateStatus,
        import: Option<&serde_json::Value>,
    ) -> StoreResult<Vec<Candidate>>;
    async fn change_candidate_status(
        &self,
        actor: &Actor,
        campaign_id: i64,
        candidate_id: i64,
        to: CandidateStatus,
        reason: &str,
    ) -> StoreResult<Candidate>;
    async fn add_targets(
        &self,
        actor: &Actor,
        campaign_id: i64,
        list: &[NewTarget],
        import: Option<&serde_json::Value>,
    ) -> StoreResult<Vec<Target>>;

    // Reads.
    async fn list_campaigns(&self, include_drafts: bool) -> StoreResult<Vec<Campaign>>;
    async fn get_campaign(&self, campaign_id: i64) -> StoreResult<Campaign>;
    async fn list_categories(&self, campaign_id: i64) -> StoreResult<Vec<Category>>;
    /// Candidates with `status` (all statuses when `None`).
    async fn list_candidates(
        &self,
        campaign_id: i64,
        status: Option<CandidateStatus>,
        q: &CandidateQuery,
    ) -> StoreResult<Vec<Candidate>>;
    async fn get_candidate(&self, campaign_id: i64, candidate_id: i64) -> StoreResult<Candidate>;
    async fn list_targets(&self, campaign_id: i64) -> StoreResult<Vec<Target>>;

    // Blocklists.
    /// Blocks or unblocks a voter or a network in the campaign, on the record.
    async fn set_block(
        &self,
        actor: &Actor,
        campaign_id: i64,
        subject: BlockSubject,
        value: &str,
        blocked: bool,
        reason: &str,
    ) -> StoreResult<Block>;
    /// The campaign's blocklist rows, lifted ones included.
    async fn list_blocks(&self, campaign_id: i64) -> StoreResult<Vec<Block>>;

    // Ballots.
    /// The ids of the campaign's approved candidates.
    async fn approved_candidates(&self, campaign_id: i64) -> StoreResult<Vec<i64>>;
    /// Records a batch of ballots and their audit entries in one transaction (group commit).
    /// The outer error fails the whole batch. Each ballot is checked again under the chain's
    /// lock: outside the voting window or with a candidate not approved it gets
    /// `StoreError::Refused`, and with an idempotency key its voter already used
    /// `StoreError::Conflict("idempotency key")`, on its own.
    async fn record_ballots(&self, batch: &[NewBallot]) -> StoreResult<Vec<StoreResult<Ballot>>>;
    async fn ballot_by_key(
        &self,
        campaign_id: i64,
        voter_id: &str,
        key: &str,
    ) -> StoreResult<Option<Ballot>>;
    async fn ballot_by_receipt(&self, receipt: &str) -> StoreResult<Option<Ballot>>;
    /// The voter's ballots, newest first, older than `before_id` when given.
    async fn ballots_of_voter(
        &self,
        voter_id: &str,
        campaign_id: Option<i64>,
        before_id: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<Ballot>>;
    /// What the counters of a campaign should hold on `day`, from the ledger.
    async fn ledger_rebuild(
        &self,
        campaign_id: i64,
        day: chrono::NaiveDate,
    ) -> StoreResult<crate::counters::Rebuild>;
    /// Counted votes per candidate, from the ledger, with the chain head they go with.
    async fn ledger_votes(&self, campaign_id: i64) -> StoreResult<crate::counters::Tally>;

    // Ratings.
    /// Records a rating with its entry (and its opinion, for an unsatisfied one with a
    /// comment), checking the window, the target, the period and the day's limit exactly.
    async fn record_rating(&self, r: &NewRating) -> StoreResult<Rating>;
    async fn rating_by_key(
        &self,
        campaign_id: i64,
        voter_id: &str,
        key: &str,
    ) -> StoreResult<Option<Rating>>;
    async fn rating_by_receipt(&self, receipt: &str) -> StoreResult<Option<Rating>>;
    /// Counted ratings per target, group and level in the periods matching a `LIKE` pattern
    /// (`2026-11`, or `2026%` for a whole year; all periods: `None`).
    async fn rating_counts(
        &self,
        campaign_id: i64,
        period: Option<&str>,
    ) -> StoreResult<Vec<RatingCount>>;
    async fn list_opinions(&self, q: &OpinionQuery) -> StoreResult<Vec<Opinion>>;
    async fn get_opinion(&self, id: i64) -> StoreResult<Opinion>;
    /// Records a unit's answer, with its entry in the campaign's chain. A closed opinion
    /// takes no more answers (`BadTransition`).
    async fn answer_opinion(
        &self,
        actor: &Actor,
        id: i64,
        a: &OpinionAnswer,
    ) -> StoreResult<Opinion>;

    /// Enters (or corrects) a unit's points for an entered component of the annual score,
    /// with its entry in the chain. The target must be a unit (the top of a tree).
    async fn enter_component(&self, actor: &Actor, c: &EnteredPoints) -> StoreResult<()>;
    /// The entered points of a year: (target, component, points).
    async fn annual_components(
        &self,
        campaign_id: i64,
        year: &str,
    ) -> StoreResult<Vec<(i64, Component, rust_decimal::Decimal)>>;

    // SMS surveys.
    /// Imports service records in one transaction, queued for sending, with one entry in the
    /// chain that counts them (the records themselves are personal: not in the chain).
    /// Returns, per record, whether it was imported (`false`: the same person, target and
    /// visit day were imported before).
    async fn import_survey_records(
        &self,
        actor: &Actor,
        campaign_id: i64,
        records: &[NewSurveyRecord],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<bool>>;
    /// Clears the phone numbers (sealed and hashed) of records created before `before`, and
    /// their kept tokens (they can no longer be sent).
    async fn purge_phones(&self, before: DateTime<Utc>) -> StoreResult<u64>;
    /// Claims up to `tokens.len()` queued sends that are due, leased until `lease_until`,
    /// valid until `expires_at`. A record keeps the token an earlier attempt gave it; one
    /// without gets one of `tokens` (its hash and sealed token stored). The claim's time is
    /// kept (a status query looks for the SMS from then on). A due send whose survey was
    /// answered meanwhile is not claimed: it is settled `sent` (the answer proves the link
    /// arrived), and counted.
    async fn claim_sends(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        tokens: &[NewToken],
        expires_at: DateTime<Utc>,
    ) -> StoreResult<Claimed>;
    /// A send the gateway took (while `sending`, or `unknown` when its lease ran out first);
    /// its kept token is dropped (no send follows).
    async fn mark_sent(&self, id: i64, at: DateTime<Utc>) -> StoreResult<()>;
    /// A failed send (while `sending`): queued again at `retry_at` (its token kept), or
    /// failed for good (`None`; its kept token dropped).
    async fn mark_send_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// A claimed send not sent after all (its lease ran short): queued again at `now`, its
    /// attempt not counted.
    async fn release_send(&self, id: i64, now: DateTime<Utc>) -> StoreResult<()>;
    /// A send that got no answer: `unknown` since `at` (for `reason`), its first status
    /// query due at `query_at`.
    async fn mark_send_unknown(
        &self,
        id: i64,
        reason: &str,
        at: DateTime<Utc>,
        query_at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Sends whose lease ended while `sending` (the instance stopped mid-send): their
    /// outcome is unknown, so they become `unknown` with a status query due now, never
    /// sent again blindly.
    async fn mark_interrupted_unknown(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Claims up to `limit` sends of unknown outcome whose status query is due, leased until
    /// `lease_until` (instances never ask about the same one at once).
    async fn claim_unknown_sends(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<UnknownSend>>;
    /// Records what became of a send of unknown outcome, if it is still unknown (an answer
    /// that comes late, after another instance settled it, changes nothing). Queued again,
    /// it keeps its token; sent or failed, its kept token is dropped.
    async fn settle_unknown_send(&self, id: i64, settled: &Settled<'_>) -> StoreResult<()>;
    /// A send of unknown outcome stays so: its next status query at `at`, counting one more
    /// failed query when `failed_query`.
    async fn postpone_status_query(
        &self,
        id: i64,
        at: DateTime<Utc>,
        failed_query: bool,
    ) -> StoreResult<()>;
    async fn survey_by_token(&self, token_hash: &str) -> StoreResult<Option<SurveyView>>;
    /// How many records are in each send status.
    async fn send_counts(&self, campaign_id: i64) -> StoreResult<Vec<(String, u64)>>;

    // The review.
    /// Moves the selected ballots' statuses and records the decision in the chain, in one
    /// transaction; `None` when no selected ballot could be moved (nothing is recorded).
    async fn decide(&self, actor: &Actor, d: &Decision) -> StoreResult<Option<Decided>>;
    /// The ballots cast in `[from, to)`; with `suspicious_only`, those not counted or flagged
    /// by more than `new_account`.
    async fn review_ballots(
        &self,
        campaign_id: i64,
        suspicious_only: bool,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<review::ReviewBallot>>;
    /// Every ballot's status by seq (for the verifier).
    async fn ballot_statuses(
        &self,
        campaign_id: i64,
    ) -> StoreResult<std::collections::BTreeMap<i64, String>>;

    // The audit chain.
    async fn audit_head(&self, campaign_id: i64) -> StoreResult<(i64, String)>;
    async fn audit_entries(
        &self,
        campaign_id: i64,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Entry>>;
    /// Entries with their bodies as the stored (canonical) text, for verification.
    async fn audit_entries_raw(
        &self,
        campaign_id: i64,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<RawEntry>>;
    /// The campaign's current state as the database holds it, to compare with the chain's.
    async fn snapshot(&self, campaign_id: i64) -> StoreResult<Snapshot>;

    // Results: experts, freezing and publication, objections.
    /// Sets the categories an expert scores (replacing earlier ones), on the record.
    async fn assign_expert(
        &self,
        actor: &Actor,
        campaign_id: i64,
        staff_id: i64,
        category_ids: &[i64],
        at: DateTime<Utc>,
    ) -> StoreResult<ExpertAssignment>;
    async fn expert_assignments(&self, campaign_id: i64) -> StoreResult<Vec<ExpertAssignment>>;
    /// Records a score once: `Conflict("expert score")` again, `NotFound` for a candidate
    /// outside the expert's categories, `Closed("scoring_closed")` once results are frozen.
    async fn record_expert_score(
        &self,
        actor: &Actor,
        s: &NewExpertScore,
    ) -> StoreResult<ExpertScore>;
    async fn expert_scores(
        &self,
        campaign_id: i64,
        staff_id: Option<i64>,
    ) -> StoreResult<Vec<ExpertScore>>;
    /// Everything results are computed from, in one snapshot.
    async fn result_inputs(&self, campaign_id: i64) -> StoreResult<ResultInputs>;
    /// Freezes results computed at `based_on` (the head seq of their inputs): `HeadMoved`
    /// when the chain has moved since. Final results seal the chain.
    async fn freeze_results(
        &self,
        actor: &Actor,
        results: &results::Results,
        snapshot_hash: &str,
        based_on: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<Frozen>;
    /// The latest frozen results of a stage.
    async fn frozen_results(
        &self,
        campaign_id: i64,
        stage: results::Stage,
    ) -> StoreResult<Option<Frozen>>;
    /// Records an objection while a draft is in publicity (`Closed("not_in_publicity")`
    /// otherwise).
    async fn add_objection(&self, o: &NewObjection) -> StoreResult<Objection>;
    async fn list_objections(&self, campaign_id: i64) -> StoreResult<Vec<Objection>>;
    /// Answers an open objection once (`Conflict("objection answered")` again).
    async fn answer_objection(
        &self,
        actor: &Actor,
        campaign_id: i64,
        objection_id: i64,
        upheld: bool,
        answer: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<Objection>;
}

/// Opens the store the settings name and applies its migrations.
pub async fn connect(settings: &Settings) -> StoreResult<Arc<dyn Store>> {
    Ok(match settings.database_kind {
        DatabaseKind::Postgres => Arc::new(
            PgStore::connect(settings.database_url.expose(), settings.db_max_connections).await?,
        ),
        DatabaseKind::Sqlite => Arc::new(
            SqliteStore::connect(settings.database_url.expose(), settings.db_max_connections)
                .await?,
        ),
    })
}

/// Decodes the JSON columns shared by both backends.
fn decode_stage(s: &str) -> StoreResult<results::Stage> {
    match s {
        "draft" => Ok(results::Stage::Draft),
        "final" => Ok(results::Stage::Final),
        other => Err(StoreError::Corrupt(format!(
            "unknown results stage {other}"
        ))),
    }
}

fn decode_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn decode_role(s: &str) -> StoreResult<Role> {
    Role::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown role {s}")))
}

fn decode_kind(s: &str) -> StoreResult<Kind> {
    Kind::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown campaign kind {s}")))
}

fn decode_status(s: &str) -> StoreResult<CandidateStatus> {
    CandidateStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("unknown status {s}")))
}

/// The `LIKE` pattern for a substring search, with the wildcards in the text escaped.
fn like_pattern(text: &str) -> String {
    let escaped = text
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}
