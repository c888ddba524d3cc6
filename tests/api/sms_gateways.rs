//! The SMS gateway clients against local fakes that check requests as the real services do:
//! Tencent's TC3-HMAC-SHA256 and Aliyun's ACS3-HMAC-SHA256 signatures recomputed from what
//! arrived on the wire, the action and version headers, and the fields of `SendSms` and of
//! the status queries (`PullSmsSendStatusByPhoneNumber`, `QuerySendDetails`).
//!
//! A fake can also take a send and never answer, or never take it and never answer: the
//! two sides of an outcome the client cannot know, which the sender settles by asking. It can
//! also take a send and then fail: a 502 from the front end, or the vendor's own timeout code.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, Utc};
use minyi::app::sms::{self, Round};
use minyi::config::{GatewayAccount, Secret};
use minyi::integrations::aliyun_sms::{self, AcsHeaders, AliyunSms};
use minyi::integrations::tencent_sms::{TencentSms, authorization};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::surveys::{import, setup};

const SECRET_ID: &str = "AKIDfakefakefakefakefake";
const SECRET_KEY: &str = "fake-secret-key-0123456789";
/// How long a fake holds a request it will not answer: far past the clients' timeout here.
const STALL: Duration = Duration::from_secs(4);

on_both_backends!(
    tencent_sends_without_an_answer_are_settled_by_asking,
    aliyun_sends_without_an_answer_are_settled_by_asking,
    tencent_sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking,
    aliyun_sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking,
    tencent_sends_failing_after_the_gateway_took_them_are_settled_by_asking,
    aliyun_sends_failing_after_the_gateway_took_them_are_settled_by_asking
);

/// What the fake does with a well-signed `SendSms`.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Throttle,
    /// Takes the send, then never answers (the client times out).
    TakeWithoutAnswer,
    /// Never takes the send, and never answers either.
    DropWithoutAnswer,
    /// Takes the send, then its front end answers 502 Bad Gateway.
    TakeThenBadGateway,
    /// Takes the send, then answers with the vendor's code for a timeout inside it
    /// (Tencent's `InternalError.Timeout`, Aliyun's `isp.SYSTEM_ERROR`).
    TakeThenTimeoutCode,
}

/// A send the fake took: Tencent's JSON body or Aliyun's query as a JSON object, and when.
#[derive(Clone)]
struct Taken {
    fields: Value,
    at: DateTime<Utc>,
}

struct State {
    mode: Mutex<Mode>,
    taken: Mutex<Vec<Taken>>,
    /// The status queries it answered (their fields).
    queries: Mutex<Vec<Value>>,
}

/// A local gateway.
struct Fake {
    base: String,
    state: Arc<State>,
    _server: actix_web::dev::ServerHandle,
}

impl Fake {
    fn start<F, Args>(handler: F) -> Self
    where
        F: actix_web::Handler<Args> + Clone + Send + 'static,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Accept),
            taken: Mutex::default(),
            queries: Mutex::default(),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .route("/", web::post().to(handler.clone()))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base,
            state,
            _server: handle,
        }
    }

    fn set(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    fn taken(&self) -> Vec<Value> {
        let taken = self.state.taken.lock().unwrap();
        taken.iter().map(|t| t.fields.clone()).collect()
    }

    fn queries(&self) -> Vec<Value> {
        self.state.queries.lock().unwrap().clone()
    }

    fn account(&self, secret_key: &str, template: &str) -> GatewayAccount {
        GatewayAccount {
            api_base: self.base.clone(),
            secret_id: SECRET_ID.into(),
            secret_key: Secret::new(secret_key),
            region: "ap-guangzhou".into(),
            app_id: "1400000000".into(),
            sign_name: "示例市卫健委".into(),
            template_id: template.into(),
            timeout: Duration::from_secs(5),
        }
    }

    /// An account whose client gives up after a second, for the fake's silences.
    fn impatient(&self, template: &str) -> GatewayAccount {
        GatewayAccount {
            timeout: Duration::from_secs(1),
            ..self.account(SECRET_KEY, template)
        }
    }
}

/// The fake as its handlers see it.
type Shared = web::Data<Arc<State>>;

impl State {
    /// Takes a send as the mode says; `Some(silence)` when it will not answer.
    async fn take(&self, fields: Value) -> Option<HttpResponse> {
        let mode = *self.mode.lock().unwrap();
        if mode != Mode::DropWithoutAnswer {
            let taken = Taken {
                fields,
                at: Utc::now(),
            };
            self.taken.lock().unwrap().push(taken);
        }
        match mode {
            // The client has given up long before this.
            Mode::TakeWithoutAnswer | Mode::DropWithoutAnswer => {
                tokio::time::sleep(STALL).await;
                Some(HttpResponse::GatewayTimeout().finish())
            }
            Mode::TakeThenBadGateway => Some(HttpResponse::BadGateway().body("<html>502</html>")),
            _ => None,
        }
    }

    fn taken_matching(&self, keep: impl Fn(&Taken) -> bool) -> Vec<Taken> {
        let taken = self.taken.lock().unwrap();
        taken.iter().filter(|t| keep(t)).cloned().collect()
    }
}

/// A wrong key is refused for good (`refusal`); throttling is retried; then the send goes
/// out. Returns what the gateway accepted.
async fn wrong_key_then_throttled_then_sent(
    fake: &Fake,
    wrong: &dyn sms::Gateway,
    right: &dyn sms::Gateway,
    refusal: &str,
) -> Value {
    let (app, id, org, emergency) = setup(Backend::Sqlite).await;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let throttle = sms::throttle(100);
    let r = sms::send_due(&app.services, wrong, &throttle, Utc::now())
        .await
        .unwrap();
    assert_eq!(r.failed, 1);
    let row = app
        .raw_sql_rows("SELECT send_status, last_error FROM survey_records")
        .await;
    assert_eq!(row[0], ["failed", refusal]);

    import(&app, &id, &org, &emergency, &["13900001111"]).await;
    fake.set(Mode::Throttle);
    let now = Utc::now();
    assert_eq!(
        sms::send_due(&app.services, right, &throttle, now)
            .await
            .unwrap()
            .retried,
        1
    );
    fake.set(Mode::Accept);
    let later = now + chrono::Duration::minutes(1);
    let r = sms::send_due(&app.services, right, &throttle, later)
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            sent: 1,
            ..Round::default()
        }
    );
    let taken = fake.taken();
    assert_eq!(taken.len(), 1);
    taken[0].clone()
}

async fn statuses(app: &TestApp) -> Vec<Vec<String>> {
    app.raw_sql_rows(
        "SELECT send_status, last_error, CAST(attempts AS TEXT) FROM survey_records ORDER BY id",
    )
    .await
}

fn row(status: &str, error: &str, attempts: &str) -> Vec<String> {
    vec![status.into(), error.into(), attempts.into()]
}

/// One record's send times out twice: once after the gateway took it (asked, it says so: sent,
/// never sent again), once before it took anything (asked, it knows nothing once its records
/// have settled: sent again, once). `settle`: the gateway's settle time.
async fn sends_without_an_answer_are_settled_by_asking(
    backend: Backend,
    fake: &Fake,
    gateway: &dyn sms::Gateway,
    settle: chrono::Duration,
) {
    let (app, id, org, emergency) = setup(backend).await;
    let throttle = sms::throttle(100);
    let minutes = chrono::Duration::minutes;

    // Taken, and no answer: unknown, and nothing more happens until its query is due.
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let now = Utc::now();
    fake.set(Mode::TakeWithoutAnswer);
    let r = sms::send_due(&app.services, gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            unknown: 1,
            ..Round::default()
        }
    );
    assert_eq!(
        statuses(&app).await,
        [row("unknown", "timeout: outcome unknown", "1")]
    );
    fake.set(Mode::Accept);
    let r = sms::send_due(&app.services, gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(r, Round::default());
    assert!(fake.queries().is_empty());
    // Asked: the gateway has it. Sent, and the gateway took one SendSms.
    let r = sms::send_due(&app.services, gateway, &throttle, now + minutes(1))
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            confirmed: 1,
            ..Round::default()
        }
    );
    assert_eq!(statuses(&app).await, [row("sent", "", "1")]);
    assert_eq!(fake.taken().len(), 1);
    assert_eq!(fake.queries().len(), 1);

    // Never taken, and no answer.
    import(&app, &id, &org, &emergency, &["13900001111"]).await;
    fake.set(Mode::DropWithoutAnswer);
    let start = now + minutes(2);
    let r = sms::send_due(&app.services, gateway, &throttle, start)
        .await
        .unwrap();
    assert_eq!(r.unknown, 1);
    fake.set(Mode::Accept);
    // Asked too early, the gateway's silence proves nothing: asked again later.
    let r = sms::send_due(&app.services, gateway, &throttle, start + minutes(1))
        .await
        .unwrap();
    assert_eq!(r, Round::default());
    assert_eq!(fake.queries().len(), 2);
    assert_eq!(statuses(&app).await[1][0], "unknown");
    // Settled, and still no record: queued again after the usual backoff, then sent once.
    let settled = start + settle + minutes(2);
    let r = sms::send_due(&app.services, gateway, &throttle, settled)
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            requeued: 1,
            ..Round::default()
        }
    );
    assert_eq!(
        statuses(&app).await[1],
        row(
            "queued",
            "timeout: outcome unknown; the gateway has no record of it",
            "1"
        )
    );
    let r = sms::send_due(&app.services, gateway, &throttle, settled + minutes(1))
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            sent: 1,
            ..Round::default()
        }
    );
    assert_eq!(
        statuses(&app).await,
        [row("sent", "", "1"), row("sent", "", "2")]
    );
    // One SendSms taken per record.
    assert_eq!(fake.taken().len(), 2);
}

/// Sends claimed by an instance that then stopped, as the database keeps them: one the
/// gateway took before the stop (asked: sent, not sent again), one it never got (asked: no
/// record, so sent once), one whose number the retention cleared meanwhile (it cannot be
/// asked about: failed, saying so).
async fn sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking(
    backend: Backend,
    fake: &Fake,
    gateway: &dyn sms::Gateway,
    settle: chrono::Duration,
) {
    let (app, id, org, emergency) = setup(backend).await;
    let throttle = sms::throttle(100);
    let minutes = chrono::Duration::minutes;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let now = Utc::now();
    let r = sms::send_due(&app.services, gateway, &throttle, now)
        .await
        .unwrap();
    assert_eq!(r.sent, 1);
    // As if the instance had stopped after the gateway took it, before recording it.
    app.raw_sql(
        "UPDATE survey_records SET send_status = 'sending', sent_at = NULL, \
         next_attempt_at = '2000-01-01T00:00:00+00:00' WHERE id = (SELECT MIN(id) FROM survey_records)",
    )
    .await;
    // Two more claimed and never sent (the instance stopped first).
    import(&app, &id, &org, &emergency, &["13900001111", "13700002222"]).await;
    let claimed_at = Utc::now();
    let claimed = app
        .services
        .store
        .claim_sends(
            claimed_at,
            claimed_at + minutes(2),
            &[
                sms::fresh_token(&app.services.vault).1,
                sms::fresh_token(&app.services.vault).1,
            ],
            claimed_at + chrono::Duration::days(1),
        )
        .await
        .unwrap();
    assert_eq!(claimed.sends.len(), 2);
    app.raw_sql(
        "UPDATE survey_records SET phone_enc = NULL, phone_hash = NULL \
         WHERE id = (SELECT MAX(id) FROM survey_records)",
    )
    .await;

    // The next pass after their leases: each asked about, none sent blindly.
    let r = sms::send_due(&app.services, gateway, &throttle, now + minutes(3))
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            confirmed: 1,
            failed: 1,
            ..Round::default()
        }
    );
    assert_eq!(fake.taken().len(), 1);
    assert_eq!(
        statuses(&app).await,
        [
            row("sent", "", "1"),
            row("unknown", "interrupted: outcome unknown", "1"),
            row("failed", "phone_cleared: outcome unknown", "1"),
        ]
    );
    // Once the gateway's records have settled, the one it never got is sent, once.
    let settled = now + settle + minutes(5);
    let r = sms::send_due(&app.services, gateway, &throttle, settled)
        .await
        .unwrap();
    assert_eq!(r.requeued, 1);
    let r = sms::send_due(&app.services, gateway, &throttle, settled + minutes(1))
        .await
        .unwrap();
    assert_eq!(r.sent, 1);
    assert_eq!(statuses(&app).await[1], row("sent", "", "2"));
    let taken = fake.taken();
    assert_eq!(taken.len(), 2);
    assert_ne!(taken[0], taken[1]);
}

/// Sends the gateway took and then failed to confirm: a 502 from its front end, then its own
/// timeout code. Neither is sent again blindly: each is `unknown`, asked about, and `sent`,
/// with one `SendSms` taken per record. `timeout_code`: the vendor's code, as recorded.
async fn sends_failing_after_the_gateway_took_them_are_settled_by_asking(
    backend: Backend,
    fake: &Fake,
    gateway: &dyn sms::Gateway,
    timeout_code: &str,
) {
    let (app, id, org, emergency) = setup(backend).await;
    let throttle = sms::throttle(100);
    let minutes = chrono::Duration::minutes;
    for (i, (mode, reason)) in [
        (Mode::TakeThenBadGateway, "HTTP 502: outcome unknown"),
        (Mode::TakeThenTimeoutCode, timeout_code),
    ]
    .into_iter()
    .enumerate()
    {
        let phone = ["13800138000", "13900001111"][i];
        import(&app, &id, &org, &emergency, &[phone]).await;
        let start = Utc::now();
        fake.set(mode);
        let r = sms::send_due(&app.services, gateway, &throttle, start)
            .await
            .unwrap();
        assert_eq!(
            r,
            Round {
                unknown: 1,
                ..Round::default()
            },
            "{reason}"
        );
        assert_eq!(statuses(&app).await[i], row("unknown", reason, "1"));
        // Nothing goes out again before the gateway is asked; asked, it has it.
        fake.set(Mode::Accept);
        let r = sms::send_due(&app.services, gateway, &throttle, start + minutes(1))
            .await
            .unwrap();
        assert_eq!(
            r,
            Round {
                confirmed: 1,
                ..Round::default()
            },
            "{reason}"
        );
        assert_eq!(statuses(&app).await[i], row("sent", "", "1"));
        assert_eq!(fake.taken().len(), i + 1);
    }
    // Later rounds send nothing more.
    let later = Utc::now() + minutes(60 * 3);
    let r = sms::send_due(&app.services, gateway, &throttle, later)
        .await
        .unwrap();
    assert_eq!(r, Round::default());
    assert_eq!(fake.taken().len(), 2);
}

// Tencent Cloud SMS.

fn error(code: &str) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "fake"}}))
}

/// `SendSms` and `PullSmsSendStatusByPhoneNumber`, signed as Tencent checks them.
async fn tencent(req: HttpRequest, body: String, state: Shared) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let action = header("X-TC-Action");
    if header("X-TC-Version") != "2021-01-11" {
        return error("InvalidAction");
    }
    if header("Content-Type") != "application/json; charset=utf-8" {
        return error("InvalidParameter.ContentType");
    }
    let Ok(timestamp) = header("X-TC-Timestamp").parse::<i64>() else {
        return error("MissingParameter");
    };
    if (Utc::now().timestamp() - timestamp).abs() > 300 {
        return error("AuthFailure.SignatureExpire");
    }
    let expected = authorization(
        SECRET_ID,
        SECRET_KEY,
        "sms",
        &header("Host"),
        timestamp,
        &body,
    );
    if header("Authorization") != expected {
        return error("AuthFailure.SignatureFailure");
    }
    let Ok(fields) = serde_json::from_str::<Value>(&body) else {
        return error("InvalidParameter");
    };
    match action.as_str() {
        "SendSms" => tencent_send(fields, &state).await,
        "PullSmsSendStatusByPhoneNumber" => tencent_pull(fields, &state),
        _ => error("InvalidAction"),
    }
}

async fn tencent_send(fields: Value, state: &Shared) -> HttpResponse {
    let mode = *state.mode.lock().unwrap();
    if mode == Mode::Throttle {
        return error("LimitExceeded.PhoneNumberThirtySecondLimit");
    }
    let phone = fields["PhoneNumberSet"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let context = fields["SessionContext"].clone();
    if let Some(silence) = state.take(fields).await {
        return silence;
    }
    if mode == Mode::TakeThenTimeoutCode {
        return error("InternalError.Timeout");
    }
    HttpResponse::Ok().json(json!({"Response": {"SendStatusSet": [{"SerialNo": "2028:1", "PhoneNumber": phone,
        "Fee": 1, "SessionContext": context, "Code": "Ok", "Message": "send success", "IsoCode": "CN"}], "RequestId": "fake"}}))
}

/// The status records of one number between `BeginTime` and `EndTime` (seven days back at
/// most), each with the `SessionContext` of its send.
fn tencent_pull(fields: Value, state: &Shared) -> HttpResponse {
    let (Some(begin), Some(phone)) = (fields["BeginTime"].as_i64(), fields["PhoneNumber"].as_str())
    else {
        return error("MissingParameter");
    };
    let end = fields["EndTime"].as_i64().unwrap_or(i64::MAX);
    let limit = fields["Limit"].as_u64().unwrap_or(0);
    if fields["Offset"] != 0
        || !(1..=100).contains(&limit)
        || !phone.starts_with("+86")
        || fields["SmsSdkAppId"] != "1400000000"
        || Utc::now().timestamp() - begin > 7 * 86_400
        || end < begin
    {
        return error("InvalidParameterValue");
    }
    state.queries.lock().unwrap().push(fields.clone());
    let records: Vec<Value> = state
        .taken_matching(|t| {
            t.fields["PhoneNumberSet"][0] == phone && (begin..=end).contains(&t.at.timestamp())
        })
        .iter()
        .take(limit as usize)
        .map(|t| {
            json!({"UserReceiveTime": t.at.timestamp(), "CountryCode": "86", "SubscriberNumber": &phone[3..],
                   "PhoneNumber": phone, "SerialNo": "2028:1", "ReportStatus": "SUCCESS", "Description": "DELIVRD",
                   "SessionContext": t.fields["SessionContext"]})
        })
        .collect();
    HttpResponse::Ok()
        .json(json!({"Response": {"PullSmsSendStatusSet": records, "RequestId": "fake"}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tencent_client_is_signed_as_tencent_checks_it() {
    let fake = Fake::start(tencent);
    let sent = wrong_key_then_throttled_then_sent(
        &fake,
        &TencentSms::new(&fake.account("not-the-key", "1234567")),
        &TencentSms::new(&fake.account(SECRET_KEY, "1234567")),
        "AuthFailure.SignatureFailure",
    )
    .await;
    assert_eq!(sent["PhoneNumberSet"], json!(["+8613900001111"]));
    assert_eq!(
        (&sent["SmsSdkAppId"], &sent["SignName"], &sent["TemplateId"]),
        (
            &json!("1400000000"),
            &json!("示例市卫健委"),
            &json!("1234567")
        )
    );
    let link = sent["TemplateParamSet"][0].as_str().unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:8080/s/")
            && link.len() == "http://127.0.0.1:8080/s/".len() + 32,
        "{link}"
    );
    assert!(sent["SessionContext"].is_string());
}

async fn tencent_sends_without_an_answer_are_settled_by_asking(backend: Backend) {
    let fake = Fake::start(tencent);
    let gateway = TencentSms::new(&fake.impatient("1234567"));
    sends_without_an_answer_are_settled_by_asking(
        backend,
        &fake,
        &gateway,
        chrono::Duration::hours(1),
    )
    .await;
    // The query names the number as Tencent wants it, and starts before the claim.
    let q = &fake.queries()[0];
    assert_eq!(q["PhoneNumber"], "+8613800138000");
    assert!(q["BeginTime"].as_i64().unwrap() < Utc::now().timestamp() - 60);
}

async fn tencent_sends_failing_after_the_gateway_took_them_are_settled_by_asking(backend: Backend) {
    let fake = Fake::start(tencent);
    let gateway = TencentSms::new(&fake.account(SECRET_KEY, "1234567"));
    sends_failing_after_the_gateway_took_them_are_settled_by_asking(
        backend,
        &fake,
        &gateway,
        "InternalError.Timeout",
    )
    .await;
}

async fn tencent_sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking(backend: Backend) {
    let fake = Fake::start(tencent);
    let gateway = TencentSms::new(&fake.impatient("1234567"));
    sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking(
        backend,
        &fake,
        &gateway,
        chrono::Duration::hours(1),
    )
    .await;
}

// Aliyun SMS.

fn aliyun_code(c: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({"Code": c, "Message": c, "RequestId": "fake"}))
}

/// `SendSms` and `QuerySendDetails`, signed as Aliyun checks them.
async fn aliyun(
    req: HttpRequest,
    query: web::Query<std::collections::BTreeMap<String, String>>,
    state: Shared,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let action = header("x-acs-action");
    if header("x-acs-version") != "2017-05-25" {
        return aliyun_code("InvalidAction.NotFound");
    }
    if header("x-acs-content-sha256") != aliyun_sms::EMPTY_SHA256 {
        return aliyun_code("InvalidParameter.ContentSHA256");
    }
    let date = header("x-acs-date");
    let fresh = DateTime::parse_from_rfc3339(&date)
        .is_ok_and(|d| (Utc::now() - d.with_timezone(&Utc)).num_seconds().abs() < 900);
    if !fresh {
        return aliyun_code("InvalidTimeStamp.Expired");
    }
    let expected = aliyun_sms::authorization(
        SECRET_ID,
        SECRET_KEY,
        &query,
        &AcsHeaders {
            host: &header("Host"),
            action: &action,
            version: "2017-05-25",
            date: &date,
            nonce: &header("x-acs-signature-nonce"),
        },
    );
    if header("Authorization") != expected {
        return aliyun_code("SignatureDoesNotMatch");
    }
    match action.as_str() {
        "SendSms" => aliyun_send(query.into_inner(), &state).await,
        "QuerySendDetails" => aliyun_details(query.into_inner(), &state),
        _ => aliyun_code("InvalidAction.NotFound"),
    }
}

async fn aliyun_send(
    query: std::collections::BTreeMap<String, String>,
    state: &Shared,
) -> HttpResponse {
    let mode = *state.mode.lock().unwrap();
    if mode == Mode::Throttle {
        return aliyun_code("isv.BUSINESS_LIMIT_CONTROL");
    }
    if let Some(silence) = state.take(json!(query)).await {
        return silence;
    }
    if mode == Mode::TakeThenTimeoutCode {
        return HttpResponse::InternalServerError().json(
            json!({"Code": "isp.SYSTEM_ERROR", "Message": "System error", "RequestId": "fake"}),
        );
    }
    HttpResponse::Ok().json(json!({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "fake"}))
}

/// The sends to one number on one day (Beijing time), a page at a time, each with its
/// `OutId`.
fn aliyun_details(
    query: std::collections::BTreeMap<String, String>,
    state: &Shared,
) -> HttpResponse {
    let field = |name: &str| query.get(name).cloned().unwrap_or_default();
    let (phone, day) = (field("PhoneNumber"), field("SendDate"));
    let size: usize = field("PageSize").parse().unwrap_or(0);
    let page: usize = field("CurrentPage").parse().unwrap_or(0);
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let valid_day = chrono::NaiveDate::parse_from_str(&day, "%Y%m%d")
        .is_ok_and(|d| (today.date_naive() - d).num_days() <= 30);
    if phone.len() != 11 || !valid_day || !(1..=50).contains(&size) || page == 0 {
        return aliyun_code("isv.INVALID_PARAMETERS");
    }
    state.queries.lock().unwrap().push(json!(query));
    let beijing = |t: &DateTime<Utc>| t.with_timezone(&chrono_tz::Asia::Shanghai);
    let listed = state.taken_matching(|t| {
        t.fields["PhoneNumbers"] == phone && beijing(&t.at).format("%Y%m%d").to_string() == day
    });
    let details: Vec<Value> = listed
        .iter()
        .skip((page - 1) * size)
        .take(size)
        .map(|t| {
            let at = beijing(&t.at).format("%Y-%m-%d %H:%M:%S").to_string();
            json!({"PhoneNum": phone, "SendStatus": 3, "ErrCode": "DELIVERED", "TemplateCode": t.fields["TemplateCode"],
                   "Content": "【示例市卫健委】…", "SendDate": at, "ReceiveDate": at, "OutId": t.fields["OutId"]})
        })
        .collect();
    HttpResponse::Ok().json(json!({"Code": "OK", "Message": "OK", "RequestId": "fake",
        "TotalCount": listed.len(), "SmsSendDetailDTOs": {"SmsSendDetailDTO": details}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aliyun_client_is_signed_as_aliyun_checks_it() {
    let fake = Fake::start(aliyun);
    let sent = wrong_key_then_throttled_then_sent(
        &fake,
        &AliyunSms::new(&fake.account("not-the-key", "SMS_154950909")),
        &AliyunSms::new(&fake.account(SECRET_KEY, "SMS_154950909")),
        "SignatureDoesNotMatch",
    )
    .await;
    assert_eq!(sent["PhoneNumbers"], "13900001111");
    assert_eq!(
        (&sent["SignName"], &sent["TemplateCode"]),
        (&json!("示例市卫健委"), &json!("SMS_154950909"))
    );
    let param: Value = serde_json::from_str(sent["TemplateParam"].as_str().unwrap()).unwrap();
    assert!(
        param["link"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:8080/s/")
    );
    assert!(sent["OutId"].as_str().unwrap().parse::<i64>().is_ok());
}

async fn aliyun_sends_without_an_answer_are_settled_by_asking(backend: Backend) {
    let fake = Fake::start(aliyun);
    let gateway = AliyunSms::new(&fake.impatient("SMS_154950909"));
    sends_without_an_answer_are_settled_by_asking(
        backend,
        &fake,
        &gateway,
        chrono::Duration::minutes(5),
    )
    .await;
    // The query names the number and the Beijing day of the send.
    let q = &fake.queries()[0];
    assert_eq!(q["PhoneNumber"], "13800138000");
    let today = Utc::now().with_timezone(&chrono_tz::Asia::Shanghai);
    let days =
        [today, today - chrono::Duration::minutes(5)].map(|d| d.format("%Y%m%d").to_string());
    assert!(days.contains(&q["SendDate"].as_str().unwrap().to_string()));
}

async fn aliyun_sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking(backend: Backend) {
    let fake = Fake::start(aliyun);
    let gateway = AliyunSms::new(&fake.impatient("SMS_154950909"));
    sends_left_mid_way_by_a_stopped_instance_are_settled_by_asking(
        backend,
        &fake,
        &gateway,
        chrono::Duration::minutes(5),
    )
    .await;
}

async fn aliyun_sends_failing_after_the_gateway_took_them_are_settled_by_asking(backend: Backend) {
    let fake = Fake::start(aliyun);
    let gateway = AliyunSms::new(&fake.account(SECRET_KEY, "SMS_154950909"));
    sends_failing_after_the_gateway_took_them_are_settled_by_asking(
        backend,
        &fake,
        &gateway,
        "isp.SYSTEM_ERROR",
    )
    .await;
}
