//! What the vote path needs to know of a campaign (its rules, phases, approved candidates and
//! blocklists),
//! kept in memory for a moment so that a ballot costs no database read before its quota.
//!
//! The cache is only a first filter: the ledger checks the voting window, the candidates and
//! the blocked voters again when it records the batch (or, on PostgreSQL, that the campaign's
//! version is still the one the view was read at), so a stale entry can only move a refusal
//! from here to there, never let a ballot through. (Blocked networks are checked here only:
//! the ledger never sees an address.) This instance drops an entry as soon as it changes the
//! campaign; other instances see the change within `STALE_AT_MOST`, most often within
//! `REFRESH` (and the time to read it).
//!
//! An entry older than `REFRESH` is read again in the background while it goes on serving:
//! with a plain time-to-live every ballot of a busy campaign waited for the new read once
//! every `REFRESH`, which showed in the vote path's slowest percentile. An entry older than
//! `STALE_AT_MOST` (a campaign read seldom) is not served: the read waits for a fresh one.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use std::net::IpAddr;

use ipnet::IpNet;
use moka::future::Cache;
use moka::ops::compute::Op;

use crate::store::{BlockSubject, Campaign, Store, StoreError};

/// How old an entry may be before it is read again (in the background): about how long
/// another instance's change can take to reach this one's first filter.
const REFRESH: Duration = Duration::from_secs(2);
/// An entry older than this is not served: the read waits for a fresh one (a campaign read
/// seldom would otherwise be served as it was when last read).
const STALE_AT_MOST: Duration = Duration::from_secs(4);
/// An entry not read for this long is dropped.
const IDLE: Duration = Duration::from_secs(60);
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

/// A view and when it was read; `refreshing` while a background read is under way.
struct Entry {
    view: Arc<VotingView>,
    read_at: Instant,
    refreshing: AtomicBool,
}

impl Entry {
    fn new(view: VotingView, read_at: Instant) -> Arc<Self> {
        Arc::new(Self {
            view: Arc::new(view),
            read_at,
            refreshing: AtomicBool::new(false),
        })
    }
}

#[derive(Clone)]
pub struct CampaignCache {
    entries: Cache<i64, Arc<Entry>>,
}

impl Default for CampaignCache {
    fn default() -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_idle(IDLE)
                .build(),
        }
    }
}

impl CampaignCache {
    /// The campaign and its approved candidates; concurrent misses share one load.
    pub async fn get(
        &self,
        store: &Arc<dyn Store>,
        campaign_id: i64,
    ) -> Result<Arc<VotingView>, StoreError> {
        let mut entry = self.read(store, campaign_id).await?;
        if entry.read_at.elapsed() > STALE_AT_MOST {
            self.replace(campaign_id, &entry, None).await;
            entry = self.read(store, campaign_id).await?;
        }
        if entry.read_at.elapsed() > REFRESH && !entry.refreshing.swap(true, Ordering::AcqRel) {
            let (cache, store, stale) = (self.clone(), store.clone(), entry.clone());
            tokio::spawn(async move {
                let read_at = Instant::now();
                match load(store.as_ref(), campaign_id).await {
                    // Unless this instance changed the campaign meanwhile (and dropped the
                    // entry, so that the next read waits for the change).
                    Ok(view) => {
                        let fresh = Entry::new(view, read_at);
                        cache.replace(campaign_id, &stale, Some(fresh)).await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, campaign_id, "campaign not read again; the entry serves on");
                        stale.refreshing.store(false, Ordering::Release);
                    }
                }
            });
        }
        Ok(entry.view.clone())
    }

    /// The entry, or a fresh one when there is none; concurrent misses share one load.
    async fn read(
        &self,
        store: &Arc<dyn Store>,
        campaign_id: i64,
    ) -> Result<Arc<Entry>, StoreError> {
        self.entries
            .try_get_with(campaign_id, async {
                // Its age counts from before the read: the view is at least that old.
                let read_at = Instant::now();
                Ok(Entry::new(
                    load(store.as_ref(), campaign_id).await?,
                    read_at,
                ))
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

    /// Puts `new` in place of `old` (drops the entry for `None`), unless the entry is no
    /// longer `old`.
    async fn replace(&self, campaign_id: i64, old: &Arc<Entry>, new: Option<Arc<Entry>>) {
        self.entries
            .entry(campaign_id)
            .and_compute_with(|current| async move {
                match current {
                    Some(c) if Arc::ptr_eq(c.value(), old) => new.map_or(Op::Remove, Op::Put),
                    _ => Op::Nop,
                }
            })
            .await;
    }

    /// Forgets the campaign after a change made through this instance.
    pub async fn forget(&self, campaign_id: i64) {
        self.entries.invalidate(&campaign_id).await;
    }
}

/// Reads the campaign's view: the campaign first, so that the version it carries is never
/// newer than what is read after it (a view can only look older than it is).
async fn load(store: &dyn Store, campaign_id: i64) -> Result<VotingView, StoreError> {
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
    Ok(VotingView {
        campaign,
        approved: approved.into_iter().collect(),
        blocked_voters,
        blocked_networks,
    })
}
