//! Group commit of ballots. Ballots that arrive together are written to the ledger and the
//! chain in one transaction: one commit (one fsync) and one lock of the chain's head for the
//! whole batch instead of one per ballot. A batch closes when it holds `max` ballots or
//! `wait` after its first one arrived; `max = 1` writes each ballot alone, for comparison.
//!
//! A ballot is answered only after its batch committed; if the batch fails, every ballot in
//! it gets the failure (and its caller gives the quotas back).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::store::{Ballot, NewBallot, Store, StoreError, StoreResult};

struct Job {
    ballot: NewBallot,
    reply: oneshot::Sender<StoreResult<Ballot>>,
}

#[derive(Clone)]
pub struct Batcher {
    jobs: mpsc::Sender<Job>,
}

/// Batches written at the same time (different campaigns proceed in parallel; one campaign's
/// batches queue on its chain head).
const WRITERS: usize = 4;

impl Batcher {
    /// Starts the collecting task on the current runtime.
    pub fn start(store: Arc<dyn Store>, max: usize, wait: Duration) -> Self {
        let (jobs, mut rx) = mpsc::channel::<Job>(max.max(1) * WRITERS * 4);
        let writers = Arc::new(Semaphore::new(WRITERS));
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + wait;
                while batch.len() < max {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        _ => break,
                    }
                }
                let Ok(permit) = writers.clone().acquire_owned().await else {
                    break;
                };
                let store = store.clone();
                tokio::spawn(async move {
                    write(store.as_ref(), batch).await;
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

async fn write(store: &dyn Store, jobs: Vec<Job>) {
    let ballots: Vec<NewBallot> = jobs.iter().map(|j| j.ballot.clone()).collect();
    metrics::histogram!("ballot_batch_size").record(ballots.len() as f64);
    match store.record_ballots(&ballots).await {
        Ok(results) => {
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
