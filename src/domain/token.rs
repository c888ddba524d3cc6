//! Bearer tokens for the two audiences, shaped so that one can never pass for the other.
//!
//! * Citizen tokens are stateless: `c1.<voter_id>.<expires_unix>.<mac>`, the MAC keyed by the
//!   service secret. The vote path checks them without a database round trip.
//! * Staff tokens are opaque random strings `s1.<64 hex>`; the database keeps only their
//!   SHA-256, so that logout can revoke one and a leaked table reveals no usable token.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::keyed::{ServiceKey, VoterId};

const CITIZEN_PREFIX: &str = "c1";
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
    if token.starts_with("c1.") {
        TokenKind::Citizen
    } else if token.starts_with(STAFF_PREFIX) {
        TokenKind::Staff
    } else {
        TokenKind::Unknown
    }
}

pub fn sign_citizen(key: &ServiceKey, voter: &VoterId, expires_at: DateTime<Utc>) -> String {
    let payload = format!(
        "{CITIZEN_PREFIX}.{}.{}",
        voter.as_str(),
        expires_at.timestamp()
    );
    let mac = key.mac(CITIZEN_DOMAIN, payload.as_bytes());
    format!("{payload}.{}", hex::encode(mac))
}

pub fn verify_citizen(
    key: &ServiceKey,
    token: &str,
    now: DateTime<Utc>,
) -> Result<(VoterId, DateTime<Utc>), TokenError> {
    let (payload, mac_hex) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let mut parts = payload.split('.');
    let (Some(CITIZEN_PREFIX), Some(voter), Some(exp), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let voter = VoterId::parse(voter).ok_or(TokenError::Malformed)?;
    let exp: i64 = exp.parse().map_err(|_| TokenError::Malformed)?;
    let mac = hex::decode(mac_hex).map_err(|_| TokenError::Malformed)?;
    if !key.verify(CITIZEN_DOMAIN, payload.as_bytes(), &mac) {
        return Err(TokenError::BadSignature);
    }
    let expires_at = DateTime::from_timestamp(exp, 0).ok_or(TokenError::Malformed)?;
    if expires_at <= now {
        return Err(TokenError::Expired);
    }
    Ok((voter, expires_at))
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
        let token = sign_citizen(&key(), &voter, now + Duration::hours(1));
        assert_eq!(kind_of(&token), TokenKind::Citizen);
        let (v, _) = verify_citizen(&key(), &token, now).unwrap();
        assert_eq!(v, voter);
        assert_eq!(
            verify_citizen(&key(), &token, now + Duration::hours(2)),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_changed_or_foreign_citizen_token_is_refused() {
        let voter = VoterId::from_openid(&key(), "openid-1");
        let exp = Utc::now() + Duration::hours(1);
        let token = sign_citizen(&key(), &voter, exp);
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
    fn staff_tokens_are_random_and_stored_as_digests() {
        let a = new_staff_token();
        let b = new_staff_token();
        assert_ne!(a, b);
        assert_eq!(kind_of(&a), TokenKind::Staff);
        assert_eq!(staff_token_digest(&a).len(), 64);
        assert_ne!(staff_token_digest(&a), a);
    }
}
