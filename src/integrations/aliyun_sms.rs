//! Aliyun SMS (`SendSms` and `QuerySendDetails`, API 2017-05-25), signed with
//! ACS3-HMAC-SHA256 ("Signature V3") as Aliyun documents it: a canonical request of the
//! method, path, the sorted and percent-encoded query, the `host` and `x-acs-*` headers and
//! the body's SHA-256; the string to sign is the algorithm and the canonical request's
//! SHA-256, signed with the secret. The parameters travel in the query, the body is empty.
//!
//! Each send carries our record id as `OutId`, which `QuerySendDetails` (the sends to one
//! number on one day) returns with each send it took, from the moment it took it (waiting
//! for the receipt, `SendStatus` 1): that is how a send of unknown outcome is found.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::sms::{Failure, Gateway, GatewayError, Known, StatusQuery};
use crate::config::{GatewayAccount, Secret};

const VERSION: &str = "2017-05-25";
/// `QuerySendDetails` pages: Aliyun's largest, and how many are read at most (a number gets
/// a handful of SMS a day: Aliyun's own flow control caps it).
const PAGE_SIZE: u64 = 50;
const MAX_PAGES: u64 = 4;
/// Aliyun lists a send as soon as it takes it; this leaves its records time to catch up.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(300);
/// The SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~`, in upper-case hex.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query as Aliyun canonicalizes it (and as we send it).
pub fn canonical_query(query: &BTreeMap<String, String>) -> String {
    query
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The signed headers of a request.
pub struct AcsHeaders<'a> {
    pub host: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    /// `2023-10-26T10:22:32Z`
    pub date: &'a str,
    pub nonce: &'a str,
}

/// The `Authorization` header of a POST with an empty body.
pub fn authorization(
    key_id: &str,
    secret: &str,
    query: &BTreeMap<String, String>,
    h: &AcsHeaders<'_>,
) -> String {
    let signed =
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";
    let canonical = format!(
        "POST\n/\n{}\nhost:{}\nx-acs-action:{}\nx-acs-content-sha256:{EMPTY_SHA256}\nx-acs-date:{}\n\
         x-acs-signature-nonce:{}\nx-acs-version:{}\n\n{signed}\n{EMPTY_SHA256}",
        canonical_query(query),
        h.host,
        h.action,
        h.date,
        h.nonce,
        h.version
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(to_sign.as_bytes());
    format!(
        "ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={signed},Signature={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[derive(Debug, Clone)]
pub struct AliyunSms {
    http: reqwest::Client,
    base_url: String,
    key_id: String,
    secret: Secret,
    sign_name: String,
    template_code: String,
}

impl AliyunSms {
    pub fn new(a: &GatewayAccount) -> Self {
        Self {
            http: super::http_client(a.timeout),
            base_url: a.api_base.trim_end_matches('/').to_string(),
            key_id: a.secret_id.clone(),
            secret: a.secret_key.clone(),
            sign_name: a.sign_name.clone(),
            template_code: a.template_id.clone(),
        }
    }

    fn host(&self) -> String {
        super::host_of(&self.base_url)
    }
}

/// What an Aliyun error code means for a send (the table is in `docs/evaluations.md`). Aliyun
/// documents `SendSms` as not idempotent: a code that may come after the send was taken is
/// never retried blindly.
pub fn classify(code: &str) -> Failure {
    if code.starts_with("InternalError")
        || code.starts_with("ServiceUnavailable")
        || matches!(
            code,
            "isp.SYSTEM_ERROR" | "isp.GATEWAY_ERROR" | "isp.UNKNOWN"
        )
    {
        // Aliyun's own troubles, some on the way to the carrier: it may have gone out.
        Failure::Unanswered
    } else if code.contains("LIMIT_CONTROL")
        || code.contains("BUSINESS_LIMIT")
        || code.starts_with("Throttling")
        || code.starts_with("InvalidTimeStamp")
    {
        // Refused before anything was taken, for now: flow control, and clocks apart.
        Failure::Retryable
    } else {
        // A bad number, a refused signature or template, an account out of service.
        Failure::Final
    }
}

fn refused(code: &str) -> GatewayError {
    GatewayError::new(code, classify(code))
}

/// The days (`yyyyMMdd`, Beijing time, as `SendDate` counts them) a send between `since` and
/// `until` may be listed under; at most three.
pub fn send_dates(since: DateTime<Utc>, until: DateTime<Utc>) -> Vec<String> {
    let day = |t: DateTime<Utc>| t.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
    let (first, last) = (day(since), day(until));
    first
        .iter_days()
        .take_while(|d| *d <= last.max(first))
        .take(3)
        .map(|d| d.format("%Y%m%d").to_string())
        .collect()
}

/// `TotalCount`, which Aliyun's SDKs read as a string and its examples show as a number.
fn total_count(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
        .unwrap_or(0)
}

impl AliyunSms {
    /// A signed call of `action` with `params` in the query: the answer, when its `Code` is
    /// `OK`.
    async fn call(&self, action: &str, params: &[(&str, String)]) -> Result<Value, GatewayError> {
        let query: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let date = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let nonce = crate::app::sms::new_token();
        let host = self.host();
        let auth = authorization(
            &self.key_id,
            self.secret.expose(),
            &query,
            &AcsHeaders {
                host: &host,
                action,
                version: VERSION,
                date: &date,
                nonce: &nonce,
            },
        );
        let answer = self
            .http
            .post(format!("{}/?{}", self.base_url, canonical_query(&query)))
            .header("Authorization", auth)
            .header("x-acs-action", action)
            .header("x-acs-version", VERSION)
            .header("x-acs-date", &date)
            .header("x-acs-signature-nonce", &nonce)
            .header("x-acs-content-sha256", EMPTY_SHA256)
            .send()
            .await;
        let response = answer.map_err(|e| super::unanswered(&e))?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_default();
        match body["Code"].as_str() {
            Some("OK") => Ok(body),
            Some(code) => Err(refused(code)),
            // A success whose body cannot be read: taken in, fate unknown.
            None if status.is_success() => Err(super::unreadable()),
            // An error status without Aliyun's code: from a front end or a proxy on the way.
            None => Err(super::http_status(status)),
        }
    }

    /// Whether the sends listed for the number on `date` hold ours.
    async fn listed_on(&self, q: &StatusQuery<'_>, date: &str) -> Result<bool, GatewayError> {
        let ours = q.record_id.to_string();
        for page in 1..=MAX_PAGES {
            let body = self
                .call(
                    "QuerySendDetails",
                    &[
                        ("PhoneNumber", q.phone.to_string()),
                        ("SendDate", date.to_string()),
                        ("PageSize", PAGE_SIZE.to_string()),
                        ("CurrentPage", page.to_string()),
                    ],
                )
                .await?;
            let details = body["SmsSendDetailDTOs"]["SmsSendDetailDTO"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default();
            if details.iter().any(|d| d["OutId"].as_str() == Some(&ours)) {
                return Ok(true);
            }
            if page * PAGE_SIZE >= total_count(&body["TotalCount"]) {
                return Ok(false);
            }
        }
        // (A failed query only means "ask again later"; its kind does not matter.)
        Err(GatewayError::new(
            "InternalError.TooManyRecords",
            Failure::Retryable,
        ))
    }
}

#[async_trait]
impl Gateway for AliyunSms {
    fn name(&self) -> &'static str {
        "aliyun"
    }

    async fn send(&self, record_id: i64, phone: &str, link: &str) -> Result<(), GatewayError> {
        self.call(
            "SendSms",
            &[
                ("PhoneNumbers", phone.to_string()),
                ("SignName", self.sign_name.clone()),
                ("TemplateCode", self.template_code.clone()),
                ("TemplateParam", json!({"link": link}).to_string()),
                // Our record, so that a delivery report or a status query finds it.
                ("OutId", record_id.to_string()),
            ],
        )
        .await
        .map(|_| ())
    }

    async fn status(&self, q: &StatusQuery<'_>) -> Result<Known, GatewayError> {
        for date in send_dates(q.since, q.until) {
            if self.listed_on(q, &date).await? {
                return Ok(Known::Accepted);
            }
        }
        Ok(Known::NoRecord)
    }

    fn settle(&self) -> std::time::Duration {
        SETTLE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Aliyun's own worked example of Signature V3 (ECS RunInstances, every input fixed).
    #[test]
    fn the_documented_example_signs_the_same() {
        let query = BTreeMap::from([
            (
                "ImageId".to_string(),
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd".to_string(),
            ),
            ("RegionId".to_string(), "cn-shanghai".to_string()),
        ]);
        let auth = authorization(
            "YourAccessKeyId",
            "YourAccessKeySecret",
            &query,
            &AcsHeaders {
                host: "ecs.cn-shanghai.aliyuncs.com",
                action: "RunInstances",
                version: "2014-05-26",
                date: "2023-10-26T10:22:32Z",
                nonce: "3156853299f313e23d1673dc12e1703d",
            },
        );
        assert_eq!(
            auth,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
             x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn a_send_is_looked_for_on_the_beijing_days_it_may_be_listed_under() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        // 15:59 UTC is 23:59 in Beijing; two minutes later is the next day there.
        assert_eq!(
            send_dates(t("2026-11-20T15:59:00Z"), t("2026-11-20T16:01:00Z")),
            ["20261120", "20261121"]
        );
        assert_eq!(
            send_dates(t("2026-11-20T02:00:00Z"), t("2026-11-20T02:02:00Z")),
            ["20261120"]
        );
        assert_eq!(
            send_dates(t("2026-11-01T00:00:00Z"), t("2026-11-30T00:00:00Z")).len(),
            3
        );
        assert_eq!(total_count(&json!("51")), 51);
        assert_eq!(total_count(&json!(2)), 2);
    }

    #[test]
    fn percent_encoding_follows_rfc_3986() {
        assert_eq!(percent_encode("a b*c~d/中"), "a%20b%2Ac~d%2F%E4%B8%AD");
    }

    #[test]
    fn codes_that_may_come_after_the_send_was_taken_are_never_retried_blindly() {
        for code in [
            "isp.SYSTEM_ERROR",
            "isp.GATEWAY_ERROR",
            "isp.UNKNOWN",
            "InternalError",
            "ServiceUnavailable",
            "ServiceUnavailable.Unavailable",
        ] {
            assert_eq!(classify(code), Failure::Unanswered, "{code}");
        }
        for code in [
            "isv.BUSINESS_LIMIT_CONTROL",
            "isv.DAY_LIMIT_CONTROL",
            "Throttling.User",
            "InvalidTimeStamp.Expired",
        ] {
            assert_eq!(classify(code), Failure::Retryable, "{code}");
        }
        for code in [
            "isv.MOBILE_NUMBER_ILLEGAL",
            "SignatureDoesNotMatch",
            "isv.OUT_OF_SERVICE",
            "isp.RAM_PERMISSION_DENY",
        ] {
            assert_eq!(classify(code), Failure::Final, "{code}");
        }
    }
}
