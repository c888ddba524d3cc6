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

/// A success status whose body cannot be read: the gateway answered, but what it did is
/// unknown.
pub fn unreadable() -> crate::app::sms::GatewayError {
    crate::app::sms::GatewayError::new(
        "unreadable answer: outcome unknown",
        crate::app::sms::Failure::Unanswered,
    )
}
