//! Clients for the services outside our walls. Each has a configurable base URL so that the
//! tests can run it against a local fake that speaks the documented protocol.

pub mod aliyun_sms;
pub mod tencent_sms;
pub mod wechat;

/// An HTTP client for an outside service: rustls with ring (the process-wide provider is
/// installed here if nothing did it before), and a timeout for every request.
pub fn http_client(timeout: std::time::Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .expect("an HTTP client")
}

/// The `host[:port]` of a base URL, as a request's `Host` header carries it (and as the
/// gateways' signatures cover it).
pub fn host_of(base_url: &str) -> String {
    base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// What a failed request to an SMS gateway means: one that never reached it (no connection)
/// can be sent again; one that was sent and got no answer may have gone out, and a person
/// must not get the text twice (Aliyun documents `SendSms` as not idempotent): its outcome is
/// unknown until the gateway is asked (see `app::sms`).
pub fn unanswered(e: &reqwest::Error) -> crate::app::sms::GatewayError {
    use crate::app::sms::{Failure, GatewayError};
    if e.is_connect() {
        GatewayError::new("InternalError.Connect", Failure::Retryable)
    } else {
        GatewayError::new("timeout: outcome unknown", Failure::Unanswered)
    }
}

/// What an HTTP error status without a gateway's code means for a send. A 5xx comes from the
/// gateway's front end or a proxy on the way (a 502 or 504 while the gateway was still at
/// work), possibly after the gateway took the send: its outcome is unknown. A 429 (throttled)
/// or a 408 (the request not read in time) refused it before it was taken: try again later.
/// Any other status refused it for good.
pub fn http_status(status: reqwest::StatusCode) -> crate::app::sms::GatewayError {
    use crate::app::sms::{Failure, GatewayError};
    let code = status.as_u16();
    if status.is_server_error() {
        GatewayError::new(format!("HTTP {code}: outcome unknown"), Failure::Unanswered)
    } else if matches!(code, 408 | 429) {
        GatewayError::new(format!("HTTP {code}"), Failure::Retryable)
    } else {
        GatewayError::new(format!("HTTP {code}"), Failure::Final)
    }
}

/// A success status whose body cannot be read: the gateway answered, but what it did is
/// unknown.
pub fn unreadable() -> crate::app::sms::GatewayError {
    crate::app::sms::GatewayError::new(
        "unreadable answer: outcome unknown",
        crate::app::sms::Failure::Unanswered,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::sms::Failure;

    #[test]
    fn a_5xx_may_come_after_the_send_was_taken_and_a_429_before() {
        let failure = |code: u16| http_status(reqwest::StatusCode::from_u16(code).unwrap());
        for code in [500, 502, 503, 504] {
            let e = failure(code);
            assert_eq!(e.failure, Failure::Unanswered, "{code}");
            assert_eq!(e.code, format!("HTTP {code}: outcome unknown"));
        }
        assert_eq!(failure(429).failure, Failure::Retryable);
        assert_eq!(failure(408).failure, Failure::Retryable);
        assert_eq!(failure(403).failure, Failure::Final);
        assert_eq!(failure(404).failure, Failure::Final);
    }
}
