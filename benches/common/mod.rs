//! What the benchmarks that drive the real binary share: starting `minyi serve` as a child
//! process on a fresh database, the staff account and its login, and a JSON POST helper.
//! Each bench uses only part of it.
#![allow(dead_code)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const SECRET: &str = "bench-secret-bench-secret-bench-secret-01";
const STAFF_USER: &str = "bench.admin";
const STAFF_PASSWORD: &str = "bench-admin-password";

pub struct Service {
    pub child: Child,
    pub base: String,
}

impl Service {
    /// Starts the release binary on `port` with dev login on, every rate limit off unless
    /// `env` says otherwise (it is applied last), and waits until it accepts connections.
    pub fn start(env: &[(&str, String)], port: u16) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_minyi"));
        cmd.args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("MINYI_DEV_LOGIN", "1")
            .env("MINYI_LOG_LEVEL", "error")
            // Many connections from one address, voters casting as fast as they can: unless
            // a bench says otherwise, the limits are not what is measured.
            .env("MINYI_RATE_LOGIN_PER_IP", "off")
            .env("MINYI_RATE_BALLOTS_PER_IP", "off")
            .env("MINYI_RATE_BALLOTS_PER_VOTER", "off")
            .env("MINYI_RATE_READS_PER_IP", "off")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start minyi");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "minyi did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Peak resident memory (VmHWM) of the service, in MB.
    pub fn peak_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// POSTs `body` as JSON; a connection error is status 0.
pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
    token: Option<&str>,
) -> (u16, Value) {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or(Value::Null))
        }
        Err(_) => (0, Value::Null),
    }
}

/// The environment of a fresh database for `backend` (`postgres` or `sqlite`).
pub fn backend_env(backend: &str) -> Vec<(&'static str, String)> {
    backend_env_tagged(backend, "")
}

/// Like `backend_env`, for one of several services of one run: `tag` names its own database
/// (and Redis prefix), so that the services' campaigns and counters never mix.
pub fn backend_env_tagged(backend: &str, tag: &str) -> Vec<(&'static str, String)> {
    let run = format!("{}{tag}", std::process::id());
    match backend {
        "postgres" => {
            let admin = std::env::var("TEST_PG_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
            let name = format!("minyi_bench_{run}");
            let ok = Command::new("psql")
                .args([
                    &admin,
                    "-qc",
                    &format!("DROP DATABASE IF EXISTS {name}"),
                    "-c",
                    &format!("CREATE DATABASE {name}"),
                ])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            assert!(ok, "could not create the benchmark database with psql");
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin);
            vec![
                ("DATABASE_URL", format!("{base}/{name}")),
                (
                    "REDIS_URL",
                    std::env::var("TEST_REDIS_URL")
                        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
                ),
                ("MINYI_REDIS_PREFIX", format!("bench{run}")),
                ("MINYI_SECRET", SECRET.into()),
                ("MINYI_DB_MAX_CONNECTIONS", "16".into()),
            ]
        }
        _ => {
            let path = std::env::temp_dir().join(format!("minyi-bench-{run}.db"));
            let _ = std::fs::remove_file(&path);
            vec![
                ("DATABASE_URL", format!("sqlite:{}", path.display())),
                ("MINYI_SECRET", SECRET.into()),
            ]
        }
    }
}

/// Creates the benchmark's admin account with `minyi admin create-user`.
pub fn create_staff(env: &[(&str, String)]) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_minyi"));
    cmd.args([
        "admin",
        "create-user",
        "--username",
        STAFF_USER,
        "--role",
        "admin",
    ])
    .env_clear()
    .stdin(Stdio::piped())
    .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    writeln!(child.stdin.take().unwrap(), "{STAFF_PASSWORD}").unwrap();
    assert!(
        child.wait().unwrap().success(),
        "create the benchmark admin"
    );
}

/// The staff token of the account `create_staff` made.
pub async fn staff_login(client: &reqwest::Client, base: &str) -> String {
    let (_, login) = post(
        client,
        format!("{base}/api/v1/admin/login"),
        json!({"username": STAFF_USER, "password": STAFF_PASSWORD}),
        None,
    )
    .await;
    login["token"].as_str().expect("staff login").to_string()
}

/// Removes the benchmark's PostgreSQL database (the SQLite file is in the temp directory).
pub fn drop_database(env: &[(&str, String)]) {
    let Some((_, url)) = env
        .iter()
        .find(|(k, v)| *k == "DATABASE_URL" && v.starts_with("postgres"))
    else {
        return;
    };
    let Some((base, name)) = url.rsplit_once('/') else {
        return;
    };
    let admin = std::env::var("TEST_PG_URL").unwrap_or_else(|_| format!("{base}/test"));
    let _ = Command::new("psql")
        .args([
            &admin,
            "-qc",
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        ])
        .status();
}
