//! The counter store's two implementations behave the same, under a real race.

use std::sync::Arc;
use std::time::Duration;

use minyi::counters::{Counters, MemoryCounters, RedisCounters};

use crate::helpers::*;

fn stores() -> Vec<Arc<dyn Counters>> {
    vec![
        Arc::new(MemoryCounters::default()),
        Arc::new(RedisCounters::new(&redis_url(), &unique("t")).unwrap()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_hundred_racing_increments_count_exactly_five_hundred() {
    for counters in stores() {
        let tasks: Vec<_> = (0..500)
            .map(|_| {
                let c = counters.clone();
                tokio::spawn(
                    async move { c.incr("race", 1, Duration::from_secs(60)).await.unwrap() },
                )
            })
            .collect();
        let mut seen: Vec<i64> = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .map(|r| r.unwrap())
            .collect();
        seen.sort();
        assert_eq!(
            seen,
            (1..=500).collect::<Vec<_>>(),
            "{}: every value once",
            counters.backend()
        );
        assert_eq!(
            counters.get("race").await.unwrap(),
            500,
            "{}",
            counters.backend()
        );
        assert_eq!(counters.get("absent").await.unwrap(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_counter_expires_after_its_ttl() {
    for counters in stores() {
        assert_eq!(
            counters
                .incr("short", 3, Duration::from_secs(1))
                .await
                .unwrap(),
            3
        );
        // A later increment does not extend the first expiry.
        assert_eq!(
            counters
                .incr("short", 2, Duration::from_secs(60))
                .await
                .unwrap(),
            5
        );
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(
            counters.get("short").await.unwrap(),
            0,
            "{}",
            counters.backend()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_keep_two_deployments_apart() {
    let a = RedisCounters::new(&redis_url(), &unique("t")).unwrap();
    let b = RedisCounters::new(&redis_url(), &unique("t")).unwrap();
    a.incr("k", 7, Duration::from_secs(60)).await.unwrap();
    assert_eq!(b.get("k").await.unwrap(), 0);
    assert_eq!(a.get("k").await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_redis_is_an_error_not_a_hang() {
    let c = RedisCounters::new("redis://127.0.0.1:1", "t").unwrap();
    let started = std::time::Instant::now();
    assert!(c.ping().await.is_err());
    assert!(c.incr("k", 1, Duration::from_secs(1)).await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
}
