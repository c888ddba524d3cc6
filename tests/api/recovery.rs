//! The counters are not the record: they are rebuilt from the ledger when lost.

use std::process::Command;

use redis::AsyncCommands;

use crate::ballots::{assert_counts_match_ledger, ballot, rules, voting_campaign};
use crate::helpers::*;

async fn redis_conn() -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis_url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// Deletes every key of the app's deployment, as a Redis restart without persistence would.
async fn flush(app: &TestApp) {
    let mut c = redis_conn().await;
    let keys: Vec<String> = c.keys(format!("{}:*", app.redis_prefix)).await.unwrap();
    if !keys.is_empty() {
        let _: () = c.del(keys).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flushed_redis_is_rebuilt_exactly_before_the_next_ballot() {
    let app = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(3, 1, 3, "live"), 4).await;
    let full = app.dev_citizen("oFull").await;
    let partial = app.dev_citizen("oPartial").await;
    assert_eq!(
        ballot(&app, &id, &full, &[&c[0], &c[1], &c[2]], None)
            .await
            .status,
        201
    );
    assert_eq!(
        ballot(&app, &id, &partial, &[&c[0]], None).await.status,
        201
    );
    flush(&app).await;

    // The day's quotas came back from the ledger: the first voter is still at the limit,
    // the second may not vote for c0 again but may for others.
    ballot(&app, &id, &full, &[&c[3]], None)
        .await
        .assert_error(429, "daily_quota_exhausted");
    ballot(&app, &id, &partial, &[&c[0]], None)
        .await
        .assert_error(429, "candidate_daily_limit");
    let ok = ballot(&app, &id, &partial, &[&c[1], &c[3]], None).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["remaining_today"], 0);
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 6);
    // The leaderboard also rebuilds before it reads.
    flush(&app).await;
    let board = app
        .get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await;
    assert_eq!(board.body["items"][0]["votes"], 2, "{}", board.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_embedded_service_rebuilds_its_memory_from_the_ledger() {
    let first = TestApp::spawn_with(Backend::Sqlite, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&first, rules(2, 1, 2, "live"), 2).await;
    let voter = first.dev_citizen("oRestart").await;
    assert_eq!(
        ballot(&first, &id, &voter, &[&c[0]], None).await.status,
        201
    );
    // A new process on the same file starts with empty memory.
    let second = TestApp::spawn_opts(
        Backend::Sqlite,
        TestOptions {
            overrides: &[("dev_login", "true")],
            database_url: Some(first.database_url.clone()),
            redis_url: None,
            redis_prefix: None,
            clock: None,
        },
    )
    .await;
    assert!(
        !second
            .services
            .counters
            .is_ready(id.parse().unwrap())
            .await
            .unwrap()
    );
    let list = second
        .get(&format!("/api/v1/campaigns/{id}/candidates"), None)
        .await;
    assert_eq!(list.body["items"][0]["votes"], 1, "{}", list.text);
    ballot(&second, &id, &voter, &[&c[0]], None)
        .await
        .assert_error(429, "candidate_daily_limit");
    let ok = ballot(&second, &id, &voter, &[&c[1]], None).await;
    assert_eq!(ok.body["remaining_today"], 0, "{}", ok.text);
    assert_counts_match_ledger(&second, &id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_prints_the_difference_and_repairs_it() {
    let app = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(3, 1, 3, "live"), 2).await;
    let voter = app.dev_citizen("oReconcile").await;
    assert_eq!(
        ballot(&app, &id, &voter, &[&c[0], &c[1]], None)
            .await
            .status,
        201
    );
    // Someone bumps a live count behind the ledger's back.
    let mut conn = redis_conn().await;
    let _: i64 = conn
        .hincr(
            format!("{}:{{c{id}}}:votes", app.redis_prefix),
            c[1].parse::<i64>().unwrap(),
            40,
        )
        .await
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minyi"))
        .args(["reconcile", "--campaign", &id])
        .env_clear()
        .env("DATABASE_URL", &app.database_url)
        .env("REDIS_URL", redis_url())
        .env("MINYI_REDIS_PREFIX", &app.redis_prefix)
        .env("MINYI_SECRET", TEST_SECRET)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains(&format!("candidate {}: live 41, ledger 1", c[1])),
        "{text}"
    );
    assert!(text.contains("1 difference(s) found"), "{text}");
    assert_counts_match_ledger(&app, &id).await;
}
