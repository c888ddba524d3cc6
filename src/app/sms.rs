//! Sending survey links by SMS. Every send is a row of `survey_records`: claimed by one
//! instance (a lease), given a fresh one-time token (only its SHA-256 is kept), sent through
//! the configured gateway at the gateway's rate, then marked sent, or queued again with a
//! backoff, or failed with the gateway's code. A send interrupted by a crash has an unknown
//! outcome: it is failed and reported, never sent again blindly (a person gets one SMS).

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::Services;
use crate::store::StoreError;

/// How many sends one round claims.
const ROUND: usize = 50;
/// How long a claim lasts: far longer than a send takes.
const LEASE_SECS: i64 = 120;
/// Attempts before a send fails for good.
pub const MAX_ATTEMPTS: u32 = 5;

/// A gateway's refusal: its own code, and whether trying again later may succeed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("gateway refused: {code}")]
pub struct GatewayError {
    pub code: String,
    pub retryable: bool,
}

#[async_trait]
pub trait Gateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Sends the survey link of record `record_id` to `phone` (11 digits).
    async fn send(&self, record_id: i64, phone: &str, link: &str) -> Result<(), GatewayError>;
}

/// The `log` gateway: writes each link (never the number) to the service's log.
pub struct LogGateway;

#[async_trait]
impl Gateway for LogGateway {
    fn name(&self) -> &'static str {
        "log"
    }

    async fn send(&self, record_id: i64, _phone: &str, link: &str) -> Result<(), GatewayError> {
        tracing::info!(record_id, link, "survey SMS (log gateway)");
        Ok(())
    }
}

/// A fresh survey token: 128 random bits, as 32 hex digits.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The wait before attempt `attempts + 1`: 30 s, 1 min, 2 min, … at most an hour.
pub fn backoff(attempts: u32) -> chrono::Duration {
    let secs = 30i64.saturating_mul(1 << attempts.saturating_sub(1).min(7));
    chrono::Duration::seconds(secs.min(3600))
}

pub type Throttle = governor::DefaultDirectRateLimiter;

pub fn throttle(per_second: u32) -> Throttle {
    governor::RateLimiter::direct(governor::Quota::per_second(
        NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN),
    ))
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
}

/// Sends the sends that are due now, once each.
pub async fn send_due(
    services: &Services,
    gateway: &dyn Gateway,
    throttle: &Throttle,
    now: DateTime<Utc>,
) -> Result<Round, StoreError> {
    let store = services.store.as_ref();
    let interrupted = store.fail_interrupted_sends(now).await?;
    if interrupted > 0 {
        tracing::warn!(
            sends = interrupted,
            "survey SMS interrupted mid-send: outcome unknown, failed rather than sent twice"
        );
    }
    let tokens: Vec<String> = (0..ROUND).map(|_| new_token()).collect();
    let hashes: Vec<String> = tokens.iter().map(|t| token_hash(t)).collect();
    let ttl = chrono::Duration::from_std(services.settings.sms.survey_ttl).unwrap_or_default();
    let claimed = store
        .claim_sends(
            now,
            now + chrono::Duration::seconds(LEASE_SECS),
            &hashes,
            now + ttl,
        )
        .await?;
    let mut round = Round::default();
    for c in claimed {
        let phone = match c.phone_enc.as_deref().map(|sealed| {
            services
                .vault
                .open(sealed, &format!("campaign {}", c.campaign_id))
        }) {
            Some(Ok(p)) => p,
            Some(Err(e)) => {
                tracing::error!(record_id = c.id, error = %e, "survey SMS not sent");
                store.mark_send_failed(c.id, "undecryptable", None).await?;
                round.failed += 1;
                continue;
            }
            None => {
                store.mark_send_failed(c.id, "phone_cleared", None).await?;
                round.failed += 1;
                continue;
            }
        };
        throttle.until_ready().await;
        let link = format!(
            "{}/s/{}",
            services.settings.sms.public_base_url, tokens[c.token_index]
        );
        match gateway.send(c.id, &phone, &link).await {
            Ok(()) => {
                store.mark_sent(c.id, Utc::now()).await?;
                metrics::counter!("survey_sms_total", "outcome" => "sent").increment(1);
                round.sent += 1;
            }
            Err(e) if e.retryable && c.attempts < MAX_ATTEMPTS => {
                let at = Utc::now() + backoff(c.attempts);
                tracing::warn!(record_id = c.id, code = %e.code, attempts = c.attempts, retry_at = %at, "survey SMS refused; will retry");
                store.mark_send_failed(c.id, &e.code, Some(at)).await?;
                metrics::counter!("survey_sms_total", "outcome" => "retried").increment(1);
                round.retried += 1;
            }
            Err(e) => {
                tracing::error!(record_id = c.id, code = %e.code, attempts = c.attempts, "survey SMS failed");
                store.mark_send_failed(c.id, &e.code, None).await?;
                metrics::counter!("survey_sms_total", "outcome" => "failed").increment(1);
                round.failed += 1;
            }
        }
    }
    Ok(round)
}

/// The configured gateway.
pub fn gateway(settings: &crate::config::Settings) -> Box<dyn Gateway> {
    use crate::integrations::{aliyun_sms::AliyunSms, tencent_sms::TencentSms};
    match (settings.sms.gateway.as_str(), &settings.sms.account) {
        ("tencent", Some(a)) => Box::new(TencentSms::new(a)),
        ("aliyun", Some(a)) => Box::new(AliyunSms::new(a)),
        _ => Box::new(LogGateway),
    }
}

/// Sends survey SMS for as long as the service runs.
pub async fn send_forever(services: Services) {
    let gateway = gateway(&services.settings);
    let throttle = throttle(services.settings.sms.per_second);
    tracing::info!(gateway = gateway.name(), "survey SMS sender started");
    loop {
        match send_due(&services, gateway.as_ref(), &throttle, Utc::now()).await {
            Ok(r) if r == Round::default() => tokio::time::sleep(Duration::from_secs(1)).await,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "survey SMS round failed; trying again");
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        let secs: Vec<i64> = (1..=9).map(|a| backoff(a).num_seconds()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn tokens_are_128_random_bits_kept_as_hashes() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        assert_eq!(token_hash(&a).len(), 64);
        assert_ne!(token_hash(&a), a);
    }
}
