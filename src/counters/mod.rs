//! The counter store: hot state that must be fast and shared by every instance (quotas, live
//! counts, leaderboards). Redis in production, process memory in the embedded default, behind
//! one trait. It is never the record: the ledger is, and counters can be rebuilt from it.

mod memory;
mod pace_copy;
mod redis;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDate;
use sha2::Digest;

pub use self::memory::MemoryCounters;
pub use self::redis::RedisCounters;
use crate::config::Settings;
use crate::domain::rate::RateSpec;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
}

pub type CounterResult<T> = Result<T, CounterError>;

/// The quotas one ballot asks for.
#[derive(Debug, Clone)]
pub struct QuotaRequest<'a> {
    pub campaign_id: i64,
    pub voter: &'a str,
    /// The quota day in the campaign's time zone.
    pub day: NaiveDate,
    pub candidates: &'a [i64],
    pub votes_per_day: u32,
    pub votes_per_candidate_per_day: u32,
    pub votes_per_campaign: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaOutcome {
    Taken {
        remaining_today: u32,
    },
    DailyExhausted,
    CandidateLimit(i64),
    CampaignExhausted,
    /// The counters of this campaign were lost (or never built): rebuild from the ledger.
    NotReady,
}

/// Counted votes per candidate as the ledger held them when its chain head was at
/// `through_seq` (one consistent snapshot: every ballot up to that seq, none after).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub through_seq: i64,
    pub votes: HashMap<i64, i64>,
}

/// A campaign's hot state as derived from the ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rebuild {
    pub tally: Tally,
    pub day: NaiveDate,
    /// Per voter, the day's votes per candidate.
    pub day_votes: HashMap<String, HashMap<i64, i64>>,
    /// Per voter, votes over the whole campaign.
    pub totals: HashMap<String, i64>,
}

/// What one ballot adds to the risk signals (see `Counters::observe`).
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    /// Short-lived sets to add `member` to, each living its window from its first member;
    /// their sizes come back in this order.
    pub sets: &'a [(String, Duration)],
    pub member: &'a str,
    /// Votes per candidate per minute, for the candidates' pace.
    pub pace: Option<PaceProbe<'a>>,
}

/// The ballot's candidates, whose pace is read at minute `minute` from the votes counted
/// under `prefix` (see `pace_prefix`). Only committed ballots are counted there, a batch at
/// a time (`Counters::count_pace`); the answer adds this ballot's own votes.
#[derive(Debug, Clone)]
pub struct PaceProbe<'a> {
    pub prefix: String,
    pub minute: i64,
    pub candidates: &'a [i64],
}

/// A rate limit shared by every instance, for one client: its key and its limit.
#[derive(Debug, Clone)]
pub struct Throttle {
    pub key: String,
    /// `None`: the limit is the key's own. Else the field of the hash at `key` that holds
    /// it, the hash having an expiry of its own: a voter's ballot limit is kept in the
    /// voter's day (`DAY_LIMIT_FIELD` of `day_key`), where the ballot's step reads and writes
    /// it with the quotas.
    pub field: Option<&'static str>,
    pub spec: RateSpec,
}

/// The field of a voter's day (`day_key`) that holds the voter's ballot limit. quota_fn.lua
/// and take_ballot.lua write it as a literal (an argument more on every ballot otherwise);
/// `a_voters_limit_kept_in_its_day_counts_every_request_once` fails should they differ.
pub const DAY_LIMIT_FIELD: &str = "~rl";

/// One ballot's work in the counter store (see `Counters::take_ballot`).
#[derive(Debug, Clone)]
pub struct BallotStep<'a> {
    /// The shared rate limits, checked in order (the client's address, then the voter):
    /// each that allows takes its request, the first that refuses ends the step. Their keys
    /// carry the campaign's hash tag.
    pub limits: Vec<Throttle>,
    /// The risk signals to record and measure; their candidates are the quota's.
    pub observation: Option<&'a Observation<'a>>,
    pub quota: &'a QuotaRequest<'a>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BallotOutcome {
    /// The rate limit refused: wait this long. Nothing was observed or taken.
    Throttled(Duration),
    Done(Observed, QuotaOutcome),
}

/// Minutes of the "recent" pace (this one and the one before) and of the pace before it.
pub const PACE_RECENT_MINUTES: i64 = 2;
pub const PACE_BEFORE_MINUTES: i64 = 10;
/// The minutes of both windows.
pub const PACE_SPAN: i64 = PACE_RECENT_MINUTES + PACE_BEFORE_MINUTES;
/// How long a minute's bucket (and the windows' totals) live from their first vote: longer
/// than anyone reads them.
pub const PACE_TTL_SECS: i64 = (PACE_SPAN + 1) * 60;

/// The pace's minute of a ballot cast at `at`: the one its risk step reads at and its batch
/// counts it in.
pub fn pace_minute(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    pub sizes: Vec<u64>,
    /// One per candidate of the probe, in its order.
    pub pace: Vec<crate::domain::risk::Pace>,
}

/// Adds up per-minute votes into a candidate's pace; `buckets[i]` is minute `minute - i`.
pub fn pace_of(buckets: &[(u64, u64)]) -> crate::domain::risk::Pace {
    let mut p = crate::domain::risk::Pace::default();
    for (i, (mine, all)) in buckets.iter().enumerate() {
        if (i as i64) < PACE_RECENT_MINUTES {
            p.recent += mine;
            p.recent_all += all;
        } else {
            p.before += mine;
            p.before_all += all;
        }
    }
    p
}

/// Key names, shared by both implementations. Every key of a campaign carries the campaign in
/// a hash tag, `{c<id>}`, so that Redis Cluster keeps a campaign's keys (and the scripts that
/// touch several of them) on one shard.
pub fn day_key(q: &QuotaRequest<'_>) -> String {
    voter_day_key(q.campaign_id, q.day, q.voter)
}

pub fn voter_day_key(campaign_id: i64, day: NaiveDate, voter: &str) -> String {
    format!("{{c{campaign_id}}}:day:{day}:{voter}")
}

pub fn total_key(q: &QuotaRequest<'_>) -> String {
    voter_total_key(q.campaign_id, q.voter)
}

pub fn voter_total_key(campaign_id: i64, voter: &str) -> String {
    format!("{{c{campaign_id}}}:total:{voter}")
}

pub fn idempotency_key(campaign_id: i64, voter: &str, key: &str) -> String {
    format!(
        "{{c{campaign_id}}}:idem:{voter}:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

/// Where a campaign's votes per minute are counted for the candidates' pace.
pub fn pace_prefix(campaign_id: i64) -> String {
    format!("{{c{campaign_id}}}~pace")
}

/// Committed votes per minute (Unix time / 60), then per candidate, for the pace.
pub type PaceVotes = std::collections::BTreeMap<i64, std::collections::BTreeMap<i64, u64>>;

pub fn ready_key(campaign_id: i64) -> String {
    format!("{{c{campaign_id}}}:ready")
}

pub fn votes_key(campaign_id: i64) -> String {
    format!("{{c{campaign_id}}}:votes")
}

/// The seq of the ledger snapshot the live counts were last rebuilt from.
pub fn counted_through_key(campaign_id: i64) -> String {
    format!("{{c{campaign_id}}}:votes:through")
}

/// The batches added to the live counts lately (seq → counts), so that a rebuild from an
/// older snapshot can add back those that committed after it.
pub fn applied_key(campaign_id: i64) -> String {
    format!("{{c{campaign_id}}}:votes:applied")
}

/// How many applied batches a campaign remembers. A rebuild needs those committed between its
/// ledger read and its write (milliseconds); a thousand batches is far more than that.
pub const APPLIED_KEPT: usize = 1000;

/// Why a rebuild of the live counts did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecountOutcome {
    Rebuilt,
    /// A rebuild from a newer snapshot already happened: nothing to do.
    Newer,
    /// More batches were applied since the snapshot than are remembered: read again.
    TooOld,
}

#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// `"redis"` or `"memory"`, for logs and readiness.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> CounterResult<()>;
    /// Adds `delta` to `key` and returns the new value; a new key expires after `ttl`.
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CounterResult<i64>;
    /// The value of `key`, 0 when absent or expired.
    async fn get(&self, key: &str) -> CounterResult<i64>;
    /// Records one ballot's risk signals and returns what they measure, in one step (one
    /// round trip to Redis). The keys share one campaign's hash tag. The pace is read, not
    /// counted: `count_pace` counts the ballot once it is committed.
    async fn observe(&self, o: &Observation<'_>) -> CounterResult<Observed>;
    /// Counts a committed batch's votes for the pace of its candidates, under `prefix`.
    /// Once a batch rather than once a ballot, so that a ballot's risk step only reads.
    async fn count_pace(&self, prefix: &str, votes: &PaceVotes) -> CounterResult<()>;
    /// All that the store does for one ballot, in one step (one round trip to Redis): the
    /// shared rate limits, if any (when one refuses, nothing else happens), then the
    /// risk signals, if any, then the quotas. For a ballot that nothing can refuse between
    /// its signals and its quotas. The keys share one campaign's hash tag.
    async fn take_ballot(&self, b: &BallotStep<'_>) -> CounterResult<BallotOutcome> {
        take_ballot_in_steps(self, b).await
    }
    /// Takes a short-lived exclusive claim on `key` (false when someone holds it).
    async fn claim(&self, key: &str, ttl: Duration) -> CounterResult<bool>;
    async fn release(&self, key: &str) -> CounterResult<()>;
    /// Checks and takes every quota of a ballot at once, or none.
    async fn take_quota(&self, q: &QuotaRequest<'_>) -> CounterResult<QuotaOutcome>;
    /// Returns what `take_quota` took (the ledger did not commit).
    async fn give_back(&self, q: &QuotaRequest<'_>) -> CounterResult<()>;
    /// Adds a committed batch's votes (candidate → votes) to the live counts; `last_seq` is
    /// the batch's last chain seq. Skipped when a rebuild from a snapshot that already held
    /// the batch came first, so that counts are exact whatever the order of the two.
    async fn apply_votes(
        &self,
        campaign_id: i64,
        last_seq: i64,
        votes: &HashMap<i64, i64>,
    ) -> CounterResult<()>;
    /// Replaces the live counts with the ledger's `tally`, plus the batches applied since
    /// its snapshot. Safe while other instances record ballots.
    async fn recount_votes(&self, campaign_id: i64, tally: &Tally)
    -> CounterResult<RecountOutcome>;
    /// Live counts by candidate.
    async fn votes(&self, campaign_id: i64) -> CounterResult<HashMap<i64, i64>>;
    /// Whether the campaign's counters are built (false after Redis lost its data).
    async fn is_ready(&self, campaign_id: i64) -> CounterResult<bool>;
    /// One request against a rate limit shared by every instance: `None` when allowed, else
    /// how long to wait. The in-process counters have nothing to share and always allow (the
    /// service's own limiter covers the embedded deployment).
    async fn throttle(&self, limit: &Throttle) -> CounterResult<Option<Duration>>;
    /// Replaces a campaign's quotas with `state` and marks it ready (the live counts are
    /// `recount_votes`'s). Unless `force`, it does nothing when the campaign is already ready
    /// (a rebuild that comes late or twice must not wipe quotas taken since).
    async fn rebuild(&self, campaign_id: i64, state: &Rebuild, force: bool) -> CounterResult<()>;
}

/// `Counters::take_ballot` done as its separate steps.
pub async fn take_ballot_in_steps<C: Counters + ?Sized>(
    counters: &C,
    b: &BallotStep<'_>,
) -> CounterResult<BallotOutcome> {
    for limit in &b.limits {
        if let Some(wait) = counters.throttle(limit).await? {
            return Ok(BallotOutcome::Throttled(wait));
        }
    }
    let observed = match b.observation {
        Some(o) => counters.observe(o).await?,
        None => Observed::default(),
    };
    Ok(BallotOutcome::Done(
        observed,
        counters.take_quota(b.quota).await?,
    ))
}

pub fn connect(settings: &Settings) -> CounterResult<Arc<dyn Counters>> {
    Ok(match &settings.redis_url {
        Some(url) => Arc::new(RedisCounters::new(url.expose(), &settings.redis_prefix)?),
        None => Arc::new(MemoryCounters::default()),
    })
}
