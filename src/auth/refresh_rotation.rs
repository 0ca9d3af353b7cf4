//! Derives a refresh token's successor from the token itself, so a token re-presented inside the
//! grace window can be answered with the same successor although only digests are stored
//! (DESIGN §4.3): the successor is HMAC(key, presented token), which needs both the server key
//! and the presented token — a leaked database yields neither. Tokens are found by their digest,
//! so rotating the JWT secret does not touch them; previous secrets only matter for following a
//! chain rotated before the rotation, inside the grace window.

use crate::domain::one_time_token::SecretToken;

/// The current key first, then those of `CHIPFLAP_JWT_PREVIOUS_SECRETS`.
#[derive(Clone)]
pub struct RotationKey(Vec<[u8; 32]>);

impl std::fmt::Debug for RotationKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RotationKey(***)")
    }
}

impl RotationKey {
    /// Domain-separated from the JWT secret, so the key is never used for two purposes.
    pub fn from_secret(secret: &[u8]) -> Self {
        RotationKey(vec![derive(secret)])
    }

    /// Also derives the successors a previous secret made (see [`Self::possible_successors_of`]).
    pub fn with_previous<'s>(mut self, secrets: impl IntoIterator<Item = &'s [u8]>) -> Self {
        self.0.extend(secrets.into_iter().map(derive));
        self
    }

    /// The successor a rotation makes now (under the current secret).
    pub fn successor_of(&self, presented: &SecretToken) -> SecretToken {
        successor(&self.0[0], presented)
    }

    /// The successors the presented token may have been given, current secret first: a token
    /// rotated before a secret rotation got its successor from the previous secret.
    pub fn possible_successors_of(&self, presented: &SecretToken) -> Vec<SecretToken> {
        self.0.iter().map(|key| successor(key, presented)).collect()
    }
}

fn derive(secret: &[u8]) -> [u8; 32] {
    mac(secret, b"chipflap refresh-token rotation v1")
}

fn successor(key: &[u8; 32], presented: &SecretToken) -> SecretToken {
    let full = mac(key, presented.expose().as_bytes());
    SecretToken::from_bytes(&full[..16])
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    super::hmac_sha256::hmac_sha256(key, &[message])
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
        let rotated =
            RotationKey::from_secret(b"secret two").with_previous([b"secret one".as_slice()]);
        let possible = rotated.possible_successors_of(&token);
        assert_eq!(possible[0], rotated.successor_of(&token));
        assert_eq!(
            possible[1], a,
            "the previous secret's successor is still found"
        );
    }
}
