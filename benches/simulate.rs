//! Simulation of an honest crowd and of vote farms against the real binary.
//!
//!     cargo bench --bench simulate -- sqlite       # the embedded default
//!     cargo bench --bench simulate -- postgres     # PostgreSQL + Redis (needs both on localhost)
//!
//! Part 1, what the checks catch. One `minyi serve` (release build) with its default rate
//! limits, behind a trusted proxy (`127.0.0.1`) so that the `X-Forwarded-For` each simulated
//! client sends is its address; one campaign with `fraud_policy: quarantine` and the default
//! risk thresholds. At the same time:
//!
//! - an honest crowd: 2,000 voters, each with its own device, scattered over many /24s (a few
//!   families share an address or a phone, a hospital's staff sit behind one address, a
//!   campus fills part of one /24, all under the default thresholds), who arrive over 40 s,
//!   log in, think, and cast 1–3 ballots of 1–3 candidates;
//! - farm 1: 300 fresh accounts on one address, a random device id on every ballot;
//! - farm 2: 300 fresh accounts on 50 addresses of one /24, a random device id each;
//! - farm 3: one captured ballot request replayed 2,000 times (with its own key, without a
//!   key, with fresh keys);
//! - farm 4: 100 fresh accounts, each on an address and a /24 of its own with a device of its
//!   own, under every rate limit, all casting the same two candidates within seconds.
//!
//! A ballot's status can change after its 201 (a cluster's earlier ballots are held back once
//! a signal crosses its threshold), so the final status of every receipt is looked up at the
//! end, and the public leaderboard is checked against the receipts that say `counted`.
//!
//! Part 2, what the checks cost: ballots of distinct voters as fast as 64 connections go,
//! against a service with the checks on (rate limits, risk signals, quarantine) and one with
//! them off (no rate limits, `risk.enabled: false`, `fraud_policy: record`), alternately in
//! the same run (rounds of 1.25 s: on, off, off, on, eight times; 20 s a side), so that the
//! machine's drift weighs on both alike.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use common::{
    CpuSeconds, Service, backend_env_tagged, cpu_seconds, create_staff, drop_database, free_port,
    staff_login,
};

const CANDIDATES: usize = 20;
const HONEST_VOTERS: usize = 2_000;
/// Honest voters arrive over this long; the whole crowd is done some 20 s later.
const ARRIVALS: Duration = Duration::from_secs(40);
const FARM_ACCOUNTS: usize = 300;
const SUBNET_ADDRESSES: u8 = 50;
/// Each round replays the captured request twice with its key, once without, once with a
/// fresh key: 1,000 + 500 + 500 replays in all.
const REPLAY_ROUNDS: usize = 500;
const SLOW_ACCOUNTS: usize = 100;
/// Lets holds that follow a threshold's crossing land before the receipts are read.
const SETTLE: Duration = Duration::from_secs(3);

/// Enough for every round to run its full length (ten ballots each, one a candidate).
const COST_VOTERS: usize = 24_000;
const COST_CONNECTIONS: usize = 64;
const COST_ROUND: Duration = Duration::from_millis(1250);
/// Times the rounds go on, off, off, on.
const COST_CYCLES: usize = 8;

/// What the service sees: the proxy in front of it is the load generator.
const TRUSTED_PROXY: (&str, &str) = ("MINYI_TRUSTED_PROXIES", "127.0.0.1/32");
/// The documented defaults, spelled out because `common::Service` turns limits off.
const DEFAULT_LIMITS: [(&str, &str); 4] = [
    ("MINYI_RATE_LOGIN_PER_IP", "30/min"),
    ("MINYI_RATE_BALLOTS_PER_IP", "600/min"),
    ("MINYI_RATE_BALLOTS_PER_VOTER", "20/min"),
    ("MINYI_RATE_READS_PER_IP", "1200/min"),
];

// ---------------------------------------------------------------------------------------
// Talking to the service as a simulated client.

/// One campaign of one service, seen by clients behind the trusted proxy.
#[derive(Clone)]
struct Target {
    client: reqwest::Client,
    base: Arc<str>,
    campaign: Arc<str>,
    candidates: Arc<Vec<String>>,
}

/// A ballot request, complete with what identifies its client.
#[derive(Clone)]
struct BallotRequest {
    token: String,
    addr: Ipv4Addr,
    device: Option<String>,
    /// Indexes into the campaign's candidates.
    picks: Vec<usize>,
    key: Option<String>,
}

/// How one attempted ballot ended at the door.
#[derive(Clone, Debug)]
enum Answer {
    /// 201, with its receipt.
    Receipt(String),
    /// Anything else, as `"<status> <error code>"` (status 0: no answer).
    Refused(String),
}

/// An attempted ballot and its answer.
struct Attempt {
    picks: Vec<usize>,
    answer: Answer,
}

fn code_of(status: u16, body: &Value) -> String {
    match body["error"]["code"].as_str() {
        Some(c) => format!("{status} {c}"),
        None => status.to_string(),
    }
}

fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "request"
    }
}

/// The `Retry-After` of a 429, if any.
fn retry_after(r: &reqwest::Response) -> Option<Duration> {
    let secs = r
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

impl Target {
    /// Dev login from `addr`: the token, or how long the login limit says to wait.
    async fn login(&self, openid: &str, addr: Ipv4Addr) -> Result<String, Option<Duration>> {
        let sent = self
            .client
            .post(format!("{}/api/v1/auth/dev", self.base))
            .header("X-Forwarded-For", addr.to_string())
            .json(&json!({"openid": openid}))
            .send()
            .await;
        let Ok(r) = sent else { return Err(None) };
        if r.status() == 429 {
            return Err(Some(retry_after(&r).unwrap_or(Duration::from_secs(1))));
        }
        let body: Value = r.json().await.unwrap_or(Value::Null);
        body["token"].as_str().map(str::to_string).ok_or(None)
    }

    /// Logs in as a patient client would: after a 429, waits as told and tries again.
    async fn login_patiently(&self, openid: &str, addr: Ipv4Addr) -> String {
        for _ in 0..5 {
            match self.login(openid, addr).await {
                Ok(token) => return token,
                Err(wait) => tokio::time::sleep(wait.unwrap_or(Duration::from_secs(1))).await,
            }
        }
        panic!("dev login of {openid} from {addr} kept failing");
    }

    async fn ballot(&self, b: &BallotRequest) -> Answer {
        let ids: Vec<&String> = b.picks.iter().map(|&i| &self.candidates[i]).collect();
        let mut req = self
            .client
            .post(format!(
                "{}/api/v1/campaigns/{}/ballots",
                self.base, self.campaign
            ))
            .bearer_auth(&b.token)
            .header("X-Forwarded-For", b.addr.to_string())
            .json(&json!({"candidate_ids": ids}));
        if let Some(d) = &b.device {
            req = req.header("X-Device-Id", d);
        }
        if let Some(k) = &b.key {
            req = req.header("Idempotency-Key", k);
        }
        let (status, body) = match req.send().await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or(Value::Null)),
            Err(e) => return Answer::Refused(format!("0 no answer ({})", error_kind(&e))),
        };
        match body["receipt"].as_str() {
            Some(receipt) if status == 201 => Answer::Receipt(receipt.to_string()),
            _ => Answer::Refused(code_of(status, &body)),
        }
    }

    async fn attempt(&self, b: BallotRequest) -> Attempt {
        let answer = self.ballot(&b).await;
        Attempt {
            picks: b.picks,
            answer,
        }
    }
}

/// A device id or an idempotency key, as a phone would make one.
fn random_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

// ---------------------------------------------------------------------------------------
// Setting up a service and its campaign.

/// The campaign's rules; `checks` off asks for no risk signals and counts every ballot.
fn campaign_rules(checks: bool, say_enabled: bool) -> Value {
    let mut rules = json!({"votes_per_day": 10, "votes_per_candidate_per_day": 1,
        "max_candidates_per_ballot": 5, "votes_per_campaign": null, "show_counts": "live",
        "fraud_policy": if checks { "quarantine" } else { "record" }, "challenge_bits": 0});
    if !checks && say_enabled {
        rules["risk"] = json!({"enabled": false});
    }
    rules
}

/// Creates, fills and opens a campaign with `CANDIDATES` approved candidates. `Err` carries
/// the refusal of the creation itself.
async fn create_campaign(
    client: &reqwest::Client,
    base: &str,
    staff: &str,
    rules: Value,
) -> Result<(String, Vec<String>), (u16, Value)> {
    let admin = |path: String, body: Value| {
        common::post(
            client,
            format!("{base}/api/v1/admin/{path}"),
            body,
            Some(staff),
        )
    };
    let now = chrono::Utc::now();
    let (status, c) = admin(
        "campaigns".into(),
        json!({"kind": "selection", "title": "模拟刷票", "rules": rules,
               "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}]}),
    )
    .await;
    if status != 201 {
        return Err((status, c));
    }
    let id = c["id"].as_str().expect("campaign id").to_string();
    let (_, cat) = admin(
        format!("campaigns/{id}/categories"),
        json!({"name": "医生", "winners": 10}),
    )
    .await;
    let cat = cat["id"].as_str().expect("category id").to_string();
    let mut candidates = Vec::new();
    for i in 0..CANDIDATES {
        let (_, cand) = admin(
            format!("campaigns/{id}/candidates"),
            json!({"category_id": cat, "name": format!("医生{i}"), "unit": "示例医院"}),
        )
        .await;
        let cid = cand["id"].as_str().expect("candidate id").to_string();
        let (status, _) = admin(
            format!("campaigns/{id}/candidates/{cid}/approve"),
            json!({}),
        )
        .await;
        assert_eq!(status, 200, "approve a candidate");
        candidates.push(cid);
    }
    let (status, _) = admin(format!("campaigns/{id}/open"), json!({})).await;
    assert_eq!(status, 200, "open the campaign");
    Ok((id, candidates))
}

/// A running service, the environment it was started with, and its campaign.
struct Deployment {
    service: Service,
    env: Vec<(&'static str, String)>,
    target: Target,
}

/// Starts a service on a fresh database (`tag` names it), with the checks on or off, and
/// opens its campaign.
async fn deploy(backend: &str, tag: &str, checks: bool) -> Deployment {
    let mut env = backend_env_tagged(backend, tag);
    env.push((TRUSTED_PROXY.0, TRUSTED_PROXY.1.into()));
    if checks {
        env.extend(DEFAULT_LIMITS.iter().map(|(k, v)| (*k, v.to_string())));
    }
    create_staff(&env);
    let service = Service::start(&env, free_port());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        // Shorter than the service's keep-alive (5 s), so that a voter back from a pause
        // never reuses a connection the service is closing.
        .pool_idle_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let staff = staff_login(&client, &service.base).await;
    let created = match create_campaign(
        &client,
        &service.base,
        &staff,
        campaign_rules(checks, true),
    )
    .await
    {
        Ok(c) => c,
        // `risk.enabled` is new; a service without it refuses the field. Its risk checks
        // then stay on, and only the policy (`record`) keeps flagged ballots counted.
        Err((422, body)) if !checks => {
            println!(
                "note: the service refused rules.risk.enabled ({}); the checks-off campaign keeps its risk signals on, under fraud_policy record",
                body["error"]["field"]
            );
            create_campaign(&client, &service.base, &staff, campaign_rules(false, false))
                .await
                .expect("create the checks-off campaign")
        }
        Err(e) => panic!("create the campaign: {e:?}"),
    };
    let target = Target {
        client,
        base: service.base.clone().into(),
        campaign: created.0.into(),
        candidates: Arc::new(created.1),
    };
    Deployment {
        service,
        env,
        target,
    }
}

/// Stops the service and removes its database and its Redis keys.
fn tear_down(d: Deployment) {
    drop(d.service);
    drop_database(&d.env);
    forget_counters(&d.env);
    if let Some((_, url)) = d.env.iter().find(|(k, _)| *k == "DATABASE_URL")
        && let Some(path) = url.strip_prefix("sqlite:")
    {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
}

/// Deletes the Redis keys under the service's prefix (tens of thousands a run).
fn forget_counters(env: &[(&str, String)]) {
    let setting = |name: &str| env.iter().find(|(k, _)| *k == name).map(|(_, v)| v);
    let (Some(url), Some(prefix)) = (setting("REDIS_URL"), setting("MINYI_REDIS_PREFIX")) else {
        return;
    };
    let forget = || -> redis::RedisResult<()> {
        let mut conn = redis::Client::open(url.as_str())?.get_connection()?;
        let keys: Vec<String> = redis::Commands::scan_match(&mut conn, format!("{prefix}:*"))?
            .filter_map(Result::ok)
            .collect();
        for chunk in keys.chunks(1000) {
            redis::Commands::del::<_, ()>(&mut conn, chunk)?;
        }
        Ok(())
    };
    if let Err(e) = forget() {
        println!("note: the Redis keys under {prefix}: were not deleted ({e})");
    }
}

// ---------------------------------------------------------------------------------------
// The honest crowd.

/// The candidates the farms push (indexes into the campaign's candidates).
const FARM1_PICK: usize = 0;
const FARM2_PICK: usize = 1;
const REPLAY_PICK: usize = 2;
const SLOW_PICKS: [usize; 2] = [3, 4];
/// The candidate a hospital's own staff vote for.
const HOSPITAL_PICK: usize = 7;

struct HonestVoter {
    openid: String,
    addr: Ipv4Addr,
    device: String,
    arrives: Duration,
    /// Before each ballot: reading the candidates' pages.
    pauses: Vec<Duration>,
    ballots: Vec<Vec<usize>>,
}

/// An address in 10.0.0.0/8 at random: with 2,000 voters, /24s are almost never shared.
fn scattered(rng: &mut StdRng) -> Ipv4Addr {
    Ipv4Addr::new(
        10,
        rng.random_range(0..=255),
        rng.random_range(0..=255),
        rng.random_range(1..=254),
    )
}

/// Where each honest voter votes from, and on which device. Most are alone; some families
/// share an address (2–4 voters) and half of those a phone (2 voters); 15 staff of a hospital
/// share its address; 40 students sit on 40 addresses of one campus /24. All stay under the
/// default thresholds (3 voters a device, 20 an address, 50 a /24).
fn honest_places(rng: &mut StdRng) -> Vec<(Ipv4Addr, String)> {
    let mut places = Vec::with_capacity(HONEST_VOTERS);
    let hospital = Ipv4Addr::new(172, 20, 0, 1);
    for i in 0..15 {
        places.push((hospital, format!("hospital-staff-{i}")));
    }
    for i in 0..40 {
        places.push((Ipv4Addr::new(172, 21, 0, 1 + i), format!("student-{i}")));
    }
    while places.len() < HONEST_VOTERS {
        let addr = scattered(rng);
        let family = if rng.random_bool(0.1) {
            rng.random_range(2..=4)
        } else {
            1
        };
        let shared_phone = family > 1 && rng.random_bool(0.5);
        let first = places.len();
        for member in 0..family {
            let n = places.len();
            let device = if shared_phone && member < 2 {
                format!("family-phone-{first}")
            } else {
                format!("phone-{n}")
            };
            places.push((addr, device));
        }
    }
    places.truncate(HONEST_VOTERS);
    places
}

/// 1–3 ballots of 1–3 distinct candidates, never one candidate twice (a quota refusal is a
/// voter's mistake, not the checks').
fn honest_ballots(rng: &mut StdRng, first: Option<usize>) -> Vec<Vec<usize>> {
    let sizes: Vec<usize> = (0..rng.random_range(1..=3))
        .map(|_| rng.random_range(1..=3))
        .collect();
    let all: Vec<usize> = (0..CANDIDATES).filter(|c| Some(*c) != first).collect();
    let mut picks: Vec<usize> = all.sample(rng, sizes.iter().sum()).copied().collect();
    let mut ballots: Vec<Vec<usize>> = sizes.iter().map(|&n| picks.drain(..n).collect()).collect();
    if let Some(c) = first {
        ballots[0] = vec![c];
    }
    ballots
}

fn plan_crowd(rng: &mut StdRng) -> Vec<HonestVoter> {
    honest_places(rng)
        .into_iter()
        .enumerate()
        .map(|(i, (addr, device))| {
            let colleague = device.starts_with("hospital").then_some(HOSPITAL_PICK);
            let ballots = honest_ballots(rng, colleague);
            HonestVoter {
                openid: format!("honest-{i}"),
                addr,
                device,
                arrives: ARRIVALS.mul_f64(rng.random()),
                pauses: ballots
                    .iter()
                    .map(|_| Duration::from_millis(rng.random_range(1_000..6_000)))
                    .collect(),
                ballots,
            }
        })
        .collect()
}

async fn honest_voter(target: Target, v: HonestVoter) -> Vec<Attempt> {
    tokio::time::sleep(v.arrives).await;
    let token = target.login_patiently(&v.openid, v.addr).await;
    let mut attempts = Vec::new();
    for (picks, pause) in v.ballots.into_iter().zip(v.pauses) {
        tokio::time::sleep(pause).await;
        let request = BallotRequest {
            token: token.clone(),
            addr: v.addr,
            device: Some(v.device.clone()),
            picks,
            key: Some(random_id()),
        };
        attempts.push(target.attempt(request).await);
    }
    attempts
}

async fn honest_crowd(target: Target, crowd: Vec<HonestVoter>) -> Vec<Attempt> {
    let tasks: Vec<_> = crowd
        .into_iter()
        .map(|v| tokio::spawn(honest_voter(target.clone(), v)))
        .collect();
    let mut attempts = Vec::new();
    for t in tasks {
        attempts.extend(t.await.expect("honest voter"));
    }
    attempts
}

// ---------------------------------------------------------------------------------------
// The farms.

/// Runs the requests `concurrency` at a time.
async fn cast_all(
    target: &Target,
    requests: Vec<BallotRequest>,
    concurrency: usize,
) -> Vec<Attempt> {
    futures_util::stream::iter(requests)
        .map(|r| target.attempt(r))
        .buffer_unordered(concurrency)
        .collect()
        .await
}

/// Logs `openids` in, `concurrency` at a time, each from the address `addr` gives it.
async fn login_all(
    target: &Target,
    openids: Vec<String>,
    addr: impl Fn(usize) -> Ipv4Addr,
    concurrency: usize,
) -> Vec<String> {
    let logins = openids
        .iter()
        .enumerate()
        .map(|(i, o)| target.login_patiently(o, addr(i)));
    futures_util::stream::iter(logins)
        .buffered(concurrency)
        .collect()
        .await
}

/// Farm 1: 300 accounts on one address. The login limit (30/min) would stretch their logins
/// over ten minutes, which a farm can afford (tokens last 24 h) and this run cannot: the
/// farm logs in from its address until the limit refuses, and the rest "earlier", from
/// elsewhere. What is measured is its ballots, all cast from its one address.
async fn farm_one_ip(target: Target) -> (Vec<Attempt>, usize) {
    let farm = Ipv4Addr::new(198, 51, 100, 7);
    let mut tokens = Vec::new();
    let mut from_farm = 0;
    for i in 0..FARM_ACCOUNTS {
        let openid = format!("farm1-{i}");
        let token = match target.login(&openid, farm).await {
            Ok(t) => {
                from_farm += 1;
                t
            }
            Err(_) => {
                let elsewhere = Ipv4Addr::new(100, 100, (i / 200) as u8, (i % 200) as u8 + 1);
                target.login_patiently(&openid, elsewhere).await
            }
        };
        tokens.push(token);
    }
    let requests = tokens
        .into_iter()
        .map(|token| BallotRequest {
            token,
            addr: farm,
            device: Some(random_id()),
            picks: vec![FARM1_PICK],
            key: Some(random_id()),
        })
        .collect();
    (cast_all(&target, requests, 8).await, from_farm)
}

/// Farm 2: 300 fresh accounts over 50 addresses of one /24, six on each, each with a
/// device id of its own.
async fn farm_subnet(target: Target) -> Vec<Attempt> {
    let addr = |i: usize| Ipv4Addr::new(203, 0, 113, (i % SUBNET_ADDRESSES as usize) as u8 + 1);
    let openids = (0..FARM_ACCOUNTS).map(|i| format!("farm2-{i}")).collect();
    let tokens = login_all(&target, openids, addr, 8).await;
    let requests = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| BallotRequest {
            token,
            addr: addr(i),
            device: Some(random_id()),
            picks: vec![FARM2_PICK],
            key: Some(random_id()),
        })
        .collect();
    cast_all(&target, requests, 8).await
}

struct Replays {
    /// The captured ballot's own receipt (it may count: it was cast once).
    original: Option<String>,
    attempts: Vec<Attempt>,
    /// Answers by kind of replay; a 201 says whether it carried the original's receipt.
    answers: BTreeMap<&'static str, BTreeMap<String, usize>>,
}

/// Farm 3: one valid ballot request captured (token, body, headers, key) and sent again and
/// again, 100 at a time: as it was, without its key, and with a fresh key each time. The
/// three kinds are interleaved (2:1:1), so that each meets every layer behind the per-voter
/// rate limit, which lets the first few of any kind through.
async fn farm_replay(target: Target) -> Replays {
    // A /24 apart from farm 1's, so that only the replays themselves are judged.
    let addr = Ipv4Addr::new(192, 0, 2, 77);
    let token = target.login_patiently("farm3-captured", addr).await;
    let captured = BallotRequest {
        token,
        addr,
        device: Some("captured-phone".into()),
        picks: vec![REPLAY_PICK],
        key: Some(random_id()),
    };
    let original = match target.ballot(&captured).await {
        Answer::Receipt(r) => Some(r),
        Answer::Refused(code) => {
            println!("note: the replay farm's first ballot was refused ({code})");
            None
        }
    };
    let replays = (0..REPLAY_ROUNDS).flat_map(|_| {
        [
            ("same key", captured.clone()),
            ("same key", captured.clone()),
            (
                "no key",
                BallotRequest {
                    key: None,
                    ..captured.clone()
                },
            ),
            (
                "fresh key",
                BallotRequest {
                    key: Some(random_id()),
                    ..captured.clone()
                },
            ),
        ]
    });
    let sent: Vec<(&str, Attempt)> = futures_util::stream::iter(replays)
        .map(|(kind, r)| {
            let target = &target;
            async move { (kind, target.attempt(r).await) }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let mut answers: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for (kind, a) in &sent {
        let answer = match &a.answer {
            Answer::Receipt(r) if Some(r) == original.as_ref() => "201 the first receipt".into(),
            Answer::Receipt(_) => "201 a NEW receipt".into(),
            Answer::Refused(code) => code.clone(),
        };
        *answers.entry(kind).or_default().entry(answer).or_default() += 1;
    }
    Replays {
        original,
        attempts: sent.into_iter().map(|(_, a)| a).collect(),
        answers,
    }
}

/// Farm 4: 100 fresh accounts, each on an address of its own in a /24 of its own with a
/// device of its own, logging in over 10 s, then all casting the same two candidates within
/// 5 s: nothing a rate limit or a shared-address signal can see.
async fn farm_slow(target: Target) -> Vec<Attempt> {
    let addr = |i: usize| Ipv4Addr::new(100, 64, i as u8, 9);
    let accounts = (0..SLOW_ACCOUNTS).map(|i| {
        let target = target.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(100) * i as u32).await;
            target.login_patiently(&format!("farm4-{i}"), addr(i)).await
        }
    });
    let tokens = futures_util::future::join_all(accounts).await;
    let ballots = tokens.into_iter().enumerate().map(|(i, token)| {
        let target = target.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50) * i as u32).await;
            let request = BallotRequest {
                token,
                addr: addr(i),
                device: Some(format!("slow-farm-phone-{i}")),
                picks: SLOW_PICKS.to_vec(),
                key: Some(random_id()),
            };
            target.attempt(request).await
        }
    });
    futures_util::future::join_all(ballots).await
}

/// Starts `work` after `delay`, so that the farms strike while the crowd votes.
async fn after<T>(delay: Duration, work: impl Future<Output = T>) -> T {
    tokio::time::sleep(delay).await;
    work.await
}

// ---------------------------------------------------------------------------------------
// Final statuses and the figures.

/// The final status of each receipt (`counted`, `quarantined`, `invalidated`, or why the
/// lookup failed), read like anyone holding it would, each from an address of its own.
async fn final_statuses(target: &Target, receipts: HashSet<String>) -> HashMap<String, String> {
    let lookups = receipts.into_iter().enumerate().map(|(i, receipt)| {
        let target = target.clone();
        async move {
            let addr = Ipv4Addr::new(198, 18, (i / 250) as u8, (i % 250) as u8 + 1);
            let sent = target
                .client
                .get(format!("{}/api/v1/receipts/{receipt}", target.base))
                .header("X-Forwarded-For", addr.to_string())
                .send()
                .await;
            let status = match sent {
                Ok(r) if r.status() == 200 => {
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    body["status"].as_str().unwrap_or("no status").to_string()
                }
                Ok(r) => format!("lookup {}", r.status().as_u16()),
                Err(_) => "lookup failed".into(),
            };
            (receipt, status)
        }
    });
    futures_util::stream::iter(lookups)
        .buffer_unordered(32)
        .collect()
        .await
}

/// The public leaderboard's count of each candidate.
async fn public_counts(target: &Target) -> HashMap<String, i64> {
    let r = target
        .client
        .get(format!(
            "{}/api/v1/campaigns/{}/leaderboard",
            target.base, target.campaign
        ))
        .header("X-Forwarded-For", "198.19.0.1")
        .send()
        .await
        .expect("leaderboard");
    let body: Value = r.json().await.expect("leaderboard JSON");
    body["items"]
        .as_array()
        .expect("leaderboard items")
        .iter()
        .map(|i| {
            (
                i["candidate_id"].as_str().unwrap().to_string(),
                i["votes"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// Why each held ballot is held, from the campaign's public audit chain: the flags its own
/// entry carries when it was held as it was cast, or the cluster a later hold swept it into
/// (a `review.decided` entry listing its seq).
async fn hold_causes(target: &Target) -> HashMap<String, String> {
    let mut by_seq: HashMap<i64, (String, Value)> = HashMap::new();
    let mut swept: HashMap<i64, String> = HashMap::new();
    let mut after = 0;
    for page in 0u8.. {
        let url = format!(
            "{}/api/v1/campaigns/{}/audit/entries?after_seq={after}&limit=1000",
            target.base, target.campaign
        );
        let r = target
            .client
            .get(url)
            .header("X-Forwarded-For", format!("198.19.1.{}", page % 250 + 1))
            .send()
            .await
            .expect("audit entries");
        let body: Value = r.json().await.expect("audit entries JSON");
        for e in body["items"].as_array().into_iter().flatten() {
            let seq = e["seq"].as_i64().unwrap_or(0);
            match e["kind"].as_str() {
                Some("ballot") => {
                    let hash = e["hash"].as_str().unwrap_or_default().to_string();
                    by_seq.insert(seq, (hash, e["body"]["flags"].clone()));
                }
                Some("review.decided") => {
                    let d = &e["body"]["decision"];
                    let cause = format!(
                        "{} with its {} cluster",
                        d["action"].as_str().unwrap_or("?"),
                        d["selection"]["by"].as_str().unwrap_or("?")
                    );
                    for s in d["ballots"].as_array().into_iter().flatten() {
                        swept.insert(s.as_i64().unwrap_or(0), cause.clone());
                    }
                }
                _ => {}
            }
        }
        match body["next_cursor"].as_str().and_then(|c| c.parse().ok()) {
            Some(next) => after = next,
            None => break,
        }
    }
    by_seq
        .into_iter()
        .map(|(seq, (hash, flags))| {
            let cause = swept
                .remove(&seq)
                .unwrap_or_else(|| format!("flagged when cast {flags}"));
            (hash, cause)
        })
        .collect()
}

/// The held honest ballots by cause and by the candidates they chose.
fn honest_holds(
    honest: &[Attempt],
    statuses: &HashMap<String, String>,
    causes: &HashMap<String, String>,
) -> BTreeMap<String, usize> {
    let mut held = BTreeMap::new();
    for a in honest {
        if let Answer::Receipt(r) = &a.answer
            && statuses.get(r).is_some_and(|s| s != "counted")
        {
            let cause = causes.get(r).map_or("not in the chain", String::as_str);
            let mut picks = a.picks.clone();
            picks.sort();
            *held
                .entry(format!("{cause}, candidates {picks:?}"))
                .or_default() += 1;
        }
    }
    held
}

/// One kind of actor's attempts, judged against the final statuses.
struct Tally {
    attempts: usize,
    /// Distinct receipts of new votes that ended `counted`.
    counted: usize,
    /// 201s whose receipt ended other than `counted`, by final status.
    held_after_201: BTreeMap<String, usize>,
    /// Attempts answered other than 201, by answer.
    refused: BTreeMap<String, usize>,
}

impl Tally {
    /// `known` are receipts that are not new votes of these attempts (a replay's original).
    fn of(attempts: &[Attempt], statuses: &HashMap<String, String>, known: Option<&str>) -> Self {
        let mut t = Tally {
            attempts: attempts.len(),
            counted: 0,
            held_after_201: BTreeMap::new(),
            refused: BTreeMap::new(),
        };
        let mut seen = HashSet::new();
        for a in attempts {
            match &a.answer {
                Answer::Refused(code) => *t.refused.entry(code.clone()).or_default() += 1,
                Answer::Receipt(r) if Some(r.as_str()) == known || !seen.insert(r.clone()) => {}
                Answer::Receipt(r) => match statuses.get(r).map(String::as_str) {
                    Some("counted") => t.counted += 1,
                    other => {
                        *t.held_after_201
                            .entry(other.unwrap_or("unknown").into())
                            .or_default() += 1
                    }
                },
            }
        }
        t
    }

    /// The share of attempts that did not end as a counted vote.
    fn held_share(&self) -> f64 {
        100.0 * (self.attempts - self.counted) as f64 / self.attempts.max(1) as f64
    }

    /// Honest attempts wrongly held: 201s not counted in the end, and refusals of the
    /// checks (403 blocked, 429 rate limits and quotas).
    fn honest_held(&self) -> usize {
        let refused: usize = self
            .refused
            .iter()
            .filter(|(code, _)| code.starts_with("403") || code.starts_with("429"))
            .map(|(_, n)| n)
            .sum();
        self.held_after_201.values().sum::<usize>() + refused
    }
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT MET" }
}

fn print_farm(name: &str, t: &Tally, target: Option<f64>) {
    let held = t.held_share();
    let goal = match target {
        Some(min) => format!("≥ {min:.0}%  {}", verdict(held >= min)),
        None => "(no target)".into(),
    };
    println!(
        "{name:<34} {:>8} {:>8} {:>7.1}%   {goal}",
        t.attempts, t.counted, held
    );
    println!(
        "{:<34} held after 201: {:?}; refused: {:?}",
        "", t.held_after_201, t.refused
    );
}

fn print_honest(t: &Tally) {
    let held = t.honest_held();
    let share = 100.0 * held as f64 / t.attempts.max(1) as f64;
    println!(
        "{:<34} {:>8} {:>8} {:>7.2}%   < 1%  {}",
        "honest crowd (wrongly held)",
        t.attempts,
        t.counted,
        share,
        verdict(share < 1.0)
    );
    println!(
        "{:<34} held after 201: {:?}; other answers: {:?}",
        "", t.held_after_201, t.refused
    );
}

/// Compares the leaderboard with the votes of the receipts that ended `counted`.
fn check_public_counts(
    attempts: &[&Attempt],
    statuses: &HashMap<String, String>,
    public: &HashMap<String, i64>,
    target: &Target,
) {
    let mut expected: HashMap<&str, i64> = HashMap::new();
    let mut seen = HashSet::new();
    for a in attempts {
        if let Answer::Receipt(r) = &a.answer
            && statuses.get(r).is_some_and(|s| s == "counted")
            && seen.insert(r)
        {
            for &p in &a.picks {
                *expected.entry(target.candidates[p].as_str()).or_default() += 1;
            }
        }
    }
    let wrong: Vec<String> = target
        .candidates
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let want = expected.get(c.as_str()).copied().unwrap_or(0);
            let got = public.get(c).copied().unwrap_or(0);
            (want != got).then(|| format!("candidate {i}: receipts {want}, leaderboard {got}"))
        })
        .collect();
    if wrong.is_empty() {
        println!(
            "leaderboard = the votes of the receipts that say counted, for all {CANDIDATES} candidates"
        );
    } else {
        println!(
            "leaderboard DIFFERS from the counted receipts: {}",
            wrong.join("; ")
        );
    }
}

/// What every actor of part 1 attempted, and how the door answered.
struct Outcomes {
    honest: Vec<Attempt>,
    farm1: Vec<Attempt>,
    /// Farm 1's accounts logged in from its own address before the login limit refused.
    farm1_own_logins: usize,
    farm2: Vec<Attempt>,
    replays: Replays,
    slow: Vec<Attempt>,
    /// The replays' captured ballot, as an attempt of its own.
    original: Vec<Attempt>,
}

impl Outcomes {
    /// The crowd arrives; the farms strike while it votes.
    async fn run(target: &Target, crowd: Vec<HonestVoter>) -> Self {
        let (honest, (farm1, farm1_own_logins), farm2, replays, slow) = tokio::join!(
            honest_crowd(target.clone(), crowd),
            after(Duration::from_secs(10), farm_one_ip(target.clone())),
            after(Duration::from_secs(15), farm_subnet(target.clone())),
            after(Duration::from_secs(20), farm_replay(target.clone())),
            after(Duration::from_secs(25), farm_slow(target.clone())),
        );
        let original = replays
            .original
            .iter()
            .map(|r| Attempt {
                picks: vec![REPLAY_PICK],
                answer: Answer::Receipt(r.clone()),
            })
            .collect();
        Outcomes {
            honest,
            farm1,
            farm1_own_logins,
            farm2,
            replays,
            slow,
            original,
        }
    }

    fn all(&self) -> Vec<&Attempt> {
        [
            &self.honest,
            &self.farm1,
            &self.farm2,
            &self.replays.attempts,
            &self.slow,
            &self.original,
        ]
        .into_iter()
        .flatten()
        .collect()
    }

    /// Every receipt the service handed out.
    fn receipts(&self) -> HashSet<String> {
        self.all()
            .into_iter()
            .filter_map(|a| match &a.answer {
                Answer::Receipt(r) => Some(r.clone()),
                Answer::Refused(_) => None,
            })
            .collect()
    }

    fn print_farms(&self, statuses: &HashMap<String, String>) {
        let tally = |attempts: &[Attempt]| Tally::of(attempts, statuses, None);
        print_farm(
            "farm 1: one address, 300 accounts",
            &tally(&self.farm1),
            Some(95.0),
        );
        print_farm(
            "farm 2: 50 addresses of one /24",
            &tally(&self.farm2),
            Some(95.0),
        );
        let original = self.replays.original.as_deref();
        let replays = Tally::of(&self.replays.attempts, statuses, original);
        print_farm("farm 3: replays of one request", &replays, Some(95.0));
        println!(
            "{:<34} the captured ballot itself: {}; extra votes counted from {} replays: {}",
            "",
            original
                .and_then(|r| statuses.get(r))
                .map_or("refused", String::as_str),
            replays.attempts,
            replays.counted
        );
        for (kind, answers) in &self.replays.answers {
            println!("{:<34} replays with {kind}: {answers:?}", "");
        }
        print_farm(
            "farm 4: slow farm, C+D in a burst",
            &tally(&self.slow),
            None,
        );
    }

    /// The crowd's figures and, when some of its ballots were held, why.
    async fn print_crowd(&self, statuses: &HashMap<String, String>, target: &Target) {
        let tally = Tally::of(&self.honest, statuses, None);
        print_honest(&tally);
        if !tally.held_after_201.is_empty() {
            let causes = hold_causes(target).await;
            for (cause, n) in honest_holds(&self.honest, statuses, &causes) {
                println!("{:<34} {n} held: {cause}", "");
            }
        }
        println!(
            "(farm candidates: farm 1 → {FARM1_PICK}, farm 2 → {FARM2_PICK}, replays → {REPLAY_PICK}, farm 4 → {SLOW_PICKS:?})"
        );
    }
}

/// Part 1: the crowd and the farms at once, then the final statuses.
async fn detection(backend: &str) {
    let d = deploy(backend, "sim", true).await;
    let target = &d.target;
    let crowd = plan_crowd(&mut StdRng::seed_from_u64(2026));
    println!(
        "\npart 1: {HONEST_VOTERS} honest voters arriving over {} s, four farms striking meanwhile (default limits and thresholds, fraud_policy quarantine)",
        ARRIVALS.as_secs()
    );
    let started = Instant::now();
    let outcomes = Outcomes::run(target, crowd).await;
    println!(
        "all actors done in {:.0} s (farm 1 logged {} of its accounts in from its own address before the login limit refused)",
        started.elapsed().as_secs_f64(),
        outcomes.farm1_own_logins
    );
    tokio::time::sleep(SETTLE).await;
    let statuses = final_statuses(target, outcomes.receipts()).await;
    println!(
        "\n{:<34} {:>8} {:>8} {:>8}   target",
        "kind", "attempts", "counted", "held"
    );
    outcomes.print_farms(&statuses);
    outcomes.print_crowd(&statuses, target).await;
    check_public_counts(
        &outcomes.all(),
        &statuses,
        &public_counts(target).await,
        target,
    );
    tear_down(d);
}

// ---------------------------------------------------------------------------------------
// Part 2: the cost of the checks.

/// Voter `i` of the cost runs: its token, and an address in a /24 of its own, so that no
/// risk signal fires and no per-address limit binds: the checks run, they do not refuse.
struct CostVoter {
    token: String,
    addr: Ipv4Addr,
    device: String,
}

fn cost_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(10, (i / 256) as u8, (i % 256) as u8, 1)
}

async fn cost_voters(target: &Target) -> Arc<Vec<CostVoter>> {
    let openids = (0..COST_VOTERS).map(|i| format!("cost-{i}")).collect();
    let tokens = login_all(target, openids, cost_addr, 64).await;
    let voters = tokens
        .into_iter()
        .enumerate()
        .map(|(i, token)| CostVoter {
            token,
            addr: cost_addr(i),
            device: format!("phone-{i}"),
        })
        .collect();
    Arc::new(voters)
}

/// One side of the comparison: its service, voters, and the next request's number (request
/// `n` is voter `n mod V` voting for candidate `n div V`, so no voter ever meets a quota).
struct Side {
    name: &'static str,
    deployment: Deployment,
    voters: Arc<Vec<CostVoter>>,
    next: Arc<AtomicU64>,
    ok: u64,
    elapsed: Duration,
    codes: BTreeMap<String, u64>,
    /// Ballots per second of each round, to show how much the machine moves.
    rounds: Vec<f64>,
    /// CPU seconds spent in the rounds, by process: per ballot, they say where the checks'
    /// cost lies.
    cpu: CpuSeconds,
    /// One HTTP client (one connection) per closed loop, kept over the rounds: building one
    /// per loop and round cost the load generator more CPU than its requests did.
    clients: Vec<reqwest::Client>,
}

impl Side {
    async fn new(name: &'static str, backend: &str, checks: bool) -> Self {
        let deployment = deploy(backend, name, checks).await;
        let voters = cost_voters(&deployment.target).await;
        Side {
            name,
            deployment,
            voters,
            next: Arc::new(AtomicU64::new(0)),
            ok: 0,
            elapsed: Duration::ZERO,
            codes: BTreeMap::new(),
            rounds: Vec::new(),
            cpu: CpuSeconds::default(),
            clients: (0..COST_CONNECTIONS)
                .map(|_| {
                    reqwest::Client::builder()
                        .pool_max_idle_per_host(1)
                        .build()
                        .unwrap()
                })
                .collect(),
        }
    }

    /// Ballots over `COST_CONNECTIONS` closed loops for `COST_ROUND`.
    async fn round(&mut self) {
        let pid = self.deployment.service.child.id();
        let cpu_before = cpu_seconds(pid);
        let started = Instant::now();
        let loops: Vec<_> = self
            .clients
            .iter()
            .map(|client| {
                let target = Target {
                    client: client.clone(),
                    ..self.deployment.target.clone()
                };
                let (voters, next) = (self.voters.clone(), self.next.clone());
                tokio::spawn(cost_loop(target, voters, next, started))
            })
            .collect();
        for l in loops {
            for (code, n) in l.await.expect("cost loop") {
                *self.codes.entry(code).or_default() += n;
            }
        }
        self.elapsed += started.elapsed();
        let before = self.ok;
        self.ok = self
            .codes
            .iter()
            .filter(|(c, _)| c.starts_with("201"))
            .map(|(_, n)| n)
            .sum();
        let round = (self.ok - before) as f64 / started.elapsed().as_secs_f64();
        self.rounds.push(round);
        self.cpu.add_between(&cpu_before, &cpu_seconds(pid));
    }

    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }
}

/// One connection casting ballots back to back until the round ends or the voters' daily
/// quotas are all spent.
async fn cost_loop(
    target: Target,
    voters: Arc<Vec<CostVoter>>,
    next: Arc<AtomicU64>,
    started: Instant,
) -> BTreeMap<String, u64> {
    let capacity = (voters.len() * 10) as u64;
    let mut codes = BTreeMap::new();
    while started.elapsed() < COST_ROUND {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= capacity {
            break;
        }
        let v = &voters[n as usize % voters.len()];
        let request = BallotRequest {
            token: v.token.clone(),
            addr: v.addr,
            device: Some(v.device.clone()),
            picks: vec![n as usize / voters.len()],
            key: None,
        };
        let code = match target.ballot(&request).await {
            Answer::Receipt(_) => "201".to_string(),
            Answer::Refused(code) => code,
        };
        *codes.entry(code).or_default() += 1;
    }
    codes
}

async fn cost_of_checks(backend: &str) {
    println!(
        "\npart 2: ballots of {COST_VOTERS} distinct voters over {COST_CONNECTIONS} connections, rounds of {:.2} s in the order on, off, off, on, {COST_CYCLES} times",
        COST_ROUND.as_secs_f64()
    );
    let mut on = Side::new("on", backend, true).await;
    let mut off = Side::new("off", backend, false).await;
    // On, off, off, on, over and over: the machine's drift over the run weighs on both
    // sides alike. Short rounds pair them closely: with rounds of 5 s twice, runs of one
    // build gave costs from 6% to 21%; with these, within about 5 points.
    for _ in 0..COST_CYCLES {
        on.round().await;
        off.round().await;
        off.round().await;
        on.round().await;
    }
    for s in [&on, &off] {
        let mut rounds = s.rounds.clone();
        rounds.sort_by(f64::total_cmp);
        println!(
            "checks {:<4} {:>8.0} ballots/s over {:.1} s (rounds: {:.0} to {:.0}/s, median {:.0}/s)   {:?}",
            s.name,
            s.per_second(),
            s.elapsed.as_secs_f64(),
            rounds.first().unwrap_or(&0.0),
            rounds.last().unwrap_or(&0.0),
            rounds.get(rounds.len() / 2).unwrap_or(&0.0),
            s.codes
        );
        println!(
            "             CPU µs per ballot: {}",
            CpuSeconds::default().per_request(&s.cpu, s.ok)
        );
    }
    let cost = 100.0 * (off.per_second() - on.per_second()) / off.per_second();
    println!(
        "cost of the checks: {cost:.1}%  (target < 15%: {})",
        verdict(cost < 15.0)
    );
    tear_down(on.deployment);
    tear_down(off.deployment);
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let backend = std::env::args()
        .skip(1)
        .find(|a| a == "postgres" || a == "sqlite")
        .unwrap_or_else(|| "postgres".into());
    // `cost` runs part 2 alone (to try a change to the checks' cost).
    let cost_only = std::env::args().any(|a| a == "cost");
    println!("minyi fraud simulation: {backend}");
    let started = Instant::now();
    if !cost_only {
        detection(&backend).await;
    }
    cost_of_checks(&backend).await;
    println!("\nwhole run: {:.0} s", started.elapsed().as_secs_f64());
}
