//! The proof-of-work challenge a campaign can ask ballots to carry.
//!
//! A challenge is issued to one voter for one campaign: `"<bits>.<expires>.<random>.<mac>"`,
//! where the MAC (keyed with the service's secret) binds the other parts to the campaign and
//! the voter, so the service keeps nothing until a proof is spent, and a proof computed for
//! one account is worth nothing to another. The proof is a `nonce` such that
//! `sha256(challenge ‖ ":" ‖ nonce)` starts with `bits` zero bits.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::keyed::ServiceKey;

/// How long a challenge may be answered.
pub const LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub text: String,
    pub bits: u8,
    pub expires_at: DateTime<Utc>,
}

fn mac(
    key: &ServiceKey,
    campaign_id: i64,
    voter: &str,
    bits: u8,
    expires: i64,
    random: &str,
) -> String {
    let message = format!("{campaign_id}|{voter}|{bits}|{expires}|{random}");
    hex::encode(&key.mac("pow-challenge", message.as_bytes())[..16])
}

/// A fresh challenge; `random` is 16 random bytes from the caller (this module does no I/O).
pub fn issue(
    key: &ServiceKey,
    campaign_id: i64,
    voter: &str,
    bits: u8,
    now: DateTime<Utc>,
    random: [u8; 16],
) -> Challenge {
    let expires = now.timestamp() + LIFETIME_SECS;
    let random = hex::encode(random);
    let mac = mac(key, campaign_id, voter, bits, expires, &random);
    Challenge {
        text: format!("{bits}.{expires}.{random}.{mac}"),
        bits,
        expires_at: DateTime::from_timestamp(expires, 0).unwrap_or(now),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// Not a challenge this service issued to this voter for this campaign.
    Forged,
    Expired,
    /// Issued for fewer bits than the campaign asks now.
    TooEasy,
    /// The nonce does not give enough zero bits.
    Wrong,
}

/// Checks a proof (not whether it was spent: that needs the counter store). Returns the bits
/// the challenge was issued for (a ballot flagged later may need more).
pub fn check(
    key: &ServiceKey,
    campaign_id: i64,
    voter: &str,
    required_bits: u8,
    now: DateTime<Utc>,
    challenge: &str,
    nonce: &str,
) -> Result<u8, ProofError> {
    let parts: Vec<&str> = challenge.split('.').collect();
    let [bits, expires, random, given_mac] = parts.as_slice() else {
        return Err(ProofError::Forged);
    };
    let (Ok(bits), Ok(expires)) = (bits.parse::<u8>(), expires.parse::<i64>()) else {
        return Err(ProofError::Forged);
    };
    let expected = mac(key, campaign_id, voter, bits, expires, random);
    // Both are hex of a MAC; comparing them in constant time keeps the MAC unguessable.
    if !constant_time_eq(expected.as_bytes(), given_mac.as_bytes()) {
        return Err(ProofError::Forged);
    }
    if now.timestamp() > expires {
        return Err(ProofError::Expired);
    }
    if bits < required_bits {
        return Err(ProofError::TooEasy);
    }
    if nonce.is_empty() || nonce.len() > 64 || !meets(challenge, nonce, bits) {
        return Err(ProofError::Wrong);
    }
    Ok(bits)
}

/// Whether `sha256(challenge ":" nonce)` starts with `bits` zero bits.
pub fn meets(challenge: &str, nonce: &str, bits: u8) -> bool {
    let digest = Sha256::digest(format!("{challenge}:{nonce}").as_bytes());
    leading_zero_bits(&digest) >= u32::from(bits)
}

pub fn leading_zero_bits(bytes: &[u8]) -> u32 {
    let mut n = 0;
    for b in bytes {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Finds a nonce for `challenge` (what a client does; used by tests, the simulation and the
/// docs' example).
pub fn solve(challenge: &str, bits: u8) -> String {
    (0u64..)
        .map(|n| n.to_string())
        .find(|nonce| meets(challenge, nonce, bits))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new(b"test-key-test-key-test-key-test-key")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000, 0).unwrap()
    }

    #[test]
    fn zero_bits_are_counted_across_bytes() {
        assert_eq!(leading_zero_bits(&[0, 0, 0b0001_0000]), 19);
        assert_eq!(leading_zero_bits(&[0x80]), 0);
        assert_eq!(leading_zero_bits(&[0, 0]), 16);
    }

    #[test]
    fn a_solved_challenge_passes_for_its_voter_and_campaign_only() {
        let c = issue(&key(), 7, "voter-a", 10, now(), [1; 16]);
        let nonce = solve(&c.text, 10);
        assert_eq!(
            check(&key(), 7, "voter-a", 10, now(), &c.text, &nonce),
            Ok(10)
        );
        assert_eq!(
            check(&key(), 7, "voter-b", 10, now(), &c.text, &nonce),
            Err(ProofError::Forged)
        );
        assert_eq!(
            check(&key(), 8, "voter-a", 10, now(), &c.text, &nonce),
            Err(ProofError::Forged)
        );
        // Claiming fewer bits in the text breaks the MAC.
        let cheaper = c.text.replacen("10.", "2.", 1);
        assert_eq!(
            check(&key(), 7, "voter-a", 2, now(), &cheaper, &nonce),
            Err(ProofError::Forged)
        );
    }

    #[test]
    fn wrong_late_and_too_easy_proofs_fail() {
        let c = issue(&key(), 7, "v", 12, now(), [2; 16]);
        let nonce = solve(&c.text, 12);
        let wrong = (0u64..)
            .map(|n| n.to_string())
            .find(|n| !meets(&c.text, n, 12))
            .unwrap();
        assert_eq!(
            check(&key(), 7, "v", 12, now(), &c.text, &wrong),
            Err(ProofError::Wrong)
        );
        let late = now() + chrono::Duration::seconds(LIFETIME_SECS + 1);
        assert_eq!(
            check(&key(), 7, "v", 12, late, &c.text, &nonce),
            Err(ProofError::Expired)
        );
        assert_eq!(
            check(&key(), 7, "v", 16, now(), &c.text, &nonce),
            Err(ProofError::TooEasy)
        );
        assert_eq!(
            check(&key(), 7, "v", 12, now(), "junk", &nonce),
            Err(ProofError::Forged)
        );
    }
}
