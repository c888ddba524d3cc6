//! Rebuilding the hot counters from the ledger, which is the record. It happens lazily: the
//! quota script refuses to take quotas for a campaign whose "ready" marker is missing (a new
//! process with in-memory counters, a Redis that restarted empty or was flushed), and the
//! vote path then rebuilds that campaign before it accepts the ballot. `minyi reconcile`
//! compares and repairs by hand.
//!
//! The live counts can also be recounted while ballots are being recorded, on any instance:
//! each batch adds its votes marked with its last seq, and a recount from a ledger snapshot
//! keeps exactly the batches that committed after the snapshot (see `recount_votes.lua`).
//! Every instance recounts at start, which repairs the counts of batches that a crashed
//! instance committed but never counted.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Services;
use crate::counters::{CounterError, RecountOutcome};
use crate::domain::ballot;
use crate::store::{Campaign, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RecountError {
    #[error(transparent)]
    Counters(#[from] CounterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rebuilds the campaign's counters unless they are built; one instance rebuilds at a time.
pub async fn ensure_ready(
    services: &Services,
    campaign: &Campaign,
    now: DateTime<Utc>,
) -> Result<(), RecountError> {
    // Outside the `{c<id>}:*` key space that a rebuild clears, so a rebuild never drops its
    // own lock.
    let lock = format!("{{c{}}}~rebuilding", campaign.id);
    for _ in 0..500 {
        if services.counters.is_ready(campaign.id).await? {
            return Ok(());
        }
        if services
            .counters
            .claim(&lock, Duration::from_secs(30))
            .await?
        {
            let result = rebuild(services, campaign, now, false).await;
            services.counters.release(&lock).await?;
            return result;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err(CounterError::Unavailable("rebuild of the counters did not finish".into()).into())
}

/// Replaces the campaign's counters with what the ledger says (`force`: even when they are
/// built, as `minyi reconcile` does).
pub async fn rebuild(
    services: &Services,
    campaign: &Campaign,
    now: DateTime<Utc>,
    force: bool,
) -> Result<(), RecountError> {
    let day = ballot::quota_day(now, ballot::zone(&campaign.timezone));
    let state = services.store.ledger_rebuild(campaign.id, day).await?;
    // Counts first: once the quotas are marked ready, readers trust the counts too.
    recount_live(services, campaign.id).await?;
    services
        .counters
        .rebuild(campaign.id, &state, force)
        .await?;
    tracing::warn!(
        campaign_id = campaign.id,
        voters_today = state.day_votes.len(),
        "counters rebuilt from the ledger"
    );
    Ok(())
}

/// Replaces the campaign's live counts with the ledger's, safely while ballots are recorded.
pub async fn recount_live(services: &Services, campaign_id: i64) -> Result<(), RecountError> {
    for _ in 0..5 {
        let tally = services.store.ledger_votes(campaign_id).await?;
        match services.counters.recount_votes(campaign_id, &tally).await? {
            RecountOutcome::Rebuilt | RecountOutcome::Newer => return Ok(()),
            // So many batches since the snapshot that some were forgotten: read again.
            RecountOutcome::TooOld => continue,
        }
    }
    Err(CounterError::Unavailable("live counts could not be recounted".into()).into())
}

/// Recounts the live counts of every open selection campaign; run once at start.
pub async fn recount_all(services: &Services) -> Result<usize, RecountError> {
    let mut n = 0;
    for c in services.store.list_campaigns(false).await? {
        if c.kind == crate::domain::campaign::Kind::Selection {
            recount_live(services, c.id).await?;
            n += 1;
        }
    }
    Ok(n)
}

/// The campaign's live counts, rebuilt first if they were lost.
pub async fn live_votes(
    services: &Services,
    campaign: &Campaign,
) -> Result<HashMap<i64, i64>, RecountError> {
    ensure_ready(services, campaign, services.now()).await?;
    Ok(services.counters.votes(campaign.id).await?)
}

/// Live counts that differ from the ledger: candidate → (live, ledger).
pub async fn differences(
    services: &Services,
    campaign_id: i64,
) -> Result<HashMap<i64, (i64, i64)>, RecountError> {
    let live = services.counters.votes(campaign_id).await?;
    let ledger = services.store.ledger_votes(campaign_id).await?.votes;
    let mut diff = HashMap::new();
    for id in live.keys().chain(ledger.keys()) {
        let (a, b) = (
            live.get(id).copied().unwrap_or(0),
            ledger.get(id).copied().unwrap_or(0),
        );
        if a != b {
            diff.insert(*id, (a, b));
        }
    }
    Ok(diff)
}
