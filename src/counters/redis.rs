//! Redis counters. Every key carries the configured prefix, so that tests (and several
//! deployments) can share one Redis without touching each other's keys.
//!
//! The connection is made lazily and remade after a failure, so that the service starts (and
//! reports "not ready") while Redis is down, and recovers by itself when it returns.
//!
//! Each thread that uses the counters has a connection of its own. A connection's reader and
//! writer run as a task on the runtime that made it; with one connection for the process
//! (made on the main runtime), every command of a request was handed from its actix worker's
//! thread to that task's thread and its answer handed back, waking a thread each way. With a
//! connection per thread, a command and its answer stay on the thread that asked (measured
//! under the fraud simulation: 3.6 → 2.3 context switches per ballot). That makes a few
//! connections per instance: one per actix worker and per runtime thread.

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use thread_local::ThreadLocal;

use std::collections::HashMap;

use super::pace_copy::{self, PaceCopy};
use super::{
    APPLIED_KEPT, BallotOutcome, BallotStep, CounterError, CounterResult, Counters,
    DAY_LIMIT_FIELD, Observation, Observed, PACE_RECENT_MINUTES, PACE_SPAN, PACE_TTL_SECS,
    PaceProbe, PaceVotes, QuotaOutcome, QuotaRequest, Rebuild, RecountOutcome, Tally, Throttle,
    applied_key, counted_through_key, day_key, ready_key, take_ballot_in_steps, total_key,
    voter_day_key, voter_total_key, votes_key,
};
use crate::domain::risk::Pace;

const TIMEOUT: Duration = Duration::from_secs(2);
/// A voter's day hash outlives its day by a day, whatever the time zone.
const DAY_TTL_SECS: u64 = 2 * 24 * 3600;

// The scripts that take quotas or record risk signals share their Lua functions: the files
// `*_fn.lua` define them and are put in front of the scripts that call them.
static TAKE_QUOTA: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("quota_fn.lua"),
        include_str!("take_quota.lua")
    ))
});
static REBUILD: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("rebuild.lua")));
/// A rebuild reads and writes a whole campaign; it gets longer than one command.
const REBUILD_TIMEOUT: Duration = Duration::from_secs(60);
static APPLY_VOTES: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("apply_votes.lua")));
static RECOUNT_VOTES: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("recount_votes.lua")));
static GCRA: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("gcra_fn.lua"),
        include_str!("gcra.lua")
    ))
});
static OBSERVE: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("observe_fn.lua"),
        include_str!("observe.lua")
    ))
});
static TAKE_BALLOT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(concat!(
        include_str!("gcra_fn.lua"),
        include_str!("quota_fn.lua"),
        include_str!("observe_fn.lua"),
        include_str!("take_ballot.lua")
    ))
});
static COUNT_PACE: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("count_pace.lua")));
static GIVE_BACK: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("give_back.lua")));

pub struct RedisCounters {
    client: redis::Client,
    prefix: String,
    /// This thread's connection, once made (see the module's note).
    conns: ThreadLocal<Mutex<Option<ConnectionManager>>>,
    /// Held while connecting, so that a thread's waiting requests make one connection.
    connecting: tokio::sync::Mutex<()>,
    /// This instance's copy of each campaign's pace sums, by pace prefix (see pace_copy.rs).
    pace: RwLock<HashMap<String, PaceCopy>>,
}

/// One call of a script on the hot path: its keys and arguments, gathered apart (keys come
/// first on the wire, but the steps of a ballot add both as they go) and written once into
/// one command. The crate's script invocation keeps each key and argument in an allocation
/// of its own (28 keys and arguments a ballot with the checks on, against 8 without) and
/// copies them all again to send them; the allocator was most of what the checks cost the
/// service.
struct Eval {
    keys: Vec<String>,
    /// The arguments, as the arguments of a command used only as their buffer.
    args: redis::Cmd,
}

impl Eval {
    fn new() -> Self {
        Eval {
            keys: Vec::with_capacity(16),
            args: redis::Cmd::with_capacity(32, 256),
        }
    }

    fn key(&mut self, key: String) -> &mut Self {
        self.keys.push(key);
        self
    }

    fn arg<T: redis::ToRedisArgs>(&mut self, arg: T) -> &mut Self {
        self.args.arg(arg);
        self
    }

    /// The `EVALSHA` of `script` with these keys and arguments.
    fn command(&self, script: &redis::Script) -> redis::Cmd {
        let args = self.args.args_iter().len();
        let key_bytes: usize = self.keys.iter().map(String::len).sum();
        let mut cmd =
            redis::Cmd::with_capacity(3 + self.keys.len() + args, 64 + key_bytes + 24 * args);
        cmd.arg("EVALSHA")
            .arg(script.get_hash())
            .arg(self.keys.len());
        for key in &self.keys {
            cmd.arg(key.as_str());
        }
        for arg in self.args.args_iter() {
            if let redis::Arg::Simple(bytes) = arg {
                cmd.arg(bytes);
            }
        }
        cmd
    }
}

fn unavailable(e: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

impl RedisCounters {
    pub fn new(url: &str, prefix: &str) -> CounterResult<Self> {
        Ok(Self {
            client: redis::Client::open(url).map_err(unavailable)?,
            prefix: prefix.to_string(),
            conns: ThreadLocal::new(),
            connecting: tokio::sync::Mutex::new(()),
            pace: RwLock::new(HashMap::new()),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    /// The live counts, the seq they were rebuilt through, and the applied batches.
    fn vote_keys(&self, campaign_id: i64) -> [String; 3] {
        [
            self.key(&votes_key(campaign_id)),
            self.key(&counted_through_key(campaign_id)),
            self.key(&applied_key(campaign_id)),
        ]
    }

    /// The current thread's connection, if made.
    fn this_thread(&self) -> Option<ConnectionManager> {
        self.conns
            .get()?
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Drops every thread's connection, so that the next command on each connects afresh.
    fn forget_connections(&self) {
        for slot in self.conns.iter() {
            *slot.lock().unwrap_or_else(|p| p.into_inner()) = None;
        }
    }

    /// The voter's day (`day`, its `day_key`), the voter's campaign total and the campaign's
    /// "ready" marker, prefixed.
    fn quota_keys(&self, q: &QuotaRequest<'_>, day: &str) -> (String, String, String) {
        (
            self.key(day),
            self.key(&total_key(q)),
            self.key(&ready_key(q.campaign_id)),
        )
    }

    /// The pace sums and the bucket of `minute` under a campaign's pace prefix.
    fn pace_sums_key(&self, prefix: &str) -> String {
        format!("{}:{prefix}:sums", self.prefix)
    }

    fn pace_bucket_key(&self, prefix: &str, minute: i64) -> String {
        format!("{}:{prefix}:{minute}", self.prefix)
    }

    /// The pace of `p`'s candidates from this instance's copy of the sums, when it can serve
    /// them (see pace_copy.rs).
    fn copied_pace(&self, p: &PaceProbe<'_>) -> Option<Vec<Pace>> {
        let copies = self.pace.read().unwrap_or_else(|e| e.into_inner());
        pace_copy::read(
            copies.get(&p.prefix)?,
            p.minute,
            p.candidates,
            Instant::now(),
        )
    }

    /// Adds observe.lua's keys and arguments for `o` to `inv` (after any it holds). Its last
    /// arguments are the ballot's candidates: the pace's, or without pace `candidates`. No
    /// pace bucket is named unless `every_bucket` (see observe_fn.lua).
    fn add_observation(
        &self,
        inv: &mut Eval,
        o: &Observation<'_>,
        candidates: &[i64],
        every_bucket: bool,
    ) {
        for (k, _) in o.sets {
            inv.key(self.key(k));
        }
        inv.arg(o.member).arg(o.sets.len());
        for (_, window) in o.sets {
            inv.arg(window.as_secs().max(1));
        }
        let Some(p) = &o.pace else {
            for c in candidates {
                inv.arg(*c);
            }
            return;
        };
        inv.key(self.pace_sums_key(&p.prefix));
        let named = if every_bucket { PACE_SPAN } else { 0 };
        for i in 0..named {
            inv.key(self.pace_bucket_key(&p.prefix, p.minute - i));
        }
        inv.arg(p.minute)
            .arg(PACE_RECENT_MINUTES)
            .arg(PACE_SPAN)
            .arg(PACE_TTL_SECS);
        for c in p.candidates {
            inv.arg(*c);
        }
    }

    /// Runs `call` of `script`, loading the script first when Redis does not know it (after
    /// a restart, or on a fresh Redis).
    async fn eval<T: redis::FromRedisValue>(
        &self,
        script: &'static redis::Script,
        call: &Eval,
    ) -> CounterResult<T> {
        let cmd = call.command(script);
        self.run(|mut c| async move {
            match cmd.query_async(&mut c).await {
                Err(e)
                    if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                {
                    script.load_async(&mut c).await?;
                    cmd.query_async(&mut c).await
                }
                reply => reply,
            }
        })
        .await
    }

    async fn conn(&self) -> CounterResult<ConnectionManager> {
        if let Some(c) = self.this_thread() {
            return Ok(c);
        }
        let _connecting = self.connecting.lock().await;
        // The task may have moved to another thread while it waited; that thread may have
        // its connection by now.
        if let Some(c) = self.this_thread() {
            return Ok(c);
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            TIMEOUT,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unavailable("connect timed out"))?
        .map_err(unavailable)?;
        *self
            .conns
            .get_or_default()
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
        Ok(c)
    }

    /// Runs one command; on a connection failure the manager is dropped so that the next
    /// call connects afresh.
    async fn run<T, F, Fut>(&self, f: F) -> CounterResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.run_for(TIMEOUT, f).await
    }

    async fn run_for<T, F, Fut>(&self, limit: Duration, f: F) -> CounterResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(limit, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    self.forget_connections();
                }
                Err(unavailable(e))
            }
            Err(_) => {
                self.forget_connections();
                Err(unavailable("command timed out"))
            }
        }
    }
}

/// A limit's emission interval for gcra_fn.lua.
fn gcra_interval_ms(spec: &crate::domain::rate::RateSpec) -> u64 {
    spec.interval().as_millis().max(1) as u64
}

/// A risk step's answer, or its request to be sent again with every pace bucket named (see
/// observe_fn.lua): -1.
enum Step<T> {
    Done(T),
    NamePaceBuckets,
}

impl<T: redis::FromRedisValue> redis::FromRedisValue for Step<T> {
    fn from_redis_value(v: redis::Value) -> Result<Self, redis::ParsingError> {
        match v {
            redis::Value::Int(-1) => Ok(Step::NamePaceBuckets),
            v => T::from_redis_value(v).map(Step::Done),
        }
    }
}

/// take_quota.lua's first four arguments.
fn quota_limits(inv: &mut Eval, q: &QuotaRequest<'_>) {
    inv.arg(q.votes_per_day)
        .arg(q.votes_per_candidate_per_day)
        .arg(q.votes_per_campaign.map(i64::from).unwrap_or(-1))
        .arg(DAY_TTL_SECS);
}

fn quota_outcome(reply: &[i64]) -> CounterResult<QuotaOutcome> {
    Ok(match reply {
        [0, remaining] => QuotaOutcome::Taken {
            remaining_today: (*remaining).max(0) as u32,
        },
        [1] => QuotaOutcome::DailyExhausted,
        [2, candidate] => QuotaOutcome::CandidateLimit(*candidate),
        [3] => QuotaOutcome::CampaignExhausted,
        [4] => QuotaOutcome::NotReady,
        other => return Err(unavailable(format!("take_quota answered {other:?}"))),
    })
}

/// observe.lua's answer: the sets' sizes, then (with pace) all votes recent and before, then
/// each candidate's votes recent and before.
fn observed(o: &Observation<'_>, out: &[i64]) -> CounterResult<Observed> {
    let wanted = o.sets.len() + o.pace.as_ref().map_or(0, |p| 2 + 2 * p.candidates.len());
    if out.len() != wanted {
        return Err(unavailable(format!(
            "observe answered {} numbers, not {wanted}",
            out.len()
        )));
    }
    // Counts are never negative: one would be a broken script, not a count to act on.
    if out.iter().any(|v| *v < 0) {
        return Err(unavailable(format!(
            "observe answered a negative count: {out:?}"
        )));
    }
    let n = |v: &i64| *v as u64;
    let (sizes, rest) = out.split_at(o.sets.len());
    let pace = match rest {
        [recent_all, before_all, per_candidate @ ..] => per_candidate
            .chunks(2)
            .map(|mine| Pace {
                recent: n(&mine[0]),
                recent_all: n(recent_all),
                before: n(&mine[1]),
                before_all: n(before_all),
            })
            .collect(),
        _ => Vec::new(),
    };
    Ok(Observed {
        sizes: sizes.iter().map(n).collect(),
        pace,
    })
}

#[async_trait]
impl Counters for RedisCounters {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> CounterResult<()> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CounterResult<i64> {
        let key = self.key(key);
        let secs = ttl.as_secs().max(1) as i64;
        self.run(|mut c| async move {
            // One MULTI/EXEC so that the counter never lives without its expiry.
            let (value,): (i64,) = redis::pipe()
                .atomic()
                .incr(&key, delta)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(secs)
                .arg("NX")
                .ignore()
                .query_async(&mut c)
                .await?;
            Ok(value)
        })
        .await
    }

    async fn get(&self, key: &str) -> CounterResult<i64> {
        let key = self.key(key);
        self.run(|mut c| async move { c.get::<_, Option<i64>>(&key).await })
            .await
            .map(|v| v.unwrap_or(0))
    }

    async fn observe(&self, o: &Observation<'_>) -> CounterResult<Observed> {
        if o.sets.is_empty() && o.pace.is_none() {
            return Ok(Observed::default());
        }
        for every_bucket in [false, true] {
            let mut inv = Eval::new();
            self.add_observation(&mut inv, o, &[], every_bucket);
            let reply: Step<Vec<i64>> = self.eval(&OBSERVE, &inv).await?;
            if let Step::Done(out) = reply {
                return observed(o, &out);
            }
        }
        Err(unavailable("observe asked for its pace buckets twice"))
    }

    async fn take_ballot(&self, b: &BallotStep<'_>) -> CounterResult<BallotOutcome> {
        let q = b.quota;
        // The script takes the quotas of the candidates it observed.
        let same_candidates = b
            .observation
            .and_then(|o| o.pace.as_ref())
            .is_none_or(|p| p.candidates == q.candidates);
        // The limits with keys of their own, then at most one kept in this voter's day.
        let (own_keys, in_day) = match b.limits.split_last() {
            Some((last, rest)) if last.field.is_some() => (rest, Some(last)),
            _ => (&b.limits[..], None),
        };
        let day_key = day_key(q);
        let day_limit_here = in_day
            .is_none_or(|l| l.field == Some(DAY_LIMIT_FIELD) && l.key == day_key)
            && own_keys.iter().all(|l| l.field.is_none());
        if !same_candidates || !day_limit_here {
            // Not what the vote path asks for: right, but three round trips, not one.
            metrics::counter!("ballot_step_in_parts_total").increment(1);
            return take_ballot_in_steps(self, b).await;
        }
        if b.limits.is_empty() && b.observation.is_none() {
            return take_ballot_in_steps(self, b).await;
        }
        let nothing = Observation {
            sets: &[],
            member: "",
            pace: None,
        };
        let o = b.observation.unwrap_or(&nothing);
        // The pace from this instance's copy when it can: then the step leaves it out.
        let copied = o.pace.as_ref().and_then(|p| self.copied_pace(p));
        let without_pace;
        let o = match copied {
            Some(_) => {
                without_pace = Observation { pace: None, ..*o };
                &without_pace
            }
            None => o,
        };
        // Asked again (rarely: a minute's first ballot) with every pace bucket named.
        for every_bucket in [false, true] {
            let (day, total, ready) = self.quota_keys(q, &day_key);
            let mut inv = Eval::new();
            inv.key(day).key(total).key(ready);
            for limit in own_keys {
                inv.key(self.key(&limit.key));
            }
            quota_limits(&mut inv, q);
            inv.arg(own_keys.len());
            for limit in own_keys {
                inv.arg(gcra_interval_ms(&limit.spec))
                    .arg(limit.spec.count.get());
            }
            match in_day {
                Some(limit) => inv
                    .arg(1)
                    .arg(gcra_interval_ms(&limit.spec))
                    .arg(limit.spec.count.get()),
                None => inv.arg(0),
            };
            self.add_observation(&mut inv, o, q.candidates, every_bucket);
            let reply: Step<Vec<i64>> = self.eval(&TAKE_BALLOT, &inv).await?;
            let reply = match reply {
                Step::NamePaceBuckets => continue,
                Step::Done(reply) => reply,
            };
            return match reply[..] {
                [wait_ms] if wait_ms > 0 => Ok(BallotOutcome::Throttled(Duration::from_millis(
                    wait_ms as u64,
                ))),
                [0, code, value, ref out @ ..] => {
                    let quota = match code {
                        0 | 2 => quota_outcome(&[code, value])?,
                        _ => quota_outcome(&[code])?,
                    };
                    let mut observed = match b.observation {
                        Some(_) => observed(o, out)?,
                        None => Observed::default(),
                    };
                    if let Some(pace) = copied {
                        observed.pace = pace;
                    }
                    Ok(BallotOutcome::Done(observed, quota))
                }
                ref other => Err(unavailable(format!("take_ballot answered {other:?}"))),
            };
        }
        Err(unavailable("take_ballot asked for its pace buckets twice"))
    }

    async fn count_pace(&self, prefix: &str, votes: &PaceVotes) -> CounterResult<()> {
        if votes.is_empty() {
            return Ok(());
        }
        // The copy's age counts from before the count is sent: never younger than it is.
        let asked_at = Instant::now();
        let whole = {
            let copies = self.pace.read().unwrap_or_else(|e| e.into_inner());
            pace_copy::wants_whole(copies.get(prefix), asked_at)
        };
        let mut inv = Eval::new();
        inv.key(self.pace_sums_key(prefix));
        for minute in votes.keys() {
            inv.key(self.pace_bucket_key(prefix, *minute));
        }
        inv.arg(PACE_TTL_SECS)
            .arg(PACE_RECENT_MINUTES)
            .arg(PACE_SPAN)
            .arg(u8::from(whole));
        for (minute, candidates) in votes {
            inv.arg(*minute).arg(candidates.len());
            for (c, n) in candidates {
                inv.arg(*c).arg(*n);
            }
        }
        let pairs: Vec<(String, i64)> = self.eval(&COUNT_PACE, &inv).await?;
        let answer = pace_copy::Answer::parse(&pairs)
            .ok_or_else(|| unavailable(format!("count_pace answered {pairs:?}")))?;
        let mut copies = self.pace.write().unwrap_or_else(|e| e.into_inner());
        let mut copy = copies.remove(prefix);
        pace_copy::merge(&mut copy, answer, whole, asked_at);
        if let Some(copy) = copy {
            copies.insert(prefix.to_string(), copy);
        }
        Ok(())
    }

    async fn claim(&self, key: &str, ttl: Duration) -> CounterResult<bool> {
        let key = self.key(key);
        let ms = ttl.as_millis().max(1) as u64;
        self.run(|mut c| async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(ms)
                .query_async::<Option<String>>(&mut c)
                .await
        })
        .await
        .map(|set| set.is_some())
    }

    async fn release(&self, key: &str) -> CounterResult<()> {
        let key = self.key(key);
        self.run(|mut c| async move { c.del::<_, ()>(&key).await })
            .await
    }

    async fn take_quota(&self, q: &QuotaRequest<'_>) -> CounterResult<QuotaOutcome> {
        let (day, total, ready) = self.quota_keys(q, &day_key(q));
        let mut inv = Eval::new();
        inv.key(day).key(total).key(ready);
        quota_limits(&mut inv, q);
        for id in q.candidates {
            inv.arg(*id);
        }
        let reply: Vec<i64> = self.eval(&TAKE_QUOTA, &inv).await?;
        quota_outcome(&reply)
    }

    async fn give_back(&self, q: &QuotaRequest<'_>) -> CounterResult<()> {
        let (day, total) = (self.key(&day_key(q)), self.key(&total_key(q)));
        self.run(|mut c| async move {
            let mut inv = GIVE_BACK.key(&day);
            inv.key(&total);
            for id in q.candidates {
                inv.arg(*id);
            }
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    async fn apply_votes(
        &self,
        campaign_id: i64,
        last_seq: i64,
        votes: &HashMap<i64, i64>,
    ) -> CounterResult<()> {
        let keys = self.vote_keys(campaign_id);
        self.run(|mut c| async move {
            let mut inv = APPLY_VOTES.key(&keys[0]);
            inv.key(&keys[1])
                .key(&keys[2])
                .arg(last_seq)
                .arg(APPLIED_KEPT);
            for (id, n) in votes {
                inv.arg(*id).arg(*n);
            }
            inv.invoke_async::<i64>(&mut c).await
        })
        .await
        .map(|_| ())
    }

    async fn recount_votes(
        &self,
        campaign_id: i64,
        tally: &Tally,
    ) -> CounterResult<RecountOutcome> {
        let keys = self.vote_keys(campaign_id);
        let reply = self
            .run_for(REBUILD_TIMEOUT, |mut c| async move {
                let mut inv = RECOUNT_VOTES.key(&keys[0]);
                inv.key(&keys[1])
                    .key(&keys[2])
                    .arg(tally.through_seq)
                    .arg(APPLIED_KEPT);
                for (id, n) in &tally.votes {
                    inv.arg(*id).arg(*n);
                }
                inv.invoke_async::<i64>(&mut c).await
            })
            .await?;
        Ok(match reply {
            1 => RecountOutcome::Rebuilt,
            0 => RecountOutcome::Newer,
            _ => RecountOutcome::TooOld,
        })
    }

    async fn throttle(&self, limit: &Throttle) -> CounterResult<Option<Duration>> {
        let key = self.key(&limit.key);
        let interval_ms = gcra_interval_ms(&limit.spec);
        let wait_ms: u64 = self
            .run(|mut c| async move {
                let mut inv = GCRA.key(&key);
                inv.arg(interval_ms).arg(limit.spec.count.get());
                if let Some(field) = limit.field {
                    inv.arg(field).arg(DAY_TTL_SECS);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }

    async fn votes(&self, campaign_id: i64) -> CounterResult<HashMap<i64, i64>> {
        let key = self.key(&votes_key(campaign_id));
        self.run(|mut c| async move { c.hgetall::<_, HashMap<i64, i64>>(&key).await })
            .await
    }

    async fn is_ready(&self, campaign_id: i64) -> CounterResult<bool> {
        let key = self.key(&ready_key(campaign_id));
        self.run(|mut c| async move { c.exists::<_, bool>(&key).await })
            .await
    }

    async fn rebuild(&self, campaign_id: i64, r: &Rebuild, force: bool) -> CounterResult<()> {
        // The keys the ledger speaks of are overwritten by one script, which does nothing if
        // another rebuild already finished. Only a forced rebuild (`minyi reconcile`) also
        // drops the campaign's other keys (quotas taken by ballots that never reached the
        // ledger), found by the campaign's hash tag; a lazy rebuild runs after Redis lost the
        // data, when there are none, and must not walk a large keyspace on the hot path.
        let count_keys = self.vote_keys(campaign_id);
        let old: Vec<String> = if force {
            let pattern = self.key(&format!("{{c{campaign_id}}}:*"));
            self.run_for(REBUILD_TIMEOUT, |mut c| async move {
                let mut keys = Vec::new();
                let opts = redis::ScanOptions::default()
                    .with_pattern(pattern)
                    .with_count(1000);
                let mut iter: redis::AsyncIter<String> = c.scan_options(opts).await?;
                while let Some(k) = iter.next_item().await {
                    keys.push(k?);
                }
                // The live counts are recount_votes's, which keeps them exact on its own.
                keys.retain(|k| !count_keys.contains(k));
                Ok(keys)
            })
            .await?
        } else {
            Vec::new()
        };
        let mut days = serde_json::Map::new();
        let mut totals = serde_json::Map::new();
        for (voter, counts) in &r.day_votes {
            let mut fields: serde_json::Map<String, serde_json::Value> = counts
                .iter()
                .map(|(c, n)| (c.to_string(), (*n).into()))
                .collect();
            fields.insert("_".into(), counts.values().sum::<i64>().into());
            days.insert(
                self.key(&voter_day_key(campaign_id, r.day, voter)),
                fields.into(),
            );
        }
        for (voter, total) in &r.totals {
            totals.insert(
                self.key(&voter_total_key(campaign_id, voter)),
                (*total).into(),
            );
        }
        let state = serde_json::json!({
            "del": old,
            "days": days,
            "totals": totals,
            "day_ttl": DAY_TTL_SECS,
        })
        .to_string();
        let ready = self.key(&ready_key(campaign_id));
        self.run_for(REBUILD_TIMEOUT, |mut c| async move {
            REBUILD
                .key(&ready)
                .arg(&state)
                .arg(if force { 1 } else { 0 })
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await
        .map(|_| ())
    }
}
