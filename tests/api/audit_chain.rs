//! The chain under races and under tampering, and the roles matrix of every staff route.

use std::process::Command;

use minyi::app::verify;
use minyi::domain::staff::Role;
use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    two_hundred_concurrent_changes_make_one_chain_without_gap_or_fork,
    tampering_with_the_database_is_found_at_the_first_bad_seq,
    every_staff_route_enforces_its_roles,
);

async fn two_hundred_concurrent_changes_make_one_chain_without_gap_or_fork(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("db_max_connections", "16")]).await;
    let org = app.staff("race.organizer", Role::Organizer).await;
    let (id, cat) = app.selection_campaign(&org, "live").await;
    let changes = (0..200).map(|i| {
        let (app, org, id, cat) = (&app, &org, &id, &cat);
        async move {
            if i % 2 == 0 {
                app.post(&format!("/api/v1/admin/campaigns/{id}/candidates"), &json!({"category_id": cat, "name": format!("候选人{i}"), "unit": "示例市人民医院"}), Some(org)).await
            } else {
                app.patch(&format!("/api/v1/admin/campaigns/{id}/categories/{cat}"), &json!({"winners": i}), Some(org)).await
            }
        }
    });
    let replies = futures_util::future::join_all(changes).await;
    for r in &replies {
        assert!(r.status == 201 || r.status == 200, "{}", r.text);
    }
    let entries = app.entries(&id, &org).await;
    assert_eq!(entries.len(), 202, "one entry per change");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "no gap");
        if i > 0 {
            assert_eq!(
                e["prev_hash"],
                entries[i - 1]["hash"],
                "no fork at seq {}",
                i + 1
            );
        }
    }
    // Numbers were handed out once each.
    let mut numbers: Vec<i64> = replies
        .iter()
        .filter(|r| r.status == 201)
        .map(|r| r.body["number"].as_i64().unwrap())
        .collect();
    numbers.sort();
    assert_eq!(numbers, (1..=100).collect::<Vec<_>>());
    let report = verify::from_store(app.services.store.as_ref(), id.parse().unwrap())
        .await
        .unwrap();
    assert!(report.ok(), "{:?}", report.problem);
    assert_eq!(report.entries, 202);
}

/// A campaign with five entries: created, category, two nominations, one approval.
async fn small_campaign(app: &TestApp, org: &str) -> (i64, String) {
    let (id, cat) = app.selection_campaign(org, "live").await;
    let mut first = String::new();
    for name in ["张护士", "李护士"] {
        let r = app
            .post(
                &format!("/api/v1/admin/campaigns/{id}/candidates"),
                &json!({"category_id": cat, "name": name, "unit": "示例市人民医院"}),
                Some(org),
            )
            .await;
        if first.is_empty() {
            first = r.body["id"].as_str().unwrap().to_string();
        }
    }
    app.post(
        &format!("/api/v1/admin/campaigns/{id}/candidates/{first}/approve"),
        &json!({}),
        Some(org),
    )
    .await;
    (id.parse().unwrap(), first)
}

async fn first_bad_seq(app: &TestApp, id: i64) -> (i64, String) {
    let report = verify::from_store(app.services.store.as_ref(), id)
        .await
        .unwrap();
    let problem = report.problem.expect("tampering is detected");
    (problem.seq, problem.reason)
}

async fn tampering_with_the_database_is_found_at_the_first_bad_seq(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.staff("tamper.organizer", Role::Organizer).await;

    // A changed body.
    let (id, _) = small_campaign(&app, &org).await;
    app.raw_sql(&format!("UPDATE audit_entries SET body = replace(body, '李护士', '王护士') WHERE campaign_id = {id} AND seq = 4")).await;
    assert_eq!(first_bad_seq(&app, id).await.0, 4);

    // A deleted entry.
    let (id, _) = small_campaign(&app, &org).await;
    app.raw_sql(&format!(
        "DELETE FROM audit_entries WHERE campaign_id = {id} AND seq = 2"
    ))
    .await;
    assert_eq!(first_bad_seq(&app, id).await.0, 2);

    // Two entries swapped.
    let (id, _) = small_campaign(&app, &org).await;
    app.raw_sql(&format!(
        "UPDATE audit_entries SET seq = -1 WHERE campaign_id = {id} AND seq = 3; \
         UPDATE audit_entries SET seq = 3 WHERE campaign_id = {id} AND seq = 4; \
         UPDATE audit_entries SET seq = 4 WHERE campaign_id = {id} AND seq = -1;"
    ))
    .await;
    assert_eq!(first_bad_seq(&app, id).await.0, 3);

    // The last entry dropped (the head still remembers it).
    let (id, _) = small_campaign(&app, &org).await;
    app.raw_sql(&format!(
        "DELETE FROM audit_entries WHERE campaign_id = {id} AND seq = 5"
    ))
    .await;
    assert_eq!(first_bad_seq(&app, id).await.0, 5);

    // One field of the recorded state changed behind the chain's back: the candidate's last
    // entry is its approval, seq 5.
    let (id, first) = small_campaign(&app, &org).await;
    app.raw_sql(&format!(
        "UPDATE candidates SET name = '篡改' WHERE id = {first}"
    ))
    .await;
    let (seq, why) = first_bad_seq(&app, id).await;
    assert_eq!(seq, 5, "{why}");
    assert!(why.contains("name"), "{why}");
    // The other nominee's last entry is its nomination, seq 4.
    let (id, _) = small_campaign(&app, &org).await;
    app.raw_sql(&format!(
        "UPDATE candidates SET unit = '别的医院' WHERE campaign_id = {id} AND number = 2"
    ))
    .await;
    assert_eq!(first_bad_seq(&app, id).await.0, 4);

    // The binary says the same and exits non-zero; an untouched campaign exits 0.
    let (good, _) = small_campaign(&app, &org).await;
    let run = |id: i64| {
        Command::new(env!("CARGO_BIN_EXE_minyi"))
            .args(["verify", "--campaign", &id.to_string()])
            .env_clear()
            .env("DATABASE_URL", &app.database_url)
            .env("MINYI_SECRET", TEST_SECRET)
            .output()
            .unwrap()
    };
    let ok = run(good);
    let out = String::from_utf8_lossy(&ok.stdout).to_string();
    assert!(
        ok.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        out.contains("checked 5 entries") && out.contains("entries/s"),
        "{out}"
    );
    let bad = run(id);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).contains("FAILED at seq 4"));

    // An export verifies without a database; an edited export does not.
    let export = app
        .get(
            &format!("/api/v1/campaigns/{good}/audit/export"),
            Some(&org),
        )
        .await
        .text;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chain.jsonl");
    std::fs::write(&file, &export).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minyi"))
        .args(["verify", "--file"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::write(&file, export.replacen("张护士", "赵护士", 1)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_minyi"))
        .args(["verify", "--file"])
        .arg(&file)
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("FAILED at seq 3"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

async fn every_staff_route_enforces_its_roles(backend: Backend) {
    use Role::*;
    let app = TestApp::spawn(backend).await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        tokens.push((role, app.staff(&format!("matrix.{role}"), role).await));
    }
    let admin = &tokens[0].1;
    let (sel, cat) = app.selection_campaign(admin, "live").await;
    let ev = app
        .post(
            "/api/v1/admin/campaigns",
            &json!({"kind": "evaluation", "title": "评议"}),
            Some(admin),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cand = app
        .post(
            &format!("/api/v1/admin/campaigns/{sel}/candidates"),
            &json!({"category_id": cat, "name": "甲", "unit": "示例市人民医院"}),
            Some(admin),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let runners = [Admin, Organizer];
    let everyone = Role::ALL;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let patch = reqwest::Method::PATCH;
    let routes: Vec<(reqwest::Method, String, serde_json::Value, &[Role])> = vec![
        (
            get.clone(),
            "/api/v1/admin/users".into(),
            json!({}),
            &[Admin],
        ),
        (get.clone(), "/api/v1/admin/me".into(), json!({}), &everyone),
        (
            post.clone(),
            "/api/v1/admin/campaigns".into(),
            json!({"kind": "selection", "title": "矩阵"}),
            &runners,
        ),
        (
            get.clone(),
            "/api/v1/admin/campaigns".into(),
            json!({}),
            &everyone,
        ),
        (
            get.clone(),
            format!("/api/v1/admin/campaigns/{sel}"),
            json!({}),
            &everyone,
        ),
        (
            patch.clone(),
            format!("/api/v1/admin/campaigns/{sel}"),
            json!({"description": "d"}),
            &runners,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{ev}/open"),
            json!({}),
            &runners,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{sel}/categories"),
            json!({"name": "医生", "winners": 1}),
            &runners,
        ),
        (
            patch.clone(),
            format!("/api/v1/admin/campaigns/{sel}/categories/{cat}"),
            json!({"winners": 3}),
            &runners,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{sel}/candidates"),
            json!({"category_id": cat, "name": "乙"}),
            &[Admin, Organizer, UnitHandler],
        ),
        (
            get.clone(),
            format!("/api/v1/admin/campaigns/{sel}/candidates"),
            json!({}),
            &everyone,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{sel}/candidates/{cand}/approve"),
            json!({}),
            &runners,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{sel}/candidates/{cand}/reject"),
            json!({"reason": "r"}),
            &runners,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{sel}/candidates/{cand}/withdraw"),
            json!({"reason": "r"}),
            &runners,
        ),
        (
            post.clone(),
            format!("/api/v1/admin/campaigns/{ev}/targets"),
            json!({"name": "科室"}),
            &runners,
        ),
    ];
    for (method, path, body, allowed) in &routes {
        for (role, token) in &tokens {
            let r = app.send(method.clone(), path, body, Some(token)).await;
            if allowed.contains(role) {
                assert!(
                    r.status != 403 && r.status != 401,
                    "{role} on {method} {path}: {}",
                    r.text
                );
            } else {
                r.assert_error(403, "forbidden");
            }
        }
        app.send(method.clone(), path, body, None)
            .await
            .assert_error(401, "unauthenticated");
    }
    for path in ["candidates/import", "targets/import"] {
        for (role, token) in &tokens {
            let r = app
                .upload(
                    &format!("/api/v1/admin/campaigns/{sel}/{path}"),
                    b"x".to_vec(),
                    token,
                )
                .await;
            assert_eq!(
                r.status == 403,
                !runners.contains(role),
                "{role} {path}: {}",
                r.text
            );
        }
    }
}
