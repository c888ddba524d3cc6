//! In-process counters for the embedded default (one instance, no Redis). One lock guards
//! all state, so a ballot's quotas are checked and taken as atomically as the Redis script
//! does it.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{
    APPLIED_KEPT, CounterResult, Counters, Observation, Observed, PACE_SPAN, PaceVotes,
    QuotaOutcome, QuotaRequest, Rebuild, RecountOutcome, Tally, Throttle, day_key, pace_of,
    ready_key, total_key, voter_day_key, voter_total_key,
};

#[derive(Default)]
struct State {
    values: HashMap<String, (i64, Instant)>,
    /// Short-lived sets: members and when the set expires.
    sets: HashMap<String, (std::collections::HashSet<String>, Instant)>,
    /// The number of sets at which expired ones are next swept out.
    sweep_sets_at: usize,
    hashes: HashMap<String, HashMap<i64, i64>>,
    /// Pace buckets by prefix, then minute.
    pace: HashMap<String, std::collections::BTreeMap<i64, Minute>>,
    /// Live counts by campaign, kept exact the way the Redis scripts keep them.
    live: HashMap<i64, Live>,
}

/// One minute's votes per candidate, and in all.
type Minute = (HashMap<i64, u64>, u64);

#[derive(Default)]
struct Live {
    votes: HashMap<i64, i64>,
    /// The seq of the snapshot last rebuilt from (-1: never).
    through: i64,
    /// Applied batches, oldest first: (last seq, votes).
    applied: VecDeque<(i64, HashMap<i64, i64>)>,
}

impl State {
    fn live(&mut self, campaign_id: i64) -> &mut Live {
        self.live.entry(campaign_id).or_insert_with(|| Live {
            through: -1,
            ..Live::default()
        })
    }
}

#[derive(Default)]
pub struct MemoryCounters {
    state: Mutex<State>,
}

impl MemoryCounters {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The day total lives under this field of a day hash (candidate ids are positive).
const DAY_TOTAL: i64 = 0;

#[async_trait]
impl Counters for MemoryCounters {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> CounterResult<()> {
        Ok(())
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CounterResult<i64> {
        let now = Instant::now();
        let mut state = self.lock();
        let entry = state
            .values
            .entry(key.to_string())
            .or_insert((0, now + ttl));
        if entry.1 <= now {
            *entry = (0, now + ttl);
        }
        entry.0 += delta;
        Ok(entry.0)
    }

    async fn get(&self, key: &str) -> CounterResult<i64> {
        Ok(match self.lock().values.get(key) {
            Some((v, expires)) if *expires > Instant::now() => *v,
            _ => 0,
        })
    }

    async fn observe(&self, o: &Observation<'_>) -> CounterResult<Observed> {
        let now = Instant::now();
        let mut state = self.lock();
        // Expired sets are swept when their number has doubled since the last sweep: memory
        // follows the window's traffic, at a constant cost per call.
        if state.sets.len() >= state.sweep_sets_at {
            state.sets.retain(|_, (_, expires)| *expires > now);
            state.sweep_sets_at = (state.sets.len() * 2).max(10_000);
        }
        let mut sizes = Vec::with_capacity(o.sets.len());
        for (key, window) in o.sets {
            let entry = state
                .sets
                .entry(key.clone())
                .or_insert_with(|| (Default::default(), now + *window));
            if entry.1 <= now {
                *entry = (Default::default(), now + *window);
            }
            entry.0.insert(o.member.to_string());
            sizes.push(entry.0.len() as u64);
        }
        let mut pace = Vec::new();
        if let Some(p) = &o.pace {
            let empty = Default::default();
            let minutes = state.pace.get(&p.prefix).unwrap_or(&empty);
            for c in p.candidates {
                let per_minute: Vec<(u64, u64)> = (0..PACE_SPAN)
                    .map(|i| match minutes.get(&(p.minute - i)) {
                        Some((votes, all)) => (votes.get(c).copied().unwrap_or(0), *all),
                        None => (0, 0),
                    })
                    .collect();
                let mut counted = pace_of(&per_minute);
                // The ballot's own votes, not counted until it is committed.
                counted.recent += 1;
                counted.recent_all += p.candidates.len() as u64;
                pace.push(counted);
            }
        }
        Ok(Observed { sizes, pace })
    }

    async fn count_pace(&self, prefix: &str, votes: &PaceVotes) -> CounterResult<()> {
        let Some(latest) = votes.keys().next_back() else {
            return Ok(());
        };
        let mut state = self.lock();
        let minutes = state.pace.entry(prefix.to_string()).or_default();
        for (minute, candidates) in votes {
            let bucket = minutes.entry(*minute).or_default();
            for (c, n) in candidates {
                *bucket.0.entry(*c).or_default() += n;
                bucket.1 += n;
            }
        }
        // Minutes that can no longer be read are dropped as time moves on.
        *minutes = minutes.split_off(&(latest - PACE_SPAN));
        Ok(())
    }

    async fn claim(&self, key: &str, ttl: Duration) -> CounterResult<bool> {
        let now = Instant::now();
        let mut state = self.lock();
        match state.values.get(key) {
            Some((_, expires)) if *expires > now => Ok(false),
            _ => {
                state.values.insert(key.to_string(), (1, now + ttl));
                Ok(true)
            }
        }
    }

    async fn release(&self, key: &str) -> CounterResult<()> {
        self.lock().values.remove(key);
        Ok(())
    }

    async fn take_quota(&self, q: &QuotaRequest<'_>) -> CounterResult<QuotaOutcome> {
        let n = q.candidates.len() as i64;
        let mut state = self.lock();
        if !state.hashes.contains_key(&ready_key(q.campaign_id)) {
            return Ok(QuotaOutcome::NotReady);
        }
        let total = state
            .hashes
            .get(&total_key(q))
            .and_then(|h| h.get(&DAY_TOTAL))
            .copied()
            .unwrap_or(0);
        let day = state.hashes.entry(day_key(q)).or_default();
        let used_today = day.get(&DAY_TOTAL).copied().unwrap_or(0);
        if used_today + n > q.votes_per_day as i64 {
            return Ok(QuotaOutcome::DailyExhausted);
        }
        if let Some(limit) = q.votes_per_campaign
            && total + n > limit as i64
        {
            return Ok(QuotaOutcome::CampaignExhausted);
        }
        if let Some(c) = q
            .candidates
            .iter()
            .find(|c| day.get(c).copied().unwrap_or(0) + 1 > q.votes_per_candidate_per_day as i64)
        {
            return Ok(QuotaOutcome::CandidateLimit(*c));
        }
        for c in q.candidates {
            *day.entry(*c).or_default() += 1;
        }
        *day.entry(DAY_TOTAL).or_default() += n;
        *state
            .hashes
            .entry(total_key(q))
            .or_default()
            .entry(DAY_TOTAL)
            .or_default() += n;
        Ok(QuotaOutcome::Taken {
            remaining_today: (q.votes_per_day as i64 - used_today - n).max(0) as u32,
        })
    }

    async fn give_back(&self, q: &QuotaRequest<'_>) -> CounterResult<()> {
        let n = q.candidates.len() as i64;
        let mut state = self.lock();
        let day = state.hashes.entry(day_key(q)).or_default();
        for c in q.candidates {
            *day.entry(*c).or_default() -= 1;
        }
        *day.entry(DAY_TOTAL).or_default() -= n;
        *state
            .hashes
            .entry(total_key(q))
            .or_default()
            .entry(DAY_TOTAL)
            .or_default() -= n;
        Ok(())
    }

    async fn apply_votes(
        &self,
        campaign_id: i64,
        last_seq: i64,
        votes: &HashMap<i64, i64>,
    ) -> CounterResult<()> {
        let mut state = self.lock();
        let live = state.live(campaign_id);
        if live.through >= last_seq {
            return Ok(());
        }
        for (c, n) in votes {
            *live.votes.entry(*c).or_default() += n;
        }
        live.applied.push_back((last_seq, votes.clone()));
        if live.applied.len() > APPLIED_KEPT {
            live.applied.pop_front();
        }
        Ok(())
    }

    async fn recount_votes(
        &self,
        campaign_id: i64,
        tally: &Tally,
    ) -> CounterResult<RecountOutcome> {
        let mut state = self.lock();
        let live = state.live(campaign_id);
        if live.through >= tally.through_seq {
            return Ok(RecountOutcome::Newer);
        }
        if live.applied.len() >= APPLIED_KEPT
            && live
                .applied
                .front()
                .is_some_and(|(seq, _)| *seq > tally.through_seq)
        {
            return Ok(RecountOutcome::TooOld);
        }
        live.applied.retain(|(seq, _)| *seq > tally.through_seq);
        live.votes = tally.votes.clone();
        for (_, batch) in &live.applied {
            for (c, n) in batch {
                *live.votes.entry(*c).or_default() += n;
            }
        }
        live.through = tally.through_seq;
        Ok(RecountOutcome::Rebuilt)
    }

    async fn throttle(&self, _limit: &Throttle) -> CounterResult<Option<Duration>> {
        Ok(None)
    }

    async fn votes(&self, campaign_id: i64) -> CounterResult<HashMap<i64, i64>> {
        Ok(self
            .lock()
            .live
            .get(&campaign_id)
            .map(|l| l.votes.clone())
            .unwrap_or_default())
    }

    async fn is_ready(&self, campaign_id: i64) -> CounterResult<bool> {
        Ok(self.lock().hashes.contains_key(&ready_key(campaign_id)))
    }

    async fn rebuild(&self, campaign_id: i64, r: &Rebuild, force: bool) -> CounterResult<()> {
        let tag = format!("{{c{campaign_id}}}:");
        let mut state = self.lock();
        if !force && state.hashes.contains_key(&ready_key(campaign_id)) {
            return Ok(());
        }
        state.hashes.retain(|k, _| !k.starts_with(&tag));
        state.values.retain(|k, _| !k.starts_with(&tag));
        for (voter, counts) in &r.day_votes {
            let mut day = counts.clone();
            day.insert(DAY_TOTAL, counts.values().sum());
            state
                .hashes
                .insert(voter_day_key(campaign_id, r.day, voter), day);
        }
        for (voter, total) in &r.totals {
            let key = voter_total_key(campaign_id, voter);
            state
                .hashes
                .insert(key, HashMap::from([(DAY_TOTAL, *total)]));
        }
        state.hashes.insert(ready_key(campaign_id), HashMap::new());
        Ok(())
    }
}
