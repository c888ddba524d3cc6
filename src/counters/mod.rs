//! The counter store: hot state that must be fast and shared by every instance (quotas, live
//! counts, leaderboards). Redis in production, process memory in the embedded default, behind
//! one trait. It is never the record: the ledger is, and counters can be rebuilt from it.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use self::memory::MemoryCounters;
pub use self::redis::RedisCounters;
use crate::config::Settings;

#[derive(Debug, thiserror::Error)]
pub enum CounterError {
    #[error("counter store unavailable: {0}")]
    Unavailable(String),
}

pub type CounterResult<T> = Result<T, CounterError>;

#[async_trait]
pub trait Counters: Send + Sync + 'static {
    /// `"redis"` or `"memory"`, for logs and readiness.
    fn backend(&self) -> &'static str;
    async fn ping(&self) -> CounterResult<()>;
    /// Adds `delta` to `key` and returns the new value; a new key expires after `ttl`.
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CounterResult<i64>;
    /// The value of `key`, 0 when absent or expired.
    async fn get(&self, key: &str) -> CounterResult<i64>;
}

pub fn connect(settings: &Settings) -> CounterResult<Arc<dyn Counters>> {
    Ok(match &settings.redis_url {
        Some(url) => Arc::new(RedisCounters::new(url.expose(), &settings.redis_prefix)?),
        None => Arc::new(MemoryCounters::default()),
    })
}
