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
    let entries = ballot_entries(app.entries(&id, &org).await);
    let flags = flags_of(&entries);
    assert_eq!(
        flags,
        [
            &json!([]),
            &json!([]),
            &json!(["shared_ip"]),
            &json!([]),
            &json!(["shared_network"]),
            &json!(["shared_network"]),
        ]
    );
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 3);
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
        json!({"voters_per_device": 3, "voters_per_ip": 20, "voters_per_network": 50, "window_secs": 600})
    );
}
