//! The review: clusters of suspicious ballots, and organizers' decisions on them. Each
//! decision is one chain entry; the public counts follow at once; a recount from the chain
//! alone gives the same counts; a status changed behind the chain's back is found.

use serde_json::{Value, json};

use crate::ballots::{ballot, rules, voting_campaign};
use crate::helpers::*;
use crate::on_both_backends;
use crate::risk::{five_voters_on_one_device, receipt_statuses};
use minyi::domain::staff::Role;

on_both_backends!(
    organizers_release_and_invalidate_what_was_held_and_counts_follow,
    racing_decisions_move_each_ballot_once
);

async fn decide(app: &TestApp, id: &str, token: &str, body: Value) -> Reply {
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/review/decisions"),
        &body,
        Some(token),
    )
    .await
}

fn seqs(replies: &[Reply]) -> Vec<i64> {
    replies
        .iter()
        .map(|r| r.body["seq"].as_i64().unwrap())
        .collect()
}

async fn organizers_release_and_invalidate_what_was_held_and_counts_follow(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let mut r = rules(5, 5, 1, "live");
    r["fraud_policy"] = json!("quarantine");
    let (id, c, org) = voting_campaign(&app, r, 2).await;
    // A phone farm of five voters (all held: the fourth showed the device to be shared), and
    // three citizens on phones of their own.
    let farm = five_voters_on_one_device(&app, &id, &c[0]).await;
    let mut honest = Vec::new();
    for t in app.dev_citizens("oHonest", 3).await {
        honest.push(ballot(&app, &id, &t, &[&c[1]], None).await);
    }
    assert_eq!(receipt_statuses(&app, &farm).await, ["quarantined"; 5]);
    assert_eq!(
        crate::ballots::assert_counts_match_ledger(&app, &id).await[&c[1].parse::<i64>().unwrap()],
        3
    );

    // The cluster, as organizers see it: by device, with its counts per candidate. The
    // honest ballots (flagged only as new accounts) are not suspicious.
    let list = app
        .get(
            &format!("/api/v1/admin/campaigns/{id}/review/clusters?by=device&window_secs=86400"),
            Some(&org),
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", list.text);
    let cluster = &items[0];
    assert_eq!(
        (cluster["ballots"].clone(), cluster["voters"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(cluster["statuses"], json!({"quarantined": 5}));
    assert_eq!(cluster["flags"]["shared_device"], 2);
    assert_eq!(
        cluster["candidates"],
        json!([{"candidate_id": c[0], "votes": 5}])
    );
    let by_network = app
        .get(
            &format!("/api/v1/admin/campaigns/{id}/review/clusters?scope=all"),
            Some(&org),
        )
        .await;
    assert_eq!(by_network.body["items"][0]["ballots"], 8);

    // Release two of them by seq: the counts follow at once.
    let farm_seqs = seqs(&farm);
    let released = decide(
        &app,
        &id,
        &org,
        json!({"action": "release", "reason": "核实为同一家庭成员", "seqs": &farm_seqs[..2]}),
    )
    .await;
    assert_eq!(released.status, 200, "{}", released.text);
    assert_eq!(released.body["ballots"], json!(&farm_seqs[..2]));
    assert_eq!(
        released.body["votes"],
        json!([{"candidate_id": c[0], "change": 2}])
    );
    let board = app
        .get(&format!("/api/v1/campaigns/{id}/leaderboard"), None)
        .await;
    let votes_of = |board: &Reply, cand: &str| {
        board.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["candidate_id"] == cand)
            .map(|i| i["votes"].as_i64().unwrap())
    };
    assert_eq!(votes_of(&board, &c[0]), Some(2));

    // Invalidate the whole cluster: the three still held go; the two released stay counted?
    // No: invalidation takes counted and held alike, so the cluster's five all go.
    let invalidated = decide(
        &app,
        &id,
        &org,
        json!({"action": "invalidate", "reason": "刷票设备", "cluster": {
            "by": "device", "key": cluster["key"], "from": cluster["from"], "to": cluster["to"]}}),
    )
    .await;
    assert_eq!(invalidated.status, 200, "{}", invalidated.text);
    assert_eq!(invalidated.body["ballots"], json!(farm_seqs));
    assert_eq!(
        invalidated.body["votes"],
        json!([{"candidate_id": c[0], "change": -2}])
    );
    assert_eq!(receipt_statuses(&app, &farm).await, ["invalidated"; 5]);
    // Nothing left to release there.
    decide(
        &app,
        &id,
        &org,
        json!({"action": "release", "reason": "误判", "seqs": farm_seqs}),
    )
    .await
    .assert_error(409, "nothing_to_decide");
    // An organizer can hold a counted ballot too.
    let held = decide(
        &app,
        &id,
        &org,
        json!({"action": "hold", "reason": "举报待核实", "seqs": [honest[0].body["seq"]]}),
    )
    .await;
    assert_eq!(
        held.body["votes"],
        json!([{"candidate_id": c[1], "change": -1}])
    );

    // Each decision is an entry naming its organizer, and the chain's recount, the live
    // counts and the ledger agree (checked inside).
    let entries = app.entries(&id, &org).await;
    let decisions: Vec<&Value> = entries
        .iter()
        .filter(|e| e["kind"] == "review.decided")
        .map(|e| &e["body"])
        .collect();
    let actions: Vec<(&Value, &Value)> = decisions
        .iter()
        .map(|d| (&d["decision"]["action"], &d["actor"]["role"]))
        .collect();
    assert_eq!(
        actions,
        [
            (&json!("hold"), &Value::Null),
            (&json!("release"), &json!("organizer")),
            (&json!("invalidate"), &json!("organizer")),
            (&json!("hold"), &json!("organizer")),
        ]
    );
    assert_eq!(decisions[2]["decision"]["reason"], "刷票设备");
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.get(&c[0].parse::<i64>().unwrap()), None);
    assert_eq!(ledger[&c[1].parse::<i64>().unwrap()], 2);

    // A status changed behind the chain's back is found, at the ballot's seq.
    let seq = farm_seqs[4];
    app.raw_sql(&format!(
        "UPDATE ballots SET status = 'counted' WHERE campaign_id = {id} AND seq = {seq}"
    ))
    .await;
    let report = minyi::app::verify::from_store(app.services.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    let problem = report.problem.expect("the change is found");
    assert_eq!(problem.seq, seq);
    assert!(
        problem.reason.contains("invalidated by the chain"),
        "{}",
        problem.reason
    );
}

async fn racing_decisions_move_each_ballot_once(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let mut r = rules(5, 5, 1, "live");
    r["fraud_policy"] = json!("quarantine");
    let (id, c, org) = voting_campaign(&app, r, 1).await;
    let farm = five_voters_on_one_device(&app, &id, &c[0]).await;
    let farm_seqs = seqs(&farm);
    // Twenty organizers' clicks at once on "release", while citizens keep voting (fifteen:
    // with the farm's five, as many as the address allows before it counts as crowded).
    let voters = app.dev_citizens("oDuring", 15).await;
    let releases = (0..20).map(|_| {
        decide(
            &app,
            &id,
            &org,
            json!({"action": "release", "reason": "复核通过", "seqs": farm_seqs}),
        )
    });
    let choice = [&c[0]];
    let ballots = voters.iter().map(|t| ballot(&app, &id, t, &choice, None));
    let (released, cast) = tokio::join!(
        futures_util::future::join_all(releases),
        futures_util::future::join_all(ballots)
    );
    assert_eq!(released.iter().filter(|r| r.status == 200).count(), 1);
    assert_eq!(released.iter().filter(|r| r.status == 409).count(), 19);
    assert!(cast.iter().all(|r| r.status == 201));
    // Five released, fifteen cast: exact everywhere.
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger[&c[0].parse::<i64>().unwrap()], 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_checked_and_only_organizers_make_them() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("dev_login", "true")]).await;
    let (id, c, org) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let voter = app.dev_citizen("oOnce").await;
    let cast = ballot(&app, &id, &voter, &[&c[0]], None).await;
    let seq = cast.body["seq"].clone();
    let auditor = app.staff("review.auditor", Role::Auditor).await;
    let list = app
        .get(
            &format!("/api/v1/admin/campaigns/{id}/review/clusters"),
            Some(&auditor),
        )
        .await;
    assert_eq!(list.status, 200);
    decide(
        &app,
        &id,
        &auditor,
        json!({"action": "invalidate", "reason": "x", "seqs": [seq]}),
    )
    .await
    .assert_error(403, "forbidden");
    let cases = [
        (
            json!({"action": "erase", "reason": "x", "seqs": [seq]}),
            "action",
        ),
        (
            json!({"action": "invalidate", "reason": " ", "seqs": [seq]}),
            "reason",
        ),
        (json!({"action": "invalidate", "reason": "x"}), "seqs"),
        (
            json!({"action": "invalidate", "reason": "x", "seqs": []}),
            "seqs",
        ),
        (
            json!({"action": "invalidate", "reason": "x", "seqs": [seq], "cluster":
                {"by": "ip", "key": "k", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}),
            "seqs",
        ),
        (
            json!({"action": "invalidate", "reason": "x", "cluster":
                {"by": "street", "key": "k", "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}}),
            "cluster.by",
        ),
    ];
    for (body, field) in cases {
        let reply = decide(&app, &id, &org, body).await;
        reply.assert_error(422, "invalid_request");
        assert_eq!(reply.body["error"]["field"], field, "{}", reply.text);
    }
    for query in ["by=street", "window_secs=5", "scope=some"] {
        app.get(
            &format!("/api/v1/admin/campaigns/{id}/review/clusters?{query}"),
            Some(&org),
        )
        .await
        .assert_error(422, "invalid_request");
    }
    // Nothing changed: the ballot is still counted.
    assert_eq!(receipt_statuses(&app, &[cast]).await, ["counted"]);
}

on_both_backends!(a_farm_racing_from_one_address_is_held_and_counts_stay_exact);

async fn a_farm_racing_from_one_address_is_held_and_counts_stay_exact(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        &[("dev_login", "true"), ("trusted_proxies", "127.0.0.1/32")],
    )
    .await;
    let mut r = rules(5, 5, 1, "live");
    r["fraud_policy"] = json!("quarantine");
    let (id, c, _) = voting_campaign(&app, r, 1).await;
    // 200 accounts behind one address, all at once.
    let voters = app.dev_citizens("oRacingFarm", 200).await;
    let url = app.url(&format!("/api/v1/campaigns/{id}/ballots"));
    let cast = futures_util::future::join_all(voters.iter().map(|t| {
        let req = app
            .client
            .post(&url)
            .bearer_auth(t)
            .header("X-Forwarded-For", "203.0.113.9")
            .json(&json!({"candidate_ids": [c[0]]}));
        async move { Reply::from(req.send().await.unwrap()).await }
    }))
    .await;
    assert!(cast.iter().all(|r| r.status == 201));
    let statuses = receipt_statuses(&app, &cast).await;
    let counted = statuses.iter().filter(|s| *s == "counted").count();
    // At most the twenty the address is allowed before it counts as crowded, and those only
    // when they raced the hold; the counts, the ledger and the chain agree exactly.
    assert!(counted <= 20, "{counted} of the farm's ballots counted");
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(
        ledger
            .get(&c[0].parse::<i64>().unwrap())
            .copied()
            .unwrap_or(0),
        counted as i64
    );
}
