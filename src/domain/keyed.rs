//! Keyed hashes of personal identifiers (PIPL art. 51): a citizen is known to the service
//! only as `HMAC-SHA256(secret, domain ‖ value)`, so the stored value cannot be reversed or
//! matched against a list of openids without the secret. The domain string keeps the hash of
//! an openid apart from the hash of a phone number or a device id with the same text.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The service secret that keys every hash and token. Never printed.
#[derive(Clone)]
pub struct ServiceKey(Vec<u8>);

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceKey(***)")
    }
}

impl ServiceKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(secret.to_vec())
    }

    /// HMAC-SHA256 over `domain ‖ 0x00 ‖ message`.
    pub fn mac(&self, domain: &str, message: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    /// Constant-time check of a MAC made by [`ServiceKey::mac`].
    pub fn verify(&self, domain: &str, message: &[u8], tag: &[u8]) -> bool {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(domain.as_bytes());
        mac.update(&[0]);
        mac.update(message);
        mac.verify_slice(tag).is_ok()
    }
}

/// A citizen's public identity: the first 16 bytes of the keyed hash of the WeChat openid,
/// as 32 lowercase hex characters. Stable for one secret; reveals nothing of the openid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct VoterId(String);

impl VoterId {
    pub fn from_openid(key: &ServiceKey, openid: &str) -> Self {
        let mac = key.mac("voter-openid", openid.as_bytes());
        Self(hex::encode(&mac[..16]))
    }

    /// Accepts only what `from_openid` produces: 32 lowercase hex characters.
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for VoterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voter_ids_are_stable_per_secret_and_hide_the_openid() {
        let k1 = ServiceKey::new(b"0123456789abcdef0123456789abcdef");
        let k2 = ServiceKey::new(b"another-secret-another-secret-xx");
        let a = VoterId::from_openid(&k1, "oAbc123");
        assert_eq!(a, VoterId::from_openid(&k1, "oAbc123"));
        assert_ne!(a, VoterId::from_openid(&k2, "oAbc123"));
        assert_ne!(a, VoterId::from_openid(&k1, "oAbc124"));
        assert_eq!(a.as_str().len(), 32);
        assert!(!a.as_str().contains("oAbc123"));
        assert_eq!(VoterId::parse(a.as_str()), Some(a));
        assert_eq!(VoterId::parse("not-hex"), None);
    }

    #[test]
    fn the_domain_separates_hashes_of_the_same_text() {
        let k = ServiceKey::new(b"0123456789abcdef0123456789abcdef");
        assert_ne!(k.mac("voter-openid", b"x"), k.mac("phone", b"x"));
        let tag = k.mac("d", b"m");
        assert!(k.verify("d", b"m", &tag));
        assert!(!k.verify("d", b"n", &tag));
    }
}
