//! Tests of the real `minyi` binary as an operator runs it: configuration errors, the
//! command line, what it writes to its log, and shutdown.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_minyi");

/// A `minyi` command with a clean environment and a scratch working directory.
fn minyi(dir: &tempfile::TempDir) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("sqlite:{}", dir.path().join("m.db").display()),
        )
        .current_dir(dir.path());
    cmd
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config_error(env: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = minyi(&dir);
    cmd.arg("serve");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_bad_setting_stops_the_start_with_one_line_naming_it() {
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")],
            "MINYI_SECRET",
        ),
        (&[("MINYI_BIND", "not-an-address")], "MINYI_BIND"),
        (
            &[("MINYI_LOGIN_MAX_FAILURES", "many")],
            "MINYI_LOGIN_MAX_FAILURES",
        ),
        (
            &[("MINYI_TRUSTED_PROXIES", "10.0.0.0/99")],
            "MINYI_TRUSTED_PROXIES",
        ),
        (&[("MINYI_NO_SUCH_SETTING", "1")], "MINYI_NO_SUCH_SETTING"),
    ];
    for (env, setting) in cases {
        let (code, stderr) = config_error(env);
        assert_eq!(code, 2, "{env:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(setting), "{setting} named in: {stderr}");
    }
}

#[test]
fn create_user_reads_the_password_from_stdin_and_the_account_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let run = |username: &str, role: &str, password: &str| {
        let mut child = minyi(&dir)
            .args([
                "admin",
                "create-user",
                "--username",
                username,
                "--role",
                role,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let (ok, out) = run("ops.admin", "admin", "a-long-enough-password");
    assert!(ok, "{out}");
    assert!(
        !out.contains("a-long-enough-password"),
        "the password is not echoed"
    );
    let (ok, out) = run("ops.admin", "admin", "another-long-password");
    assert!(!ok && out.contains("taken"), "{out}");
    let (ok, out) = run("short.pw", "admin", "short");
    assert!(!ok && out.contains("12"), "{out}");
    let (ok, out) = run("bad.role", "root", "a-long-enough-password");
    assert!(!ok && out.contains("unknown role"), "{out}");

    let port = free_port();
    let server = Server::start(&dir, port, &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/api/v1/admin/login"))
            .json(&json!({"username": "ops.admin", "password": "a-long-enough-password"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    });
    drop(server);
}

/// A running `minyi serve` whose output is collected line by line.
struct Server {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(dir: &tempfile::TempDir, port: u16, env: &[(&str, String)]) -> Self {
        // The tests' own HTTP clients need rustls's provider, whichever test ran first.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut cmd = minyi(dir);
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("MINYI_WORKERS", "2")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let lines = capture_output(&mut child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "server did not start: {:?}",
                lines.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, lines }
    }

    fn output(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn sigterm(&self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_log_line_or_response_ever_contains_an_openid() {
    let wechat = FakeWechat::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Server::start(
        &dir,
        port,
        &[
            ("MINYI_LOG_FORMAT", "json".into()),
            ("MINYI_LOG_LEVEL", "debug".into()),
            ("MINYI_DEV_LOGIN", "1".into()),
            ("MINYI_WECHAT_APPID", FAKE_APPID.into()),
            ("MINYI_WECHAT_SECRET", FAKE_APP_SECRET.into()),
            ("MINYI_WECHAT_API_BASE", wechat.base_url()),
            ("MINYI_WECHAT_TIMEOUT_MS", "500".into()),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let openids = [
        "oSECRET-openid-0001",
        "oSECRET-openid-0002",
        "oSECRET-openid-0003",
    ];
    let mut responses = String::new();
    let mut post = async |path: &str, body: serde_json::Value| {
        let r = client
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        responses.push_str(&format!("{:?}\n", r.headers()));
        let text = r.text().await.unwrap();
        responses.push_str(&text);
        (status, text)
    };
    assert_eq!(
        post(
            "/api/v1/auth/wechat",
            json!({"code": format!("ok:{}", openids[0])})
        )
        .await
        .0,
        200
    );
    assert_eq!(
        post("/api/v1/auth/dev", json!({"openid": openids[1]}))
            .await
            .0,
        200
    );
    assert_eq!(
        post(
            "/api/v1/auth/wechat",
            json!({"code": format!("slow:{}", openids[2])})
        )
        .await
        .0,
        503
    );
    assert_eq!(
        post("/api/v1/auth/wechat", json!({"code": "invalid"}))
            .await
            .0,
        401
    );
    assert_eq!(post("/api/v1/auth/dev", json!({"openid": 5})).await.0, 422);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let log = server.output();
    assert!(log.lines().count() > 10, "the log has lines: {log}");
    // Each request's lines carry its request id.
    assert!(
        log.lines().filter(|l| l.contains("\"request_id\"")).count() >= 5,
        "{log}"
    );
    for secret in openids
        .iter()
        .copied()
        .chain([FAKE_APP_SECRET, "sk-oSECRET"])
    {
        assert!(!log.contains(secret), "log contains {secret}:\n{log}");
        assert!(!responses.contains(secret), "a response contains {secret}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_requests_in_flight_finish() {
    let wechat = FakeWechat::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = Server::start(
        &dir,
        port,
        &[
            ("MINYI_WECHAT_APPID", FAKE_APPID.into()),
            ("MINYI_WECHAT_SECRET", FAKE_APP_SECRET.into()),
            ("MINYI_WECHAT_API_BASE", wechat.base_url()),
            ("MINYI_WECHAT_TIMEOUT_MS", "5000".into()),
        ],
    );
    let url = format!("http://127.0.0.1:{port}/api/v1/auth/wechat");
    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .json(&json!({"code": "delay:1500:oInFlight"}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    server.sigterm();
    let reply = in_flight
        .await
        .unwrap()
        .expect("the request in flight is answered");
    assert_eq!(reply.status(), 200);
    let status = tokio::task::spawn_blocking(move || {
        let s = server.wait(Duration::from_secs(20));
        (s, server.output())
    })
    .await
    .unwrap();
    assert!(
        status.0.expect("the process exits").success(),
        "{}",
        status.1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_numbers_never_reach_a_log_line_a_response_or_an_export() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    // An organizer, made as operators make one.
    let mut child = minyi(&dir)
        .args([
            "admin",
            "create-user",
            "--username",
            "sms.org",
            "--role",
            "organizer",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "organizer-password-1").unwrap();
    assert!(child.wait().unwrap().success());
    let port = free_port();
    let server = Server::start(
        &dir,
        port,
        &[
            ("MINYI_LOG_FORMAT", "json".into()),
            ("MINYI_LOG_LEVEL", "debug".into()),
            ("MINYI_SMS_GATEWAY", "log".into()),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut seen = String::new();
    let mut call = async |method: reqwest::Method,
                          path: &str,
                          token: Option<&str>,
                          body: Option<serde_json::Value>| {
        let mut req = client.request(method, format!("{base}{path}"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let text = r.text().await.unwrap();
        seen.push_str(&text);
        serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default()
    };
    use reqwest::Method;
    let login = call(
        Method::POST,
        "/api/v1/admin/login",
        None,
        Some(json!({"username": "sms.org", "password": "organizer-password-1"})),
    )
    .await;
    let token = login["token"].as_str().unwrap().to_string();
    let now = chrono::Utc::now();
    let c = call(Method::POST, "/api/v1/admin/campaigns", Some(&token), Some(json!({"kind": "evaluation", "title": "隐私",
        "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}]}))).await;
    let id = c["id"].as_str().unwrap().to_string();
    let t = call(
        Method::POST,
        &format!("/api/v1/admin/campaigns/{id}/targets"),
        Some(&token),
        Some(json!({"name": "示例医院", "code": "H01"})),
    )
    .await;
    call(
        Method::POST,
        &format!("/api/v1/admin/campaigns/{id}/open"),
        Some(&token),
        Some(json!({})),
    )
    .await;
    let day = now
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .date_naive()
        .to_string();
    let phones = ["13912345678", "13887654321"];
    let records: Vec<serde_json::Value> = phones
        .iter()
        .map(|p| json!({"phone": p, "target_id": t["id"], "visited_on": day}))
        .chain([json!({"phone": "1391234567", "target_id": t["id"], "visited_on": day})])
        .collect();
    let imported = call(
        Method::POST,
        &format!("/api/v1/admin/campaigns/{id}/survey-records"),
        Some(&token),
        Some(json!({"records": records})),
    )
    .await;
    assert_eq!(imported["imported"], 2, "{imported}");
    // The sender runs (log gateway): wait for both links in the log.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while server.output().matches("survey SMS (log gateway)").count() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "no links logged: {}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every read an organizer has: exports, scores, the chain.
    for path in [
        format!("/api/v1/admin/campaigns/{id}/scores"),
        format!("/api/v1/admin/campaigns/{id}/scores.csv"),
        format!("/api/v1/admin/campaigns/{id}/annual"),
        format!("/api/v1/admin/campaigns/{id}/annual.csv"),
        format!("/api/v1/campaigns/{id}/audit/entries"),
    ] {
        call(Method::GET, &path, Some(&token), None).await;
    }
    let log = server.output();
    for phone in phones.iter().chain(&["1391234567"]) {
        assert!(!log.contains(phone), "the log holds {phone}");
        assert!(!seen.contains(phone), "an answer holds {phone}");
    }
    // Nor does the database, in clear (its file and its write-ahead log).
    let mut db = std::fs::read(dir.path().join("m.db")).unwrap();
    db.extend(std::fs::read(dir.path().join("m.db-wal")).unwrap_or_default());
    let db = String::from_utf8_lossy(&db);
    assert!(db.contains("survey_records"));
    assert!(phones.iter().all(|p| !db.contains(p)));
}
