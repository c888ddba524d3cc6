//! Durability of the vote path (issue 5): a `kill -9` in the middle of a load loses no
//! acknowledged ballot, and PostgreSQL going away in the middle of a ballot counts nothing and
//! gives the quota back.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::ballots::{assert_counts_match_ledger, ballot, rules, voting_campaign};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(kill_9_in_the_middle_of_a_load_loses_no_acknowledged_ballot);

const BIN: &str = env!("CARGO_BIN_EXE_minyi");
/// Distinct citizens casting ballots.
const VOTERS: usize = 300;
/// Concurrent request loops; each has at most one ballot in flight, so at most this many
/// ballots can be committed without their 201 having reached us.
const LOOPS: usize = 40;
const CANDIDATES: usize = 10;
/// Acknowledged ballots before the service is killed.
const KILL_AFTER: usize = 500;

/// One deployment of the real binary, as an operator runs it: the same environment for the
/// killed process, its successor and `minyi verify`.
struct Deployment {
    dir: tempfile::TempDir,
    env: Vec<(&'static str, String)>,
}

impl Deployment {
    async fn new(backend: Backend) -> Self {
        // Our HTTP clients need rustls' provider, which only the in-process app installs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database(backend, &dir).await;
        let mut env = vec![
            ("DATABASE_URL", database_url),
            ("MINYI_SECRET", TEST_SECRET.to_string()),
            ("MINYI_DEV_LOGIN", "1".into()),
            ("MINYI_WORKERS", "2".into()),
            ("MINYI_DB_MAX_CONNECTIONS", "8".into()),
            ("MINYI_LOG_LEVEL", "warn".into()),
            // Hundreds of voters from one test address: no rate limits here.
            ("MINYI_RATE_LOGIN_PER_IP", "off".into()),
            ("MINYI_RATE_BALLOTS_PER_IP", "off".into()),
            ("MINYI_RATE_BALLOTS_PER_VOTER", "off".into()),
            ("MINYI_RATE_READS_PER_IP", "off".into()),
        ];
        if backend == Backend::Postgres {
            env.push(("REDIS_URL", redis_url()));
            env.push(("MINYI_REDIS_PREFIX", unique("kill")));
        }
        Self { dir, env }
    }

    fn database_url(&self) -> &str {
        &self.env[0].1
    }

    /// `minyi` with this deployment's environment and nothing else, in a scratch directory (so
    /// no stray `minyi.toml` is read).
    fn command(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .current_dir(self.dir.path());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// `minyi admin create-user`, the password on standard input.
    fn create_staff(&self, username: &str, password: &str) {
        let mut child = self
            .command()
            .args([
                "admin",
                "create-user",
                "--username",
                username,
                "--role",
                "organizer",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "create-user: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `minyi serve` on a free port; returns once it reports ready.
    async fn serve(&self) -> Service {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = self
            .command()
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = capture_output(&mut child);
        let service = Service {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            lines,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = service
                .client
                .get(service.url("/health/ready"))
                .send()
                .await
                && r.status() == 200
            {
                return service;
            }
            assert!(
                Instant::now() < deadline,
                "minyi serve did not become ready:\n{}",
                service.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `minyi verify --campaign ID`: its exit status and what it printed.
    fn verify(&self, campaign: &str) -> (bool, String) {
        let out = self
            .command()
            .args(["verify", "--campaign", campaign])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    }

    /// What the ledger says, read with SQL behind the service's back: the counted votes per
    /// candidate, and how many ballots it holds.
    async fn ledger(&self, campaign: &str) -> (HashMap<i64, i64>, i64) {
        use sqlx::Connection;
        const VOTES: &str = "SELECT v.candidate_id, COUNT(*) FROM ballot_votes v \
             JOIN ballots b ON b.id = v.ballot_id \
             WHERE v.campaign_id = $1 AND b.status = 'counted' GROUP BY v.candidate_id";
        const BALLOTS: &str = "SELECT COUNT(*) FROM ballots WHERE campaign_id = $1";
        let id: i64 = campaign.parse().unwrap();
        let url = self.database_url();
        macro_rules! read {
            ($conn:ty) => {{
                let mut c = <$conn>::connect(url).await.expect("the ledger opens");
                let votes: Vec<(i64, i64)> = sqlx::query_as(VOTES)
                    .bind(id)
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
                let ballots: i64 = sqlx::query_scalar(BALLOTS)
                    .bind(id)
                    .fetch_one(&mut c)
                    .await
                    .unwrap();
                (votes.into_iter().collect(), ballots)
            }};
        }
        if url.starts_with("sqlite:") {
            read!(sqlx::SqliteConnection)
        } else {
            read!(sqlx::PgConnection)
        }
    }
}

/// A running `minyi serve` child process, killed when dropped.
struct Service {
    child: Child,
    base: String,
    client: reqwest::Client,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Service {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The last lines the service printed, for failure messages.
    fn log(&self) -> String {
        let lines = self.lines.lock().unwrap();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        let mut req = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let r = self
            .post(
                "/api/v1/admin/login",
                &json!({"username": username, "password": password}),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["token"].as_str().unwrap().to_string()
    }

    /// SIGKILL (`Child::kill`): no shutdown, no flushing, nothing the process can react to.
    fn kill_9(&mut self) {
        self.child.kill().unwrap();
        let status = self.child.wait().unwrap();
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status:?}");
    }

    /// The live `votes` of every candidate, as the public candidate list shows them.
    async fn live_votes(&self, campaign: &str) -> HashMap<i64, i64> {
        let r = self
            .get(
                &format!("/api/v1/campaigns/{campaign}/candidates?limit=100"),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].as_str().unwrap().parse().unwrap(),
                    c["votes"].as_i64().expect("votes are shown live"),
                )
            })
            .collect()
    }

    /// Every entry of the campaign's chain, read as staff.
    async fn entries(&self, campaign: &str, token: &str) -> Vec<Value> {
        chain_entries(&self.client, &self.base, campaign, token).await
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An open selection campaign in its voting phase, counts shown live, quotas far above what
/// the load uses (so every answer before the kill should be 201); returns its id and its
/// candidates.
async fn open_campaign(service: &Service, staff: &str) -> (String, Vec<String>) {
    let now = chrono::Utc::now();
    let r = service
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "selection", "title": "断电测试", "rules": rules(50, 50, 3, "live"),
                "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}]}),
            Some(staff),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let cat = service
        .post(
            &format!("/api/v1/admin/campaigns/{id}/categories"),
            &json!({"name": "医生", "winners": 3}),
            Some(staff),
        )
        .await;
    assert_eq!(cat.status, 201, "{}", cat.text);
    let cat = cat.body["id"].as_str().unwrap().to_string();
    let mut candidates = Vec::new();
    for i in 0..CANDIDATES {
        let c = service
            .post(
                &format!("/api/v1/admin/campaigns/{id}/candidates"),
                &json!({"category_id": cat, "name": format!("医生{i}"), "unit": "示例医院"}),
                Some(staff),
            )
            .await;
        assert_eq!(c.status, 201, "{}", c.text);
        let cid = c.body["id"].as_str().unwrap().to_string();
        let a = service
            .post(
                &format!("/api/v1/admin/campaigns/{id}/candidates/{cid}/approve"),
                &json!({}),
                Some(staff),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        candidates.push(cid);
    }
    let o = service
        .post(
            &format!("/api/v1/admin/campaigns/{id}/open"),
            &json!({}),
            Some(staff),
        )
        .await;
    assert_eq!(o.status, 200, "{}", o.text);
    (id, candidates)
}

/// The candidates of the n-th ballot: one, two or three distinct ones, spread over all.
fn pick(n: usize, candidates: &[String]) -> Vec<String> {
    (0..n % 3 + 1)
        .map(|j| candidates[(n + 3 * j) % candidates.len()].clone())
        .collect()
}

/// A 201 as the citizen received it.
struct Ack {
    receipt: String,
    seq: i64,
    candidate_ids: Value,
}

/// What the load saw before and at the kill.
#[derive(Default)]
struct Load {
    acks: Vec<Ack>,
    /// Complete answers other than 201 ("status body").
    others: Vec<String>,
    /// Loops that ended on a request the dead service never answered.
    cut_off: usize,
}

/// Drives `LOOPS` concurrent ballot loops and SIGKILLs the service once `KILL_AFTER` ballots
/// were acknowledged, with ballots still in flight. Each loop ends at its first request that
/// gets no complete answer.
async fn load_then_kill(
    service: &mut Service,
    campaign: &str,
    candidates: &[String],
    tokens: Vec<String>,
) -> Load {
    let url = service.url(&format!("/api/v1/campaigns/{campaign}/ballots"));
    let tokens = Arc::new(tokens);
    let candidates = Arc::new(candidates.to_vec());
    let seen = Arc::new(Mutex::new(Load::default()));
    let next = Arc::new(AtomicUsize::new(0));
    // Bounded in time whatever happens: a loop still running at the deadline stops by itself.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut loops = Vec::new();
    for _ in 0..LOOPS {
        let (url, tokens, candidates, seen, next) = (
            url.clone(),
            tokens.clone(),
            candidates.clone(),
            seen.clone(),
            next.clone(),
        );
        loops.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap();
            while Instant::now() < deadline {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let sent = client
                    .post(&url)
                    .bearer_auth(&tokens[n % tokens.len()])
                    .json(&json!({"candidate_ids": pick(n, &candidates)}))
                    .send()
                    .await;
                // A request whose answer did not arrive whole was cut off by the kill.
                let Ok(r) = sent else { return true };
                let status = r.status().as_u16();
                let Ok(text) = r.text().await else {
                    return true;
                };
                let mut record = seen.lock().unwrap();
                if status == 201 {
                    let body: Value = serde_json::from_str(&text).expect("a 201 carries JSON");
                    record.acks.push(Ack {
                        receipt: body["receipt"].as_str().unwrap().to_string(),
                        seq: body["seq"].as_i64().unwrap(),
                        candidate_ids: body["candidate_ids"].clone(),
                    });
                } else {
                    record.others.push(format!("{status} {text}"));
                }
            }
            false
        }));
    }
    loop {
        let acked = seen.lock().unwrap().acks.len();
        if acked >= KILL_AFTER {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {acked} ballots acknowledged before the deadline:\n{}",
            service.log()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    service.kill_9();
    let mut cut_off = 0;
    for l in loops {
        cut_off += l.await.unwrap() as usize;
    }
    let mut load = std::mem::take(&mut *seen.lock().unwrap());
    load.cut_off = cut_off;
    load
}

async fn kill_9_in_the_middle_of_a_load_loses_no_acknowledged_ballot(backend: Backend) {
    let deployment = Deployment::new(backend).await;
    deployment.create_staff("kill.organizer", "kill-organizer-password");
    let mut first = deployment.serve().await;
    let staff = first
        .login("kill.organizer", "kill-organizer-password")
        .await;
    let (id, candidates) = open_campaign(&first, &staff).await;
    let tokens: Vec<String> = futures_util::stream::iter(0..VOTERS)
        .map(|i| {
            let first = &first;
            async move {
                let r = first
                    .post(
                        "/api/v1/auth/dev",
                        &json!({"openid": format!("oKill{i}")}),
                        None,
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.body["token"].as_str().unwrap().to_string()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;

    let load = load_then_kill(&mut first, &id, &candidates, tokens).await;
    let first_log = first.log();
    drop(first);
    // Before the kill every complete answer was a 201 (the quotas are far away), and every
    // loop was still sending when the process died, so ballots were in flight.
    assert!(
        load.others.is_empty(),
        "answers other than 201: {:?}",
        load.others
    );
    assert_eq!(load.cut_off, LOOPS, "every loop was cut off by the kill");
    let acked = load.acks.len();
    assert!(acked >= KILL_AFTER, "{acked} acknowledged");

    // A new process on the same database (and the same Redis keys).
    let second = deployment.serve().await;

    // Every 201 is on the record: its receipt is found, counted, at the seq we were told.
    let missing: Vec<String> = futures_util::stream::iter(&load.acks)
        .map(|ack| {
            let second = &second;
            let id = &id;
            async move {
                let r = second
                    .get(&format!("/api/v1/receipts/{}", ack.receipt), None)
                    .await;
                let ok = r.status == 200
                    && r.body["status"] == "counted"
                    && r.body["seq"] == ack.seq
                    && r.body["campaign_id"] == id.as_str();
                (!ok).then(|| format!("{} (seq {}): {} {}", ack.receipt, ack.seq, r.status, r.text))
            }
        })
        .buffer_unordered(16)
        .filter_map(|m| async move { m })
        .collect()
        .await;
    assert!(
        missing.is_empty(),
        "{} of {acked} acknowledged receipts not found after the restart, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );

    // ... and in the chain, as the very ballot that was acknowledged.
    let staff = second
        .login("kill.organizer", "kill-organizer-password")
        .await;
    let chain: HashMap<String, Value> = second
        .entries(&id, &staff)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "ballot")
        .map(|e| (e["hash"].as_str().unwrap().to_string(), e["body"].clone()))
        .collect();
    for ack in &load.acks {
        let body = chain
            .get(&ack.receipt)
            .unwrap_or_else(|| panic!("receipt {} not in the chain", ack.receipt));
        assert_eq!(body["candidate_ids"], ack.candidate_ids, "{}", ack.receipt);
    }

    // The chain verifies, and the state it records matches the database.
    let (ok, out) = deployment.verify(&id);
    assert!(ok, "minyi verify --campaign {id} failed:\n{out}");

    // The ledger holds every acknowledged ballot, and beyond them at most the ones that were
    // in flight (one per loop) and committed just before the kill.
    let (ledger, ballots) = deployment.ledger(&id).await;
    assert!(
        ballots as usize >= acked && ballots as usize <= acked + LOOPS,
        "{ballots} ballots in the ledger for {acked} acknowledged (at most {LOOPS} in flight)"
    );
    assert_eq!(chain.len() as i64, ballots, "one chain entry per ballot");
    let mut acked_votes: HashMap<i64, i64> = HashMap::new();
    for ack in &load.acks {
        for c in ack.candidate_ids.as_array().unwrap() {
            *acked_votes
                .entry(c.as_str().unwrap().parse().unwrap())
                .or_default() += 1;
        }
    }
    for (candidate, n) in &acked_votes {
        let counted = ledger.get(candidate).copied().unwrap_or(0);
        assert!(
            counted >= *n,
            "candidate {candidate}: {n} acknowledged, {counted} counted"
        );
    }

    // The live counts come back equal to the ledger: the restarted service recounts them
    // from the ledger (in the background, hence the wait), whatever the kill interrupted
    // between a commit and its live increment.
    let expected: HashMap<i64, i64> = candidates
        .iter()
        .map(|c| {
            let c: i64 = c.parse().unwrap();
            (c, ledger.get(&c).copied().unwrap_or(0))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let live = second.live_votes(&id).await;
        if live == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "live counts still differ from the ledger 15 s after the restart\n\
             live:   {live:?}\nledger: {expected:?}\nlog of the restarted service:\n{}\n\
             log of the killed one:\n{first_log}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The restarted service takes ballots again, and they count exactly once.
    let voter = second
        .post(
            "/api/v1/auth/dev",
            &json!({"openid": "oAfterRestart"}),
            None,
        )
        .await;
    let voter = voter.body["token"].as_str().unwrap();
    let r = second
        .post(
            &format!("/api/v1/campaigns/{id}/ballots"),
            &json!({"candidate_ids": [candidates[0]]}),
            Some(voter),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (ledger_after, ballots_after) = deployment.ledger(&id).await;
    assert_eq!(ballots_after, ballots + 1);
    let c0: i64 = candidates[0].parse().unwrap();
    assert_eq!(ledger_after[&c0], expected[&c0] + 1);
    let mut expected_after = expected;
    *expected_after.get_mut(&c0).unwrap() += 1;
    assert_eq!(second.live_votes(&id).await, expected_after);
}

/// PostgreSQL goes away while a ballot waits for its ledger transaction, its quota already
/// taken: the citizen gets 503, nothing is counted, and the quota is given back. About Redis
/// + PostgreSQL, where the quota lives in another store than the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreachable_mid_ballot_is_503_counts_nothing_and_gives_the_quota_back() {
    let dir = tempfile::tempdir().unwrap();
    let direct = fresh_database(Backend::Postgres, &dir).await;
    let mut via_proxy = reqwest::Url::parse(&direct).unwrap();
    let upstream = format!(
        "{}:{}",
        via_proxy.host_str().unwrap(),
        via_proxy.port().unwrap_or(5432)
    );
    let proxy = CuttableProxy::start(&upstream).await;
    via_proxy.set_host(Some("127.0.0.1")).unwrap();
    via_proxy.set_port(Some(proxy.port)).unwrap();

    // Instance A reaches PostgreSQL through the proxy. Its long group-commit wait keeps each
    // ballot in the batcher, quota taken, for 3 s before the ledger transaction: the window in
    // which the proxy is cut.
    let a = TestApp::spawn_opts(
        Backend::Postgres,
        TestOptions {
            overrides: &[("dev_login", "true"), ("ballot_batch_wait_ms", "3000")],
            database_url: Some(via_proxy.to_string()),
            redis_url: None,
            redis_prefix: None,
            clock: None,
        },
    )
    .await;
    // Instance B: the same deployment (same database, same Redis keys), reaching PostgreSQL
    // directly, to look at what A left behind.
    let b = TestApp::spawn_opts(
        Backend::Postgres,
        TestOptions {
            overrides: &[("dev_login", "true")],
            database_url: Some(direct),
            redis_url: None,
            redis_prefix: Some(a.redis_prefix.clone()),
            clock: None,
        },
    )
    .await;
    // Two votes a day, one candidate.
    let (id, c, _) = voting_campaign(&a, rules(2, 2, 1, "live"), 1).await;
    let voter = a.dev_citizen("oPgAway").await;
    let first = ballot(&a, &id, &voter, &[&c[0]], None).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body["remaining_today"], 1);

    let only = [&c[0]];
    let pending = ballot(&a, &id, &voter, &only, None);
    let probe_then_cut = async {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        // The pending ballot holds the voter's second vote of the day, so B refuses a third
        // (this also proves the quota was taken before PostgreSQL went away).
        let probe = ballot(&b, &id, &voter, &only, None).await;
        proxy.cut();
        probe
    };
    let (pending, probe) = tokio::join!(pending, probe_then_cut);
    probe.assert_error(429, "daily_quota_exhausted");
    pending.assert_error(503, "unavailable");
    assert_eq!(
        pending.body["error"]["part"], "database",
        "{}",
        pending.text
    );

    // Nothing of the failed ballot was counted: the ledger and the live counts (Redis, shared
    // by both instances) still hold the first ballot alone, and the chain verifies.
    let c0: i64 = c[0].parse().unwrap();
    let ledger = assert_counts_match_ledger(&b, &id).await;
    assert_eq!(ledger, HashMap::from([(c0, 1)]));
    let list = b
        .get(&format!("/api/v1/campaigns/{id}/candidates"), None)
        .await;
    assert_eq!(list.body["items"][0]["votes"], 1, "{}", list.text);

    // The quota it took was given back: exactly one more ballot today, then the quota is out.
    let again = ballot(&b, &id, &voter, &[&c[0]], None).await;
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.body["remaining_today"], 0);
    ballot(&b, &id, &voter, &[&c[0]], None)
        .await
        .assert_error(429, "daily_quota_exhausted");
    let ledger = assert_counts_match_ledger(&b, &id).await;
    assert_eq!(ledger, HashMap::from([(c0, 2)]));
}
