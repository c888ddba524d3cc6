//! Group commit of ballots. Ballots that arrive together are written to the ledger and the
//! chain in one transaction: one commit (one fsync) and one lock of the chain's head for the
//! whole batch instead of one per ballot. A batch closes when it holds `max` ballots or
//! `wait` after its first one arrived; `max = 1` writes each ballot alone, for comparison.
//!
//! A ballot is answered only after its batch committed; if the batch fails, every ballot in
//! it gets the failure (and its caller gives the quotas back). After the commit the batch's
//! votes are added to the live counts in one step per campaign, marked with the batch's last
//! seq so that a rebuild of the counts from the ledger can neither miss nor repeat them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::counters::{Counters, PaceVotes, pace_minute, pace_prefix};
use crate::store::{Ballot, NewBallot, Store, StoreError, StoreResult};

struct Job {
    ballot: NewBallot,
    /// Whether its campaign gathers risk signals: then the ballot counts for the pace.
    paced: bool,
    /// When the ballot was handed over, for the time it waits for its batch to be written.
    queued: Instant,
    reply: oneshot::Sender<StoreResult<Ballot>>,
}

/// Where ballots are batched: one lane for all (SQLite, one writer at a time), or one lane
/// per campaign (PostgreSQL: a campaign's batches follow each other on its chain, while
/// campaigns write side by side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lanes {
    One,
    PerCampaign,
}

#[derive(Clone)]
pub struct Batcher {
    inner: Arc<Inner>,
}

struct Inner {
    writing: Writing,
    lanes: Lanes,
    /// The lanes' tasks run here, whichever thread a ballot arrives on.
    runtime: tokio::runtime::Handle,
    /// Lanes by campaign (0 for the one lane). A lane lives as long as the service: there are
    /// as many as campaigns that received ballots, a few dozen a year.
    senders: std::sync::Mutex<HashMap<i64, mpsc::Sender<Job>>>,
}

/// What each lane needs: where batches go, and how they are closed and written.
#[derive(Clone)]
struct Writing {
    store: Arc<dyn Store>,
    counters: Arc<dyn Counters>,
    max: usize,
    wait: Duration,
    /// Batches of one lane written at once.
    writers: usize,
    /// Batches written at once over all lanes: each holds a database connection while it
    /// waits for the batch before it, and the pool serves every other request too.
    in_all: Arc<Semaphore>,
}

impl Batcher {
    /// Lanes start on the current runtime, each when its first ballot arrives.
    /// `writers`: batches of a lane written at the same time. On PostgreSQL two: the next
    /// batch is linked after the one being written and waits for it in the database (see
    /// `store::postgres`); on SQLite, which has one writer at a time, one (others would only
    /// wait in its busy loop). `in_all`: batches written at the same time over all lanes.
    pub fn start(
        store: Arc<dyn Store>,
        counters: Arc<dyn Counters>,
        max: usize,
        wait: Duration,
        (writers, in_all): (usize, usize),
        lanes: Lanes,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                writing: Writing {
                    store,
                    counters,
                    max: max.max(1),
                    wait,
                    writers: writers.max(1),
                    in_all: Arc::new(Semaphore::new(in_all.max(1))),
                },
                lanes,
                runtime: tokio::runtime::Handle::current(),
                senders: Default::default(),
            }),
        }
    }

    /// Records one ballot with whatever else arrives with it; returns once committed. `paced`:
    /// its campaign gathers risk signals, so its votes count for the candidates' pace.
    pub async fn record(&self, ballot: NewBallot, paced: bool) -> StoreResult<Ballot> {
        let lane = match self.inner.lanes {
            Lanes::One => 0,
            Lanes::PerCampaign => ballot.campaign_id,
        };
        let jobs = self.inner.lane(lane);
        let (reply, answer) = oneshot::channel();
        jobs.send(Job {
            ballot,
            paced,
            reply,
            queued: Instant::now(),
        })
        .await
        .map_err(|_| StoreError::BatchFailed("the ballot writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::BatchFailed("the ballot writer dropped the ballot".into()))?
    }
}

impl Inner {
    /// The lane's queue, started on first use.
    fn lane(&self, lane: i64) -> mpsc::Sender<Job> {
        let mut senders = self.senders.lock().unwrap_or_else(|p| p.into_inner());
        senders
            .entry(lane)
            .or_insert_with(|| {
                let w = &self.writing;
                let (jobs, rx) = mpsc::channel::<Job>(w.max * w.writers * 4);
                self.runtime.spawn(collect(w.clone(), rx));
                jobs
            })
            .clone()
    }
}

/// A lane: closes batches and writes them, `writers` at a time.
async fn collect(w: Writing, mut rx: mpsc::Receiver<Job>) {
    let writers = Arc::new(Semaphore::new(w.writers));
    // A writer is taken before the batch is closed: while every writer is busy, ballots pile
    // up in the channel and the next batch takes them all at once, so batches grow with the
    // load instead of with the wait.
    loop {
        let Ok(permit) = writers.clone().acquire_owned().await else {
            break;
        };
        let Some(first) = rx.recv().await else { break };
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + w.wait;
        while batch.len() < w.max {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(job)) => batch.push(job),
                _ => break,
            }
        }
        // Taken in the order the lane closes its batches, so a batch never holds the permit
        // that the batch it follows still waits for.
        let Ok(shared) = w.in_all.clone().acquire_owned().await else {
            break;
        };
        let (store, counters) = (w.store.clone(), w.counters.clone());
        tokio::spawn(async move {
            write(store.as_ref(), counters.as_ref(), batch).await;
            drop((permit, shared));
        });
    }
}

async fn write(store: &dyn Store, counters: &dyn Counters, jobs: Vec<Job>) {
    let ballots: Vec<NewBallot> = jobs.iter().map(|j| j.ballot.clone()).collect();
    metrics::histogram!("ballot_batch_size").record(ballots.len() as f64);
    let started = Instant::now();
    for job in &jobs {
        metrics::histogram!("ballot_queue_duration_seconds")
            .record(started.duration_since(job.queued).as_secs_f64());
    }
    let written = store.record_ballots(&ballots).await;
    metrics::histogram!("ballot_write_duration_seconds").record(started.elapsed().as_secs_f64());
    match written {
        Ok(results) => {
            let paced: Vec<bool> = jobs.iter().map(|j| j.paced).collect();
            count_live(counters, &results, &paced).await;
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, ballots = jobs.len(), "ballot batch not committed");
            let reason = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::BatchFailed(reason.clone())));
            }
        }
    }
}

/// Adds the recorded ballots to the live counts (per campaign, the votes and the last seq),
/// and to the candidates' pace (every recorded ballot of a campaign that gathers signals,
/// held or not: a farm's held votes are still a surge). Before the ballots are answered, so
/// that a voter's next ballot sees them.
async fn count_live(counters: &dyn Counters, results: &[StoreResult<Ballot>], paced: &[bool]) {
    tokio::join!(
        count_pace(counters, results, paced),
        count_votes(counters, results)
    );
}

/// Adds the counted ballots to the live counts.
async fn count_votes(counters: &dyn Counters, results: &[StoreResult<Ballot>]) {
    let mut campaigns: HashMap<i64, (i64, HashMap<i64, i64>)> = HashMap::new();
    for ballot in results.iter().flatten().filter(|b| b.status == "counted") {
        let (last_seq, votes) = campaigns.entry(ballot.campaign_id).or_default();
        *last_seq = (*last_seq).max(ballot.seq);
        for c in &ballot.candidate_ids {
            *votes.entry(*c).or_default() += 1;
        }
    }
    for (campaign_id, (last_seq, votes)) in campaigns {
        if let Err(e) = counters.apply_votes(campaign_id, last_seq, &votes).await {
            // The ballots are on the record; the live counts are recounted from the ledger
            // at the next start, or by `minyi reconcile`.
            metrics::counter!("live_count_failures_total").increment(1);
            tracing::error!(error = %e, campaign_id, last_seq, "live counts not updated");
        }
    }
}

/// Adds the recorded ballots whose campaign gathers risk signals (`paced`, in the same
/// order) to their campaign's votes per minute, for the pace.
async fn count_pace(counters: &dyn Counters, results: &[StoreResult<Ballot>], paced: &[bool]) {
    let mut campaigns: HashMap<i64, PaceVotes> = HashMap::new();
    let recorded = results.iter().zip(paced).filter(|(_, p)| **p);
    for ballot in recorded.filter_map(|(r, _)| r.as_ref().ok()) {
        let votes = campaigns
            .entry(ballot.campaign_id)
            .or_default()
            .entry(pace_minute(ballot.cast_at))
            .or_default();
        for c in &ballot.candidate_ids {
            *votes.entry(*c).or_default() += 1;
        }
    }
    for (campaign_id, votes) in campaigns {
        if let Err(e) = counters.count_pace(&pace_prefix(campaign_id), &votes).await {
            // Only a risk signal: the pace misses these votes until they leave its windows.
            metrics::counter!("pace_count_failures_total").increment(1);
            tracing::error!(error = %e, campaign_id, "votes not counted for the pace");
        }
    }
}
