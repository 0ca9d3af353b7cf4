//! The seed page's session cookie value: `<session id>.<MAC>`, where the MAC is HMAC-SHA256
//! under a key derived from the JWT secret. Nothing is stored: the value only names a session,
//! which must still be live when it is presented, and it cannot be forged without the key
//! (the session id alone, visible in every access token, is not enough). Values made under a
//! previous JWT secret keep working after a rotation while their session lives.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use uuid::Uuid;

use super::hmac_sha256::{hmac_sha256, hmac_sha256_matches};

/// The current key first, then those of `CHIPFLAP_JWT_PREVIOUS_SECRETS`.
#[derive(Clone)]
pub struct SessionCookieKey(Vec<[u8; 32]>);

impl std::fmt::Debug for SessionCookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCookieKey(***)")
    }
}

impl SessionCookieKey {
    /// Domain-separated from the JWT secret, so the key is never used for two purposes.
    pub fn from_secret(secret: &[u8]) -> Self {
        SessionCookieKey(vec![derive(secret)])
    }

    /// Values made under the previous secrets are accepted too (new values use the current).
    pub fn with_previous<'s>(mut self, secrets: impl IntoIterator<Item = &'s [u8]>) -> Self {
        self.0.extend(secrets.into_iter().map(derive));
        self
    }

    /// The cookie value for a session.
    pub fn value_for(&self, session_id: Uuid) -> String {
        let tag = hmac_sha256(&self.0[0], &[session_id.as_bytes()]);
        format!("{session_id}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    /// The session a presented value names, if its MAC is right (compared in constant time).
    pub fn session_of(&self, value: &str) -> Option<Uuid> {
        let (id, tag) = value.split_once('.')?;
        let id = Uuid::try_parse(id).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        self.0
            .iter()
            .any(|key| hmac_sha256_matches(key, id.as_bytes(), &tag))
            .then_some(id)
    }
}

fn derive(secret: &[u8]) -> [u8; 32] {
    hmac_sha256(secret, &[b"chipflap session cookie v1"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_cannot_be_forged_or_moved() {
        let key = SessionCookieKey::from_secret(b"secret one");
        let id = Uuid::new_v4();
        let value = key.value_for(id);
        assert_eq!(key.session_of(&value), Some(id));

        let other_key = SessionCookieKey::from_secret(b"secret two");
        assert_eq!(other_key.session_of(&value), None, "bound to the key");
        let rotated = other_key.with_previous([b"secret one".as_slice()]);
        assert_eq!(
            rotated.session_of(&value),
            Some(id),
            "a previous key still verifies"
        );
        assert_eq!(
            key.session_of(&rotated.value_for(id)),
            None,
            "new values use the new key"
        );
        let (_, tag) = value.split_once('.').unwrap();
        let moved = format!("{}.{tag}", Uuid::new_v4());
        assert_eq!(key.session_of(&moved), None, "bound to the session");
        assert_eq!(key.session_of(&id.to_string()), None);
        assert_eq!(key.session_of(&format!("{id}.")), None);
        assert_eq!(key.session_of(""), None);
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(key.session_of(&String::from_utf8(flipped).unwrap()), None);
    }
}
