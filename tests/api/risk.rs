//! Risk flags and the campaign's fraud policy: flagged ballots are only marked (`record`) or
//! held apart from the public counts (`quarantine`).

use serde_json::{Value, json};

use crate::ballots::{rules, voting_campaign};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    ballots_from_a_shared_device_are_flagged_and_still_counted_under_record,
    ballots_from_a_shared_device_are_held_apart_under_quarantine
);

/// Five voters casting one ballot each from one device; the replies in order.
pub async fn five_voters_on_one_device(app: &TestApp, id: &str, candidate: &str) -> Vec<Reply> {
    let mut replies = Vec::new();
    for i in 0..5 {
        let voter = app.dev_citizen(&format!("oPhoneFarm{i}")).await;
        let r = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{id}/ballots")))
            .bearer_auth(&voter)
            .header("X-Device-Id", "device-0001")
            .json(&json!({"candidate_ids": [candidate]}))
            .send()
            .await
            .unwrap();
        replies.push(Reply::from(r).await);
    }
    replies
}

fn ballot_entries(entries: Vec<Value>) -> Vec<Value> {
    of_kind(entries, "ballot")
}

fn of_kind(entries: Vec<Value>, kind: &str) -> Vec<Value> {
    entries.into_iter().filter(|e| e["kind"] == kind).collect()
}

/// Each ballot's status now, as its receipt tells anyone.
pub async fn receipt_statuses(app: &TestApp, replies: &[Reply]) -> Vec<String> {
    let mut statuses = Vec::new();
    for r in replies {
        let receipt = r.body["receipt"].as_str().expect("a receipt");
        let now = app.get(&format!("/api/v1/receipts/{receipt}"), None).await;
        statuses.push(now.body["status"].as_str().unwrap_or_default().to_string());
    }
    statuses
}

/// The flags of each ballot entry, in chain order.
fn flags_of(entries: &[Value]) -> Vec<&Value> {
    entries.iter().map(|e| &e["body"]["flags"]).collect()
}

async fn ballots_from_a_shared_device_are_flagged_and_still_counted_under_record(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let replies = five_voters_on_one_device(&app, &id, &c[0]).await;
    assert!(
        replies
            .iter()
            .all(|r| r.status == 201 && r.body["status"] == "counted")
    );
    let entries = ballot_entries(app.entries(&id, &org).await);
    let flags = flags_of(&entries);
    // Three voters on a device are allowed; the fourth and fifth are flagged. Every test
    // voter logged in moments ago: a new account (recorded, never held by default).
    assert_eq!(
        flags,
        [
            &json!(["new_account"]),
            &json!(["new_account"]),
            &json!(["new_account"]),
            &json!(["shared_device", "new_account"]),
            &json!(["shared_device", "new_account"])
        ]
    );
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 5);
    // Under `record` nothing is held, not even the earlier ballots of the device.
    assert!(of_kind(app.entries(&id, &org).await, "review.decided").is_empty());
}

async fn ballots_from_a_shared_device_are_held_apart_under_quarantine(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let mut r = rules(5, 5, 1, "live");
    r["fraud_policy"] = json!("quarantine");
    let (id, c, org) = voting_campaign(&app, r, 1).await;
    let replies = five_voters_on_one_device(&app, &id, &c[0]).await;
    let statuses: Vec<&Value> = replies.iter().map(|r| &r.body["status"]).collect();
    assert_eq!(
        statuses,
        [
            "counted",
            "counted",
            "counted",
            "quarantined",
            "quarantined"
        ]
    );
    // The fourth voter on the device showed it to be a farm's: the three ballots counted
    // before it were held too, by the system's decision on the record. The receipts say so,
    // to anyone who holds them.
    assert_eq!(receipt_statuses(&app, &replies).await, ["quarantined"; 5]);
    let all = app.entries(&id, &org).await;
    let decisions = of_kind(all.clone(), "review.decided");
    assert_eq!(decisions.len(), 1);
    let decision = &decisions[0]["body"];
    assert_eq!(decision["actor"], json!({"system": "risk"}));
    assert_eq!(decision["decision"]["action"], "hold");
    let first_three: Vec<&Value> = replies[..3].iter().map(|r| &r.body["seq"]).collect();
    assert_eq!(
        decision["decision"]["ballots"]
            .as_array()
            .unwrap()
            .iter()
            .collect::<Vec<_>>(),
        first_three
    );
    assert_eq!(decision["decision"]["votes"], json!({ c[0].as_str(): -3 }));
    // Held apart: not in the live counts, the leaderboard or the ledger's tally.
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 0);
    let board = app
        .get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await;
    assert_eq!(board.body["items"][0]["votes"], 0);
    let entries = ballot_entries(all);
    assert_eq!(entries[4]["body"]["status"], "quarantined");
    // The device id itself is nowhere in the record.
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains("device-0001")
    );
}

on_both_backends!(voters_crowding_one_address_or_network_are_flagged_by_the_campaign_thresholds);

/// Ballots from distinct voters behind our proxy, each from the address given.
async fn from_addresses(
    app: &TestApp,
    id: &str,
    candidate: &str,
    addresses: &[String],
) -> Vec<Reply> {
    let mut replies = Vec::new();
    for (i, address) in addresses.iter().enumerate() {
        let voter = app.dev_citizen(&format!("oCrowd{i}")).await;
        let r = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{id}/ballots")))
            .bearer_auth(&voter)
            .header("X-Forwarded-For", address.as_str())
            .json(&json!({"candidate_ids": [candidate]}))
            .send()
            .await
            .unwrap();
        replies.push(Reply::from(r).await);
    }
    replies
}

async fn voters_crowding_one_address_or_network_are_flagged_by_the_campaign_thresholds(
    backend: Backend,
) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("trusted_proxies", "127.0.0.1/32")],
    )
    .await;
    let mut r = rules(5, 5, 1, "live");
    r["fraud_policy"] = json!("quarantine");
    r["risk"] = json!({"voters_per_ip": 2, "voters_per_network": 4});
    let (id, c, org) = voting_campaign(&app, r, 1).await;
    // Three voters on one address, then three more on others of the same /24.
    let addresses: Vec<String> = ["7", "7", "7", "8", "9", "10"]
        .iter()
        .map(|h| format!("198.51.100.{h}"))
        .collect();
    let replies = from_addresses(&app, &id, &c[0], &addresses).await;
    let statuses: Vec<&Value> = replies.iter().map(|r| &r.body["status"]).collect();
    assert_eq!(
        statuses,
        [
            "counted",
            "counted",
            "quarantined",
            "counted",
            "quarantined",
            "quarantined"
        ]
    );
    let all = app.entries(&id, &org).await;
    let entries = ballot_entries(all.clone());
    let flags = flags_of(&entries);
    assert_eq!(
        flags,
        [
            &json!(["new_account"]),
            &json!(["new_account"]),
            &json!(["shared_ip", "new_account"]),
            &json!(["new_account"]),
            &json!(["shared_network", "new_account"]),
            &json!(["shared_network", "new_account"]),
        ]
    );
    // The third voter on .7 held the two before it; the fifth on the /24 held the one ballot
    // of the network still counted (on .8). Nothing of the crowd is left in the counts.
    let decisions = of_kind(all, "review.decided");
    let held: Vec<&Value> = decisions
        .iter()
        .map(|d| &d["body"]["decision"]["ballots"])
        .collect();
    let seq = |i: usize| replies[i].body["seq"].clone();
    assert_eq!(held, [&json!([seq(0), seq(1)]), &json!([seq(3)])]);
    assert_eq!(receipt_statuses(&app, &replies).await, ["quarantined"; 6]);
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 0);
    // The addresses themselves are nowhere in the record.
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains("198.51.100")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn risk_thresholds_are_checked_with_the_campaign() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let org = app
        .staff("risk.organizer", minyi::domain::staff::Role::Organizer)
        .await;
    let mut r = rules(5, 5, 1, "live");
    r["risk"] = json!({"window_secs": 5});
    let reply = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "selection", "title": "阈值", "rules": r}),
            Some(&org),
        )
        .await;
    reply.assert_error(422, "invalid_request");
    assert_eq!(reply.body["error"]["field"], "rules.risk.window_secs");
    r["risk"] = json!({"voters_per_ip": 0});
    let reply = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "selection", "title": "阈值", "rules": r}),
            Some(&org),
        )
        .await;
    assert_eq!(reply.body["error"]["field"], "rules.risk.voters_per_ip");
    // Left out, the defaults apply and are shown.
    let ok = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "selection", "title": "阈值", "rules": rules(5, 5, 1, "live")}),
            Some(&org),
        )
        .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(
        ok.body["rules"]["risk"],
        json!({"enabled": true, "voters_per_device": 3, "voters_per_ip": 20, "voters_per_network": 50,
               "window_secs": 600, "min_account_age_secs": 600, "identical_ballots": 20, "burst_secs": 60,
               "surge_factor": 5, "surge_min_votes": 30, "raise_bits": 4,
               "hold": ["shared_device", "shared_ip", "shared_network", "identical_burst"]})
    );
}

on_both_backends!(
    identical_ballots_in_a_burst_are_flagged_and_their_cluster_held,
    a_candidate_surging_far_above_its_own_pace_is_flagged,
    a_new_account_is_flagged_until_it_is_old_enough
);

/// A ballot from `voter` for `candidates`, from its own address and device.
async fn plain_ballot(app: &TestApp, id: &str, voter: &str, candidates: &[&String]) -> Reply {
    crate::ballots::ballot(app, id, voter, candidates, None).await
}

async fn identical_ballots_in_a_burst_are_flagged_and_their_cluster_held(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let mut r = rules(10, 1, 3, "live");
    r["fraud_policy"] = json!("quarantine");
    r["risk"] = json!({"identical_ballots": 2, "min_account_age_secs": 0});
    let (id, c, org) = voting_campaign(&app, r, 3).await;
    let voters = app.dev_citizens("oSameSet", 5).await;
    let mut replies = Vec::new();
    for v in &voters[..3] {
        replies.push(plain_ballot(&app, &id, v, &[&c[0], &c[1]]).await);
    }
    // The same candidates in another order, and a one-candidate ballot, are other ballots.
    replies.push(plain_ballot(&app, &id, &voters[3], &[&c[1], &c[0]]).await);
    replies.push(plain_ballot(&app, &id, &voters[4], &[&c[0]]).await);
    assert!(replies.iter().all(|r| r.status == 201));
    let entries = ballot_entries(app.entries(&id, &org).await);
    assert_eq!(
        flags_of(&entries),
        [
            &json!([]),
            &json!([]),
            &json!(["identical_burst"]),
            &json!([]),
            &json!([])
        ]
    );
    assert_eq!(
        receipt_statuses(&app, &replies).await,
        [
            "quarantined",
            "quarantined",
            "quarantined",
            "counted",
            "counted"
        ]
    );
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 3);
}

/// An app whose vote path reads the time from `now` (unix seconds).
async fn app_with_clock(
    backend: Backend,
    now: &std::sync::Arc<std::sync::atomic::AtomicI64>,
) -> TestApp {
    let at = now.clone();
    let clock: minyi::app::Clock = std::sync::Arc::new(move || {
        chrono::DateTime::from_timestamp(at.load(std::sync::atomic::Ordering::SeqCst), 0).unwrap()
    });
    TestApp::spawn_opts(
        backend,
        TestOptions {
            overrides: &[("dev_login", "true")],
            database_url: None,
            redis_url: None,
            redis_prefix: None,
            clock: Some(clock),
        },
    )
    .await
}

async fn a_candidate_surging_far_above_its_own_pace_is_flagged(backend: Backend) {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = std::sync::Arc::new(AtomicI64::new(chrono::Utc::now().timestamp()));
    let app = app_with_clock(backend, &now).await;
    let mut r = rules(10, 1, 1, "live");
    r["risk"] = json!({"surge_factor": 2, "surge_min_votes": 5, "min_account_age_secs": 0});
    let (id, c, org) = voting_campaign(&app, r, 4).await;
    let voters = app.dev_citizens("oPace", 20).await;
    // Five minutes ago, an even pace: three votes for each of the four candidates.
    now.fetch_sub(300, Ordering::SeqCst);
    for (i, v) in voters[..12].iter().enumerate() {
        assert_eq!(plain_ballot(&app, &id, v, &[&c[i % 4]]).await.status, 201);
    }
    // Now the fourth candidate takes every vote: from 25% of the votes to 100%.
    now.fetch_add(300, Ordering::SeqCst);
    for v in &voters[12..18] {
        assert_eq!(plain_ballot(&app, &id, v, &[&c[3]]).await.status, 201);
    }
    let entries = ballot_entries(app.entries(&id, &org).await);
    let flags = flags_of(&entries);
    // Its fifth recent vote is enough to tell; the pace before is not a surge.
    let none = json!([]);
    let surge = json!(["candidate_surge"]);
    let mut expected = vec![&none; 16];
    expected.extend([&surge, &surge]);
    assert_eq!(flags, expected);
    // Under `record` (and as the flag does not hold by default) all are counted.
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 18);
}

async fn a_new_account_is_flagged_until_it_is_old_enough(backend: Backend) {
    use std::sync::atomic::{AtomicI64, Ordering};
    let now = std::sync::Arc::new(AtomicI64::new(chrono::Utc::now().timestamp()));
    let app = app_with_clock(backend, &now).await;
    let mut r = rules(10, 10, 1, "live");
    r["fraud_policy"] = json!("quarantine");
    r["risk"] = json!({"min_account_age_secs": 600, "hold": ["new_account"]});
    let (id, c, org) = voting_campaign(&app, r, 1).await;
    let voter = app.dev_citizen("oFresh").await;
    let fresh = plain_ballot(&app, &id, &voter, &[&c[0]]).await;
    assert_eq!(fresh.body["status"], "quarantined", "{}", fresh.text);
    // Nine minutes later, still new; ten minutes after the first login, no longer.
    now.fetch_add(540, Ordering::SeqCst);
    let young = plain_ballot(&app, &id, &voter, &[&c[0]]).await;
    assert_eq!(young.body["status"], "quarantined");
    now.fetch_add(70, Ordering::SeqCst);
    let grown = plain_ballot(&app, &id, &voter, &[&c[0]]).await;
    assert_eq!(grown.body["status"], "counted", "{}", grown.text);
    let entries = ballot_entries(app.entries(&id, &org).await);
    assert_eq!(
        flags_of(&entries),
        [&json!(["new_account"]), &json!(["new_account"]), &json!([])]
    );
}
