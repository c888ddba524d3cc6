//! What the vote path needs to know of a campaign (its rules, phases, approved candidates and
//! blocklists),
//! kept in memory for a moment so that a ballot costs no database read before its quota.
//!
//! The cache is only a first filter: the ledger checks the voting window, the candidates and
//! the blocked voters again when it records the batch, so a stale entry can only move a
//! refusal from here to there, never let a ballot through. (Blocked networks are checked here
//! only: the ledger never sees an address.) This instance drops an entry as
//! soon as it changes the campaign; other instances see the change within `TTL`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use std::net::IpAddr;

use ipnet::IpNet;
use moka::future::Cache;

use crate::store::{BlockSubject, Campaign, Store, StoreError};

/// How long another instance's change can take to reach this one's first filter.
const TTL: Duration = Duration::from_secs(2);
/// Campaigns kept at once; far more than run at the same time.
const CAPACITY: u64 = 10_000;

/// A campaign as the vote path sees it.
#[derive(Debug)]
pub struct VotingView {
    pub campaign: Campaign,
    pub approved: HashSet<i64>,
    pub blocked_voters: HashSet<String>,
    pub blocked_networks: Vec<IpNet>,
}

impl VotingView {
    /// Whether the voter, or the network the ballot comes from, is blocked.
    pub fn blocks(&self, voter: &str, ip: Option<IpAddr>) -> bool {
        self.blocked_voters.contains(voter)
            || ip.is_some_and(|ip| self.blocked_networks.iter().any(|n| n.contains(&ip)))
    }
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
                let mut blocked_voters = HashSet::new();
                let mut blocked_networks = Vec::new();
                for b in store.list_blocks(campaign_id).await? {
                    match (b.subject, b.blocked) {
                        (BlockSubject::Voter, true) => {
                            blocked_voters.insert(b.value);
                        }
                        (BlockSubject::Network, true) => {
                            if let Ok(net) = b.value.parse() {
                                blocked_networks.push(net);
                            }
                        }
                        _ => {}
                    }
                }
                Ok(Arc::new(VotingView {
                    campaign,
                    approved: approved.into_iter().collect(),
                    blocked_voters,
                    blocked_networks,
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
