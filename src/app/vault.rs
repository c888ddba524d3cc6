//! Phone numbers at rest: encrypted for sending (AES-256-GCM, the key from configuration)
//! and hashed with the service key for matching. Neither the number nor its hash leaves the
//! service: no log line, export or response carries them. The same sealing keeps other
//! small secrets at rest: objectors' contacts, and a survey token awaiting a send again
//! (`app::sms`).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use crate::domain::keyed::ServiceKey;

pub struct PhoneVault {
    cipher: Aes256Gcm,
    key: ServiceKey,
}

impl std::fmt::Debug for PhoneVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PhoneVault(***)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("a stored phone number does not decrypt (wrong MINYI_PHONE_KEY, or altered)")]
pub struct VaultError;

impl PhoneVault {
    /// With `MINYI_PHONE_KEY` (32 bytes), or else a key derived from the service secret.
    pub fn new(key: &ServiceKey, phone_key: Option<[u8; 32]>) -> Self {
        let bytes = phone_key.unwrap_or_else(|| key.mac("phone-encryption-key", b""));
        Self {
            cipher: Aes256Gcm::new_from_slice(&bytes).expect("a 32-byte key"),
            key: key.clone(),
        }
    }

    /// The keyed hash duplicates are found by.
    pub fn hash(&self, normalized: &str) -> String {
        hex::encode(self.key.mac("phone-number", normalized.as_bytes()))
    }

    /// `hex(nonce ‖ ciphertext)`; the record it belongs to is bound in as associated data,
    /// so a ciphertext moved to another record does not decrypt.
    pub fn seal(&self, normalized: &str, record: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::fill(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: normalized.as_bytes(),
                    aad: record.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of a short message");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        hex::encode(out)
    }

    pub fn open(&self, sealed: &str, record: &str) -> Result<String, VaultError> {
        let bytes = hex::decode(sealed).map_err(|_| VaultError)?;
        if bytes.len() < 12 {
            return Err(VaultError);
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| VaultError)?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: record.as_bytes(),
                },
            )
            .map_err(|_| VaultError)?;
        String::from_utf8(plain).map_err(|_| VaultError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_opens_only_with_its_key_and_record() {
        let key = ServiceKey::new(b"0123456789abcdef0123456789abcdef");
        let vault = PhoneVault::new(&key, None);
        let sealed = vault.seal("13800138000", "campaign 1");
        assert!(!sealed.contains("13800138000"));
        assert_ne!(
            sealed,
            vault.seal("13800138000", "campaign 1"),
            "a fresh nonce each time"
        );
        assert_eq!(vault.open(&sealed, "campaign 1").unwrap(), "13800138000");
        assert!(vault.open(&sealed, "campaign 2").is_err());
        let other = PhoneVault::new(&key, Some([7; 32]));
        assert!(other.open(&sealed, "campaign 1").is_err());
        assert_eq!(vault.hash("13800138000"), other.hash("13800138000"));
        assert_ne!(vault.hash("13800138000"), vault.hash("13800138001"));
    }
}
