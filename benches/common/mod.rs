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
        let mut cmd = Command::new(binary());
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
        // Settings given to the benchmark itself reach the service (to try one), below what
        // the benchmark sets for its own purpose.
        for (k, v) in std::env::vars() {
            if k.starts_with("MINYI_") && k != "MINYI_BENCH_BIN" {
                cmd.env(k, v);
            }
        }
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

/// The binary the benchmarks start: this build's, or the one `MINYI_BENCH_BIN` names (to
/// compare two builds on the same machine at the same time).
pub fn binary() -> String {
    std::env::var("MINYI_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_minyi").into())
}

/// CPU seconds used so far by the service (`service`, its pid), by this process (the load
/// generator), and by every PostgreSQL and every Redis process on the machine, from `/proc`
/// (user and system time, in the kernel's 1/100 s ticks).
pub fn cpu_seconds(service: u32) -> CpuSeconds {
    let ticks = |stat: &str| -> Option<(String, f64)> {
        let comm = &stat[stat.find('(')? + 1..stat.rfind(')')?];
        let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split_whitespace().collect();
        let t = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some((comm.to_string(), t / 100.0))
    };
    let mine = std::process::id();
    let mut cpu = CpuSeconds::default();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let Some((comm, t)) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| ticks(&s))
        else {
            continue;
        };
        match () {
            _ if pid == service => cpu.service += t,
            _ if pid == mine => cpu.generator += t,
            _ if comm.starts_with("postgres") => cpu.postgres += t,
            _ if comm.starts_with("redis-server") => cpu.redis += t,
            _ => {}
        }
    }
    cpu
}

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuSeconds {
    pub service: f64,
    pub generator: f64,
    pub postgres: f64,
    pub redis: f64,
}

impl CpuSeconds {
    /// Adds what each process spent between `before` and `after`.
    pub fn add_between(&mut self, before: &CpuSeconds, after: &CpuSeconds) {
        self.service += after.service - before.service;
        self.generator += after.generator - before.generator;
        self.postgres += after.postgres - before.postgres;
        self.redis += after.redis - before.redis;
    }

    /// Microseconds of CPU per request, by process, between `self` and a later reading.
    pub fn per_request(&self, later: &CpuSeconds, requests: u64) -> String {
        let per = |a: f64, b: f64| (b - a) * 1e6 / requests.max(1) as f64;
        format!(
            "service {:.0}, load generator {:.0}, PostgreSQL {:.0}, Redis {:.0}",
            per(self.service, later.service),
            per(self.generator, later.generator),
            per(self.postgres, later.postgres),
            per(self.redis, later.redis)
        )
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
    let mut cmd = Command::new(binary());
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

/// Removes the benchmark's database: its PostgreSQL database, or its SQLite file with the
/// write-ahead log beside it (a gigabyte after a load run).
pub fn drop_database(env: &[(&str, String)]) {
    let Some((_, url)) = env.iter().find(|(k, _)| *k == "DATABASE_URL") else {
        return;
    };
    if let Some(path) = url.strip_prefix("sqlite:") {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
        return;
    }
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
