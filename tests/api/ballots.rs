//! The vote path: exact counts under races, all-or-nothing ballots, idempotency, receipts.

use futures_util::StreamExt;
use minyi::app::verify;
use minyi::domain::staff::Role;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    five_hundred_racing_ballots_from_one_voter_against_a_quota_of_ten_count_exactly_ten,
    two_thousand_voters_racing_leave_live_counts_equal_to_the_ledger,
    a_ballot_whose_second_candidate_is_at_its_limit_counts_for_none,
    a_repeated_idempotency_key_gives_the_first_answer_and_counts_once,
    ballots_are_checked_and_receipts_can_be_looked_up,
    the_leaderboard_ranks_ties_alike_and_follows_show_counts,
    when_the_ledger_refuses_a_ballot_is_503_and_its_quota_is_given_back,
    with_batches_of_one_ballot_the_counts_are_just_as_exact,
    ballots_racing_an_organizers_changes_are_all_on_one_chain,
    ballots_racing_into_twelve_campaigns_are_exact_on_each_chain,
);

async fn with_batches_of_one_ballot_the_counts_are_just_as_exact(backend: Backend) {
    let app =
        TestApp::spawn_with(backend, &[("dev_login", "true"), ("ballot_batch_max", "1")]).await;
    let (id, c, _) = voting_campaign(&app, rules(4, 1, 2, "live"), 6).await;
    let tokens = app.dev_citizens("oSingle", 200).await;
    let replies: Vec<Reply> = futures_util::stream::iter(
        tokens
            .iter()
            .enumerate()
            .flat_map(|(i, t)| [(i, t), (i + 1, t), (i + 2, t)]),
    )
    .map(|(i, t)| {
        let pick = vec![&c[i % 6], &c[(i + 3) % 6]];
        let (app, id) = (&app, &id);
        async move { ballot(app, id, t, &pick, None).await }
    })
    .buffer_unordered(64)
    .collect()
    .await;
    // Each voter: 4 votes a day, 1 per candidate; three ballots of two each: the third
    // always exceeds the daily 4.
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 400);
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 800);
}

/// An open selection campaign in its voting phase with `n` approved candidates.
pub async fn voting_campaign(
    app: &TestApp,
    rules: Value,
    n: usize,
) -> (String, Vec<String>, String) {
    let now = chrono::Utc::now();
    open_campaign(
        app,
        json!({"kind": "selection", "title": "投票测试", "rules": rules,
            "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1), "ends_at": now + chrono::Duration::days(1)}]}),
        n,
    )
    .await
}

/// The campaign `body` describes, created, given one category with `n` approved candidates,
/// and opened; returns its id, the candidates' ids and the organizer's token.
pub async fn open_campaign(app: &TestApp, body: Value, n: usize) -> (String, Vec<String>, String) {
    let org = app.staff("vote.organizer", Role::Organizer).await;
    open_campaign_as(app, org, body, n).await
}

/// `open_campaign` by the organizer whose token is `org`.
pub async fn open_campaign_as(
    app: &TestApp,
    org: String,
    body: Value,
    n: usize,
) -> (String, Vec<String>, String) {
    let r = app.post("/api/v1/admin/campaigns", &body, Some(&org)).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let cat = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/categories"),
            &json!({"name": "医生", "winners": 3}),
            Some(&org),
        )
        .await;
    let cat = cat.body["id"].as_str().unwrap().to_string();
    let mut ids = Vec::new();
    for i in 0..n {
        let c = app
            .post(
                &format!("/api/v1/admin/campaigns/{id}/candidates"),
                &json!({"category_id": cat, "name": format!("医生{i}"), "unit": "示例医院"}),
                Some(&org),
            )
            .await;
        let cid = c.body["id"].as_str().unwrap().to_string();
        app.post(
            &format!("/api/v1/admin/campaigns/{id}/candidates/{cid}/approve"),
            &json!({}),
            Some(&org),
        )
        .await;
        ids.push(cid);
    }
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/open"),
        &json!({}),
        Some(&org),
    )
    .await;
    (id, ids, org)
}

pub fn rules(per_day: u32, per_candidate: u32, max: u32, show: &str) -> Value {
    json!({"votes_per_day": per_day, "votes_per_candidate_per_day": per_candidate, "max_candidates_per_ballot": max,
           "votes_per_campaign": null, "show_counts": show})
}

pub async fn ballot(
    app: &TestApp,
    campaign: &str,
    token: &str,
    candidates: &[&String],
    key: Option<&str>,
) -> Reply {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{campaign}/ballots")))
        .bearer_auth(token)
        .json(&json!({"candidate_ids": candidates}));
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    Reply::from(req.send().await.unwrap()).await
}

pub async fn assert_counts_match_ledger(
    app: &TestApp,
    campaign: &str,
) -> std::collections::HashMap<i64, i64> {
    let id: i64 = campaign.parse().unwrap();
    let ledger = app.services.store.ledger_votes(id).await.unwrap().votes;
    let live = app.services.counters.votes(id).await.unwrap();
    let live: std::collections::HashMap<i64, i64> =
        live.into_iter().filter(|(_, v)| *v != 0).collect();
    assert_eq!(live, ledger, "live counts equal the ledger");
    let report = verify::from_store(app.services.store.as_ref(), id)
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    let recounted: std::collections::HashMap<i64, i64> =
        report.votes.into_iter().filter(|(_, v)| *v != 0).collect();
    assert_eq!(recounted, ledger, "the chain's recount equals the ledger");
    ledger
}

async fn five_hundred_racing_ballots_from_one_voter_against_a_quota_of_ten_count_exactly_ten(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, cands, _) = voting_campaign(&app, rules(10, 10, 1, "live"), 1).await;
    let voter = app.dev_citizen("oRacer").await;
    let pick = [&cands[0]];
    let replies: Vec<Reply> = futures_util::stream::iter(0..500)
        .map(|_| ballot(&app, &id, &voter, &pick, None))
        .buffer_unordered(100)
        .collect()
        .await;
    let accepted = replies.iter().filter(|r| r.status == 201).count();
    assert_eq!(accepted, 10);
    for r in replies.iter().filter(|r| r.status != 201) {
        r.assert_error(429, "daily_quota_exhausted");
        assert!(r.body["error"]["resets_at"].is_string());
        assert!(r.headers.contains_key("retry-after"));
    }
    let mut remaining: Vec<u64> = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["remaining_today"].as_u64().unwrap())
        .collect();
    remaining.sort();
    assert_eq!(remaining, (0..10).collect::<Vec<_>>());
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 10);
}

async fn two_thousand_voters_racing_leave_live_counts_equal_to_the_ledger(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("db_max_connections", "16")],
    )
    .await;
    let (id, cands, _) = voting_campaign(&app, rules(5, 1, 2, "live"), 20).await;
    let tokens = app.dev_citizens("oVoter", 2000).await;
    let replies: Vec<Reply> = futures_util::stream::iter(tokens.iter().enumerate())
        .map(|(i, t)| {
            let (a, b) = (&cands[i % 20], &cands[(i * 7 + 3) % 20]);
            let pick: Vec<&String> = if a == b { vec![a] } else { vec![a, b] };
            let (app, id) = (&app, &id);
            async move { ballot(app, id, t, &pick, None).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies.iter().find(|r| r.status != 201).map(|r| &r.text)
    );
    let expected: usize = (0..2000)
        .map(|i| if i % 20 == (i * 7 + 3) % 20 { 1 } else { 2 })
        .sum();
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>() as usize, expected);
}

async fn a_ballot_whose_second_candidate_is_at_its_limit_counts_for_none(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(10, 1, 3, "live"), 3).await;
    let voter = app.dev_citizen("oAllOrNothing").await;
    assert_eq!(ballot(&app, &id, &voter, &[&c[1]], None).await.status, 201);
    let r = ballot(&app, &id, &voter, &[&c[0], &c[1], &c[2]], None).await;
    r.assert_error(429, "candidate_daily_limit");
    assert_eq!(r.body["error"]["candidate_id"], c[1].as_str());
    // Nothing of the refused ballot counted, and its quota was not taken.
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.len(), 1);
    let ok = ballot(&app, &id, &voter, &[&c[0], &c[2]], None).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["remaining_today"], 7);
}

async fn a_repeated_idempotency_key_gives_the_first_answer_and_counts_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(10, 5, 2, "live"), 2).await;
    let voter = app.dev_citizen("oRetry").await;
    let first = ballot(&app, &id, &voter, &[&c[0]], Some("key-1")).await;
    assert_eq!(first.status, 201);
    let again = ballot(&app, &id, &voter, &[&c[0]], Some("key-1")).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the first answer again");
    ballot(&app, &id, &voter, &[&c[1]], Some("key-1"))
        .await
        .assert_error(422, "idempotency_key_reused");
    // Racing repeats of a new key: one ballot.
    let pick = [&c[1]];
    let racing: Vec<Reply> = futures_util::future::join_all(
        (0..20).map(|_| ballot(&app, &id, &voter, &pick, Some("key-2"))),
    )
    .await;
    assert!(
        racing.iter().all(|r| r.status == 201),
        "{:?}",
        racing.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    assert!(
        racing
            .iter()
            .all(|r| r.body["receipt"] == racing[0].body["receipt"])
    );
    // Another voter may use the same key.
    let other = app.dev_citizen("oOther").await;
    assert_ne!(
        ballot(&app, &id, &other, &[&c[1]], Some("key-2"))
            .await
            .body["receipt"],
        racing[0].body["receipt"]
    );
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 3);
    let mine = app
        .get(
            &format!("/api/v1/me/ballots?campaign_id={id}"),
            Some(&voter),
        )
        .await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    // A page at a time, newest first, each ballot once.
    let first_page = app
        .get(
            &format!("/api/v1/me/ballots?campaign_id={id}&limit=1"),
            Some(&voter),
        )
        .await;
    let second_page = app
        .get(
            &format!(
                "/api/v1/me/ballots?campaign_id={id}&limit=1&cursor={}",
                first_page.body["next_cursor"].as_str().unwrap()
            ),
            Some(&voter),
        )
        .await;
    assert_eq!(
        first_page.body["items"][0]["receipt"],
        racing[0].body["receipt"]
    );
    assert_eq!(
        second_page.body["items"][0]["receipt"],
        first.body["receipt"]
    );
    app.get("/api/v1/me/ballots?cursor=abc", Some(&voter))
        .await
        .assert_error(422, "invalid_request");
}

async fn ballots_are_checked_and_receipts_can_be_looked_up(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&app, rules(10, 1, 2, "live"), 3).await;
    let voter = app.dev_citizen("oChecker").await;
    ballot(&app, &id, &voter, &[], None)
        .await
        .assert_error(422, "invalid_ballot");
    ballot(&app, &id, &voter, &[&c[0], &c[0]], None)
        .await
        .assert_error(422, "invalid_ballot");
    ballot(&app, &id, &voter, &[&c[0], &c[1], &c[2]], None)
        .await
        .assert_error(422, "invalid_ballot");
    let foreign = "999999".to_string();
    ballot(&app, &id, &voter, &[&foreign], None)
        .await
        .assert_error(422, "invalid_ballot");
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates/{}/withdraw", c[2]),
        &json!({"reason": "退出"}),
        Some(&org),
    )
    .await;
    ballot(&app, &id, &voter, &[&c[2]], None)
        .await
        .assert_error(422, "invalid_ballot");
    // Staff tokens cannot vote; nobody votes outside the window.
    ballot(&app, &id, &org, &[&c[0]], None)
        .await
        .assert_error(401, "unauthenticated");
    let past = chrono::Utc::now() - chrono::Duration::days(3);
    app.patch(&format!("/api/v1/admin/campaigns/{id}"), &json!({"phases": [{"phase": "voting", "starts_at": past, "ends_at": past + chrono::Duration::days(1)}]}), Some(&org))
        .await;
    ballot(&app, &id, &voter, &[&c[0]], None)
        .await
        .assert_error(409, "voting_closed");
    app.patch(&format!("/api/v1/admin/campaigns/{id}"), &json!({"phases": [{"phase": "voting", "starts_at": past, "ends_at": chrono::Utc::now() + chrono::Duration::days(1)}]}), Some(&org))
        .await;

    let ok = ballot(&app, &id, &voter, &[&c[0], &c[1]], None).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    let receipt = ok.body["receipt"].as_str().unwrap();
    let r = app.get(&format!("/api/v1/receipts/{receipt}"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "counted");
    assert_eq!(r.body["seq"], ok.body["seq"]);
    // The receipt is the hash of the ballot's entry, and the entry names the voter by id only.
    let entries = app.entries(&id, &org).await;
    let entry = entries.iter().find(|e| e["hash"] == receipt).unwrap();
    assert_eq!(entry["kind"], "ballot");
    assert_eq!(entry["body"]["candidate_ids"], json!([c[0], c[1]]));
    assert!(!entry.to_string().contains("oChecker"));
    app.get(&format!("/api/v1/receipts/{}", "0".repeat(64)), None)
        .await
        .assert_error(404, "not_found");
}

async fn the_leaderboard_ranks_ties_alike_and_follows_show_counts(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&app, rules(10, 1, 3, "live"), 4).await;
    for (i, pick) in [vec![&c[2], &c[1]], vec![&c[2], &c[1]], vec![&c[2]]]
        .into_iter()
        .enumerate()
    {
        let v = app.dev_citizen(&format!("oBoard{i}")).await;
        assert_eq!(ballot(&app, &id, &v, &pick, None).await.status, 201);
    }
    let board = app
        .get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await;
    let rows: Vec<(u64, String, Option<i64>)> = board.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rank"].as_u64().unwrap(),
                r["candidate_id"].as_str().unwrap().to_string(),
                r["votes"].as_i64(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (1, c[2].clone(), Some(3)),
            (2, c[1].clone(), Some(2)),
            (3, c[0].clone(), Some(0)),
            (3, c[3].clone(), Some(0))
        ]
    );
    let list = app
        .get(&format!("/api/v1/campaigns/{id}/candidates"), None)
        .await;
    let votes_of_c2 = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == c[2].as_str())
        .unwrap()["votes"]
        .clone();
    assert_eq!(votes_of_c2, 3);
    let mut r = rules(10, 1, 3, "rank_only");
    app.patch(
        &format!("/api/v1/admin/campaigns/{id}"),
        &json!({"rules": r}),
        Some(&org),
    )
    .await;
    let board = app
        .get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await;
    assert!(board.body["items"][0].get("votes").is_none());
    assert_eq!(board.body["items"][0]["rank"], 1);
    r["show_counts"] = json!("hidden");
    app.patch(
        &format!("/api/v1/admin/campaigns/{id}"),
        &json!({"rules": r}),
        Some(&org),
    )
    .await;
    app.get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await
        .assert_error(403, "leaderboard_hidden");
}

/// A second instance of the same deployment: same database, same Redis keys.
/// Ballots written while the organizer changes the campaign (each change moves the chain's
/// head and the campaign's version under a batch that expected them): every 201 is in the
/// ledger and on the chain once, the chain verifies, and the counts equal the ledger.
async fn ballots_racing_an_organizers_changes_are_all_on_one_chain(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&app, rules(10, 10, 1, "live"), 5).await;
    let tokens = app.dev_citizens("oRaceOrganizer", 600).await;
    let casting = futures_util::stream::iter(tokens.iter().enumerate())
        .map(|(i, t)| {
            let (app, id, pick) = (&app, &id, [&c[i % 5]]);
            async move { ballot(app, id, t, &pick, None).await.status }
        })
        .buffer_unordered(64)
        .collect::<Vec<u16>>();
    let changing = async {
        for n in 0..10 {
            let body = json!({"subject": "voter", "value": format!("{n:032x}"), "reason": "核查"});
            for path in ["blocks", "blocks/lift"] {
                let r = app
                    .post(
                        &format!("/api/v1/admin/campaigns/{id}/{path}"),
                        &body,
                        Some(&org),
                    )
                    .await;
                assert!(r.status == 200 || r.status == 201, "{}", r.text);
            }
        }
    };
    let (statuses, ()) = futures_util::join!(casting, changing);
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 600);
    let entries = app
        .services
        .store
        .audit_entries(id.parse().unwrap(), 0, 10_000)
        .await
        .unwrap();
    let ballots = entries.iter().filter(|e| e.kind == "ballot").count();
    assert_eq!(ballots, 600);
}

/// Batches are written by campaign (on PostgreSQL each campaign's batches in a lane of their
/// own, two at a time, each holding a connection while it waits for the one before): many
/// campaigns voted at once, through a small pool, leave every count and every chain exact.
async fn ballots_racing_into_twelve_campaigns_are_exact_on_each_chain(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("db_max_connections", "6")],
    )
    .await;
    let org = app.staff("many.organizer", Role::Organizer).await;
    let mut campaigns = Vec::new();
    for n in 0..12 {
        let now = chrono::Utc::now();
        let body = json!({"kind": "selection", "title": format!("投票测试{n}"),
            "rules": rules(10, 1, 1, "live"),
            "phases": [{"phase": "voting", "starts_at": now - chrono::Duration::hours(1),
                        "ends_at": now + chrono::Duration::days(1)}]});
        campaigns.push(open_campaign_as(&app, org.clone(), body, 3).await);
    }
    let tokens = app.dev_citizens("oManyCampaigns", 40).await;
    let casts: Vec<(usize, usize)> = (0..40).flat_map(|v| (0..12).map(move |c| (v, c))).collect();
    let statuses: Vec<u16> = futures_util::stream::iter(casts)
        .map(|(v, c)| {
            let (app, tokens, campaigns) = (&app, &tokens, &campaigns);
            async move {
                let (id, cands, _) = &campaigns[c];
                ballot(app, id, &tokens[v], &[&cands[v % 3]], None)
                    .await
                    .status
            }
        })
        .buffer_unordered(96)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    for (id, cands, _) in &campaigns {
        let ledger = assert_counts_match_ledger(&app, id).await;
        for (i, c) in cands.iter().enumerate() {
            let expected = (0..40).filter(|v| v % 3 == i).count() as i64;
            assert_eq!(
                ledger[&c.parse::<i64>().unwrap()],
                expected,
                "campaign {id}"
            );
        }
    }
}

/// A change written without taking the campaign's lock (as an instance of an older version
/// does during a rolling deploy) still moves the campaign's version on (the database's
/// triggers), so a batch checked against the cached view is checked again and refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_behind_the_services_back_still_stops_the_one_statement_write() {
    let app = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(5, 5, 1, "live"), 2).await;
    let voter = app.dev_citizen("oOldInstance").await;
    // The campaign is cached and this instance knows the chain's head.
    assert_eq!(ballot(&app, &id, &voter, &[&c[1]], None).await.status, 201);
    app.raw_sql(&format!(
        "UPDATE candidates SET status = 'withdrawn' WHERE id = {}",
        c[0]
    ))
    .await;
    ballot(&app, &id, &voter, &[&c[0]], None)
        .await
        .assert_error(422, "invalid_ballot");
    // (The chain no longer verifies: the change was made behind it.)
    let ledger = app.services.store.ledger_votes(id.parse().unwrap()).await;
    assert_eq!(ledger.unwrap().votes.values().sum::<i64>(), 1);
}

async fn second_instance(first: &TestApp) -> TestApp {
    first.second_instance(&[("dev_login", "true")]).await
}

/// Each instance keeps campaigns in memory for a moment; the ledger checks again, so a change
/// made through one instance holds at once on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_through_one_instance_holds_at_once_on_another() {
    let a = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let b = second_instance(&a).await;
    let (id, c, org) = voting_campaign(&a, rules(3, 3, 1, "live"), 2).await;
    let voter = b.dev_citizen("oStale").await;
    // B reads the campaign (and keeps it) on this first ballot.
    let first = ballot(&b, &id, &voter, &[&c[0]], None).await;
    assert_eq!(first.body["remaining_today"], 2, "{}", first.text);
    a.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates/{}/withdraw", c[0]),
        &json!({"reason": "本人申请退出"}),
        Some(&org),
    )
    .await;
    ballot(&b, &id, &voter, &[&c[0]], None)
        .await
        .assert_error(422, "invalid_ballot");
    // The refused ballot's quota came back.
    let next = ballot(&b, &id, &voter, &[&c[1]], None).await;
    assert_eq!(next.body["remaining_today"], 1, "{}", next.text);
    let past = chrono::Utc::now() - chrono::Duration::days(3);
    a.patch(&format!("/api/v1/admin/campaigns/{id}"), &json!({"phases": [{"phase": "voting", "starts_at": past, "ends_at": past + chrono::Duration::days(1)}]}), Some(&org))
        .await;
    ballot(&b, &id, &voter, &[&c[1]], None)
        .await
        .assert_error(409, "voting_closed");
    let ledger = assert_counts_match_ledger(&b, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 2);
    assert_eq!(
        b.services
            .counters
            .votes(id.parse().unwrap())
            .await
            .unwrap()
            .values()
            .sum::<i64>(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_quotas_counts_idempotency_and_one_chain() {
    let a = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let b = second_instance(&a).await;
    let (id, c, _) = voting_campaign(&a, rules(10, 10, 2, "live"), 20).await;

    // One voter racing 300 ballots over both instances against a quota of 10.
    let voter = a.dev_citizen("oTwoInstances").await;
    let pick = [&c[0]];
    let replies: Vec<Reply> = futures_util::stream::iter(0..300)
        .map(|i| ballot(if i % 2 == 0 { &a } else { &b }, &id, &voter, &pick, None))
        .buffer_unordered(100)
        .collect()
        .await;
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 10);

    // The same key racing on both instances: one ballot, one answer.
    let pick = [&c[1]];
    let keyed: Vec<Reply> = futures_util::future::join_all((0..20).map(|i| {
        ballot(
            if i % 2 == 0 { &a } else { &b },
            &id,
            &voter,
            &pick,
            Some("shared-key"),
        )
    }))
    .await;
    assert!(
        keyed
            .iter()
            .all(|r| r.status == 429 || r.body["receipt"] == keyed[0].body["receipt"])
    );

    // A thousand voters spread over both instances.
    let tokens: Vec<String> = futures_util::stream::iter(0..1000)
        .map(|i| {
            let app = if i % 2 == 0 { &a } else { &b };
            async move { app.dev_citizen(&format!("oShared{i}")).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let replies: Vec<Reply> = futures_util::stream::iter(tokens.iter().enumerate())
        .map(|(i, t)| {
            let (app, id) = (if i % 2 == 0 { &a } else { &b }, &id);
            let pick = vec![&c[i % 20], &c[(i + 1) % 20]];
            async move { ballot(app, id, t, &pick, None).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    assert!(
        replies.iter().all(|r| r.status == 201),
        "{:?}",
        replies.iter().find(|r| r.status != 201).map(|r| &r.text)
    );
    let ledger = assert_counts_match_ledger(&a, &id).await;
    let keyed_ballots = keyed.iter().any(|r| r.status == 201) as i64;
    assert_eq!(ledger.values().sum::<i64>(), 10 + keyed_ballots + 2000);
}

async fn when_the_ledger_refuses_a_ballot_is_503_and_its_quota_is_given_back(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(2, 2, 1, "live"), 1).await;
    let voter = app.dev_citizen("oOutage").await;
    assert_eq!(ballot(&app, &id, &voter, &[&c[0]], None).await.status, 201);
    // The ledger write fails after the quota was taken (the table is gone for a moment).
    app.raw_sql("ALTER TABLE ballot_votes RENAME TO ballot_votes_away")
        .await;
    let r = ballot(&app, &id, &voter, &[&c[0]], None).await;
    r.assert_error(503, "unavailable");
    app.raw_sql("ALTER TABLE ballot_votes_away RENAME TO ballot_votes")
        .await;
    // Nothing counted, and the quota it took is back: the voter can still cast one more.
    let ok = ballot(&app, &id, &voter, &[&c[0]], None).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["remaining_today"], 0);
    ballot(&app, &id, &voter, &[&c[0]], None)
        .await
        .assert_error(429, "daily_quota_exhausted");
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_renew_at_midnight_in_the_campaign_time_zone() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};
    // 23:59:58 in Shanghai (UTC+8) on 25 November.
    let now = Arc::new(AtomicI64::new(
        chrono::DateTime::parse_from_rfc3339("2026-11-25T15:59:58Z")
            .unwrap()
            .timestamp(),
    ));
    let clock_now = now.clone();
    let clock: minyi::app::Clock = Arc::new(move || {
        chrono::DateTime::from_timestamp(clock_now.load(Ordering::SeqCst), 0).unwrap()
    });
    let app = TestApp::spawn_opts(
        Backend::Sqlite,
        TestOptions {
            overrides: &[("dev_login", "true")],
            database_url: None,
            redis_url: None,
            redis_prefix: None,
            clock: Some(clock),
        },
    )
    .await;
    let (id, c, _) = open_campaign(
        &app,
        json!({"kind": "selection", "title": "跨日", "timezone": "Asia/Shanghai", "rules": rules(1, 1, 1, "live"),
            "phases": [{"phase": "voting", "starts_at": "2026-11-20T00:00:00+08:00", "ends_at": "2026-11-30T00:00:00+08:00"}]}),
        1,
    )
    .await;
    let cid = c[0].clone();
    let voter = app.dev_citizen("oMidnight").await;

    assert_eq!(ballot(&app, &id, &voter, &[&cid], None).await.status, 201);
    let refused = ballot(&app, &id, &voter, &[&cid], None).await;
    refused.assert_error(429, "daily_quota_exhausted");
    assert_eq!(refused.body["error"]["resets_at"], "2026-11-25T16:00:00Z");
    // One second to midnight: still the same day.
    now.fetch_add(1, Ordering::SeqCst);
    ballot(&app, &id, &voter, &[&cid], None)
        .await
        .assert_error(429, "daily_quota_exhausted");
    // Midnight in Shanghai: a new day, a new quota.
    now.fetch_add(1, Ordering::SeqCst);
    let ok = ballot(&app, &id, &voter, &[&cid], None).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["cast_at"], "2026-11-25T16:00:00Z");
    let ledger = assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 2);
}
