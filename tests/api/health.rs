use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    live_and_ready_answer_when_everything_is_up,
    metrics_count_requests_by_route_and_status
);

async fn live_and_ready_answer_when_everything_is_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let live = app.get("/health/live", None).await;
    assert_eq!(live.status, 200);
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let expected = if backend == Backend::Postgres {
        "redis"
    } else {
        "memory"
    };
    assert_eq!(ready.body["counters"], expected);
    assert!(ready.headers.contains_key("x-request-id"));
}

async fn metrics_count_requests_by_route_and_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..3 {
        app.get("/api/v1/campaigns/999999", None).await;
    }
    let m = app.get("/metrics", None).await;
    assert_eq!(m.status, 200);
    assert!(
        m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    // The recorder is shared by every app in this test process, so look for at least ours.
    let line = m
        .text
        .lines()
        .find(|l| {
            l.starts_with("http_requests_total{")
                && l.contains("route=\"/api/v1/campaigns/{campaign_id}\"")
                && l.contains("status=\"404\"")
        })
        .unwrap_or_else(|| panic!("no counter line in:\n{}", m.text));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 3.0, "{line}");
    assert!(
        m.text.contains("http_request_duration_seconds_bucket{"),
        "a latency histogram"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_naming_redis_when_redis_does_not_answer() {
    let app = TestApp::spawn_opts(
        Backend::Postgres,
        TestOptions {
            overrides: &[],
            database_url: None,
            redis_url: Some("redis://127.0.0.1:1".into()),
        },
    )
    .await;
    let r = app.get("/health/ready", None).await;
    r.assert_error(503, "unavailable");
    assert_eq!(r.body["error"]["part"], "counters");
    assert!(r.headers.contains_key("retry-after"));
    // Liveness is about the process, not its dependencies.
    assert_eq!(app.get("/health/live", None).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_turns_503_when_redis_goes_away_and_recovers_when_it_returns() {
    let proxy = CuttableProxy::start("127.0.0.1:6379").await;
    let app = TestApp::spawn_opts(
        Backend::Postgres,
        TestOptions {
            overrides: &[],
            database_url: None,
            redis_url: Some(format!("redis://127.0.0.1:{}", proxy.port)),
        },
    )
    .await;
    assert_eq!(app.get("/health/ready", None).await.status, 200);
    proxy.cut();
    let r = app.get("/health/ready", None).await;
    r.assert_error(503, "unavailable");
    assert_eq!(r.body["error"]["part"], "counters");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_is_503_naming_the_database_when_postgres_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let real = fresh_database(Backend::Postgres, &dir).await;
    let proxy = CuttableProxy::start("127.0.0.1:5432").await;
    let via_proxy = real.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let app = TestApp::spawn_opts(
        Backend::Postgres,
        TestOptions {
            overrides: &[],
            database_url: Some(via_proxy),
            redis_url: None,
        },
    )
    .await;
    assert_eq!(app.get("/health/ready", None).await.status, 200);
    proxy.cut();
    let r = app.get("/health/ready", None).await;
    r.assert_error(503, "unavailable");
    assert_eq!(r.body["error"]["part"], "database");
    // A request that needs the database answers 503 too, never a silent success.
    let r = app.get("/api/v1/campaigns", None).await;
    r.assert_error(503, "unavailable");
}
