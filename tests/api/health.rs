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
            redis_prefix: None,
            clock: None,
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
            redis_prefix: None,
            clock: None,
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
            redis_prefix: None,
            clock: None,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("dev_login", "true")]).await;
    let doc = app.get("/api/v1/openapi.json", None).await;
    assert_eq!(doc.status, 200);
    let paths = doc.body["paths"].as_object().unwrap();
    let expected = [
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/metrics", "get"),
        ("/api/v1/openapi.json", "get"),
        ("/api/v1/auth/wechat", "post"),
        ("/api/v1/auth/dev", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/campaigns", "get"),
        ("/api/v1/campaigns/{campaign_id}", "get"),
        ("/api/v1/campaigns/{campaign_id}/candidates", "get"),
        (
            "/api/v1/campaigns/{campaign_id}/candidates/{candidate_id}",
            "get",
        ),
        ("/api/v1/campaigns/{campaign_id}/targets", "get"),
        ("/api/v1/campaigns/{campaign_id}/ballots", "post"),
        ("/api/v1/campaigns/{campaign_id}/leaderboard", "get"),
        ("/api/v1/receipts/{receipt}", "get"),
        ("/api/v1/me/ballots", "get"),
        ("/api/v1/campaigns/{campaign_id}/challenge", "get"),
        ("/api/v1/campaigns/{campaign_id}/audit/head", "get"),
        ("/api/v1/campaigns/{campaign_id}/audit/entries", "get"),
        ("/api/v1/campaigns/{campaign_id}/audit/export", "get"),
        ("/api/v1/admin/login", "post"),
        ("/api/v1/admin/logout", "post"),
        ("/api/v1/admin/me", "get"),
        ("/api/v1/admin/users", "get"),
        ("/api/v1/admin/campaigns", "post"),
        ("/api/v1/admin/campaigns", "get"),
        ("/api/v1/admin/campaigns/{campaign_id}", "get"),
        ("/api/v1/admin/campaigns/{campaign_id}", "patch"),
        ("/api/v1/admin/campaigns/{campaign_id}/open", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/categories", "post"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/categories/{category_id}",
            "patch",
        ),
        ("/api/v1/admin/campaigns/{campaign_id}/candidates", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/candidates", "get"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/candidates/import",
            "post",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/candidates/{candidate_id}/approve",
            "post",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/candidates/{candidate_id}/reject",
            "post",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/candidates/{candidate_id}/withdraw",
            "post",
        ),
        ("/api/v1/admin/campaigns/{campaign_id}/targets", "post"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/targets/import",
            "post",
        ),
        ("/api/v1/admin/campaigns/{campaign_id}/blocks", "get"),
        ("/api/v1/admin/campaigns/{campaign_id}/blocks", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/blocks/lift", "post"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/review/clusters",
            "get",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/review/decisions",
            "post",
        ),
        ("/api/v1/campaigns/{campaign_id}/ratings", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/ratings", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/scores", "get"),
        ("/api/v1/admin/campaigns/{campaign_id}/scores.csv", "get"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/annual/components",
            "post",
        ),
        ("/api/v1/admin/campaigns/{campaign_id}/annual", "get"),
        ("/api/v1/admin/campaigns/{campaign_id}/annual.csv", "get"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/survey-records",
            "post",
        ),
        ("/api/v1/surveys/{token}", "post"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/survey-records/import",
            "post",
        ),
        ("/s/{token}", "get"),
        ("/api/v1/admin/opinions", "get"),
        ("/api/v1/admin/opinions/{opinion_id}/answer", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/experts", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/experts", "get"),
        ("/api/v1/admin/campaigns/{campaign_id}/expert/sheet", "get"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/expert/scores",
            "post",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/results/preview",
            "get",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/results/draft",
            "post",
        ),
        (
            "/api/v1/admin/campaigns/{campaign_id}/results/publish",
            "post",
        ),
        ("/api/v1/campaigns/{campaign_id}/results", "get"),
        ("/api/v1/campaigns/{campaign_id}/results/draft", "get"),
        ("/api/v1/campaigns/{campaign_id}/results.csv", "get"),
        ("/api/v1/campaigns/{campaign_id}/objections", "post"),
        ("/api/v1/admin/campaigns/{campaign_id}/objections", "get"),
        (
            "/api/v1/admin/campaigns/{campaign_id}/objections/{objection_id}/answer",
            "post",
        ),
        ("/campaigns/{campaign_id}/results", "get"),
    ];
    for (path, method) in expected {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not described"
        );
    }
    let described: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        described,
        expected.len(),
        "a route in the document that this list does not know"
    );
    assert!(doc.body["components"]["securitySchemes"]["staff"].is_object());
}
