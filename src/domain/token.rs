//! Bearer tokens for the two audiences, shaped so that one can never pass for the other.
//!
//! * Citizen tokens are stateless: `c2.<voter_id>.<first_login_unix>.<expires_unix>.<mac>`,
//!   the MAC keyed by the service secret. The vote path checks them without a database round
//!   trip, and reads the account's age (a risk signal) from them. Tokens of the first shape,
//!   `c1.<voter_id>.<expires_unix>.<mac>`, are still accepted until they expire; they tell no
//!   age.
//! * Staff tokens are opaque random strings `s1.<64 hex>`; the database keeps only their
//!   SHA-256, so that logout can revoke one and a leaked table reveals no usable token.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::keyed::{ServiceKey, VoterId};

const CITIZEN_PREFIX: &str = "c2";
const CITIZEN_PREFIX_V1: &str = "c1";
const STAFF_PREFIX: &str = "s1.";
const CITIZEN_DOMAIN: &str = "citizen-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad signature")]
    BadSignature,
    #[error("expired")]
    Expired,
}

/// Which audience a bearer string claims to be for, judged from its shape alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Citizen,
    Staff,
    Unknown,
}

pub fn kind_of(token: &str) -> TokenKind {
    if token.starts_with("c2.") || token.starts_with("c1.") {
        TokenKind::Citizen
    } else if token.starts_with(STAFF_PREFIX) {
        TokenKind::Staff
    } else {
        TokenKind::Unknown
    }
}

/// What a valid citizen token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitizenClaims {
    pub voter: VoterId,
    /// When the voter first logged in (`None` from a `c1.` token).
    pub first_seen: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

pub fn sign_citizen(
    key: &ServiceKey,
    voter: &VoterId,
    first_seen: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> String {
    let payload = format!(
        "{CITIZEN_PREFIX}.{}.{}.{}",
        voter.as_str(),
        first_seen.timestamp(),
        expires_at.timestamp()
    );
    let mac = key.mac(CITIZEN_DOMAIN, payload.as_bytes());
    format!("{payload}.{}", hex::encode(mac))
}

pub fn verify_citizen(
    key: &ServiceKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<CitizenClaims, TokenError> {
    let (payload, mac_hex) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let parts: Vec<&str> = payload.split('.').collect();
    let (voter, first_seen, exp) = match parts.as_slice() {
        [CITIZEN_PREFIX, voter, first, exp] => (*voter, Some(*first), *exp),
        [CITIZEN_PREFIX_V1, voter, exp] => (*voter, None, *exp),
        _ => return Err(TokenError::Malformed),
    };
    let voter = VoterId::parse(voter).ok_or(TokenError::Malformed)?;
    let time = |text: &str| {
        text.parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or(TokenError::Malformed)
    };
    let expires_at = time(exp)?;
    let first_seen = first_seen.map(time).transpose()?;
    let mac = hex::decode(mac_hex).map_err(|_| TokenError::Malformed)?;
    if !key.verify(CITIZEN_DOMAIN, payload.as_bytes(), &mac) {
        return Err(TokenError::BadSignature);
    }
    if expires_at <= now {
        return Err(TokenError::Expired);
    }
    Ok(CitizenClaims {
        voter,
        first_seen,
        expires_at,
    })
}

/// A fresh staff token: 256 random bits.
pub fn new_staff_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!("{STAFF_PREFIX}{}", hex::encode(bytes))
}

/// What the database stores for a staff token.
pub fn staff_token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn key() -> ServiceKey {
        ServiceKey::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn a_citizen_token_round_trips_until_it_expires() {
        let voter = VoterId::from_openid(&key(), "openid-1");
        let now = Utc::now();
        let first = now - Duration::days(3);
        let token = sign_citizen(&key(), &voter, first, now + Duration::hours(1));
        assert_eq!(kind_of(&token), TokenKind::Citizen);
        let claims = verify_citizen(&key(), &token, now).unwrap();
        assert_eq!(claims.voter, voter);
        assert_eq!(
            claims.first_seen.map(|t| t.timestamp()),
            Some(first.timestamp())
        );
        assert_eq!(
            verify_citizen(&key(), &token, now + Duration::hours(2)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_changed_or_foreign_citizen_token_is_refused() {
        let voter = VoterId::from_openid(&key(), "openid-1");
        let exp = Utc::now() + Duration::hours(1);
        let token = sign_citizen(&key(), &voter, Utc::now(), exp);
        let other = VoterId::from_openid(&key(), "openid-2");
        let forged = token.replace(voter.as_str(), other.as_str());
        assert_eq!(
            verify_citizen(&key(), &forged, Utc::now()),
            Err(TokenError::BadSignature)
        );
        let foreign = ServiceKey::new(b"ffffffffffffffffffffffffffffffff");
        assert_eq!(
            verify_citizen(&foreign, &token, Utc::now()),
            Err(TokenError::BadSignature)
        );
        assert_eq!(
            verify_citizen(&key(), "c1.x", Utc::now()),
            Err(TokenError::Malformed)
        );
        assert_eq!(
            verify_citizen(&key(), &new_staff_token(), Utc::now()),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn a_first_shape_token_is_still_accepted_and_tells_no_age() {
        let voter = VoterId::from_openid(&key(), "openid-1");
        let now = Utc::now();
        let payload = format!(
            "c1.{}.{}",
            voter.as_str(),
            (now + Duration::hours(1)).timestamp()
        );
        let mac = hex::encode(key().mac(CITIZEN_DOMAIN, payload.as_bytes()));
        let token = format!("{payload}.{mac}");
        assert_eq!(kind_of(&token), TokenKind::Citizen);
        let claims = verify_citizen(&key(), &token, now).unwrap();
        assert_eq!((&claims.voter, claims.first_seen), (&voter, None));
        // An age cannot be added to a first-shape token without the key.
        let exp = (now + Duration::hours(1)).timestamp();
        let forged = format!("c2.{}.0.{exp}.{mac}", voter.as_str());
        assert_eq!(
            verify_citizen(&key(), &forged, now),
            Err(TokenError::BadSignature)
        );
    }

    #[test]
    fn staff_tokens_are_random_and_stored_as_digests() {
        let a = new_staff_token();
        let b = new_staff_token();
        assert_ne!(a, b);
        assert_eq!(kind_of(&a), TokenKind::Staff);
        assert_eq!(staff_token_digest(&a).len(), 64);
        assert_ne!(staff_token_digest(&a), a);
    }
}
