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
async fn five_voters_on_one_device(app: &TestApp, id: &str, candidate: &str) -> Vec<Reply> {
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
    entries
        .into_iter()
        .filter(|e| e["kind"] == "ballot")
        .collect()
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
    let flags: Vec<&Value> = entries.iter().map(|e| &e["body"]["flags"]).collect();
    // Three voters on a device are allowed; the fourth and fifth are flagged.
    assert_eq!(
        flags,
        [
            &json!([]),
            &json!([]),
            &json!([]),
            &json!(["shared_device"]),
            &json!(["shared_device"])
        ]
    );
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 5);
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
    // The receipt says so, to anyone who holds it.
    let receipt = replies[4].body["receipt"].as_str().unwrap();
    let looked_up = app.get(&format!("/api/v1/receipts/{receipt}"), None).await;
    assert_eq!(looked_up.body["status"], "quarantined");
    // Held apart: not in the live counts, the leaderboard or the ledger's tally.
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 3);
    let board = app
        .get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await;
    assert_eq!(board.body["items"][0]["votes"], 3);
    let entries = ballot_entries(app.entries(&id, &org).await);
    assert_eq!(entries[4]["body"]["status"], "quarantined");
    // The device id itself is nowhere in the record.
    assert!(
        !serde_json::to_string(&entries)
            .unwrap()
            .contains("device-0001")
    );
}
