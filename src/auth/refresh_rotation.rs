//! Derives a refresh token's successor from the token itself, so a token re-presented inside the
//! grace window can be answered with the same successor although only digests are stored
//! (DESIGN §4.3): the successor is HMAC(key, presented token), which needs both the server key
//! and the presented token — a leaked database yields neither.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::one_time_token::SecretToken;

#[derive(Clone)]
pub struct RotationKey([u8; 32]);

impl std::fmt::Debug for RotationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotationKey(***)")
    }
}

impl RotationKey {
    /// Domain-separated from the JWT secret, so the key is never used for two purposes.
    pub fn from_secret(secret: &[u8]) -> Self {
        RotationKey(mac(secret, b"chipflap refresh-token rotation v1"))
    }

    pub fn successor_of(&self, presented: &SecretToken) -> SecretToken {
        let full = mac(&self.0, presented.expose().as_bytes());
        SecretToken::from_bytes(&full[..16])
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(message);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_is_deterministic_url_safe_and_key_bound() {
        let key = RotationKey::from_secret(b"secret one");
        let token = SecretToken::presented("abc");
        let a = key.successor_of(&token);
        assert_eq!(a, key.successor_of(&token));
        assert_eq!(a.expose().len(), 22);
        assert_ne!(
            a,
            RotationKey::from_secret(b"secret two").successor_of(&token)
        );
        assert_ne!(a, key.successor_of(&SecretToken::presented("abd")));
    }
}
