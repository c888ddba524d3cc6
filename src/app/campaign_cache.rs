//! What the vote path needs to know of a campaign (its rules, phases and approved candidates),
//! kept in memory for a moment so that a ballot costs no database read before its quota.
//!
//! The cache is only a first filter: the ledger checks the voting window and the candidates
//! again under the chain's lock when it records the batch, so a stale entry can only move a
//! refusal from here to there, never let a ballot through. This instance drops an entry as
//! soon as it changes the campaign; other instances see the change within `TTL`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;

use crate::store::{Campaign, Store, StoreError};

/// How long another instance's change can take to reach this one's first filter.
const TTL: Duration = Duration::from_secs(2);
/// Campaigns kept at once; far more than run at the same time.
const CAPACITY: u64 = 10_000;

/// A campaign as the vote path sees it.
#[derive(Debug)]
pub struct VotingView {
    pub campaign: Campaign,
    pub approved: HashSet<i64>,
}

#[derive(Clone)]
pub struct CampaignCache {
    entries: Cache<i64, Arc<VotingView>>,
}

impl Default for CampaignCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(TTL)
                .build(),
        }
    }
}

impl CampaignCache {
    /// The campaign and its approved candidates; concurrent misses share one load.
    pub async fn get(
        &self,
        store: &dyn Store,
        campaign_id: i64,
    ) -> Result<Arc<VotingView>, StoreError> {
        self.entries
            .try_get_with(campaign_id, async {
                let campaign = store.get_campaign(campaign_id).await?;
                let approved = store.approved_candidates(campaign_id).await?;
                Ok(Arc::new(VotingView {
                    campaign,
                    approved: approved.into_iter().collect(),
                }))
            })
            .await
            .map_err(|e: Arc<StoreError>| match *e {
                StoreError::NotFound => StoreError::NotFound,
                ref other => {
                    tracing::error!(error = %other, campaign_id, "campaign not read");
                    StoreError::Unavailable(other.to_string())
                }
            })
    }

    /// Forgets the campaign after a change made through this instance.
    pub async fn forget(&self, campaign_id: i64) {
        self.entries.invalidate(&campaign_id).await;
    }
}
