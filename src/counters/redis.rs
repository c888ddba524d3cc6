//! Redis counters. Every key carries the configured prefix, so that tests (and several
//! deployments) can share one Redis without touching each other's keys.
//!
//! The connection is made lazily and remade after a failure, so that the service starts (and
//! reports "not ready") while Redis is down, and recovers by itself when it returns.

use std::time::Duration;

use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use super::{CounterError, CounterResult, Counters};

const TIMEOUT: Duration = Duration::from_secs(2);

pub struct RedisCounters {
    client: redis::Client,
    prefix: String,
    conn: Mutex<Option<ConnectionManager>>,
}

fn unavailable(e: impl std::fmt::Display) -> CounterError {
    CounterError::Unavailable(e.to_string())
}

impl RedisCounters {
    pub fn new(url: &str, prefix: &str) -> CounterResult<Self> {
        Ok(Self {
            client: redis::Client::open(url).map_err(unavailable)?,
            prefix: prefix.to_string(),
            conn: Mutex::new(None),
        })
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{key}", self.prefix)
    }

    async fn conn(&self) -> CounterResult<ConnectionManager> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let c = tokio::time::timeout(
            TIMEOUT,
            self.client.get_connection_manager_with_config(config),
        )
        .await
        .map_err(|_| unavailable("connect timed out"))?
        .map_err(unavailable)?;
        *slot = Some(c.clone());
        Ok(c)
    }

    /// Runs one command; on a connection failure the manager is dropped so that the next
    /// call connects afresh.
    async fn run<T, F, Fut>(&self, f: F) -> CounterResult<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.conn().await?;
        match tokio::time::timeout(TIMEOUT, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    *self.conn.lock().await = None;
                }
                Err(unavailable(e))
            }
            Err(_) => {
                *self.conn.lock().await = None;
                Err(unavailable("command timed out"))
            }
        }
    }
}

#[async_trait]
impl Counters for RedisCounters {
    fn backend(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> CounterResult<()> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CounterResult<i64> {
        let key = self.key(key);
        let secs = ttl.as_secs().max(1) as i64;
        self.run(|mut c| async move {
            // One MULTI/EXEC so that the counter never lives without its expiry.
            let (value,): (i64,) = redis::pipe()
                .atomic()
                .incr(&key, delta)
                .cmd("EXPIRE")
                .arg(&key)
                .arg(secs)
                .arg("NX")
                .ignore()
                .query_async(&mut c)
                .await?;
            Ok(value)
        })
        .await
    }

    async fn get(&self, key: &str) -> CounterResult<i64> {
        let key = self.key(key);
        self.run(|mut c| async move { c.get::<_, Option<i64>>(&key).await })
            .await
            .map(|v| v.unwrap_or(0))
    }
}
