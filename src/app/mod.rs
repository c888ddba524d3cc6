//! Use cases. Each takes the ports it needs (store, counters, clients) through `Services`
//! and returns domain results; HTTP types never appear here.

pub mod annual;
pub mod batcher;
pub mod campaign_cache;
pub mod citizen_auth;
pub mod imports;
pub mod limits;
pub mod rating;
pub mod recount;
pub mod results;
pub mod review;
pub mod sms;
pub mod staff_auth;
pub mod surveys;
pub mod vault;
pub mod verify;
pub mod vote;

use std::sync::Arc;

use crate::config::Settings;
use crate::counters::Counters;
use crate::domain::keyed::ServiceKey;
use crate::integrations::wechat::WechatClient;
use crate::store::Store;

/// The wired parts of a running service, shared by every request.
#[derive(Clone)]
pub struct Services {
    pub settings: Arc<Settings>,
    pub store: Arc<dyn Store>,
    pub counters: Arc<dyn Counters>,
    pub wechat: WechatClient,
    pub key: ServiceKey,
    pub ballots: batcher::Batcher,
    /// Rate limits at the door (see `limits`).
    pub limits: Arc<limits::Limits>,
    /// Campaigns as the vote path sees them, for a moment (see `campaign_cache`).
    pub campaigns: campaign_cache::CampaignCache,
    /// Phone numbers at rest (see `vault`).
    pub vault: Arc<vault::PhoneVault>,
    /// The time, as the vote path sees it. Always the system clock in the service; tests
    /// build the application with another to cross a day boundary (no setting changes it).
    pub clock: Clock,
}

pub type Clock = Arc<dyn Fn() -> chrono::DateTime<chrono::Utc> + Send + Sync>;

impl Services {
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        (self.clock)()
    }
}
