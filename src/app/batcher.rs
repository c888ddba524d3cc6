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
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::counters::Counters;
use crate::store::{Ballot, NewBallot, Store, StoreError, StoreResult};

struct Job {
    ballot: NewBallot,
    reply: oneshot::Sender<StoreResult<Ballot>>,
}

#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
}

impl Batcher {
    /// Starts the collecting task on the current runtime.
    /// `writers`: batches written at the same time. On PostgreSQL several overlap (one
    /// campaign's batches queue only on its chain head, and do their checks before it); on
    /// SQLite, which has one writer at a time, one (others would only wait in its busy loop).
    pub fn start(
        store: Arc<dyn Store>,
        counters: Arc<dyn Counters>,
        max: usize,
        wait: Duration,
        writers: usize,
    ) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(max.max(1) * writers.max(1) * 4);
        let writers = Arc::new(Semaphore::new(writers.max(1)));
        tokio::spawn(async move {
            // A writer is taken before the batch is closed: while every writer is busy,
            // ballots pile up in the channel and the next batch takes them all at once, so
            // batches grow with the load instead of with the wait.
            loop {
                let Ok(permit) = writers.clone().acquire_owned().await else {
                    break;
                };
                let Some(first) = rx.recv().await else { break };
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + wait;
                while batch.len() < max {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        _ => break,
                    }
                }
                let (store, counters) = (store.clone(), counters.clone());
                tokio::spawn(async move {
                    write(store.as_ref(), counters.as_ref(), batch).await;
                    drop(permit);
                });
            }
        });
        Self { jobs }
    }

    /// Records one ballot with whatever else arrives with it; returns once committed.
    pub async fn record(&self, ballot: NewBallot) -> StoreResult<Ballot> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { ballot, reply })
            .await
            .map_err(|_| StoreError::BatchFailed("the ballot writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::BatchFailed("the ballot writer dropped the ballot".into()))?
    }
}

async fn write(store: &dyn Store, counters: &dyn Counters, jobs: Vec<Job>) {
    let ballots: Vec<NewBallot> = jobs.iter().map(|j| j.ballot.clone()).collect();
    metrics::histogram!("ballot_batch_size").record(ballots.len() as f64);
    match store.record_ballots(&ballots).await {
        Ok(results) => {
            count_live(counters, &results).await;
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

/// Adds the recorded ballots to the live counts: per campaign, the votes and the last seq.
async fn count_live(counters: &dyn Counters, results: &[StoreResult<Ballot>]) {
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
