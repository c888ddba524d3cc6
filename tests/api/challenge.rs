//! The proof-of-work challenge: a campaign can ask every ballot to carry one.

use minyi::domain::pow;
use serde_json::{Value, json};

use crate::ballots::{ballot, rules, voting_campaign};
use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(ballots_need_a_fresh_proof_when_the_campaign_asks_for_one);

async fn with_proof(
    app: &TestApp,
    id: &str,
    token: &str,
    candidate: &str,
    proof: (&str, &str),
) -> Reply {
    app.post(
        &format!("/api/v1/campaigns/{id}/ballots"),
        &json!({"candidate_ids": [candidate], "challenge": proof.0, "nonce": proof.1}),
        Some(token),
    )
    .await
}

async fn ballots_need_a_fresh_proof_when_the_campaign_asks_for_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let mut r: Value = rules(20, 20, 1, "live");
    r["challenge_bits"] = json!(8);
    let (id, c, _) = voting_campaign(&app, r, 1).await;
    let voter = app.dev_citizen("oSolver").await;

    // No proof: 428 with a challenge to solve.
    let refused = ballot(&app, &id, &voter, &[&c[0]], None).await;
    refused.assert_error(428, "challenge_required");
    let text = refused.body["error"]["challenge"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(refused.body["error"]["bits"], 8);
    assert!(refused.body["error"]["expires_at"].is_string());
    let nonce = pow::solve(&text, 8);
    let ok = with_proof(&app, &id, &voter, &c[0], (&text, &nonce)).await;
    assert_eq!(ok.status, 201, "{}", ok.text);

    // Spent: the same proof again is refused, with a fresh challenge.
    let again = with_proof(&app, &id, &voter, &c[0], (&text, &nonce)).await;
    again.assert_error(428, "challenge_required");
    assert_ne!(again.body["error"]["challenge"], text.as_str());

    // From the challenge route; a wrong nonce, and another voter's proof, do not pass.
    let issued = app
        .get(&format!("/api/v1/campaigns/{id}/challenge"), Some(&voter))
        .await;
    assert_eq!(issued.body["bits"], 8);
    let text = issued.body["challenge"].as_str().unwrap().to_string();
    let nonce = pow::solve(&text, 8);
    let wrong = (0u64..)
        .map(|n| n.to_string())
        .find(|n| !pow::meets(&text, n, 8))
        .unwrap();
    with_proof(&app, &id, &voter, &c[0], (&text, &wrong))
        .await
        .assert_error(428, "challenge_required");
    let other = app.dev_citizen("oBorrower").await;
    with_proof(&app, &id, &other, &c[0], (&text, &nonce))
        .await
        .assert_error(428, "challenge_required");

    // Racing with one proof: one ballot.
    let racing: Vec<Reply> = futures_util::future::join_all(
        (0..20).map(|_| with_proof(&app, &id, &voter, &c[0], (&text, &nonce))),
    )
    .await;
    assert_eq!(racing.iter().filter(|r| r.status == 201).count(), 1);
    assert_eq!(racing.iter().filter(|r| r.status == 428).count(), 19);
    // A client retrying a recorded ballot with its key and its (now spent) proof gets the
    // first answer again, not a new challenge.
    let issued = app
        .get(&format!("/api/v1/campaigns/{id}/challenge"), Some(&voter))
        .await;
    let text = issued.body["challenge"].as_str().unwrap().to_string();
    let nonce = pow::solve(&text, 8);
    let keyed = |proof: (String, String)| {
        let req = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{id}/ballots")))
            .bearer_auth(&voter)
            .header("Idempotency-Key", "retry-1")
            .json(&json!({"candidate_ids": [c[0]], "challenge": proof.0, "nonce": proof.1}));
        async move { Reply::from(req.send().await.unwrap()).await }
    };
    let first = keyed((text.clone(), nonce.clone())).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let retry = keyed((text, nonce)).await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.body["receipt"], first.body["receipt"]);
    let ledger = crate::ballots::assert_counts_match_ledger(&app, &id).await;
    assert_eq!(ledger.values().sum::<i64>(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_campaign_without_a_challenge_asks_for_nothing() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("dev_login", "true")]).await;
    let (id, c, _) = voting_campaign(&app, rules(5, 5, 1, "live"), 1).await;
    let voter = app.dev_citizen("oPlain").await;
    let issued = app
        .get(&format!("/api/v1/campaigns/{id}/challenge"), Some(&voter))
        .await;
    assert_eq!(issued.status, 200);
    assert_eq!(issued.body["bits"], 0);
    assert_eq!(ballot(&app, &id, &voter, &[&c[0]], None).await.status, 201);
    app.get("/api/v1/campaigns/999999/challenge", Some(&voter))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/api/v1/campaigns/{id}/challenge"), None)
        .await
        .assert_error(401, "unauthenticated");
}

on_both_backends!(a_flagged_ballot_needs_a_harder_proof);

async fn a_flagged_ballot_needs_a_harder_proof(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let mut r: Value = rules(20, 20, 1, "live");
    r["challenge_bits"] = json!(6);
    r["risk"] = json!({"voters_per_device": 1, "raise_bits": 4});
    let (id, c, _) = voting_campaign(&app, r, 1).await;
    let on_device = |token: String, proof: Option<(String, String)>| {
        let mut body = json!({"candidate_ids": [c[0]]});
        if let Some((challenge, nonce)) = proof {
            body["challenge"] = json!(challenge);
            body["nonce"] = json!(nonce);
        }
        let req = app
            .client
            .post(app.url(&format!("/api/v1/campaigns/{id}/ballots")))
            .bearer_auth(token)
            .header("X-Device-Id", "shared-phone")
            .json(&body);
        async move { Reply::from(req.send().await.unwrap()).await }
    };
    let solved = |reply: &Reply| {
        let text = reply.body["error"]["challenge"]
            .as_str()
            .unwrap()
            .to_string();
        let bits = reply.body["error"]["bits"].as_u64().unwrap() as u8;
        let nonce = pow::solve(&text, bits);
        (text, nonce)
    };
    // The first voter on the phone: the campaign's 6 bits do (a new account alone is no
    // reason to ask more).
    let first = app.dev_citizen("oPhoneOwner").await;
    let asked = on_device(first.clone(), None).await;
    assert_eq!(asked.body["error"]["bits"], 6);
    let ok = on_device(first, Some(solved(&asked))).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    // A second voter on the same phone is flagged: 6 bits are no longer enough.
    let second = app.dev_citizen("oPhoneBorrower").await;
    let asked = on_device(second.clone(), None).await;
    let easy = solved(&asked);
    let raised = on_device(second.clone(), Some(easy)).await;
    raised.assert_error(428, "challenge_required");
    assert_eq!(raised.body["error"]["bits"], 10);
    let ok = on_device(second, Some(solved(&raised))).await;
    assert_eq!(ok.status, 201, "{}", ok.text);
    assert_eq!(ok.body["status"], "counted");
}
