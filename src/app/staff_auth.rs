//! Staff login, logout and token checks.
//!
//! Passwords are argon2id hashes (the `argon2` crate's defaults: 19 MiB, 2 passes), checked on
//! the blocking pool so that a burst of logins cannot stall the async workers. An unknown
//! username costs the same hash as a known one, so response time does not reveal which
//! usernames exist.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use chrono::{DateTime, Duration, Utc};

use super::Services;
use crate::domain::staff::{self, Role, Username};
use crate::domain::token;
use crate::store::{StaffSession, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("account locked until {0}")]
    Locked(DateTime<Utc>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password check failed: {0}")]
    Internal(String),
}

pub struct LoginOk {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub role: Role,
    pub staff_id: i64,
}

/// Hashes a password as a PHC string (argon2id, random salt).
pub fn hash_password(password: &str) -> Result<String, String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash of a password nobody knows, checked when the username does not exist.
static DECOY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes);
    hash_password(&hex::encode(bytes)).unwrap_or_default()
});

#[tracing::instrument(skip(services, password), fields(staff_id))]
pub async fn login(
    services: &Services,
    username: &str,
    password: &str,
) -> Result<LoginOk, LoginError> {
    let account = services.store.find_staff(username).await?;
    let now = Utc::now();
    if let Some(a) = &account
        && let Some(until) = a.locked_until.filter(|u| *u > now)
    {
        tracing::warn!(staff_id = a.id, "login refused: account locked");
        return Err(LoginError::Locked(until));
    }
    let phc = match &account {
        Some(a) if !a.disabled => a.password_hash.clone(),
        _ => DECOY_HASH.clone(),
    };
    let candidate = password.to_string();
    let matches = tokio::task::spawn_blocking(move || verify_password(&candidate, &phc))
        .await
        .map_err(|e| LoginError::Internal(e.to_string()))?;
    let Some(account) = account.filter(|a| !a.disabled) else {
        tracing::info!("login failed: unknown or disabled username");
        return Err(LoginError::InvalidCredentials);
    };
    tracing::Span::current().record("staff_id", account.id);
    let settings = &services.settings;
    if !matches {
        let failures = services.store.add_login_failure(account.id).await?;
        let lockout = Duration::from_std(settings.login_lockout).unwrap_or(Duration::minutes(15));
        if let Some(until) =
            staff::lock_after_failure(failures, settings.login_max_failures, now, lockout)
        {
            services.store.lock_staff(account.id, until).await?;
            tracing::warn!(failures, %until, "account locked after failed logins");
            return Err(LoginError::Locked(until));
        }
        tracing::info!(failures, "login failed: wrong password");
        return Err(LoginError::InvalidCredentials);
    }
    if account.failed_logins > 0 || account.locked_until.is_some() {
        services.store.reset_login_failures(account.id).await?;
    }
    let token = token::new_staff_token();
    let ttl = Duration::from_std(settings.staff_token_ttl).unwrap_or(Duration::hours(8));
    let expires_at = now + ttl;
    services
        .store
        .create_session(&token::staff_token_digest(&token), account.id, expires_at)
        .await?;
    tracing::info!(role = %account.role, "staff logged in");
    Ok(LoginOk {
        token,
        expires_at,
        role: account.role,
        staff_id: account.id,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no valid token")]
    Invalid,
    #[error("expired")]
    Expired,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The session a staff bearer token stands for.
pub async fn authenticate(store: &dyn Store, bearer: &str) -> Result<StaffSession, AuthError> {
    if token::kind_of(bearer) != token::TokenKind::Staff {
        return Err(AuthError::Invalid);
    }
    let session = store
        .find_session(&token::staff_token_digest(bearer))
        .await?
        .ok_or(AuthError::Invalid)?;
    if session.expires_at <= Utc::now() {
        return Err(AuthError::Expired);
    }
    Ok(session)
}

pub async fn logout(store: &dyn Store, bearer: &str) -> Result<(), StoreError> {
    store
        .revoke_session(&token::staff_token_digest(bearer), Utc::now())
        .await
}

#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the username is taken")]
    Taken,
    #[error(transparent)]
    Store(StoreError),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Creates a staff account (from the command line).
pub async fn create_user(
    store: &dyn Store,
    username: &str,
    password: &str,
    role: Role,
    unit: Option<&str>,
) -> Result<i64, CreateUserError> {
    if role == Role::UnitHandler && unit.is_none_or(|u| u.trim().is_empty()) {
        return Err(CreateUserError::Invalid(
            "unit_handler 账号必须指定所属单位（--unit）",
        ));
    }
    let username = Username::parse(username).map_err(CreateUserError::Invalid)?;
    staff::check_new_password(password).map_err(CreateUserError::Invalid)?;
    let password = password.to_string();
    let phc = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| CreateUserError::Hash(e.to_string()))?
        .map_err(CreateUserError::Hash)?;
    store
        .create_staff(username.as_str(), &phc, role, unit.map(str::trim))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => CreateUserError::Taken,
            other => CreateUserError::Store(other),
        })
}
