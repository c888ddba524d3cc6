//! Load benchmark of the vote path against the real binary.
//!
//!     cargo bench --bench load -- postgres     # PostgreSQL + Redis (needs both on localhost)
//!     cargo bench --bench load -- sqlite       # the embedded default
//!
//! Starts `minyi serve` (release build) as a child process, logs in thousands of distinct
//! voters, then over 64 connections drives, each for a fixed time: `GET /health/live` (the
//! ceiling of the HTTP stack here), ballots with group commit, and ballots with batches of
//! one. Prints requests per second, p50/p99 latency, answers by code, and the service's peak
//! memory. The load generator shares the machine's cores with the service: compare the ratios
//! within one run, not absolute figures across machines.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use common::{
    Service, backend_env, cpu_seconds, create_staff, drop_database, free_port, post, staff_login,
};

const CONNECTIONS: usize = 64;
const VOTERS: usize = 5_000;
const PHASE: Duration = Duration::from_secs(10);

/// A campaign with generous quotas and 20 approved candidates; returns its id and candidates.
async fn setup(client: &reqwest::Client, base: &str, staff: &str) -> (String, Vec<String>) {
    let now = chrono::Utc::now();
    let (_, c) = post(
        client,
        format!("{base}/api/v1/admin/campaigns"),
        json!({"kind": "selection", "title": "压测", "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}],
               "rules": {"votes_per_day": 1000, "votes_per_candidate_per_day": 1000, "max_candidates_per_ballot": 1, "votes_per_campaign": null, "show_counts": "live"}}),
        Some(staff),
    )
    .await;
    let id = c["id"].as_str().expect("campaign created").to_string();
    let (_, cat) = post(
        client,
        format!("{base}/api/v1/admin/campaigns/{id}/categories"),
        json!({"name": "医生", "winners": 10}),
        Some(staff),
    )
    .await;
    let cat = cat["id"].as_str().unwrap().to_string();
    let mut candidates = Vec::new();
    for i in 0..20 {
        let (_, cand) = post(
            client,
            format!("{base}/api/v1/admin/campaigns/{id}/candidates"),
            json!({"category_id": cat, "name": format!("医生{i}"), "unit": "示例医院"}),
            Some(staff),
        )
        .await;
        let cid = cand["id"].as_str().unwrap().to_string();
        post(
            client,
            format!("{base}/api/v1/admin/campaigns/{id}/candidates/{cid}/approve"),
            json!({}),
            Some(staff),
        )
        .await;
        candidates.push(cid);
    }
    post(
        client,
        format!("{base}/api/v1/admin/campaigns/{id}/open"),
        json!({}),
        Some(staff),
    )
    .await;
    (id, candidates)
}

struct Figures {
    per_second: f64,
    /// CPU microseconds per answered request, by process.
    cpu: String,
    p50_ms: f64,
    p99_ms: f64,
    codes: BTreeMap<String, u64>,
}

/// Runs `CONNECTIONS` loops for `PHASE`, each sending the request `make` builds.
async fn drive<F>(service: u32, make: F) -> Figures
where
    F: Fn(&reqwest::Client, u64) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let counter = Arc::new(AtomicU64::new(0));
    let cpu_before = cpu_seconds(service);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (make, counter) = (make.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::new();
            let mut codes: BTreeMap<String, u64> = BTreeMap::new();
            while started.elapsed() < PHASE {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let code = match make(&client, n).send().await {
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let body: Value = r.json().await.unwrap_or(Value::Null);
                        match body["error"]["code"].as_str() {
                            Some(c) => format!("{status} {c}"),
                            None => status.to_string(),
                        }
                    }
                    Err(_) => "connection error".into(),
                };
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                *codes.entry(code).or_default() += 1;
            }
            (latencies, codes)
        }));
    }
    let mut latencies = Vec::new();
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    for t in tasks {
        let (l, c) = t.await.unwrap();
        latencies.extend(l);
        for (k, v) in c {
            *codes.entry(k).or_default() += v;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_after = cpu_seconds(service);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let ok = codes
        .iter()
        .filter(|(k, _)| k.starts_with('2'))
        .map(|(_, v)| *v)
        .sum::<u64>();
    Figures {
        per_second: ok as f64 / elapsed,
        cpu: cpu_before.per_request(&cpu_after, latencies.len() as u64),
        p50_ms: pick(0.5),
        p99_ms: pick(0.99),
        codes,
    }
}

async fn voters(base: &str) -> Arc<Vec<String>> {
    let client = reqwest::Client::new();
    let mut tokens = Vec::with_capacity(VOTERS);
    for chunk in (0..VOTERS).collect::<Vec<_>>().chunks(64) {
        let logins = chunk.iter().map(|i| {
            post(
                &client,
                format!("{base}/api/v1/auth/dev"),
                json!({"openid": format!("bench-{i}")}),
                None,
            )
        });
        for (_, body) in futures_util::future::join_all(logins).await {
            tokens.push(body["token"].as_str().expect("dev login").to_string());
        }
    }
    Arc::new(tokens)
}

async fn ballots(
    service: &Service,
    campaign: &str,
    candidates: &[String],
    tokens: Arc<Vec<String>>,
) -> Figures {
    let url = format!("{}/api/v1/campaigns/{campaign}/ballots", service.base);
    let candidates = candidates.to_vec();
    drive(service.child.id(), move |client, n| {
        let voter = &tokens[(n as usize * 7919) % tokens.len()];
        let candidate = &candidates[n as usize % candidates.len()];
        client
            .post(&url)
            .bearer_auth(voter)
            .json(&json!({"candidate_ids": [candidate]}))
    })
    .await
}

/// The service's `/metrics` text (empty when it cannot be read).
async fn metrics_text(client: &reqwest::Client, base: &str) -> String {
    match client.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The value of the first sample line of `name` (NaN when absent).
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().last()?.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
}

/// A histogram's mean, and its quantile `q` interpolated within the bucket that holds it.
fn stage(text: &str, name: &str, q: f64) -> (f64, f64) {
    let mean = sample(text, &format!("{name}_sum")) / sample(text, &format!("{name}_count"));
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = text
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| {
            let (le, n) = l.split_once("\"}")?;
            Some((le.parse().unwrap_or(f64::INFINITY), n.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let (mut low, mut below) = (0.0, 0.0);
    let mut at = f64::NAN;
    for (le, n) in buckets {
        if n >= q * total {
            at = if le.is_finite() && n > below {
                low + (le - low) * (q * total - below) / (n - below)
            } else {
                low
            };
            break;
        }
        (low, below) = (le, n);
    }
    (mean, at)
}

/// A counter's value; a counter never incremented is not rendered at all (and SQLite's
/// writer never guesses).
fn occurrences(text: &str, name: &str) -> f64 {
    let n = sample(text, name);
    if n.is_nan() { 0.0 } else { n }
}

fn print_stages(text: &str) {
    println!(
        "mean ballots per batch (group commit run): {:.1}",
        sample(text, "ballot_batch_size_sum") / sample(text, "ballot_batch_size_count")
    );
    println!(
        "batches written again after a wrong guess of the chain's head: {}",
        occurrences(text, "ballot_batch_rechecked_total")
    );
    println!(
        "batches sent again after arriving before the batch they follow: {}",
        occurrences(text, "ballot_batch_resent_total")
    );
    for (label, name) in [
        ("counter store step", "ballot_counters_duration_seconds"),
        ("wait for the batch", "ballot_queue_duration_seconds"),
        ("batch written", "ballot_write_duration_seconds"),
    ] {
        let (mean, p50) = stage(text, name, 0.5);
        let (_, p99) = stage(text, name, 0.99);
        println!(
            "  {label:<20} mean {:>5.2} ms   p50 {:>5.2} ms   p99 {:>5.2} ms",
            mean * 1000.0,
            p50 * 1000.0,
            p99 * 1000.0
        );
    }
}

fn print(name: &str, f: &Figures) {
    println!(
        "{name:<28} {:>9.0}/s   p50 {:>6.1} ms   p99 {:>6.1} ms   {:?}",
        f.per_second, f.p50_ms, f.p99_ms, f.codes
    );
    println!("{:<28} CPU µs per request: {}", "", f.cpu);
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let backend = std::env::args()
        .skip(1)
        .find(|a| a == "postgres" || a == "sqlite")
        .unwrap_or_else(|| "postgres".into());
    let env = backend_env(&backend);
    create_staff(&env);
    println!(
        "minyi load benchmark: {backend}, {CONNECTIONS} connections, {VOTERS} voters, {}s per phase",
        PHASE.as_secs()
    );

    let service = Service::start(&env, free_port());
    let client = reqwest::Client::new();
    let staff = staff_login(&client, &service.base).await;
    let (campaign, candidates) = setup(&client, &service.base, &staff).await;
    let tokens = voters(&service.base).await;

    let live_url = format!("{}/health/live", service.base);
    let live = drive(service.child.id(), move |client, _| client.get(&live_url)).await;
    print("GET /health/live", &live);
    let grouped = ballots(&service, &campaign, &candidates, tokens.clone()).await;
    print("ballots, group commit", &grouped);
    print_stages(&metrics_text(&client, &service.base).await);
    let peak = service.peak_mb();
    drop(service);

    let mut single_env = env.clone();
    single_env.push(("MINYI_BALLOT_BATCH_MAX", "1".into()));
    let single_service = Service::start(&single_env, free_port());
    let single = ballots(
        &single_service,
        &campaign,
        &candidates,
        voters(&single_service.base).await,
    )
    .await;
    print("ballots, batches of one", &single);
    drop(single_service);

    println!("service peak memory (group commit run): {peak:.0} MB");
    println!(
        "ratios: ballots / health = {:.2}; group commit / batch of one = {:.2}",
        grouped.per_second / live.per_second,
        grouped.per_second / single.per_second
    );
    drop_database(&env);
}
