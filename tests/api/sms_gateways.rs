//! The SMS gateway clients against local fakes that check requests as the real services do:
//! Tencent's TC3-HMAC-SHA256 and Aliyun's ACS3-HMAC-SHA256 signatures recomputed from what
//! arrived on the wire, the action and version headers, and the fields of `SendSms`.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use minyi::app::sms::{self, Round};
use minyi::config::{GatewayAccount, Secret};
use minyi::integrations::aliyun_sms::{self, AcsHeaders, AliyunSms};
use minyi::integrations::tencent_sms::{TencentSms, authorization};
use serde_json::{Value, json};

use crate::surveys::{import, setup};

const SECRET_ID: &str = "AKIDfakefakefakefakefake";
const SECRET_KEY: &str = "fake-secret-key-0123456789";

/// What the fake does with a well-signed request.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Throttle,
}

/// A local gateway: what it does with a well-signed request, and the requests it accepted
/// (Tencent's JSON body, Aliyun's query as a JSON object).
struct Fake {
    base: String,
    mode: Arc<Mutex<Mode>>,
    accepted: Arc<Mutex<Vec<Value>>>,
    _server: actix_web::dev::ServerHandle,
}

type Accepted = Arc<Mutex<Vec<Value>>>;

impl Fake {
    fn start<F, Args>(handler: F) -> Self
    where
        F: actix_web::Handler<Args> + Clone + Send + 'static,
        Args: actix_web::FromRequest + 'static,
        F::Output: actix_web::Responder + 'static,
    {
        let mode = Arc::new(Mutex::new(Mode::Accept));
        let accepted: Accepted = Arc::default();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (m, a) = (mode.clone(), accepted.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(m.clone()))
                .app_data(web::Data::new(a.clone()))
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
            mode,
            accepted,
            _server: handle,
        }
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
            timeout: std::time::Duration::from_secs(5),
        }
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
    let (app, id, org, emergency) = setup(crate::helpers::Backend::Sqlite).await;
    import(&app, &id, &org, &emergency, &["13800138000"]).await;
    let throttle = sms::throttle(100);
    let r = sms::send_due(&app.services, wrong, &throttle, chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(r.failed, 1);
    let row = app
        .raw_sql_rows("SELECT send_status, last_error FROM survey_records")
        .await;
    assert_eq!(row[0], ["failed", refusal]);

    import(&app, &id, &org, &emergency, &["13900001111"]).await;
    *fake.mode.lock().unwrap() = Mode::Throttle;
    let now = chrono::Utc::now();
    assert_eq!(
        sms::send_due(&app.services, right, &throttle, now)
            .await
            .unwrap()
            .retried,
        1
    );
    *fake.mode.lock().unwrap() = Mode::Accept;
    let later = now + chrono::Duration::minutes(1);
    let r = sms::send_due(&app.services, right, &throttle, later)
        .await
        .unwrap();
    assert_eq!(
        r,
        Round {
            sent: 1,
            retried: 0,
            failed: 0
        }
    );
    let accepted = fake.accepted.lock().unwrap().clone();
    assert_eq!(accepted.len(), 1);
    accepted[0].clone()
}

fn error(code: &str) -> HttpResponse {
    HttpResponse::Ok()
        .json(json!({"Response": {"Error": {"Code": code, "Message": code}, "RequestId": "fake"}}))
}

async fn send_sms(
    req: HttpRequest,
    body: String,
    mode: web::Data<Arc<Mutex<Mode>>>,
    accepted: web::Data<Accepted>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    if header("X-TC-Action") != "SendSms" || header("X-TC-Version") != "2021-01-11" {
        return error("InvalidAction");
    }
    if header("Content-Type") != "application/json; charset=utf-8" {
        return error("InvalidParameter.ContentType");
    }
    let Ok(timestamp) = header("X-TC-Timestamp").parse::<i64>() else {
        return error("MissingParameter");
    };
    if (chrono::Utc::now().timestamp() - timestamp).abs() > 300 {
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
    if *mode.lock().unwrap() == Mode::Throttle {
        return error("LimitExceeded.PhoneNumberThirtySecondLimit");
    }
    let phone = fields["PhoneNumberSet"][0]
        .as_str()
        .unwrap_or_default()
        .to_string();
    accepted.lock().unwrap().push(fields);
    HttpResponse::Ok().json(json!({"Response": {"SendStatusSet": [{"SerialNo": "2028:1", "PhoneNumber": phone,
        "Fee": 1, "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN"}], "RequestId": "fake"}}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tencent_client_is_signed_as_tencent_checks_it() {
    let fake = Fake::start(send_sms);
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

async fn aliyun_send_sms(
    req: HttpRequest,
    query: web::Query<std::collections::BTreeMap<String, String>>,
    mode: web::Data<Arc<Mutex<Mode>>>,
    accepted: web::Data<Accepted>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let code =
        |c: &str| HttpResponse::Ok().json(json!({"Code": c, "Message": c, "RequestId": "fake"}));
    if header("x-acs-action") != "SendSms" || header("x-acs-version") != "2017-05-25" {
        return code("InvalidAction.NotFound");
    }
    if header("x-acs-content-sha256") != aliyun_sms::EMPTY_SHA256 {
        return code("InvalidParameter.ContentSHA256");
    }
    let date = header("x-acs-date");
    let fresh = chrono::DateTime::parse_from_rfc3339(&date).is_ok_and(|d| {
        (chrono::Utc::now() - d.with_timezone(&chrono::Utc))
            .num_seconds()
            .abs()
            < 900
    });
    if !fresh {
        return code("InvalidTimeStamp.Expired");
    }
    let expected = aliyun_sms::authorization(
        SECRET_ID,
        SECRET_KEY,
        &query,
        &AcsHeaders {
            host: &header("Host"),
            action: "SendSms",
            version: "2017-05-25",
            date: &date,
            nonce: &header("x-acs-signature-nonce"),
        },
    );
    if header("Authorization") != expected {
        return code("SignatureDoesNotMatch");
    }
    if *mode.lock().unwrap() == Mode::Throttle {
        return code("isv.BUSINESS_LIMIT_CONTROL");
    }
    accepted.lock().unwrap().push(json!(query.into_inner()));
    HttpResponse::Ok().json(json!({"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "fake"}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aliyun_client_is_signed_as_aliyun_checks_it() {
    let fake = Fake::start(aliyun_send_sms);
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
