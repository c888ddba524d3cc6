use std::sync::atomic::Ordering;

use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(
    a_wechat_code_becomes_a_token_and_a_keyed_voter_id,
    wechat_refusals_map_to_clear_errors,
    a_wechat_timeout_is_503,
    dev_login_is_off_unless_configured,
);

async fn a_wechat_code_becomes_a_token_and_a_keyed_voter_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let openid = "oTEST-openid-abcdef";
    let r = app
        .post(
            "/api/v1/auth/wechat",
            &json!({"code": format!("ok:{openid}")}),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let voter_id = r.body["voter_id"].as_str().unwrap().to_string();
    assert_eq!(voter_id.len(), 32);
    assert!(
        !r.text.contains(openid),
        "the openid never leaves the server"
    );
    assert!(!r.text.contains("sk-"), "nor the session key");
    let token = r.body["token"].as_str().unwrap();
    let me = app.get("/api/v1/me", Some(token)).await;
    assert_eq!(me.body["voter_id"], voter_id.as_str());

    // The same person logging in again is the same voter.
    let again = app
        .post(
            "/api/v1/auth/wechat",
            &json!({"code": format!("ok:{openid}")}),
            None,
        )
        .await;
    assert_eq!(again.status, 401, "a code is usable once: {}", again.text);
    let again = app
        .post(
            "/api/v1/auth/wechat",
            &json!({"code": format!("delay:1:{openid}")}),
            None,
        )
        .await;
    assert_eq!(again.body["voter_id"], voter_id.as_str());
    assert_eq!(app.wechat.calls.load(Ordering::SeqCst), 3);

    // The database knows the voter only by that hash.
    if backend == Backend::Sqlite {
        for file in std::fs::read_dir(app.dir.path()).unwrap() {
            let bytes = std::fs::read(file.unwrap().path()).unwrap();
            assert!(
                !bytes.windows(openid.len()).any(|w| w == openid.as_bytes()),
                "openid stored"
            );
        }
    }
}

async fn wechat_refusals_map_to_clear_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = async |code: &str| {
        app.post("/api/v1/auth/wechat", &json!({"code": code}), None)
            .await
    };
    login("invalid")
        .await
        .assert_error(401, "wechat_login_failed");
    login("risky")
        .await
        .assert_error(401, "wechat_login_failed");
    let r = login("ratelimit").await;
    r.assert_error(429, "rate_limited");
    assert_eq!(r.headers["retry-after"], "60");
    let r = login("busy").await;
    r.assert_error(503, "unavailable");
    assert_eq!(r.body["error"]["part"], "wechat");
}

async fn a_wechat_timeout_is_503(backend: Backend) {
    // The test app waits at most 800 ms for WeChat; the fake answers after 1.5 s.
    let app = TestApp::spawn(backend).await;
    let started = std::time::Instant::now();
    let r = app
        .post("/api/v1/auth/wechat", &json!({"code": "slow:oSlow"}), None)
        .await;
    r.assert_error(503, "unavailable");
    assert!(started.elapsed() < std::time::Duration::from_millis(1400));
}

async fn dev_login_is_off_unless_configured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.post("/api/v1/auth/dev", &json!({"openid": "x"}), None)
        .await
        .assert_error(404, "not_found");
    let doc = app.get("/api/v1/openapi.json", None).await;
    assert!(
        doc.body["paths"].get("/api/v1/auth/dev").is_none(),
        "not even described"
    );

    let on = TestApp::spawn_with(backend, &[("dev_login", "true")]).await;
    let r = on
        .post("/api/v1/auth/dev", &json!({"openid": "oDev"}), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(!r.text.contains("oDev"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wechat_not_configured_is_503() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        &[("wechat_appid", ""), ("wechat_secret", "")],
    )
    .await;
    let r = app
        .post("/api/v1/auth/wechat", &json!({"code": "ok:o1"}), None)
        .await;
    r.assert_error(503, "unavailable");
    assert_eq!(app.wechat.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_app_secret_is_a_login_failure_not_a_crash() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("wechat_secret", "wrong-secret")]).await;
    let r = app
        .post("/api/v1/auth/wechat", &json!({"code": "ok:o1"}), None)
        .await;
    r.assert_error(401, "wechat_login_failed");
}
