//! Memory of the in-process rate limiters under a flood of distinct client addresses.
//!
//!     cargo bench --bench limiter_memory -- 5000000
//!
//! Sends one login from each of N distinct addresses (default 5,000,000) through the
//! limiter, sweeping every 250,000 addresses as the service's timer would under a flood of
//! 25,000 new addresses a second, first with the default budget of 1,000,000 keys, then
//! with no budget. Prints the keys held and the process's resident memory after each. The
//! limit is a slow one (10 an hour), so that no key is forgotten for being fresh again.

use std::net::IpAddr;
use std::sync::Arc;

use minyi::app::limits::{Class, Limits};
use minyi::config::RateSettings;
use minyi::counters::MemoryCounters;
use minyi::domain::rate::RateSpec;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn flood(n: u32, max_keys: usize) {
    let settings = RateSettings {
        // A slow limit: a key stays in use for six minutes, so nothing is forgotten early.
        login_per_ip: RateSpec::parse("10/hour").unwrap(),
        objections_per_ip: None,
        ballots_per_ip: None,
        ballots_per_voter: None,
        reads_per_ip: None,
        max_keys,
    };
    let before = rss_mb();
    let limits = Limits::new(&settings, Arc::new(MemoryCounters::default()));
    let mut peak_keys = 0;
    let mut peak_rss = before;
    for i in 0..n {
        // Spread over the whole IPv4 space, as a botnet's addresses would be.
        let addr = IpAddr::from(i.wrapping_mul(2_654_435_761).to_be_bytes());
        limits.check_ip(Class::Login, addr).await;
        if (i + 1) % 250_000 == 0 {
            peak_keys = peak_keys.max(limits.keys());
            limits.sweep();
            peak_rss = peak_rss.max(rss_mb());
        }
    }
    println!(
        "budget {:>12}: {n} addresses, at most {peak_keys} keys held, {} after the last sweep, \
         resident memory {:.0} MB → peak {:.0} MB (+{:.0} MB)",
        if max_keys == usize::MAX {
            "none".to_string()
        } else {
            max_keys.to_string()
        },
        limits.keys(),
        before,
        peak_rss,
        peak_rss - before
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n: u32 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    // Each configuration in a process of its own, so that neither inherits the other's heap.
    match std::env::var("LIMITER_BUDGET").ok() {
        Some(budget) => flood(n, budget.parse().unwrap_or(usize::MAX)).await,
        None => {
            for budget in ["1000000", "none"] {
                let status = std::process::Command::new(std::env::current_exe().unwrap())
                    .arg(n.to_string())
                    .env("LIMITER_BUDGET", budget)
                    .status()
                    .unwrap();
                assert!(status.success());
            }
        }
    }
}
