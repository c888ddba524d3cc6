//! Tencent Cloud SMS (`SendSms` and `PullSmsSendStatusByPhoneNumber`, API 2021-01-11), signed
//! with TC3-HMAC-SHA256 as Tencent documents it ("Signature v3"): a canonical request of the
//! method, path, query, the `content-type` and `host` headers and the body's SHA-256; a
//! string to sign with the timestamp and the credential scope `date/sms/tc3_request`; and a
//! key derived from the secret through the date, the service and `tc3_request`.
//!
//! Each send carries our record id as `SessionContext`, which Tencent echoes in the status
//! records that `PullSmsSendStatusByPhoneNumber` returns for the number: that is how a send
//! of unknown outcome is found. Those records are the carriers' delivery receipts, so they
//! come some time after the send, not at once.

use async_trait::async_trait;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::sms::{Failure, Gateway, GatewayError, Known, StatusQuery};
use crate::config::Secret;

pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
const SERVICE: &str = "sms";
const VERSION: &str = "2021-01-11";
/// The most status records one pull returns (Tencent's `Limit`; its `Offset` is fixed at 0).
const PULL_LIMIT: usize = 100;
/// Status records are the carriers' receipts: typically seconds after the send, at times
/// minutes. A send this old with no record is taken as never accepted. (A phone switched off
/// for longer delays its receipt longer: that is the price of not losing sends.)
const SETTLE: std::time::Duration = std::time::Duration::from_secs(3600);
/// Our clock and Tencent's may differ a little: the pull starts this much before the claim.
const CLOCK_SLACK_SECS: i64 = 300;

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The `Authorization` header of a POST with `payload` to `host` (`host[:port]`, as sent in
/// the `Host` header) at `timestamp` (unix seconds).
pub fn authorization(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    host: &str,
    timestamp: i64,
    payload: &str,
) -> String {
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let canonical = format!(
        "POST\n/\n\ncontent-type:{CONTENT_TYPE}\nhost:{host}\n\ncontent-type;host\n{}",
        sha256_hex(payload)
    );
    let scope = format!("{date}/{service}/tc3_request");
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        sha256_hex(&canonical)
    );
    let key = hmac(
        &hmac(&hmac(format!("TC3{secret_key}").as_bytes(), &date), service),
        "tc3_request",
    );
    let signature = hex::encode(hmac(&key, &to_sign));
    format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders=content-type;host, Signature={signature}"
    )
}

/// What a send needs besides the number and the link.
#[derive(Debug, Clone)]
pub struct TencentSms {
    pub http: reqwest::Client,
    /// `https://sms.tencentcloudapi.com` (or a fake's).
    pub base_url: String,
    pub secret_id: String,
    pub secret_key: Secret,
    pub region: String,
    pub app_id: String,
    pub sign_name: String,
    pub template_id: String,
}

impl TencentSms {
    pub fn new(t: &crate::config::GatewayAccount) -> Self {
        Self {
            http: super::http_client(t.timeout),
            base_url: t.api_base.trim_end_matches('/').to_string(),
            secret_id: t.secret_id.clone(),
            secret_key: t.secret_key.clone(),
            region: t.region.clone(),
            app_id: t.app_id.clone(),
            sign_name: t.sign_name.clone(),
            template_id: t.template_id.clone(),
        }
    }

    fn host(&self) -> String {
        super::host_of(&self.base_url)
    }
}

/// What a Tencent error code means for a send (the codes of SMS API 2021-01-11; the table is
/// in `docs/evaluations.md`). Tencent's `SendSms` takes no idempotency key, so a code that may
/// come after the send was taken is never retried blindly.
pub fn classify(code: &str) -> Failure {
    match code {
        // Timeouts and failures inside Tencent, some on the way to the carrier
        // (`InternalError.Timeout`: 请求下发短信超时; `SendAndRecvFail`: 接口超时或短信收发包超时;
        // `ParseBackendResponseFail`: the carrier's answer unreadable): it may have gone out.
        "InternalError"
        | "InternalError.Timeout"
        | "InternalError.SendAndRecvFail"
        | "InternalError.ParseBackendResponseFail"
        | "InternalError.OtherError"
        | "InternalError.UnknownError" => Failure::Unanswered,
        // Refused before anything was taken, for now: throttling, and clocks apart
        // (`RequestTimeException`: our time and Tencent's more than ten minutes apart).
        c if c.starts_with("LimitExceeded") || c.starts_with("RequestLimitExceeded") => {
            Failure::Retryable
        }
        "AuthFailure.SignatureExpire" | "InternalError.RequestTimeException" => Failure::Retryable,
        // The request itself refused: sending it again changes nothing.
        "InternalError.JsonParseFail"
        | "InternalError.SigVerificationFail"
        | "InternalError.SigFieldMissing"
        | "InternalError.RestApiInterfaceNotExist" => Failure::Final,
        // An internal error Tencent has not documented: it may have gone out.
        c if c.starts_with("InternalError") => Failure::Unanswered,
        // A bad number, a refused signature or template, an account without credit.
        _ => Failure::Final,
    }
}

fn refused(code: &str) -> GatewayError {
    GatewayError::new(code, classify(code))
}

/// Whether status records of the number hold our send: one that carries our record id as its
/// `SessionContext`. Tencent echoes `SessionContext` in status records only once its SMS
/// Helper has turned that on for the account; until then a record carries none, cannot be
/// told from ours, and counts as ours — a lost SMS rather than a second one.
pub fn holds(records: &[Value], record_id: i64) -> bool {
    let ours = record_id.to_string();
    records.iter().any(|r| match r["SessionContext"].as_str() {
        Some(context) if !context.is_empty() => context == ours,
        _ => true,
    })
}

impl TencentSms {
    /// A signed call of `action`: the answer's `Response`, unless it holds an error.
    async fn call(&self, action: &str, payload: &Value) -> Result<Value, GatewayError> {
        let payload = payload.to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let auth = authorization(
            &self.secret_id,
            self.secret_key.expose(),
            SERVICE,
            &self.host(),
            timestamp,
            &payload,
        );
        let answer = self
            .http
            .post(format!("{}/", self.base_url))
            .header("Authorization", auth)
            .header("Content-Type", CONTENT_TYPE)
            .header("X-TC-Action", action)
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-Region", &self.region)
            .body(payload)
            .send()
            .await;
        let response = answer.map_err(|e| super::unanswered(&e))?;
        // Tencent answers its own errors with 200 and a code: another status is from a front
        // end or a proxy on the way.
        if !response.status().is_success() {
            return Err(super::http_status(response.status()));
        }
        let mut body: Value = response.json().await.map_err(|_| super::unreadable())?;
        let answer = body["Response"].take();
        if let Some(code) = answer["Error"]["Code"].as_str() {
            return Err(refused(code));
        }
        Ok(answer)
    }
}

#[async_trait]
impl Gateway for TencentSms {
    fn name(&self) -> &'static str {
        "tencent"
    }

    async fn send(&self, record_id: i64, phone: &str, link: &str) -> Result<(), GatewayError> {
        let payload = json!({
            "PhoneNumberSet": [format!("+86{phone}")],
            "SmsSdkAppId": self.app_id,
            "SignName": self.sign_name,
            "TemplateId": self.template_id,
            "TemplateParamSet": [link],
            // Our record, so that a status query finds it.
            "SessionContext": record_id.to_string(),
        });
        let answer = self.call("SendSms", &payload).await?;
        match answer["SendStatusSet"][0]["Code"].as_str() {
            Some("Ok") => Ok(()),
            Some(code) => Err(refused(code)),
            // Taken in, with no status to say what became of it.
            None => Err(super::unreadable()),
        }
    }

    async fn status(&self, q: &StatusQuery<'_>) -> Result<Known, GatewayError> {
        let payload = json!({
            "BeginTime": (q.since - chrono::Duration::seconds(CLOCK_SLACK_SECS)).timestamp(),
            // Up to now: a receipt comes after its send.
            "EndTime": chrono::Utc::now().max(q.until).timestamp(),
            "Offset": 0,
            "Limit": PULL_LIMIT,
            "PhoneNumber": format!("+86{}", q.phone),
            "SmsSdkAppId": self.app_id,
        });
        let answer = self
            .call("PullSmsSendStatusByPhoneNumber", &payload)
            .await?;
        // (A failed query only means "ask again later"; its kind does not matter.)
        let Some(records) = answer["PullSmsSendStatusSet"].as_array() else {
            return Err(GatewayError::new(
                "InternalError.BadAnswer",
                Failure::Retryable,
            ));
        };
        if holds(records, q.record_id) {
            Ok(Known::Accepted)
        } else if records.len() >= PULL_LIMIT {
            // A full page without ours: more may be beyond it, which the fixed offset hides.
            Err(GatewayError::new(
                "InternalError.TooManyRecords",
                Failure::Retryable,
            ))
        } else {
            Ok(Known::NoRecord)
        }
    }

    fn settle(&self) -> std::time::Duration {
        SETTLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tencent's own worked example ("Signature v3", CVM DescribeInstances).
    #[test]
    fn the_documented_example_signs_the_same() {
        let payload = r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        assert_eq!(
            sha256_hex(payload),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let auth = authorization(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
            "cvm.tencentcloudapi.com",
            1551113065,
            payload,
        );
        assert_eq!(
            auth,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn a_status_record_is_ours_by_its_session_context_or_when_it_has_none() {
        let record = |context: Value| json!({"ReportStatus": "SUCCESS", "SessionContext": context});
        assert!(holds(&[record(json!("41")), record(json!("42"))], 42));
        assert!(!holds(&[record(json!("41"))], 42));
        assert!(!holds(&[], 42));
        // Tencent's echo not turned on: a record of the number in the window may be ours.
        assert!(holds(&[record(json!(""))], 42));
        assert!(holds(&[record(Value::Null)], 42));
    }

    #[test]
    fn codes_that_may_come_after_the_send_was_taken_are_never_retried_blindly() {
        for code in [
            "InternalError.Timeout",
            "InternalError.SendAndRecvFail",
            "InternalError.ParseBackendResponseFail",
            "InternalError.OtherError",
            "InternalError.UnknownError",
            "InternalError",
            "InternalError.SomethingNew",
        ] {
            assert_eq!(classify(code), Failure::Unanswered, "{code}");
        }
        for code in [
            "LimitExceeded.PhoneNumberThirtySecondLimit",
            "LimitExceeded.DeliveryFrequencyLimit",
            "RequestLimitExceeded",
            "AuthFailure.SignatureExpire",
            "InternalError.RequestTimeException",
        ] {
            assert_eq!(classify(code), Failure::Retryable, "{code}");
        }
        for code in [
            "InvalidParameterValue.IncorrectPhoneNumber",
            "AuthFailure.SignatureFailure",
            "FailedOperation.PhoneNumberInBlacklist",
            "InternalError.JsonParseFail",
            "UnauthorizedOperation.SerivceSuspendDueToArrears",
        ] {
            assert_eq!(classify(code), Failure::Final, "{code}");
        }
    }
}
