//! Secret tokens handed to users (refresh, confirmation, recovery, invite, email change) and the
//! SHA-256 digests that are all the store keeps of them (DESIGN §4.2).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// 16 random bytes, base64url without padding: 22 URL-safe characters, as GoTrue's tokens
/// (gotrue-js puts refresh tokens into form bodies unescaped, so they must stay URL-safe).
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    pub fn generate() -> Self {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        SecretToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Wraps a token presented by a client.
    pub fn presented(token: &str) -> Self {
        SecretToken(token.to_owned())
    }

    /// Wraps a token derived elsewhere (refresh rotation derives successors deterministically).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SecretToken(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn digest(&self) -> TokenDigest {
        TokenDigest(Sha256::digest(self.0.as_bytes()).into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretToken(***)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What a one-time token may be used for; stored in `one_time_tokens.purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Confirmation,
    Recovery,
    Invite,
    EmailChange,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Confirmation => "confirmation",
            TokenPurpose::Recovery => "recovery",
            TokenPurpose::Invite => "invite",
            TokenPurpose::EmailChange => "email_change",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "confirmation" => TokenPurpose::Confirmation,
            "recovery" => TokenPurpose::Recovery,
            "invite" => TokenPurpose::Invite,
            "email_change" => TokenPurpose::EmailChange,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_22_url_safe_characters_and_unique() {
        let a = SecretToken::generate();
        let b = SecretToken::generate();
        assert_eq!(a.expose().len(), 22);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
        assert_ne!(a.digest(), b.digest());
    }

    #[test]
    fn digest_is_sha256_of_the_token_text() {
        let t = SecretToken::presented("abc");
        assert_eq!(
            t.digest().0[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "sha256(\"abc\") starts ba7816bf"
        );
    }
}
