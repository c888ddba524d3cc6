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

crate::on_both_backends!(live_counts_recounted_while_ballots_race_stay_exact);

/// A recount reads the ledger at one moment and writes the counts at a later one; batches
/// counted in between must be neither lost nor counted twice. Recount over and over while
/// a thousand voters race.
async fn live_counts_recounted_while_ballots_race_stay_exact(backend: Backend) {
    use futures_util::StreamExt;
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("db_max_connections", "16")],
    )
    .await;
    let (id, cands, _) = voting_campaign(&app, rules(5, 1, 1, "live"), 10).await;
    let campaign: i64 = id.parse().unwrap();
    let tokens = app.dev_citizens("oRecount", 1000).await;
    let done = std::sync::atomic::AtomicBool::new(false);
    let recounts = async {
        let mut n = 0;
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            minyi::app::recount::recount_live(&app.services, campaign)
                .await
                .unwrap();
            n += 1;
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        n
    };
    let voting = async {
        let replies: Vec<Reply> = futures_util::stream::iter(tokens.iter().enumerate())
            .map(|(i, t)| {
                let (app, id, pick) = (&app, &id, [&cands[i % 10]]);
                async move { ballot(app, id, t, &pick, None).await }
            })
            .buffer_unordered(64)
            .collect()
            .await;
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        replies
    };
    let (n, replies) = tokio::join!(recounts, voting);
    assert!(n >= 5, "only {n} recounts ran during the race");
    assert!(replies.iter().all(|r| r.status == 201));
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 1000);
    assert!(ledger.values().all(|v| *v == 100), "{ledger:?}");
}

/// An instance that crashed between its commit and its counting left ballots on the record
/// that no live count holds; the next instance to start recounts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_starting_instance_counts_ballots_a_crashed_one_never_counted() {
    let a = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&a, rules(5, 5, 1, "live"), 2).await;
    let campaign: i64 = id.parse().unwrap();
    let voter = a.dev_citizen("oCounted").await;
    assert_eq!(ballot(&a, &id, &voter, &[&c[0]], None).await.status, 201);
    // Straight into the ledger, as the crashed instance left them: committed, never counted.
    let now = chrono::Utc::now();
    let lost: Vec<minyi::store::NewBallot> = (0..3)
        .map(|i| minyi::store::NewBallot {
            campaign_id: campaign,
            voter_id: format!("{:032x}", i + 1),
            candidate_ids: vec![c[1].parse().unwrap()],
            idempotency_key: None,
            request_hash: "lost".into(),
            remaining_today: 4,
            cast_at: now,
            quota_day: now.date_naive(),
            status: "counted",
            flags: Vec::new(),
            device_hash: None,
            ip_hash: None,
            network_hash: None,
            checked_version: None,
        })
        .collect();
    let recorded = a.services.store.record_ballots(&lost).await.unwrap();
    assert!(recorded.iter().all(|r| r.is_ok()));
    let live = a.services.counters.votes(campaign).await.unwrap();
    assert_eq!(live.get(&c[1].parse::<i64>().unwrap()), None);

    let b = a.second_instance(&[("dev_login", "true")]).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let live = b.services.counters.votes(campaign).await.unwrap();
        if live.get(&c[1].parse::<i64>().unwrap()) == Some(&3) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not recounted: {live:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let ledger = assert_counts_match_ledger(&b, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 4);
}
