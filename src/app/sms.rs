//! Sending survey links by SMS. Every send is a row of `survey_records`: claimed by one
//! instance (a lease), given a one-time token (its SHA-256 is what a request is checked
//! against), sent through the configured gateway at the gateway's rate, then marked sent, or
//! queued again with a backoff, or failed with the gateway's code.
//!
//! A send can also end with its outcome unknown: the gateway took the request and never
//! answered, or the instance stopped between claiming the send and recording its outcome.
//! Failing it might lose it; sending it again might give a person two SMS (Aliyun documents
//! `SendSms` as not idempotent). So it waits in `unknown` until the gateway is asked whether
//! it took it — every send carries our record id, which the gateway keeps with it (Tencent's
//! `SessionContext`, Aliyun's `OutId`) — and is then `sent`; or queued for a normal retry
//! when the gateway has no record of it; or, only when the gateway cannot tell (its status
//! queries keep failing, or the horizon has passed), `failed` with the reason.
//!
//! Whatever the gateway says, an answered survey proves that its link arrived: a send whose
//! survey was answered is `sent` and never sent again. And a send again carries the link of
//! the first attempt — the token is kept, sealed by the vault, until the record is sent or
//! failed — so that the first SMS, if it arrived after all, still opens the survey.

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::Services;
use crate::store::{ClaimedSend, ClaimedToken, NewToken, Settled, StoreError, UnknownSend};

/// How many sends one round claims (and how many unknown ones it asks about).
const ROUND: usize = 50;
/// How long a claim lasts: far longer than a send takes.
const LEASE_SECS: i64 = 120;
/// No send starts with less than this left of its lease, so that every send has ended (the
/// gateway timeout is at most 30 s) before another instance may take the lease for a crash.
const LEASE_MARGIN_SECS: i64 = 60;
/// Attempts before a send fails for good.
pub const MAX_ATTEMPTS: u32 = 5;
/// The first status query of a send that got no answer waits this long: the gateway needs a
/// moment to record what it took.
const FIRST_QUERY_SECS: i64 = 30;
/// Failed status queries before a send of unknown outcome is failed for good.
pub const MAX_FAILED_QUERIES: u32 = 10;

/// How a gateway request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Refused before the gateway took it, for now (throttled, clocks apart), or never
    /// reached it: trying again later may succeed, and cannot send it twice.
    Retryable,
    /// Refused for good (a bad number, a refused signature).
    Final,
    /// Sent, and no answer came back, or one that may come after the gateway took it (a 5xx,
    /// the gateway's own timeout): the gateway may have taken it.
    Unanswered,
}

/// A gateway's refusal, or a request it never answered: its code, and what it means.
#[derive(Debug, Clone, thiserror::Error)]
#[error("gateway: {code}")]
pub struct GatewayError {
    pub code: String,
    pub failure: Failure,
}

impl GatewayError {
    pub fn new(code: impl Into<String>, failure: Failure) -> Self {
        Self {
            code: code.into(),
            failure,
        }
    }
}

/// What a gateway knows of one of our sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Known {
    /// It took the send: delivered, waiting for the carrier's receipt, or even refused by
    /// the carrier. Either way it is not sent again (a normal send is `sent` on acceptance
    /// too; delivery is not followed).
    Accepted,
    /// It has no record of it.
    NoRecord,
}

/// A send to ask a gateway about.
#[derive(Debug, Clone)]
pub struct StatusQuery<'a> {
    pub record_id: i64,
    /// 11 digits; opened for the query only, never logged.
    pub phone: &'a str,
    /// The send, if it happened, happened between these.
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

#[async_trait]
pub trait Gateway: Send + Sync {
    fn name(&self) -> &'static str;
    /// Sends the survey link of record `record_id` to `phone` (11 digits), carrying the
    /// record id so that `status` can find it.
    async fn send(&self, record_id: i64, phone: &str, link: &str) -> Result<(), GatewayError>;
    /// Whether the gateway took the send of `q.record_id`. An error means it cannot tell now.
    async fn status(&self, q: &StatusQuery<'_>) -> Result<Known, GatewayError>;
    /// How long after a send the gateway's records show it: `NoRecord` before that proves
    /// nothing.
    fn settle(&self) -> Duration;
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

    /// Always "taken": the log gateway never refuses and never goes unanswered, so an
    /// unknown outcome can only come from a crash around its log line, and the rule stays
    /// the same as with a real gateway: a link is never sent twice.
    async fn status(&self, _q: &StatusQuery<'_>) -> Result<Known, GatewayError> {
        Ok(Known::Accepted)
    }

    fn settle(&self) -> Duration {
        Duration::ZERO
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

/// What a kept token is sealed to: its own hash, so that it opens only beside it.
fn token_aad(hash: &str) -> String {
    format!("survey token {hash}")
}

/// A fresh token, and what the store keeps of it: its hash, and itself sealed by the vault
/// (for a send again).
pub fn fresh_token(vault: &super::vault::PhoneVault) -> (String, NewToken) {
    let token = new_token();
    let hash = token_hash(&token);
    let sealed = vault.seal(&token, &token_aad(&hash));
    (token, NewToken { hash, sealed })
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
    /// Sent now.
    pub sent: usize,
    /// Refused for now: queued again after a backoff.
    pub retried: usize,
    /// Failed for good (a send, or a send of unknown outcome the gateway could not tell).
    pub failed: usize,
    /// Sent without an answer: left for a status query.
    pub unknown: usize,
    /// Of unknown outcome, and the gateway says it took them: sent.
    pub confirmed: usize,
    /// Of unknown outcome, and the gateway has no record of them: queued again.
    pub requeued: usize,
    /// Of unknown outcome or queued again, and their survey answered meanwhile (the link
    /// arrived): sent, never sent again.
    pub answered: usize,
}

/// The time of a round: `now` as its caller gave it, moving on with the (monotonic) real
/// clock. A round can take minutes (status queries and sends wait for the gateway and the
/// rate), so each phase and each lease reads the time afresh rather than trusting the start;
/// tests give rounds a `now` ahead of the real clock, and the round keeps that offset.
#[derive(Debug, Clone, Copy)]
struct RoundClock {
    start: DateTime<Utc>,
    began: std::time::Instant,
}

impl RoundClock {
    fn starting_at(start: DateTime<Utc>) -> Self {
        Self {
            start,
            began: std::time::Instant::now(),
        }
    }

    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.began.elapsed()).unwrap_or_default()
    }
}

/// One pass of the sender: sends left mid-way by a stopped instance become unknown, the
/// unknown ones that are due are asked about, then the queued ones that are due are sent.
/// `now`: the time the round starts at; each phase goes on from it at the real clock's pace.
pub async fn send_due(
    services: &Services,
    gateway: &dyn Gateway,
    throttle: &Throttle,
    now: DateTime<Utc>,
) -> Result<Round, StoreError> {
    let clock = RoundClock::starting_at(now);
    let mut round = Round::default();
    let interrupted = services.store.mark_interrupted_unknown(clock.now()).await?;
    if interrupted > 0 {
        tracing::warn!(
            sends = interrupted,
            "survey SMS interrupted mid-send: outcome unknown; the gateway will be asked"
        );
        metrics::counter!("survey_sms_total", "outcome" => "unknown").increment(interrupted);
    }
    resolve_unknown(services, gateway, throttle, &clock, &mut round).await?;
    send_queued(services, gateway, throttle, &clock, &mut round).await?;
    Ok(round)
}

/// Opens a record's number for a request, or says why it cannot be.
fn open_phone(
    services: &Services,
    record_id: i64,
    campaign_id: i64,
    sealed: Option<&str>,
) -> Result<String, &'static str> {
    let Some(sealed) = sealed else {
        return Err("phone_cleared");
    };
    services
        .vault
        .open(sealed, &format!("campaign {campaign_id}"))
        .map_err(|e| {
            tracing::error!(record_id, error = %e, "survey SMS phone number unreadable");
            "undecryptable"
        })
}

/// Opens the token a claimed send carries, or says why it cannot be.
fn open_token(
    services: &Services,
    c: &ClaimedSend,
    fresh: &[String],
) -> Result<String, &'static str> {
    match &c.token {
        ClaimedToken::Fresh(i) => fresh.get(*i).cloned().ok_or("no_token"),
        ClaimedToken::Kept { hash, sealed } => {
            services.vault.open(sealed, &token_aad(hash)).map_err(|_| {
                tracing::error!(
                    record_id = c.id,
                    "survey token kept for a send again unreadable"
                );
                "undecryptable"
            })
        }
    }
}

/// Claims the queued sends that are due and sends them.
async fn send_queued(
    services: &Services,
    gateway: &dyn Gateway,
    throttle: &Throttle,
    clock: &RoundClock,
    round: &mut Round,
) -> Result<(), StoreError> {
    let store = services.store.as_ref();
    // Now, not when the round began: the status queries before may have been slow.
    let now = clock.now();
    // Tokens for the records that have none yet; the others keep theirs.
    let (tokens, new_tokens): (Vec<String>, Vec<NewToken>) =
        (0..ROUND).map(|_| fresh_token(&services.vault)).unzip();
    let ttl = chrono::Duration::from_std(services.settings.sms.survey_ttl).unwrap_or_default();
    let lease_until = now + chrono::Duration::seconds(LEASE_SECS);
    let claimed = store
        .claim_sends(now, lease_until, &new_tokens, now + ttl)
        .await?;
    if claimed.answered > 0 {
        tracing::info!(
            sends = claimed.answered,
            "survey SMS not sent again: its survey was answered, so the first one arrived"
        );
        metrics::counter!("survey_sms_total", "outcome" => "answered").increment(claimed.answered);
        round.answered += claimed.answered as usize;
    }
    let claimed = claimed.sends;
    for (i, c) in claimed.iter().enumerate() {
        let opened = open_phone(services, c.id, c.campaign_id, c.phone_enc.as_deref())
            .and_then(|phone| Ok((phone, open_token(services, c, &tokens)?)));
        let (phone, token) = match opened {
            Ok(opened) => opened,
            Err(why) => {
                store.mark_send_failed(c.id, why, None).await?;
                round.failed += 1;
                continue;
            }
        };
        throttle.until_ready().await;
        // A slow round (a gateway timing out every send) gives the rest back rather than
        // send past its lease, when another instance may take them for interrupted.
        if clock.now() + chrono::Duration::seconds(LEASE_MARGIN_SECS) > lease_until {
            tracing::warn!(
                sends = claimed.len() - i,
                "survey SMS round too slow; giving the rest back"
            );
            for rest in &claimed[i..] {
                store.release_send(rest.id, clock.now()).await?;
            }
            break;
        }
        let link = format!("{}/s/{token}", services.settings.sms.public_base_url);
        let outcome = gateway.send(c.id, &phone, &link).await;
        record_send(services, c, outcome, clock.now(), round).await?;
    }
    Ok(())
}

/// Records what became of one send, which ended at `now`.
async fn record_send(
    services: &Services,
    c: &ClaimedSend,
    outcome: Result<(), GatewayError>,
    now: DateTime<Utc>,
    round: &mut Round,
) -> Result<(), StoreError> {
    let store = services.store.as_ref();
    match outcome {
        Ok(()) => {
            store.mark_sent(c.id, now).await?;
            metrics::counter!("survey_sms_total", "outcome" => "sent").increment(1);
            round.sent += 1;
        }
        Err(e) if e.failure == Failure::Unanswered => {
            // Never before the real clock either: the gateway's records of the send, which
            // the status query looks through, are in real time.
            let at = now.max(Utc::now());
            tracing::warn!(record_id = c.id, code = %e.code, attempts = c.attempts, "survey SMS unanswered: outcome unknown; the gateway will be asked");
            let first_query = at + chrono::Duration::seconds(FIRST_QUERY_SECS);
            store
                .mark_send_unknown(c.id, &e.code, at, first_query)
                .await?;
            metrics::counter!("survey_sms_total", "outcome" => "unknown").increment(1);
            round.unknown += 1;
        }
        Err(e) if e.failure == Failure::Retryable && c.attempts < MAX_ATTEMPTS => {
            let at = now + backoff(c.attempts);
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
    Ok(())
}

/// What to do with a send of unknown outcome after asking the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The gateway took it.
    Sent,
    /// Its survey was answered: the link arrived, whatever the gateway would say.
    Answered,
    /// The gateway never took it: queued again at this time.
    Requeue(DateTime<Utc>),
    /// Failed for good, for this reason.
    Fail(String),
    /// Ask again at this time; `failed_query` when this query failed.
    AskAgain {
        at: DateTime<Utc>,
        failed_query: bool,
    },
}

/// When the send of `u`, if it happened, happened: from its claim until the outcome became
/// unknown, and within the lease (no send starts near its end). A claim made before claims
/// were timed is looked for over the day before.
pub fn send_window(u: &UnknownSend) -> (DateTime<Utc>, DateTime<Utc>) {
    match u.attempted_at {
        Some(a) => (
            a,
            u.unknown_at
                .min(a + chrono::Duration::seconds(LEASE_SECS))
                .max(a),
        ),
        None => (u.unknown_at - chrono::Duration::days(1), u.unknown_at),
    }
}

/// Decides from the gateway's answer. `settle`: how long the gateway takes to show a send;
/// `horizon`: how long after the send its answers are trusted and waited for.
pub fn decide(
    u: &UnknownSend,
    answer: &Result<Known, GatewayError>,
    settle: chrono::Duration,
    horizon: chrono::Duration,
    now: DateTime<Utc>,
) -> Resolution {
    let (since, until) = send_window(u);
    let past_horizon = now > since + horizon;
    match answer {
        Ok(Known::Accepted) => Resolution::Sent,
        // Too early: a record of it may still come.
        Ok(Known::NoRecord) if now < until + settle && !past_horizon => Resolution::AskAgain {
            at: until + settle,
            failed_query: false,
        },
        // The gateway's records of old sends run out: silence no longer proves anything.
        Ok(Known::NoRecord) if past_horizon => Resolution::Fail(format!(
            "{}; no record at the gateway, and past the horizon",
            u.reason
        )),
        Ok(Known::NoRecord) if u.attempts < MAX_ATTEMPTS => {
            Resolution::Requeue(now + backoff(u.attempts))
        }
        Ok(Known::NoRecord) => Resolution::Fail(format!(
            "{}; never taken by the gateway, attempts used up",
            u.reason
        )),
        Err(e) if past_horizon || u.failed_queries + 1 >= MAX_FAILED_QUERIES => Resolution::Fail(
            format!("{}; the gateway could not tell ({})", u.reason, e.code),
        ),
        Err(_) => Resolution::AskAgain {
            at: now + backoff(u.failed_queries + 1),
            failed_query: true,
        },
    }
}

/// Asks the gateway about the sends of unknown outcome that are due, and records the answer.
async fn resolve_unknown(
    services: &Services,
    gateway: &dyn Gateway,
    throttle: &Throttle,
    clock: &RoundClock,
    round: &mut Round,
) -> Result<(), StoreError> {
    let store = services.store.as_ref();
    let now = clock.now();
    let lease_until = now + chrono::Duration::seconds(LEASE_SECS);
    let due = store.claim_unknown_sends(now, lease_until, ROUND).await?;
    let settle = chrono::Duration::from_std(gateway.settle()).unwrap_or_default();
    let horizon =
        chrono::Duration::from_std(services.settings.sms.unknown_horizon).unwrap_or_default();
    for u in due {
        let opened = if u.answered {
            // No need to ask: the best proof of delivery there is.
            Ok(None)
        } else {
            open_phone(services, u.id, u.campaign_id, u.phone_enc.as_deref()).map(Some)
        };
        let resolution = match opened {
            Ok(None) => Resolution::Answered,
            // A number cleared by the retention cannot be asked about.
            Err(why) => Resolution::Fail(format!("{why}: outcome unknown")),
            Ok(Some(phone)) => {
                throttle.until_ready().await;
                // Past the lease another instance may ask too: the rest wait for its end.
                if clock.now() + chrono::Duration::seconds(LEASE_MARGIN_SECS) > lease_until {
                    break;
                }
                let (since, until) = send_window(&u);
                let q = StatusQuery {
                    record_id: u.id,
                    phone: &phone,
                    since,
                    until,
                };
                let answer = gateway.status(&q).await;
                if let Err(e) = &answer {
                    tracing::warn!(record_id = u.id, code = %e.code, failed_queries = u.failed_queries + 1, "survey SMS status query failed");
                }
                // Decided at the answer's time: the queries before may have been slow.
                decide(&u, &answer, settle, horizon, clock.now())
            }
        };
        record_resolution(services, &u, resolution, round).await?;
    }
    Ok(())
}

/// Records what was decided about one send of unknown outcome.
async fn record_resolution(
    services: &Services,
    u: &UnknownSend,
    resolution: Resolution,
    round: &mut Round,
) -> Result<(), StoreError> {
    let store = services.store.as_ref();
    let outcome = match &resolution {
        Resolution::Sent => {
            // It went out during its attempt, not when we learned of it.
            let at = u.attempted_at.unwrap_or(u.unknown_at);
            store
                .settle_unknown_send(u.id, &Settled::Sent { at })
                .await?;
            tracing::info!(
                record_id = u.id,
                "survey SMS of unknown outcome: the gateway took it"
            );
            round.confirmed += 1;
            "sent"
        }
        Resolution::Answered => {
            let at = u.attempted_at.unwrap_or(u.unknown_at);
            store
                .settle_unknown_send(u.id, &Settled::Sent { at })
                .await?;
            tracing::info!(
                record_id = u.id,
                "survey SMS of unknown outcome: its survey was answered, so it arrived"
            );
            round.answered += 1;
            "answered"
        }
        Resolution::Requeue(retry_at) => {
            let reason = format!("{}; the gateway has no record of it", u.reason);
            let settled = Settled::Requeued {
                reason: &reason,
                retry_at: *retry_at,
            };
            store.settle_unknown_send(u.id, &settled).await?;
            tracing::warn!(record_id = u.id, retry_at = %retry_at, "survey SMS of unknown outcome never reached the gateway; will retry");
            round.requeued += 1;
            "requeued"
        }
        Resolution::Fail(reason) => {
            store
                .settle_unknown_send(u.id, &Settled::Failed { reason })
                .await?;
            tracing::error!(record_id = u.id, reason = %reason, "survey SMS of unknown outcome failed");
            round.failed += 1;
            "failed"
        }
        Resolution::AskAgain { at, failed_query } => {
            store
                .postpone_status_query(u.id, *at, *failed_query)
                .await?;
            "pending"
        }
    };
    metrics::counter!("survey_sms_resolved_total", "outcome" => outcome).increment(1);
    Ok(())
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

/// Sends survey SMS, and settles those of unknown outcome, for as long as the service runs.
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

    fn unknown(attempts: u32, failed_queries: u32) -> (UnknownSend, DateTime<Utc>) {
        let t0 = DateTime::parse_from_rfc3339("2026-11-20T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let u = UnknownSend {
            id: 7,
            campaign_id: 1,
            phone_enc: None,
            attempts,
            reason: "timeout: outcome unknown".into(),
            attempted_at: Some(t0),
            unknown_at: t0 + chrono::Duration::seconds(5),
            failed_queries,
            answered: false,
        };
        (u, t0)
    }

    fn mins(m: i64) -> chrono::Duration {
        chrono::Duration::minutes(m)
    }

    #[test]
    fn a_send_the_gateway_took_is_sent_whatever_the_time() {
        let (u, t0) = unknown(1, 0);
        for now in [t0, t0 + mins(1), t0 + mins(60 * 48)] {
            assert_eq!(
                decide(&u, &Ok(Known::Accepted), mins(10), mins(60 * 24), now),
                Resolution::Sent
            );
        }
    }

    #[test]
    fn no_record_proves_nothing_until_the_gateway_has_settled() {
        let (u, t0) = unknown(1, 0);
        let settled = u.unknown_at + mins(10);
        assert_eq!(
            decide(
                &u,
                &Ok(Known::NoRecord),
                mins(10),
                mins(60 * 24),
                t0 + mins(1)
            ),
            Resolution::AskAgain {
                at: settled,
                failed_query: false
            }
        );
        let later = settled + mins(1);
        assert_eq!(
            decide(&u, &Ok(Known::NoRecord), mins(10), mins(60 * 24), later),
            Resolution::Requeue(later + backoff(1))
        );
        // Its attempts used up: failed, not sent a sixth time.
        let (spent, _) = unknown(MAX_ATTEMPTS, 0);
        assert!(matches!(
            decide(&spent, &Ok(Known::NoRecord), mins(10), mins(60 * 24), later),
            Resolution::Fail(_)
        ));
        // Past the horizon the gateway's silence is not trusted.
        let late = t0 + mins(60 * 25);
        assert_eq!(
            decide(&u, &Ok(Known::NoRecord), mins(10), mins(60 * 24), late),
            Resolution::Fail(
                "timeout: outcome unknown; no record at the gateway, and past the horizon".into()
            )
        );
    }

    #[test]
    fn failing_queries_are_asked_again_until_the_limit_or_the_horizon() {
        let err = Err(GatewayError::new(
            "InternalError.Timeout",
            Failure::Retryable,
        ));
        let (u, t0) = unknown(1, 2);
        let now = t0 + mins(5);
        assert_eq!(
            decide(&u, &err, mins(10), mins(60 * 24), now),
            Resolution::AskAgain {
                at: now + backoff(3),
                failed_query: true
            }
        );
        let (tired, _) = unknown(1, MAX_FAILED_QUERIES - 1);
        assert_eq!(
            decide(&tired, &err, mins(10), mins(60 * 24), now),
            Resolution::Fail(
                "timeout: outcome unknown; the gateway could not tell (InternalError.Timeout)"
                    .into()
            )
        );
        assert!(matches!(
            decide(&u, &err, mins(10), mins(60 * 24), t0 + mins(60 * 25)),
            Resolution::Fail(_)
        ));
    }

    #[test]
    fn the_send_is_looked_for_from_its_claim_to_its_unknown_outcome_within_the_lease() {
        let (mut u, t0) = unknown(1, 0);
        assert_eq!(send_window(&u), (t0, t0 + chrono::Duration::seconds(5)));
        // Noticed long after a crash: the send happened within the lease.
        u.unknown_at = t0 + mins(60);
        assert_eq!(
            send_window(&u),
            (t0, t0 + chrono::Duration::seconds(LEASE_SECS))
        );
        u.attempted_at = None;
        assert_eq!(
            send_window(&u),
            (u.unknown_at - mins(60 * 24), u.unknown_at)
        );
    }
}
