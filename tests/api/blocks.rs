//! Blocklists: organizers block a voter or a network in a campaign, on the record.

use minyi::app::verify;
use minyi::domain::staff::Role;
use serde_json::json;

use crate::ballots::{ballot, rules, voting_campaign};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_blocked_voter_is_refused_until_the_block_is_lifted,
    a_blocked_network_is_refused_and_others_are_not
);

/// A dev login's token and voter id.
async fn citizen(app: &TestApp, openid: &str) -> (String, String) {
    let r = app
        .post("/api/v1/auth/dev", &json!({"openid": openid}), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (
        r.body["token"].as_str().unwrap().to_string(),
        r.body["voter_id"].as_str().unwrap().to_string(),
    )
}

async fn a_blocked_voter_is_refused_until_the_block_is_lifted(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let (farm, farm_id) = citizen(&app, "oFarm").await;
    let (honest, _) = citizen(&app, "oHonest").await;
    let pick = [&c[0]];
    assert_eq!(ballot(&app, &id, &farm, &pick, None).await.status, 201);

    let r = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/blocks"),
            &json!({"subject": "voter", "value": farm_id, "reason": "同一设备批量注册"}),
            Some(&org),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["blocked"], true);
    ballot(&app, &id, &farm, &pick, None)
        .await
        .assert_error(403, "voter_blocked");
    assert_eq!(ballot(&app, &id, &honest, &pick, None).await.status, 201);

    let lifted = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/blocks/lift"),
            &json!({"subject": "voter", "value": farm_id, "reason": "核实为本人投票"}),
            Some(&org),
        )
        .await;
    assert_eq!(lifted.status, 200, "{}", lifted.text);
    let again = ballot(&app, &id, &farm, &pick, None).await;
    assert_eq!(again.status, 201, "{}", again.text);
    // The refused ballot took no quota.
    assert_eq!(again.body["remaining_today"], 3);

    let list = app
        .get(&format!("/api/v1/admin/campaigns/{id}/blocks"), Some(&org))
        .await;
    assert_eq!(list.body["items"][0]["blocked"], false);
    assert_eq!(list.body["items"][0]["reason"], "核实为本人投票");
    // Both changes are on the record, with who made them and why.
    let blocks: Vec<_> = app
        .entries(&id, &org)
        .await
        .into_iter()
        .filter(|e| e["kind"] == "block.changed")
        .collect();
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0]["body"]["block"]["blocked"], true);
    assert_eq!(blocks[0]["body"]["block"]["reason"], "同一设备批量注册");
    assert_eq!(blocks[1]["body"]["actor"]["username"], "vote.organizer");
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 3);
}

async fn a_blocked_network_is_refused_and_others_are_not(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("trusted_proxies", "127.0.0.1/32")],
    )
    .await;
    let (id, c, org) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let (voter, _) = citizen(&app, "oNet").await;
    let from = |forwarded: &'static str| {
        let req = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{id}/ballots")))
            .bearer_auth(&voter)
            .header("X-Forwarded-For", forwarded)
            .json(&json!({"candidate_ids": [c[0]]}));
        async move { Reply::from(req.send().await.unwrap()).await }
    };
    let r = app
        .post(
            &format!("/api/v1/admin/campaigns/{id}/blocks"),
            &json!({"subject": "network", "value": "198.51.100.77/24", "reason": "机房网段集中投票"}),
            Some(&org),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["value"], "198.51.100.0/24", "stored as its range");
    from("198.51.100.9")
        .await
        .assert_error(403, "voter_blocked");
    assert_eq!(from("203.0.113.1").await.status, 201);
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_are_checked_and_only_organizers_make_them() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("dev_login", "true")]).await;
    let (id, _, org) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let url = format!("/api/v1/admin/campaigns/{id}/blocks");
    let cases = [
        (
            json!({"subject": "device", "value": "x", "reason": "r"}),
            "subject",
        ),
        (
            json!({"subject": "voter", "value": "not-a-voter", "reason": "r"}),
            "value",
        ),
        (
            json!({"subject": "network", "value": "10.0.0.0/40", "reason": "r"}),
            "value",
        ),
        (
            json!({"subject": "network", "value": "10.0.0.0/8", "reason": " "}),
            "reason",
        ),
    ];
    for (body, field) in cases {
        let r = app.post(&url, &body, Some(&org)).await;
        r.assert_error(422, "invalid_request");
        assert_eq!(r.body["error"]["field"], field, "{body}");
    }
    let handler = app.staff("unit.handler", Role::UnitHandler).await;
    app.post(
        &url,
        &json!({"subject": "network", "value": "10.0.0.0/8", "reason": "r"}),
        Some(&handler),
    )
    .await
    .assert_error(403, "forbidden");
    app.post(
        &format!("{url}/lift"),
        &json!({"subject": "network", "value": "10.0.0.0/8", "reason": "r"}),
        Some(&org),
    )
    .await
    .assert_error(404, "not_found");
    let auditor = app.staff("the.auditor", Role::Auditor).await;
    assert_eq!(app.get(&url, Some(&auditor)).await.status, 200);
}

/// A block made through one instance holds at once on another: the ledger checks it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_block_holds_at_once_on_another_instance() {
    let a = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let b = a.second_instance(&[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&a, rules(5, 5, 1, "live"), 1).await;
    let (voter, voter_id) = citizen(&b, "oTwoPlaces").await;
    let pick = [&c[0]];
    assert_eq!(ballot(&b, &id, &voter, &pick, None).await.status, 201);
    a.post(
        &format!("/api/v1/admin/campaigns/{id}/blocks"),
        &json!({"subject": "voter", "value": voter_id, "reason": "刷票"}),
        Some(&org),
    )
    .await;
    ballot(&b, &id, &voter, &pick, None)
        .await
        .assert_error(403, "voter_blocked");
    let ledger = crate::ballots::assert_counts_match_ledger(&b, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 1);
}

/// A network block made through one instance reaches another through its cached view of the
/// campaign (the ledger never sees addresses): served at most 4 s old, refreshed in the
/// background meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_network_block_reaches_another_instance_within_seconds() {
    let a = TestApp::spawn_with(Backend::Postgres, &[("dev_login", "true")]).await;
    let b = a.second_instance(&[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&a, rules(5, 5, 1, "live"), 1).await;
    let (voter, _) = citizen(&b, "oSameNetwork").await;
    let pick = [&c[0]];
    assert_eq!(ballot(&b, &id, &voter, &pick, None).await.status, 201);
    let r = a
        .post(
            &format!("/api/v1/admin/campaigns/{id}/blocks"),
            &json!({"subject": "network", "value": "127.0.0.0/8", "reason": "机房网段集中投票"}),
            Some(&org),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
    ballot(&b, &id, &voter, &pick, None)
        .await
        .assert_error(403, "voter_blocked");
    let ledger = crate::ballots::assert_counts_match_ledger(&b, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 1);
}

/// A block changed in the database behind the chain's back is found by the verifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_changed_behind_the_chain_is_found() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("dev_login", "true")]).await;
    let (id, _, org) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let (_, voter_id) = citizen(&app, "oQuiet").await;
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/blocks"),
        &json!({"subject": "voter", "value": voter_id, "reason": "刷票"}),
        Some(&org),
    )
    .await;
    let campaign: i64 = id.parse().unwrap();
    let report = verify::from_store(app.services.store.as_ref(), campaign)
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    app.raw_sql("UPDATE blocks SET blocked = false").await;
    let report = verify::from_store(app.services.store.as_ref(), campaign)
        .await
        .unwrap();
    let problem = format!("{:?}", report.problem.expect("the change is found"));
    assert!(problem.contains("block"), "{problem}");
}
