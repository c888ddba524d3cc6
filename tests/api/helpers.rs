//! Test harness: starts the real application on a random port against a fresh database and a
//! fresh Redis key prefix, so tests run in parallel. Every behaviour test runs on both
//! deployments: PostgreSQL + Redis, and SQLite + memory.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use minyi::app::staff_auth;
use minyi::config::Settings;
use minyi::domain::staff::Role;
use minyi::startup::Application;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Generates, for each named `async fn name(backend: Backend)`, a module `name` with one test
/// per deployment.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres_redis() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite_memory() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
        }
    )*};
}

pub const TEST_SECRET: &str = "test-secret-test-secret-test-secret-0001";

/// The PostgreSQL server tests create their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// A fresh, empty database for one test; returns its URL.
pub async fn fresh_database(backend: Backend, dir: &tempfile::TempDir) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite:{}", dir.path().join("test.db").display()),
        Backend::Postgres => {
            use sqlx::Connection;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs();
            let name = format!(
                "minyi_t_{now}_{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            );
            let mut conn = sqlx::PgConnection::connect(&pg_admin_url())
                .await
                .expect("PostgreSQL answers");
            drop_stale_databases(&mut conn, now).await;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&mut conn)
                .await
                .expect("create test database");
            let admin = pg_admin_url();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
    }
}

/// Drops test databases left by runs more than two hours old (once per test process), so
/// that a developer's server does not fill up with them.
async fn drop_stale_databases(conn: &mut sqlx::PgConnection, now: u64) {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ONCE.get_or_init(|| async {
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'minyi\\_t\\_%'",
        )
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
        for name in names {
            let created: u64 = name
                .split('_')
                .nth(2)
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            if created + 7200 < now {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut *conn)
                .await;
            }
        }
    })
    .await;
}

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub redis_prefix: String,
    pub client: reqwest::Client,
    pub services: minyi::app::Services,
    pub wechat: FakeWechat,
    pub dir: tempfile::TempDir,
    _server: JoinHandle<std::io::Result<()>>,
}

pub struct TestOptions<'a> {
    pub overrides: &'a [(&'a str, &'a str)],
    /// Point the database URL elsewhere (a cuttable proxy, say).
    pub database_url: Option<String>,
    pub redis_url: Option<String>,
    /// Share another app's Redis keys (a second instance of one deployment).
    pub redis_prefix: Option<String>,
    /// Another clock for the vote path.
    pub clock: Option<minyi::app::Clock>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, &[]).await
    }

    pub async fn spawn_with(backend: Backend, overrides: &[(&str, &str)]) -> Self {
        Self::spawn_opts(
            backend,
            TestOptions {
                overrides,
                database_url: None,
                redis_url: None,
                redis_prefix: None,
                clock: None,
            },
        )
        .await
    }

    pub async fn spawn_opts(backend: Backend, opts: TestOptions<'_>) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let wechat = FakeWechat::start().await;
        let database_url = match opts.database_url {
            Some(u) => u,
            None => fresh_database(backend, &dir).await,
        };
        let prefix = opts.redis_prefix.unwrap_or_else(|| unique("t"));
        let mut pairs: Vec<(String, String)> = vec![
            ("bind".into(), "127.0.0.1:0".into()),
            ("database_url".into(), database_url),
            ("secret".into(), TEST_SECRET.into()),
            ("redis_prefix".into(), prefix),
            ("wechat_appid".into(), FAKE_APPID.into()),
            ("wechat_secret".into(), FAKE_APP_SECRET.into()),
            ("wechat_api_base".into(), wechat.base_url()),
            ("wechat_timeout_ms".into(), "800".into()),
            ("workers".into(), "2".into()),
            ("db_max_connections".into(), "8".into()),
            ("log_level".into(), "warn".into()),
            // Every test client is 127.0.0.1: the limits are off unless a test is about them.
            ("rate_login_per_ip".into(), "off".into()),
            ("rate_ballots_per_ip".into(), "off".into()),
            ("rate_ballots_per_voter".into(), "off".into()),
            ("rate_reads_per_ip".into(), "off".into()),
            ("rate_objections_per_ip".into(), "off".into()),
        ];
        if backend == Backend::Postgres {
            pairs.push(("redis_url".into(), opts.redis_url.unwrap_or_else(redis_url)));
        } else if let Some(r) = opts.redis_url {
            pairs.push(("redis_url".into(), r));
        }
        for (k, v) in opts.overrides {
            pairs.retain(|(key, _)| key != k);
            pairs.push((k.to_string(), v.to_string()));
        }
        let database_url = pairs
            .iter()
            .find(|(k, _)| k == "database_url")
            .map(|(_, v)| v.clone())
            .unwrap();
        let redis_prefix = pairs
            .iter()
            .find(|(k, _)| k == "redis_prefix")
            .map(|(_, v)| v.clone())
            .unwrap();
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let settings = Settings::from_pairs(&borrowed).expect("test settings are valid");
        let app = Application::build_with_clock(settings, opts.clock)
            .await
            .expect("the application starts");
        let port = app.port();
        let services = app.services().clone();
        let server = tokio::spawn(app.run_until_stopped());
        Self {
            address: format!("http://127.0.0.1:{port}"),
            database_url,
            redis_prefix,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                // Below the server's 5 s keep-alive, so a pooled connection is never reused just as
                // the server closes it (which reads as an incomplete message).
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            services,
            wechat,
            dir,
            _server: server,
        }
    }

    /// Another instance of the same PostgreSQL + Redis deployment: same database, same Redis
    /// keys.
    pub async fn second_instance(&self, overrides: &[(&str, &str)]) -> TestApp {
        TestApp::spawn_opts(
            Backend::Postgres,
            TestOptions {
                overrides,
                database_url: Some(self.database_url.clone()),
                redis_url: None,
                redis_prefix: Some(self.redis_prefix.clone()),
                clock: None,
            },
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.send(reqwest::Method::POST, path, body, token).await
    }

    pub async fn patch(&self, path: &str, body: &Value, token: Option<&str>) -> Reply {
        self.send(reqwest::Method::PATCH, path, body, token).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Reply::from(req.send().await.expect("request sent")).await
    }

    /// Creates a staff account directly (as `minyi admin create-user` does) and logs it in.
    pub async fn staff(&self, username: &str, role: Role) -> String {
        let unit = (role == Role::UnitHandler).then_some("示例市人民医院");
        self.staff_with(username, role, unit).await.1
    }

    /// A staff account of a unit (or none), logged in: its id and token.
    pub async fn staff_with(
        &self,
        username: &str,
        role: Role,
        unit: Option<&str>,
    ) -> (i64, String) {
        let password = format!("{username}-password-123");
        let id = staff_auth::create_user(
            self.services.store.as_ref(),
            username,
            &password,
            role,
            unit,
        )
        .await
        .expect("create staff user");
        let r = self
            .post(
                "/api/v1/admin/login",
                &serde_json::json!({"username": username, "password": password}),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        (id, r.body["token"].as_str().unwrap().to_string())
    }

    /// A rater account of a staff group (read-only `auditor`, as `--rater-group` makes it).
    pub async fn rater(&self, username: &str, group: minyi::domain::rating::RaterGroup) -> String {
        let (id, token) = self.staff_with(username, Role::Auditor, None).await;
        self.services
            .store
            .set_rater_group(id, Some(group))
            .await
            .expect("make a rater");
        token
    }

    /// Sends a CSV file as an upload.
    pub async fn upload(&self, path: &str, bytes: Vec<u8>, token: &str) -> Reply {
        let req = self
            .client
            .post(self.url(path))
            .header("content-type", "text/csv")
            .body(bytes)
            .bearer_auth(token);
        Reply::from(req.send().await.expect("request sent")).await
    }

    /// Runs SQL directly on the test database, behind the service's back (tamper tests).
    pub async fn raw_sql(&self, sql: &str) {
        use sqlx::Connection;
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        if self.database_url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        } else {
            let mut c = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        }
    }

    /// Rows of a query whose columns are all text (NULL read as ""), straight from the
    /// database.
    pub async fn raw_sql_rows(&self, sql: &str) -> Vec<Vec<String>> {
        use sqlx::{Connection, Row};
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        let text = |v: Option<String>| v.unwrap_or_default();
        if self.database_url.starts_with("sqlite:") {
            let mut c = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
            rows.iter()
                .map(|r| (0..r.len()).map(|i| text(r.get(i))).collect())
                .collect()
        } else {
            let mut c = sqlx::PgConnection::connect(&self.database_url)
                .await
                .unwrap();
            let rows = sqlx::query(sql).fetch_all(&mut c).await.unwrap();
            rows.iter()
                .map(|r| (0..r.len()).map(|i| text(r.get(i))).collect())
                .collect()
        }
    }

    /// Creates a selection campaign through the API with one category; returns (campaign id,
    /// category id).
    pub async fn selection_campaign(&self, token: &str, show_counts: &str) -> (String, String) {
        let now = chrono::Utc::now();
        let r = self
            .post(
                "/api/v1/admin/campaigns",
                &serde_json::json!({
                    "kind": "selection",
                    "title": "2026年度最美护士评选",
                    "phases": [
                        {"phase": "nomination", "starts_at": now - chrono::Duration::days(3), "ends_at": now - chrono::Duration::days(1)},
                        {"phase": "voting", "starts_at": now - chrono::Duration::days(1), "ends_at": now + chrono::Duration::days(5)},
                    ],
                    "rules": {"votes_per_day": 5, "votes_per_candidate_per_day": 1, "max_candidates_per_ballot": 5,
                              "votes_per_campaign": null, "show_counts": show_counts},
                }),
                Some(token),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let id = r.body["id"].as_str().unwrap().to_string();
        let c = self
            .post(
                &format!("/api/v1/admin/campaigns/{id}/categories"),
                &serde_json::json!({"name": "护士", "winners": 10}),
                Some(token),
            )
            .await;
        assert_eq!(c.status, 201, "{}", c.text);
        (id, c.body["id"].as_str().unwrap().to_string())
    }

    /// The campaign's entries, read as staff.
    pub async fn entries(&self, campaign: &str, token: &str) -> Vec<Value> {
        chain_entries(&self.client, &self.address, campaign, token).await
    }

    /// Tokens of `n` dev voters (`{prefix}0`, `{prefix}1`, …), logged in 64 at a time.
    pub async fn dev_citizens(&self, prefix: &str, n: usize) -> Vec<String> {
        use futures_util::StreamExt;
        futures_util::stream::iter(0..n)
            .map(|i| async move { self.dev_citizen(&format!("{prefix}{i}")).await })
            .buffered(64)
            .collect()
            .await
    }

    pub async fn dev_citizen(&self, openid: &str) -> String {
        let r = self
            .post(
                "/api/v1/auth/dev",
                &serde_json::json!({"openid": openid}),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.body["token"].as_str().unwrap().to_string()
    }
}

/// A response read whole: status, headers, and the body as JSON (or a string).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        Self {
            status,
            headers,
            body,
            text,
        }
    }

    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// Asserts the contract's error shape, status and code; returns the message.
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", self.text);
        assert_eq!(self.code(), code, "body: {}", self.text);
        let message = self.body["error"]["message"]
            .as_str()
            .expect("a message")
            .to_string();
        assert!(
            message
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)),
            "message in Chinese: {message}"
        );
        assert!(
            self.headers
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "JSON error"
        );
        message
    }
}

pub const FAKE_APPID: &str = "wx-test-appid";
pub const FAKE_APP_SECRET: &str = "fake-app-secret-value";

/// A local stand-in for WeChat's `jscode2session`, speaking its documented protocol: HTTP 200
/// always, JSON with `openid`/`session_key` or `errcode`/`errmsg`, codes usable once.
///
/// Codes the fake understands: `ok:<openid>` (success), `invalid` (40029), `ratelimit`
/// (45011), `risky` (40226), `busy` (-1), `slow:<openid>` (answers after 1.5 s), and
/// `delay:<ms>:<openid>`.
pub struct FakeWechat {
    pub addr: SocketAddr,
    pub calls: Arc<AtomicUsize>,
    _task: JoinHandle<()>,
}

impl FakeWechat {
    pub async fn start() -> Self {
        use actix_web::{App, HttpResponse, HttpServer, web};
        use std::collections::HashSet;
        use std::sync::Mutex;

        let calls = Arc::new(AtomicUsize::new(0));
        let used: Arc<Mutex<HashSet<String>>> = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let calls2 = calls.clone();
        let server = HttpServer::new(move || {
            let calls = calls2.clone();
            let used = used.clone();
            App::new().route(
                "/sns/jscode2session",
                web::get().to(move |q: web::Query<std::collections::HashMap<String, String>>| {
                    let calls = calls.clone();
                    let used = used.clone();
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let err = |code: i64, msg: &str| {
                            HttpResponse::Ok()
                                .content_type("text/plain")
                                .body(serde_json::json!({"errcode": code, "errmsg": msg}).to_string())
                        };
                        if q.get("appid").map(String::as_str) != Some(FAKE_APPID)
                            || q.get("secret").map(String::as_str) != Some(FAKE_APP_SECRET)
                        {
                            return err(40125, "invalid appsecret");
                        }
                        if q.get("grant_type").map(String::as_str) != Some("authorization_code") {
                            return err(40002, "invalid grant_type");
                        }
                        let code = q.get("js_code").cloned().unwrap_or_default();
                        if !used.lock().unwrap().insert(code.clone()) {
                            return err(40163, "code been used");
                        }
                        let openid = if let Some(o) = code.strip_prefix("ok:") {
                            o.to_string()
                        } else if let Some(o) = code.strip_prefix("slow:") {
                            tokio::time::sleep(Duration::from_millis(1500)).await;
                            o.to_string()
                        } else if let Some(rest) = code.strip_prefix("delay:") {
                            let (ms, o) = rest.split_once(':').unwrap();
                            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap())).await;
                            o.to_string()
                        } else {
                            return match code.as_str() {
                                "ratelimit" => err(45011, "api minute-quota reach limit"),
                                "risky" => err(40226, "high risk user"),
                                "busy" => err(-1, "system error"),
                                _ => err(40029, "invalid code"),
                            };
                        };
                        HttpResponse::Ok().content_type("text/plain").body(
                            serde_json::json!({"openid": openid, "session_key": format!("sk-{openid}")}).to_string(),
                        )
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let task = tokio::spawn(async move {
            let _ = server.await;
        });
        Self {
            addr,
            calls,
            _task: task,
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A TCP forwarder that a test can cut, to make a real backing service unreachable mid-test.
pub struct CuttableProxy {
    pub port: u16,
    task: JoinHandle<()>,
    conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>>,
}

impl CuttableProxy {
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = upstream.to_string();
        let conns: Arc<std::sync::Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let conns2 = conns.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let handle = tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                conns2.lock().unwrap().push(handle);
            }
        });
        Self { port, task, conns }
    }

    /// Stops accepting and drops every open connection.
    pub fn cut(&self) {
        self.task.abort();
        for c in self.conns.lock().unwrap().drain(..) {
            c.abort();
        }
    }
}

impl Drop for CuttableProxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// Every entry of a campaign's chain from the service at `base`, read as staff page by page.
pub async fn chain_entries(
    client: &reqwest::Client,
    base: &str,
    campaign: &str,
    token: &str,
) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let r = client
            .get(format!(
                "{base}/api/v1/campaigns/{campaign}/audit/entries?after_seq={after}&limit=1000"
            ))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let r = Reply::from(r).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let items = r.body["items"].as_array().unwrap().clone();
        let Some(last) = items.last() else {
            return all;
        };
        after = last["seq"].as_i64().unwrap();
        all.extend(items);
    }
}

/// Collects a child's stdout and stderr line by line, as it prints them.
pub fn capture_output(child: &mut std::process::Child) -> Arc<std::sync::Mutex<Vec<String>>> {
    use std::io::BufRead;
    let lines: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                lines.lock().unwrap().push(line);
            }
        });
    }
    lines
}
