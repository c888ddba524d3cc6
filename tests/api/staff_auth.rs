use serde_json::json;

use minyi::domain::staff::Role;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_staff_member_logs_in_sees_themself_and_logs_out,
    five_wrong_passwords_in_a_row_lock_the_account_with_retry_after,
    racing_wrong_passwords_still_lock_the_account,
    a_staff_token_expires,
    roles_are_enforced_and_token_kinds_are_not_interchangeable,
);

async fn a_staff_member_logs_in_sees_themself_and_logs_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.staff("zhang.organizer", Role::Organizer).await;
    let me = app.get("/api/v1/admin/me", Some(&token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.body["username"], "zhang.organizer");
    assert_eq!(me.body["role"], "organizer");
    assert!(me.body["id"].is_string(), "ids are strings");

    let out = app
        .post("/api/v1/admin/logout", &json!({}), Some(&token))
        .await;
    assert_eq!(out.status, 204, "{}", out.text);
    app.get("/api/v1/admin/me", Some(&token))
        .await
        .assert_error(401, "unauthenticated");
    // A second session of the same account is not touched by the logout of the first.
    let again = app
        .post(
            "/api/v1/admin/login",
            &json!({"username": "zhang.organizer", "password": "zhang.organizer-password-123"}),
            None,
        )
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["role"], "organizer");
    assert!(again.body["expires_at"].is_string());
}

async fn five_wrong_passwords_in_a_row_lock_the_account_with_retry_after(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.staff("li.admin", Role::Admin).await;
    let wrong = json!({"username": "li.admin", "password": "not-the-password"});
    for attempt in 1..=4 {
        let r = app.post("/api/v1/admin/login", &wrong, None).await;
        assert_eq!(r.status, 401, "attempt {attempt}: {}", r.text);
        r.assert_error(401, "invalid_credentials");
    }
    let fifth = app.post("/api/v1/admin/login", &wrong, None).await;
    fifth.assert_error(429, "account_locked");
    let retry: u64 = fifth.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((800..=900).contains(&retry), "about 15 minutes: {retry}");

    // Even the right password is refused while locked.
    let right = json!({"username": "li.admin", "password": "li.admin-password-123"});
    app.post("/api/v1/admin/login", &right, None)
        .await
        .assert_error(429, "account_locked");

    // A wrong password for an unknown user looks like any wrong password.
    app.post(
        "/api/v1/admin/login",
        &json!({"username": "nobody", "password": "x"}),
        None,
    )
    .await
    .assert_error(401, "invalid_credentials");
}

async fn racing_wrong_passwords_still_lock_the_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("login_lockout_secs", "600")]).await;
    app.staff("wang.racer", Role::Organizer).await;
    let wrong = json!({"username": "wang.racer", "password": "not-the-password"});
    let attempts = (0..20).map(|_| app.post("/api/v1/admin/login", &wrong, None));
    let replies = futures_util::future::join_all(attempts).await;
    assert!(replies.iter().all(|r| r.status == 401 || r.status == 429));
    assert!(
        replies.iter().any(|r| r.status == 429),
        "the burst locks the account"
    );
    let right = json!({"username": "wang.racer", "password": "wang.racer-password-123"});
    app.post("/api/v1/admin/login", &right, None)
        .await
        .assert_error(429, "account_locked");
}

async fn a_staff_token_expires(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("staff_token_ttl_secs", "1")]).await;
    let token = app.staff("zhao.auditor", Role::Auditor).await;
    assert_eq!(app.get("/api/v1/admin/me", Some(&token)).await.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let r = app.get("/api/v1/admin/me", Some(&token)).await;
    let message = r.assert_error(401, "unauthenticated");
    assert!(message.contains("过期"), "{message}");
}

async fn roles_are_enforced_and_token_kinds_are_not_interchangeable(backend: Backend) {
    let app = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let admin = app.staff("chen.admin", Role::Admin).await;
    let users = app.get("/api/v1/admin/users", Some(&admin)).await;
    assert_eq!(users.status, 200, "{}", users.text);
    assert_eq!(users.body["items"].as_array().unwrap().len(), 1);
    for role in [
        Role::Organizer,
        Role::UnitHandler,
        Role::Expert,
        Role::Auditor,
    ] {
        let token = app.staff(&format!("user.{role}"), role).await;
        app.get("/api/v1/admin/users", Some(&token))
            .await
            .assert_error(403, "forbidden");
    }

    let citizen = app.dev_citizen("oCitizen-1").await;
    app.get("/api/v1/admin/me", Some(&citizen))
        .await
        .assert_error(401, "unauthenticated");
    app.get("/api/v1/me", Some(&admin))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(app.get("/api/v1/me", Some(&citizen)).await.status, 200);

    // No token, and a token that is neither kind.
    app.get("/api/v1/admin/me", None)
        .await
        .assert_error(401, "unauthenticated");
    app.get("/api/v1/admin/me", Some("s1.0000"))
        .await
        .assert_error(401, "unauthenticated");
    app.get("/api/v1/me", Some("garbage"))
        .await
        .assert_error(401, "unauthenticated");
}
