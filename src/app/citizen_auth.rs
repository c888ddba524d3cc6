//! Citizen login: a WeChat code (or, in development only, a bare openid) becomes a signed
//! citizen token. The openid is turned into the keyed `VoterId` at once and goes no further:
//! not into the database, a log line or a response.

use chrono::{DateTime, Duration, Utc};

use super::Services;
use crate::domain::keyed::VoterId;
use crate::domain::token;
use crate::integrations::wechat::WechatError;
use crate::store::StoreError;

pub struct CitizenLogin {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub voter_id: VoterId,
}

#[derive(Debug, thiserror::Error)]
pub enum CitizenLoginError {
    #[error(transparent)]
    Wechat(#[from] WechatError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[tracing::instrument(skip_all, fields(voter_id))]
pub async fn login_with_wechat(
    services: &Services,
    code: &str,
) -> Result<CitizenLogin, CitizenLoginError> {
    let session = services
        .wechat
        .code_to_session(code)
        .await
        .inspect_err(|e| {
            tracing::warn!(error = %e, "WeChat login refused");
        })?;
    Ok(issue(services, &session.openid).await?)
}

/// Development login: trusts the openid it is given. Routed only when configuration enables it.
#[tracing::instrument(skip_all, fields(voter_id))]
pub async fn login_dev(services: &Services, openid: &str) -> Result<CitizenLogin, StoreError> {
    issue(services, openid).await
}

async fn issue(services: &Services, openid: &str) -> Result<CitizenLogin, StoreError> {
    let voter_id = VoterId::from_openid(&services.key, openid);
    tracing::Span::current().record("voter_id", voter_id.as_str());
    let now = Utc::now();
    let first_seen = services.store.touch_voter(&voter_id, now).await?;
    let ttl =
        Duration::from_std(services.settings.citizen_token_ttl).unwrap_or(Duration::hours(24));
    let expires_at = now + ttl;
    let token = token::sign_citizen(&services.key, &voter_id, first_seen, expires_at);
    tracing::info!("citizen logged in");
    Ok(CitizenLogin {
        token,
        expires_at,
        voter_id,
    })
}
