//! Rate limits at the door, per route class and per client address or voter.
//!
//! Each limit is checked in process first (governor's GCRA, no I/O), then, with Redis, by the
//! same algorithm in Redis so that it holds across instances. The local check is never
//! stricter than the shared one (an instance sees a subset of the requests), so it only saves
//! Redis the floods it can already see.
//!
//! A ballot's two shared limits, the client's address and the voter, are counted in each
//! campaign, so that they run in the same Redis script as the ballot's other work (one round
//! trip instead of three): Redis Cluster runs a script on one shard, and a campaign's keys
//! share its hash tag. At the door a ballot meets only the in-process address limit; the
//! vote path then checks both shared limits with the ballot's signals and quotas
//! (`ballot_throttles`), or alone when the ballot ends before them.
//!
//! Memory: each keyed limiter forgets keys whose state is back to fresh every `SWEEP`
//! (`retain_recent`), and one that still holds more than `max_keys` keys (millions of
//! distinct addresses in a few seconds) starts afresh, logged and counted, rather than grow:
//! the shared limit in Redis and the per-voter limits still hold meanwhile.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::config::RateSettings;
use crate::counters::{Counters, DAY_LIMIT_FIELD, Throttle};
use crate::domain::keyed::VoterId;
use crate::domain::rate::RateSpec;

/// How often the limiters drop the keys they no longer need.
const SWEEP: Duration = Duration::from_secs(10);

/// The route classes that have limits of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Login,
    Ballot,
    Read,
    Objection,
}

impl Class {
    fn name(self) -> &'static str {
        match self {
            Class::Login => "login",
            Class::Ballot => "ballot",
            Class::Read => "read",
            Class::Objection => "objection",
        }
    }
}

/// One limit over many keys, in process.
struct Keyed<K: Hash + Eq + Clone> {
    spec: RateSpec,
    limiter: RwLock<Arc<DefaultKeyedRateLimiter<K>>>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    fn new(spec: RateSpec) -> Self {
        Self {
            spec,
            limiter: RwLock::new(Arc::new(RateLimiter::keyed(quota(&spec)))),
        }
    }

    fn current(&self) -> Arc<DefaultKeyedRateLimiter<K>> {
        self.limiter
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `None` when allowed, else how long to wait.
    fn check(&self, key: &K) -> Option<Duration> {
        self.current()
            .check_key(key)
            .err()
            .map(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }

    fn len(&self) -> usize {
        self.current().len()
    }

    /// Drops fresh keys, and starts afresh when still over `max_keys`; returns the keys
    /// kept, and how many were dropped by starting afresh.
    fn sweep(&self, max_keys: usize) -> (usize, usize) {
        let limiter = self.current();
        limiter.retain_recent();
        limiter.shrink_to_fit();
        let kept = limiter.len();
        if kept > max_keys {
            *self.limiter.write().unwrap_or_else(|p| p.into_inner()) =
                Arc::new(RateLimiter::keyed(quota(&self.spec)));
            return (0, kept);
        }
        (kept, 0)
    }
}

fn quota(spec: &RateSpec) -> Quota {
    Quota::with_period(spec.interval())
        .unwrap_or_else(|| Quota::per_second(spec.count))
        .allow_burst(spec.count)
}

/// Every limit of the service.
pub struct Limits {
    per_ip: Vec<(Class, Keyed<IpAddr>)>,
    /// Keyed by campaign and voter.
    per_voter: Option<Keyed<(i64, u128)>>,
    counters: Arc<dyn Counters>,
    max_keys: usize,
}

impl Limits {
    pub fn new(settings: &RateSettings, counters: Arc<dyn Counters>) -> Arc<Self> {
        let per_ip = [
            (Class::Login, settings.login_per_ip),
            (Class::Ballot, settings.ballots_per_ip),
            (Class::Read, settings.reads_per_ip),
            (Class::Objection, settings.objections_per_ip),
        ]
        .into_iter()
        .filter_map(|(class, spec)| Some((class, Keyed::new(spec?))))
        .collect();
        Arc::new(Self {
            per_ip,
            per_voter: settings.ballots_per_voter.map(Keyed::new),
            counters,
            max_keys: settings.max_keys,
        })
    }

    /// One request of `class` from `ip`: `None` when allowed, else how long to wait.
    pub async fn check_ip(&self, class: Class, ip: IpAddr) -> Option<Duration> {
        if let Some(wait) = self.check_ip_here(class, ip) {
            return Some(wait);
        }
        let keyed = self.per_ip(class)?;
        self.shared(&Throttle {
            key: format!("rl:{}:ip:{ip}", class.name()),
            field: None,
            spec: keyed.spec,
        })
        .await
    }

    /// The in-process part of `check_ip` only: for a ballot, whose shared address limit the
    /// vote path checks (see `ballot_throttles`).
    pub fn check_ip_here(&self, class: Class, ip: IpAddr) -> Option<Duration> {
        self.per_ip(class)?.check(&ip)
    }

    fn per_ip(&self, class: Class) -> Option<&Keyed<IpAddr>> {
        self.per_ip
            .iter()
            .find(|(c, _)| *c == class)
            .map(|(_, keyed)| keyed)
    }

    /// The per-voter limit in process only; the shared one is then the caller's (see
    /// `ballot_throttles`).
    pub fn check_voter_here(&self, campaign_id: i64, voter: &VoterId) -> Option<Duration> {
        let keyed = self.per_voter.as_ref()?;
        let key = u128::from_str_radix(voter.as_str(), 16).unwrap_or_default();
        keyed.check(&(campaign_id, key))
    }

    /// A ballot's shared limits, in the order they are checked: its client's address (the
    /// ballots class), then its voter. Both count in the campaign, their keys carrying its
    /// hash tag, so that a counter-store step can check them with its own work.
    pub fn ballot_throttles(
        &self,
        campaign_id: i64,
        ip: Option<IpAddr>,
        voter: &VoterId,
    ) -> Vec<Throttle> {
        let address = self
            .per_ip(Class::Ballot)
            .zip(ip)
            .map(|(keyed, ip)| Throttle {
                key: format!("{{c{campaign_id}}}~rl:ballot:ip:{ip}"),
                field: None,
                spec: keyed.spec,
            });
        address
            .into_iter()
            .chain(self.voter_throttle(campaign_id, voter))
            .collect()
    }

    fn voter_throttle(&self, campaign_id: i64, voter: &VoterId) -> Option<Throttle> {
        let keyed = self.per_voter.as_ref()?;
        Some(Throttle {
            key: format!("{{c{campaign_id}}}~rl:voter:{voter}"),
            field: None,
            spec: keyed.spec,
        })
    }

    /// Moves the voter's limit among a ballot's `limits` into the voter's day of the
    /// campaign (`day_key`, the hash of its quotas), once the campaign and so its day are
    /// known: the ballot's one step in the counter store then reads and writes it with the
    /// quotas, and a ballot refused before that step counts against the same limit. (A
    /// ballot for no campaign keeps it under a key of its own.) The limit thus starts afresh
    /// with the campaign's day, as the quotas do.
    pub fn keep_voter_limit_in_day(
        &self,
        limits: &mut [Throttle],
        campaign_id: i64,
        voter: &VoterId,
        day_key: String,
    ) {
        let Some(own) = self.voter_throttle(campaign_id, voter) else {
            return;
        };
        if let Some(limit) = limits.iter_mut().find(|l| l.key == own.key) {
            limit.key = day_key;
            limit.field = Some(DAY_LIMIT_FIELD);
        }
    }

    /// One rating by `voter` in a campaign, in process and then shared.
    pub async fn check_voter(&self, campaign_id: i64, voter: &VoterId) -> Option<Duration> {
        if let Some(wait) = self.check_voter_here(campaign_id, voter) {
            return Some(wait);
        }
        let limit = self.voter_throttle(campaign_id, voter)?;
        self.shared(&limit).await
    }

    /// Shared limits checked alone, in order: the first that refuses answers.
    pub async fn check_shared(&self, limits: &[Throttle]) -> Option<Duration> {
        for limit in limits {
            if let Some(wait) = self.shared(limit).await {
                return Some(wait);
            }
        }
        None
    }

    /// The limit across instances. If Redis does not answer, the local limit stands alone
    /// (the ballot itself then fails on its quota, which needs Redis too).
    async fn shared(&self, limit: &Throttle) -> Option<Duration> {
        match self.counters.throttle(limit).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = %e, "shared rate limit not checked");
                None
            }
        }
    }

    /// Keys held by the in-process limiters, all classes together.
    pub fn keys(&self) -> usize {
        self.per_ip.iter().map(|(_, k)| k.len()).sum::<usize>()
            + self.per_voter.as_ref().map_or(0, |k| k.len())
    }

    /// Forgets what the limiters no longer need (see the module's note on memory).
    pub fn sweep(&self) {
        let limiters = self
            .per_ip
            .iter()
            .map(|(class, keyed)| (class.name(), keyed.sweep(self.max_keys)))
            .chain(
                self.per_voter
                    .iter()
                    .map(|keyed| ("voter", keyed.sweep(self.max_keys))),
            );
        for (name, (kept, dropped)) in limiters {
            metrics::gauge!("rate_limiter_keys", "limit" => name).set(kept as f64);
            if dropped > 0 {
                metrics::counter!("rate_limiter_resets_total", "limit" => name).increment(1);
                tracing::warn!(
                    limit = name,
                    keys = dropped,
                    "rate limiter over its key budget: started afresh"
                );
            }
        }
    }

    /// Sweeps every `SWEEP`, for as long as the service runs.
    pub fn start_sweeping(self: &Arc<Self>) {
        let limits = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SWEEP);
            loop {
                tick.tick().await;
                let Some(limits) = limits.upgrade() else {
                    return;
                };
                limits.sweep();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::MemoryCounters;

    fn settings(max_keys: usize) -> RateSettings {
        RateSettings {
            login_per_ip: RateSpec::parse("2/min").unwrap(),
            objections_per_ip: None,
            ballots_per_ip: None,
            ballots_per_voter: None,
            reads_per_ip: None,
            max_keys,
        }
    }

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[tokio::test]
    async fn a_limiter_over_its_key_budget_starts_afresh() {
        let limits = Limits::new(&settings(1000), Arc::new(MemoryCounters::default()));
        for n in 0..1500 {
            assert_eq!(limits.check_ip(Class::Login, ip(n)).await, None);
        }
        assert_eq!(limits.keys(), 1500);
        // Keys used a moment ago are not fresh: the sweep keeps them, finds too many, and
        // starts afresh.
        limits.sweep();
        assert_eq!(limits.keys(), 0);
        // Under the budget, the sweep keeps what it must.
        for n in 0..10 {
            limits.check_ip(Class::Login, ip(n)).await;
            limits.check_ip(Class::Login, ip(n)).await;
        }
        limits.sweep();
        assert_eq!(limits.keys(), 10);
        assert!(limits.check_ip(Class::Login, ip(3)).await.is_some());
        // Classes without a limit keep nothing.
        assert_eq!(limits.check_ip(Class::Read, ip(3)).await, None);
    }
}
