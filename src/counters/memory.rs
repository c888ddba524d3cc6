//! In-process counters for the embedded default (one instance, no Redis).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{CounterResult, Counters};

#[derive(Default)]
pub struct MemoryCounters {
    values: Mutex<HashMap<String, (i64, Instant)>>,
}

#[async_trait]
impl Counters for MemoryCounters {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> CounterResult<()> {
        Ok(())
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> CounterResult<i64> {
        let now = Instant::now();
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let entry = values.entry(key.to_string()).or_insert((0, now + ttl));
        if entry.1 <= now {
            *entry = (0, now + ttl);
        }
        entry.0 += delta;
        Ok(entry.0)
    }

    async fn get(&self, key: &str) -> CounterResult<i64> {
        let values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        Ok(match values.get(key) {
            Some((v, expires)) if *expires > Instant::now() => *v,
            _ => 0,
        })
    }
}
