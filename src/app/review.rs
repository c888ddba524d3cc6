//! The review of suspicious ballots: clusters for organizers, and decisions (theirs, and the
//! system's holds) that move ballots between the public counts and quarantine. Every
//! decision is one ledger transaction with its chain entry; the live counts follow it at once,
//! marked with the entry's seq so that a recount never adds it twice.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::Services;
use crate::domain::record::Actor;
use crate::domain::review::{self, Action, Cluster, ClusterBy};
use crate::store::{Decided, Decision, Selection, StoreError};

/// Makes the decision and moves the live counts with it.
pub async fn decide(
    services: &Services,
    actor: &Actor,
    decision: &Decision,
) -> Result<Option<Decided>, StoreError> {
    let Some(decided) = services.store.decide(actor, decision).await? else {
        return Ok(None);
    };
    let votes: HashMap<i64, i64> = decided
        .votes
        .iter()
        .filter(|(_, n)| **n != 0)
        .map(|(c, n)| (*c, *n))
        .collect();
    if !votes.is_empty()
        && let Err(e) = services
            .counters
            .apply_votes(decision.campaign_id, decided.seq, &votes)
            .await
    {
        // The decision is on the record; the live counts are recounted from the ledger at the
        // next start, or by `minyi reconcile`.
        metrics::counter!("live_count_failures_total").increment(1);
        tracing::error!(error = %e, seq = decided.seq, "live counts not moved by a decision");
    }
    metrics::counter!("review_decisions_total", "action" => decided.action.as_str()).increment(1);
    tracing::info!(
        campaign_id = decision.campaign_id,
        seq = decided.seq,
        action = decided.action.as_str(),
        ballots = decided.ballots.len(),
        "review decision recorded"
    );
    Ok(Some(decided))
}

/// A signal crossed its limit: the cluster's ballots counted earlier in the window are held
/// too, as the system's decision on the record. Ballots after it are flagged as they come.
pub async fn hold_cluster(
    services: &Services,
    campaign_id: i64,
    by: ClusterBy,
    key: String,
    window_secs: u32,
    signal: &str,
    now: DateTime<Utc>,
) {
    let decision = Decision {
        campaign_id,
        action: Action::Hold,
        reason: format!(
            "风险信号 {signal} 超过阈值，同一{}此前的选票一并待审",
            by_name(by)
        ),
        select: Selection::Cluster {
            by,
            key,
            from: now - chrono::Duration::seconds(i64::from(window_secs)),
            // Up to the moment of the hold, and a little after: this ballot's own batch.
            to: now + chrono::Duration::seconds(1),
        },
        at: now,
    };
    match decide(services, &Actor::System("risk"), &decision).await {
        Ok(Some(d)) => tracing::info!(
            signal,
            ballots = d.ballots.len(),
            "earlier ballots of a cluster held"
        ),
        Ok(None) => {}
        // The ballots stay counted and flagged in the review; the organizers can still hold
        // the cluster there.
        Err(e) => tracing::error!(error = %e, signal, "earlier ballots of a cluster not held"),
    }
}

fn by_name(by: ClusterBy) -> &'static str {
    match by {
        ClusterBy::Device => "设备",
        ClusterBy::Ip => "IP地址",
        ClusterBy::Network => "网段",
        ClusterBy::Ballot => "选票内容",
    }
}

/// The campaign's clusters of suspicious (or all) ballots cast in `[from, to)`.
pub async fn clusters(
    services: &Services,
    campaign_id: i64,
    by: ClusterBy,
    window_secs: i64,
    suspicious_only: bool,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Cluster>, StoreError> {
    let ballots = services
        .store
        .review_ballots(campaign_id, suspicious_only, from, to)
        .await?;
    Ok(review::clusters(&ballots, by, window_secs))
}
