//! Rate limits at the door: per client address and route class, per voter, behind trusted
//! proxies, and across instances.

use std::collections::BTreeMap;

use serde_json::json;

use crate::ballots::{ballot, open_campaign_as, rules, voting_campaign};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    logins_from_one_address_are_limited_exactly,
    a_voter_casting_too_fast_is_limited_before_any_quota,
    a_voters_limit_counts_its_ballots_in_each_campaign,
    ballots_from_one_address_are_limited_exactly
);

/// The answers' statuses and codes, counted.
fn tally(replies: &[Reply]) -> BTreeMap<String, usize> {
    let mut t = BTreeMap::new();
    for r in replies {
        let key = match r.status {
            200 | 201 => r.status.to_string(),
            s => format!("{s} {}", r.code()),
        };
        *t.entry(key).or_default() += 1;
    }
    t
}

async fn logins_from_one_address_are_limited_exactly(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("rate_login_per_ip", "5/min")],
    )
    .await;
    let bodies: Vec<_> = (0..20)
        .map(|i| json!({"openid": format!("oFlood{i}")}))
        .collect();
    let replies: Vec<Reply> = futures_util::future::join_all(
        bodies
            .iter()
            .map(|body| app.post("/api/v1/auth/dev", body, None)),
    )
    .await;
    let t = tally(&replies);
    assert_eq!(t.get("200"), Some(&5), "{t:?}");
    assert_eq!(t.get("429 rate_limited"), Some(&15), "{t:?}");
    let refused = replies.iter().find(|r| r.status == 429).unwrap();
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // One login every 12 s at 5/min.
    assert!((1..=12).contains(&retry), "Retry-After {retry}");
    assert!(
        !refused.body["error"]["message"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    // Other route classes are not touched by the login limit.
    assert_eq!(app.get("/api/v1/campaigns", None).await.status, 200);
}

async fn a_voter_casting_too_fast_is_limited_before_any_quota(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("rate_ballots_per_voter", "3/min")],
    )
    .await;
    let (id, c, _) = voting_campaign(&app, rules(100, 100, 1, "live"), 1).await;
    let fast = app.dev_citizen("oFast").await;
    let pick = [&c[0]];
    let replies: Vec<Reply> =
        futures_util::future::join_all((0..20).map(|_| ballot(&app, &id, &fast, &pick, None)))
            .await;
    let t = tally(&replies);
    assert_eq!(t.get("201"), Some(&3), "{t:?}");
    assert_eq!(t.get("429 rate_limited"), Some(&17), "{t:?}");
    // Refused at the door: nothing counted, no quota taken.
    let last = ballot(&app, &id, &app.dev_citizen("oCalm").await, &pick, None).await;
    assert_eq!(last.body["remaining_today"], 99);
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 4);
}

/// The per-voter limit counts a voter's ballots in each campaign (with Redis its shared check
/// runs in the campaign's own script, whose keys share one Cluster shard).
async fn a_voters_limit_counts_its_ballots_in_each_campaign(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("rate_ballots_per_voter", "3/min")],
    )
    .await;
    let (first, c1, org) = voting_campaign(&app, rules(100, 100, 1, "live"), 1).await;
    let now = chrono::Utc::now();
    let body = json!({"kind": "selection", "title": "第二个投票", "rules": rules(100, 100, 1, "live"),
        "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}]});
    let (second, c2, _) = open_campaign_as(&app, org, body, 1).await;
    let voter = app.dev_citizen("oTwoCampaigns").await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(ballot(&app, &first, &voter, &[&c1[0]], None).await.status);
    }
    statuses.push(ballot(&app, &second, &voter, &[&c2[0]], None).await.status);
    assert_eq!(statuses, [201, 201, 201, 429, 201]);
}

/// Many voters behind one address (here every test client is 127.0.0.1), all at once: the
/// address limit lets exactly its burst through, and what it refuses counts nothing.
async fn ballots_from_one_address_are_limited_exactly(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("rate_ballots_per_ip", "5/min")],
    )
    .await;
    let (id, c, _) = voting_campaign(&app, rules(100, 100, 1, "live"), 1).await;
    let mut voters = Vec::new();
    for i in 0..20 {
        voters.push(app.dev_citizen(&format!("oShared{i}")).await);
    }
    let pick = [&c[0]];
    let replies: Vec<Reply> =
        futures_util::future::join_all(voters.iter().map(|v| ballot(&app, &id, v, &pick, None)))
            .await;
    let t = tally(&replies);
    assert_eq!(t.get("201"), Some(&5), "{t:?}");
    assert_eq!(t.get("429 rate_limited"), Some(&15), "{t:?}");
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 5);
}

/// With Redis, a ballot's address limit holds across instances: each instance's own limiter
/// lets its burst through, the shared one (checked in the ballot's step) only one burst in
/// all, and ballots refused before that step count against it too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ballots_address_limit_holds_across_instances() {
    let overrides = [("dev_login", "true"), ("rate_ballots_per_ip", "6/min")];
    let a = TestApp::spawn_with(Backend::Postgres, &overrides).await;
    let b = a.second_instance(&overrides).await;
    let (id, c, _) = voting_campaign(&a, rules(100, 100, 1, "live"), 1).await;
    let mut voters = Vec::new();
    for i in 0..16 {
        voters.push(a.dev_citizen(&format!("oTwoInstances{i}")).await);
    }
    // Two refused early (no such candidate) on each instance: they spend the address's
    // allowance as ballots do.
    let nobody = "999999".to_string();
    let mut early = Vec::new();
    for (i, v) in voters[..4].iter().enumerate() {
        let app = if i % 2 == 0 { &a } else { &b };
        early.push(ballot(app, &id, v, &[&nobody], None).await.status);
    }
    assert_eq!(early, [422, 422, 422, 422]);
    let pick = [&c[0]];
    let replies: Vec<Reply> =
        futures_util::future::join_all(voters[4..].iter().enumerate().map(|(i, v)| {
            let app = if i % 2 == 0 { &a } else { &b };
            ballot(app, &id, v, &pick, None)
        }))
        .await;
    let t = tally(&replies);
    assert_eq!(t.get("201"), Some(&2), "{t:?}");
    assert_eq!(t.get("429 rate_limited"), Some(&10), "{t:?}");
    let ledger = crate::ballots::assert_counts_match_ledger(&a, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let login = |app: &TestApp, forwarded: &'static str, n: usize| {
        let req = app
            .client
            .post(app.url("/api/v1/auth/dev"))
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"openid": format!("oProxy{n}")}));
        async move { Reply::from(req.send().await.unwrap()).await.status }
    };
    // Behind our proxy (the test client is 127.0.0.1): each forwarded client has its own
    // allowance.
    let behind = TestApp::spawn_with(
        Backend::Sqlite,
        &[
            ("dev_login", "true"),
            ("rate_login_per_ip", "2/min"),
            ("trusted_proxies", "127.0.0.1/32"),
        ],
    )
    .await;
    let mut statuses = Vec::new();
    for n in 0..3 {
        statuses.push(login(&behind, "198.51.100.1", n).await);
    }
    // A forged entry left of the proxy's own is ignored: still 198.51.100.1.
    statuses.push(login(&behind, "203.0.113.50, 198.51.100.1", 3).await);
    statuses.push(login(&behind, "198.51.100.2", 4).await);
    assert_eq!(statuses, [200, 200, 429, 429, 200]);

    // Without trusted proxies the header is the client's word and counts for nothing.
    let direct = TestApp::spawn_with(
        Backend::Sqlite,
        &[("dev_login", "true"), ("rate_login_per_ip", "2/min")],
    )
    .await;
    let mut statuses = Vec::new();
    for (n, forwarded) in ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
        .into_iter()
        .enumerate()
    {
        statuses.push(login(&direct, forwarded, n).await);
    }
    assert_eq!(statuses, [200, 200, 429]);
}

/// With Redis, the limit holds across instances: the second instance knows what the first
/// allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_limit_holds_across_instances() {
    let overrides = [("dev_login", "true"), ("rate_ballots_per_voter", "4/min")];
    let a = TestApp::spawn_with(Backend::Postgres, &overrides).await;
    let b = a.second_instance(&overrides).await;
    let (id, c, _) = voting_campaign(&a, rules(100, 100, 1, "live"), 1).await;
    let voter = a.dev_citizen("oTwoDoors").await;
    let pick = [&c[0]];
    let replies: Vec<Reply> = futures_util::future::join_all((0..16).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        ballot(app, &id, &voter, &pick, None)
    }))
    .await;
    let t = tally(&replies);
    assert_eq!(t.get("201"), Some(&4), "{t:?}");
    assert_eq!(t.get("429 rate_limited"), Some(&12), "{t:?}");
    // Each ballot's limits, signals and quotas were one step in Redis, the voter's limit in
    // its day: never split into separate round trips (the recorder is shared by every app
    // of this test process, and no ballot of any should be split).
    let metrics = a.get("/metrics", None).await.text;
    let split = metrics
        .lines()
        .find(|l| l.starts_with("ballot_step_in_parts_total"));
    assert!(split.is_none(), "{split:?}");
}

/// With Redis the shared limit is checked with the ballot's signals and quotas; a ballot
/// refused before them (here for a candidate that does not exist) is checked alone first, so
/// across instances it is rate limited all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ballots_refused_early_are_rate_limited_across_instances_too() {
    let overrides = [("dev_login", "true"), ("rate_ballots_per_voter", "4/min")];
    let a = TestApp::spawn_with(Backend::Postgres, &overrides).await;
    let b = a.second_instance(&overrides).await;
    let (id, c, _) = voting_campaign(&a, rules(100, 100, 1, "live"), 1).await;
    let voter = a.dev_citizen("oEarly").await;
    let nobody = "999999".to_string();
    let mut replies = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        replies.push(ballot(app, &id, &voter, &[&nobody], None).await);
    }
    let t = tally(&replies);
    assert_eq!(t.get("429 rate_limited"), Some(&4), "{t:?}");
    assert_eq!(t.values().sum::<usize>(), 8, "{t:?}");
    assert!(
        replies[..4].iter().all(|r| r.status == 422),
        "{:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    // Refused early or taken, a ballot counts against one limit (kept in the voter's day
    // with its quotas): two refused, then two taken, then limited.
    let voter = a.dev_citizen("oMixed").await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        let pick = if i < 2 { &nobody } else { &c[0] };
        statuses.push(ballot(app, &id, &voter, &[pick], None).await.status);
    }
    assert_eq!(statuses, [422, 422, 201, 201, 429, 429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_limited_per_address_and_health_never() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("rate_reads_per_ip", "10/min")]).await;
    let replies: Vec<Reply> =
        futures_util::future::join_all((0..30).map(|_| app.get("/api/v1/campaigns", None))).await;
    let t = tally(&replies);
    assert_eq!(t.get("200"), Some(&10), "{t:?}");
    assert_eq!(t.get("429 rate_limited"), Some(&20), "{t:?}");
    for _ in 0..30 {
        assert_eq!(app.get("/health/live", None).await.status, 200);
    }
}
