//! Every error the framework itself produces comes in the contract's JSON shape.

use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(framework_rejections_use_the_error_shape);

async fn framework_rejections_use_the_error_shape(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let c = &app.client;

    // Unknown route.
    let r = Reply::from(
        c.get(app.url("/api/v1/no-such-thing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(404, "not_found");

    // Malformed JSON.
    let r = Reply::from(
        c.post(app.url("/api/v1/admin/login"))
            .header("content-type", "application/json")
            .body("{\"username\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(400, "malformed_json");

    // Wrong content type.
    let r = Reply::from(
        c.post(app.url("/api/v1/admin/login"))
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    r.assert_error(415, "unsupported_media_type");

    // A body over the 64 KiB limit.
    let big = json!({"username": "x".repeat(70 * 1024), "password": "y"});
    let r = app.post("/api/v1/admin/login", &big, None).await;
    r.assert_error(413, "payload_too_large");

    // A missing field names the field.
    let r = app
        .post("/api/v1/admin/login", &json!({"username": "someone"}), None)
        .await;
    r.assert_error(422, "invalid_request");
    assert_eq!(r.body["error"]["field"], "password");

    // A field of the wrong type.
    let r = app
        .post("/api/v1/auth/wechat", &json!({"code": 42}), None)
        .await;
    r.assert_error(422, "invalid_request");

    // An empty field.
    let r = app
        .post("/api/v1/auth/wechat", &json!({"code": " "}), None)
        .await;
    r.assert_error(422, "invalid_request");
    assert_eq!(r.body["error"]["field"], "code");

    // A bad query parameter.
    let r = app
        .get("/api/v1/campaigns/1/candidates?limit=lots", None)
        .await;
    r.assert_error(422, "invalid_request");
    assert_eq!(r.body["error"]["field"], "limit");
}
