//! Encryption of TOTP keys at rest: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`) under a
//! key derived from the JWT secret by HMAC-SHA256 with a purpose label (as the seed page's
//! session cookie derives its MAC key), with a random 24-byte nonce per write and the factor's
//! id as associated data, so a sealed key cannot be moved to another factor.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use uuid::Uuid;

const NONCE_BYTES: usize = 24;

/// The current key (seals) and any previous ones (still open what they sealed, so a JWT secret
/// rotation that keeps the old secret for verification keeps factors working).
#[derive(Clone)]
pub struct FactorSecretKey {
    current: [u8; 32],
    previous: Vec<[u8; 32]>,
}

impl std::fmt::Debug for FactorSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FactorSecretKey(***)")
    }
}

impl FactorSecretKey {
    /// Domain-separated from the JWT secret: the key serves no other purpose.
    pub fn from_secret(secret: &[u8]) -> Self {
        FactorSecretKey {
            current: derive(secret),
            previous: Vec::new(),
        }
    }

    /// Also opens secrets sealed under a previous JWT secret.
    pub fn with_previous(mut self, secret: &[u8]) -> Self {
        self.previous.push(derive(secret));
        self
    }

    fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&Key::from(*key))
    }

    /// `nonce || ciphertext || tag`.
    pub fn seal(&self, factor_id: Uuid, plain: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = Self::cipher(&self.current)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: factor_id.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting a factor secret failed"))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain key, if `sealed` was sealed for this factor under this key.
    pub fn open(&self, factor_id: Uuid, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find_map(|key| {
                Self::cipher(key)
                    .decrypt(
                        &XNonce::from(nonce),
                        Payload {
                            msg: body,
                            aad: factor_id.as_bytes(),
                        },
                    )
                    .ok()
            })
    }
}

fn derive(secret: &[u8]) -> [u8; 32] {
    super::hmac_sha256::hmac_sha256(secret, &[b"chipflap mfa factor secret v1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_for_their_factor_and_key() {
        let key = FactorSecretKey::from_secret(b"secret one");
        let id = Uuid::new_v4();
        let sealed = key.seal(id, b"0123456789abcdefghij").unwrap();
        assert!(!sealed.windows(20).any(|w| w == b"0123456789abcdefghij"));
        assert_eq!(key.open(id, &sealed).unwrap(), b"0123456789abcdefghij");
        assert_eq!(key.open(Uuid::new_v4(), &sealed), None);
        assert_eq!(
            FactorSecretKey::from_secret(b"secret two").open(id, &sealed),
            None
        );
        assert_ne!(sealed, key.seal(id, b"0123456789abcdefghij").unwrap());
        assert_eq!(key.open(id, &sealed[..10]), None);
        let rotated = FactorSecretKey::from_secret(b"secret two").with_previous(b"secret one");
        assert_eq!(rotated.open(id, &sealed).unwrap(), b"0123456789abcdefghij");
    }
}
