//! GoTrue access tokens: HS256, GoTrue's claims (spec §3.1) plus supabase/auth's `session_id`,
//! checked against our Clock; a `kid` per key, so previous secrets keep verifying after a rotation.

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::metadata::Metadata;
use crate::domain::mfa::AmrEntry;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;

/// Claims of an access token, serialised in GoTrue's order; `aud` is a string and only when
/// non-empty (Git Gateway and other consumers need a string). `session_id` (supabase/auth's
/// claim, after GoTrue's) names the session the token was issued for: it makes every token
/// distinct and lets a server refuse it the moment its session ends. `aal` and `amr`
/// (supabase/auth's MFA claims) come last: what the session has proved.
#[derive(Debug, Clone, Serialize)]
pub struct AccessClaims<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    pub aud: &'a str,
    pub exp: i64,
    /// The user's id, hyphenated (serialised as a string, as GoTrue does).
    pub sub: UserId,
    pub email: &'a str,
    pub app_metadata: &'a Metadata,
    pub user_metadata: &'a Metadata,
    pub session_id: Uuid,
    pub aal: &'a str,
    pub amr: &'a [AmrEntry],
}

/// Claims of the "system" token Netlify hands to functions: `{exp, sub: "0"}`.
#[derive(Debug, Clone, Serialize)]
struct SystemClaims {
    exp: i64,
    sub: &'static str,
}

/// What we read back from a presented token.
#[derive(Debug, Clone, Deserialize)]
pub struct VerifiedClaims {
    #[serde(default)]
    aud: Option<Value>,
    pub exp: i64,
    pub sub: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    session_id: Option<Value>,
    /// Not valid before (RFC 7519 §4.1.5), seconds since the epoch.
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    aal: Option<Value>,
}

impl VerifiedClaims {
    /// `aud` as a string ("" when absent; the first entry of an array from foreign issuers).
    pub fn aud(&self) -> &str {
        match &self.aud {
            Some(Value::String(s)) => s,
            Some(Value::Array(items)) => items.first().and_then(Value::as_str).unwrap_or(""),
            _ => "",
        }
    }

    /// The session the token was issued for; `None` for system tokens, tokens issued before
    /// sessions were named, and anything that is not a UUID.
    pub fn session_id(&self) -> Option<Uuid> {
        self.session_id
            .as_ref()
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
    }

    /// `sub` as a user's id: `None` for anything that is not a UUID and for the nil UUID (the
    /// system user's), so a caller cannot act as a user without one.
    pub fn user_id(&self) -> Option<UserId> {
        UserId::parse(&self.sub)
            .ok()
            .filter(|id| !id.as_uuid().is_nil())
    }

    /// The `aal` claim; aal1 when absent or unknown (tokens from before MFA).
    pub fn aal(&self) -> crate::domain::mfa::Aal {
        crate::domain::mfa::Aal::parse(self.aal.as_ref().and_then(Value::as_str).unwrap_or(""))
    }

    /// `sub` "0" or the nil UUID: the system user (spec §4).
    pub fn is_system(&self) -> bool {
        self.sub == "0" || self.sub == "00000000-0000-0000-0000-000000000000"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Text after "Invalid token: " in the 401 body.
    #[error("{0}")]
    Invalid(String),
}

/// A key that verifies tokens, with the `kid` its tokens carry.
#[derive(Clone)]
struct VerifyingKey {
    kid: String,
    key: DecodingKey,
}

/// The signing key (the current `GOTRUE_JWT_SECRET`) and every key that verifies: the current
/// one first, then `CHIPFLAP_JWT_PREVIOUS_SECRETS`, so tokens signed before a rotation verify
/// until they expire.
#[derive(Clone)]
pub struct JwtKeys {
    kid: String,
    /// `GOTRUE_JWT_ISSUER`: put in every token as `iss`, and required of every token.
    issuer: Option<String>,
    encoding: EncodingKey,
    decoding: Vec<VerifyingKey>,
    validation: Validation,
    /// When set, a user token whose `aud` is not listed is refused (issue 8).
    audiences: Option<std::sync::Arc<[String]>>,
    /// Tokens whose signature one of `decoding` verified, with their claims: checking a
    /// signature and parsing the claims again for a token seen before costs more than the rest
    /// of a request to the Ably endpoint. Only what `decode` answers is kept (a pure function of
    /// the token under these keys); `verify` checks time, issuer and audience on every call.
    /// Envoy's JWT filter keeps the same cache (`jwt_cache_config`). Shared by clones, which
    /// have the same keys; the builder methods that change the keys start a new one.
    verified: std::sync::Arc<VerifiedTokens>,
}

/// The cache of `JwtKeys::verified`: at most `VERIFIED_TOKENS_BYTES` of tokens and claims.
type VerifiedTokens = quick_cache::sync::Cache<Box<str>, VerifiedClaims, ByTokenBytes>;

/// Bytes of verified tokens kept (about a thousand browser sessions' tokens): a bound on
/// memory, not on correctness (an evicted token is verified again).
pub const VERIFIED_TOKENS_BYTES: u64 = 1024 * 1024;

#[derive(Clone)]
struct ByTokenBytes;

impl quick_cache::Weighter<Box<str>, VerifiedClaims> for ByTokenBytes {
    fn weight(&self, token: &Box<str>, claims: &VerifiedClaims) -> u64 {
        let text = token.len() + claims.sub.len() + claims.email.as_ref().map_or(0, String::len);
        // Plus the claims' other fields and the entry's own overhead, roughly.
        u64::try_from(text).unwrap_or(u64::MAX).saturating_add(256)
    }
}

fn verified_tokens() -> std::sync::Arc<VerifiedTokens> {
    std::sync::Arc::new(quick_cache::sync::Cache::with_weighter(
        1024,
        VERIFIED_TOKENS_BYTES,
        ByTokenBytes,
    ))
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(***)")
    }
}

impl JwtKeys {
    /// Signs and verifies with `secret`; its `kid` is derived from it ([`key_id_of`]).
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // Expiry is checked against our Clock below; audience per request (spec §0).
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let kid = key_id_of(secret);
        JwtKeys {
            issuer: None,
            encoding: EncodingKey::from_secret(secret),
            decoding: vec![VerifyingKey {
                kid: kid.clone(),
                key: DecodingKey::from_secret(secret),
            }],
            kid,
            validation,
            audiences: None,
            verified: verified_tokens(),
        }
    }

    /// The current key's `kid` is `kid` (supabase/auth's `GOTRUE_JWT_KEY_ID`) instead of the
    /// derived one.
    pub fn with_key_id(mut self, kid: String) -> Self {
        if let Some(current) = self.decoding.first_mut() {
            current.kid.clone_from(&kid);
        }
        self.kid = kid;
        self.verified = verified_tokens();
        self
    }

    /// Tokens signed with any of `secrets` (the previous ones) keep verifying; new tokens are
    /// signed with the current secret only.
    pub fn verifying_previous<'s>(mut self, secrets: impl IntoIterator<Item = &'s [u8]>) -> Self {
        self.decoding
            .extend(secrets.into_iter().map(|secret| VerifyingKey {
                kid: key_id_of(secret),
                key: DecodingKey::from_secret(secret),
            }));
        self.verified = verified_tokens();
        self
    }

    /// Tokens are issued with `iss` = `issuer`, and a token without that `iss` is refused.
    pub fn with_issuer(mut self, issuer: String) -> Self {
        self.issuer = Some(issuer);
        self
    }

    /// The `kid` of the tokens this server signs now.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// Refuse user tokens whose `aud` is not one of `audiences` (the configured ones). The
    /// system token (`sub` "0", which carries no `aud`) is exempt: it is not a user's.
    pub fn allowing_audiences(mut self, audiences: Vec<String>) -> Self {
        self.audiences = Some(audiences.into());
        self
    }

    pub fn issue(&self, claims: &AccessClaims<'_>) -> Result<String, jsonwebtoken::errors::Error> {
        self.sign(claims)
    }

    fn sign(&self, claims: &impl Serialize) -> Result<String, jsonwebtoken::errors::Error> {
        #[derive(Serialize)]
        struct Issued<'a, C: Serialize> {
            #[serde(flatten)]
            claims: &'a C,
            #[serde(skip_serializing_if = "Option::is_none")]
            iss: Option<&'a str>,
        }
        let mut header = header();
        header.kid = Some(self.kid.clone());
        let issued = Issued {
            claims,
            iss: self.issuer.as_deref(),
        };
        jsonwebtoken::encode(&header, &issued, &self.encoding)
    }

    /// A system token (`sub: "0"`), as `chipflap token system` prints.
    pub fn issue_system(&self, exp: Timestamp) -> Result<String, jsonwebtoken::errors::Error> {
        let claims = SystemClaims {
            exp: exp.unix(),
            sub: "0",
        };
        self.sign(&claims)
    }

    /// HS256 only, signed by the current or a previous key (the one its `kid` names; a token
    /// with an unknown or no `kid` is tried against each). `exp` is required (unlike GoTrue, a
    /// token without one is refused) and must be in the future; `nbf`, when present, must not
    /// be; `iss` must be the configured issuer, when one is.
    pub fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedClaims, TokenError> {
        // A token verified before answers its claims from `verified`; a new one is decoded
        // straight into the struct (metadata skipped, not built as a tree).
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => match self.decode::<VerifiedClaims>(token) {
                Ok(claims) => {
                    self.verified.insert(token.into(), claims.clone());
                    claims
                }
                // Any failure takes the path through a JSON value, which says exactly why.
                Err(_) => serde_json::from_value(self.decode::<Value>(token)?).map_err(|e| {
                    TokenError::Invalid(if e.to_string().contains("exp") {
                        "token has no valid exp claim".into()
                    } else {
                        "token claims are malformed".into()
                    })
                })?,
            },
        };
        if claims.nbf.is_some_and(|nbf| nbf > now.unix()) {
            return Err(TokenError::Invalid("token is not valid yet".into()));
        }
        if let Some(issuer) = &self.issuer
            && claims.iss.as_deref() != Some(issuer.as_str())
        {
            return Err(TokenError::Invalid("token has invalid issuer".into()));
        }
        if claims.exp <= now.unix() {
            return Err(TokenError::Invalid(format!(
                "token is expired by {}",
                go_duration(now.unix() - claims.exp)
            )));
        }
        if let Some(audiences) = &self.audiences
            && !claims.is_system()
            && !audiences.iter().any(|a| a == claims.aud())
        {
            return Err(TokenError::Invalid(
                "token audience is not served by this server".into(),
            ));
        }
        Ok(claims)
    }
}

impl JwtKeys {
    /// The claims of a token whose signature one of our keys verifies.
    fn decode<T: serde::de::DeserializeOwned>(&self, token: &str) -> Result<T, TokenError> {
        // With one key, whatever the `kid` says that key is the only candidate: skip reading
        // the header twice.
        let candidates = if self.decoding.len() == 1 {
            self.decoding.as_slice()
        } else {
            let header = jsonwebtoken::decode_header(token)
                .map_err(|e| TokenError::Invalid(describe(&e)))?;
            let named = header
                .kid
                .as_deref()
                .and_then(|kid| self.decoding.iter().find(|k| k.kid == kid));
            named.map_or(self.decoding.as_slice(), std::slice::from_ref)
        };
        let mut last = TokenError::Invalid("signature is invalid".into());
        for candidate in candidates {
            match jsonwebtoken::decode::<T>(token, &candidate.key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = TokenError::Invalid(describe(&e)),
            }
        }
        Err(last)
    }
}

/// The `kid` of tokens signed with `secret`: 12 url-safe characters of an HMAC of a fixed
/// label under it, so it names the key without revealing anything about it.
pub fn key_id_of(secret: &[u8]) -> String {
    let tag = super::hmac_sha256::hmac_sha256(secret, &[b"chipflap jwt key id v1"]);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&tag[..9])
}

fn header() -> Header {
    Header::new(Algorithm::HS256)
}

fn describe(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidSignature => "signature is invalid".into(),
        ErrorKind::InvalidAlgorithm => "signing method is invalid".into(),
        _ => "token is malformed".into(),
    }
}

/// `5m3s`, as Go prints a duration in "token is expired by …".
fn go_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m{sec}s"),
        _ => format!("{h}h{m}m{sec}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef")
    }

    const USER: &str = "7d0e4b5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b";

    fn user() -> UserId {
        UserId::parse(USER).unwrap()
    }

    fn payload(token: &str) -> Value {
        let part = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn only_configured_audiences_verify_once_configured() {
        let keys = keys().allowing_audiences(vec![String::new(), "shop".into()]);
        let now = Timestamp::from_unix(1_000);
        let token =
            |claims: Value| jsonwebtoken::encode(&header(), &claims, &keys.encoding).unwrap();
        for ok in [
            json!({"exp": 2_000, "sub": "u1"}),
            json!({"aud": "shop", "exp": 2_000, "sub": "u1"}),
            json!({"aud": "anything", "exp": 2_000, "sub": "0"}),
        ] {
            assert!(keys.verify(&token(ok.clone()), now).is_ok(), "{ok}");
        }
        for refused in [
            json!({"aud": "anything", "exp": 2_000, "sub": "u1"}),
            json!({"aud": "SHOP", "exp": 2_000, "sub": "u1"}),
            json!({"aud": ["anything", "shop"], "exp": 2_000, "sub": "u1"}),
        ] {
            assert_eq!(
                keys.verify(&token(refused.clone()), now).unwrap_err(),
                TokenError::Invalid("token audience is not served by this server".into()),
                "{refused}"
            );
        }
        let system = keys.issue_system(Timestamp::from_unix(2_000)).unwrap();
        assert!(keys.verify(&system, now).unwrap().is_system());
    }

    #[test]
    fn round_trip_with_gotrue_claims_and_no_empty_aud() {
        let meta = json!({"provider": "email"}).as_object().unwrap().clone();
        let empty = Metadata::new();
        let claims = AccessClaims {
            aud: "",
            exp: 2_000,
            sub: user(),
            email: "a@example.org",
            app_metadata: &meta,
            user_metadata: &empty,
            session_id: Uuid::nil(),
            aal: "aal1",
            amr: &[AmrEntry {
                method: "password".into(),
                timestamp: 1_000,
            }],
        };
        let token = keys().issue(&claims).unwrap();
        let p = payload(&token);
        assert_eq!(
            p,
            json!({"exp": 2000, "sub": USER, "email": "a@example.org",
                   "app_metadata": {"provider": "email"}, "user_metadata": {},
                   "session_id": "00000000-0000-0000-0000-000000000000",
                   "aal": "aal1", "amr": [{"method": "password", "timestamp": 1000}]})
        );
        let keys_order: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys_order,
            [
                "exp",
                "sub",
                "email",
                "app_metadata",
                "user_metadata",
                "session_id",
                "aal",
                "amr"
            ]
        );
        let verified = keys().verify(&token, Timestamp::from_unix(1_000)).unwrap();
        assert_eq!(verified.sub, USER);
        assert_eq!(verified.user_id(), Some(user()));
        assert_eq!(verified.session_id(), Some(Uuid::nil()));
        assert_eq!(verified.aal(), crate::domain::mfa::Aal::Aal1);
        assert_eq!(verified.aud(), "");
    }

    #[test]
    fn aud_is_a_string_when_set() {
        let empty = Metadata::new();
        let claims = AccessClaims {
            aud: "team",
            exp: 2_000,
            sub: user(),
            email: "a@example.org",
            app_metadata: &empty,
            user_metadata: &empty,
            session_id: Uuid::nil(),
            aal: "aal1",
            amr: &[],
        };
        let token = keys().issue(&claims).unwrap();
        assert_eq!(payload(&token)["aud"], json!("team"));
        assert_eq!(
            keys()
                .verify(&token, Timestamp::from_unix(0))
                .unwrap()
                .aud(),
            "team"
        );
    }

    #[test]
    fn expired_tokens_say_by_how_much() {
        let token = keys().issue_system(Timestamp::from_unix(1_000)).unwrap();
        let err = keys()
            .verify(&token, Timestamp::from_unix(1_303))
            .unwrap_err();
        assert_eq!(err, TokenError::Invalid("token is expired by 5m3s".into()));
    }

    #[test]
    fn wrong_key_and_garbage_are_refused() {
        let token = keys().issue_system(Timestamp::from_unix(1_000)).unwrap();
        let other = JwtKeys::new(b"another secret another secret 12");
        assert_eq!(
            other.verify(&token, Timestamp::from_unix(0)).unwrap_err(),
            TokenError::Invalid("signature is invalid".into())
        );
        assert!(keys().verify("not.a.jwt", Timestamp::from_unix(0)).is_err());
    }

    #[test]
    fn tokens_without_exp_are_refused() {
        let token = jsonwebtoken::encode(
            &header(),
            &json!({"sub": "0"}),
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .unwrap();
        assert!(keys().verify(&token, Timestamp::from_unix(0)).is_err());
    }

    #[test]
    fn system_tokens_are_recognised() {
        let token = keys().issue_system(Timestamp::from_unix(1_000)).unwrap();
        assert!(
            keys()
                .verify(&token, Timestamp::from_unix(0))
                .unwrap()
                .is_system()
        );
    }

    fn kid_of(token: &str) -> Option<String> {
        jsonwebtoken::decode_header(token).unwrap().kid
    }

    #[test]
    fn the_kid_names_the_key_and_previous_keys_verify_until_expiry() {
        let old_secret = b"0123456789abcdef0123456789abcdef";
        let new_secret = b"the new secret, 32 bytes or more";
        let old = keys();
        let old_token = old.issue_system(Timestamp::from_unix(2_000)).unwrap();
        assert_eq!(kid_of(&old_token).as_deref(), Some(old.key_id()));
        assert_eq!(old.key_id().len(), 12);
        assert_ne!(old.key_id(), JwtKeys::new(new_secret).key_id());

        let rotated = JwtKeys::new(new_secret).verifying_previous([old_secret.as_slice()]);
        let new_token = rotated.issue_system(Timestamp::from_unix(2_000)).unwrap();
        assert_eq!(kid_of(&new_token).as_deref(), Some(rotated.key_id()));
        let now = Timestamp::from_unix(1_000);
        assert!(rotated.verify(&old_token, now).is_ok());
        assert!(rotated.verify(&new_token, now).is_ok());
        assert!(
            old.verify(&new_token, now).is_err(),
            "the old server has no new key"
        );
        assert_eq!(
            rotated
                .verify(&old_token, Timestamp::from_unix(2_000))
                .unwrap_err(),
            TokenError::Invalid("token is expired by 0s".into())
        );
        // A token whose kid claims our key but whose signature is another's is refused.
        let mut forged_header = header();
        forged_header.kid = Some(rotated.key_id().to_owned());
        let forged = jsonwebtoken::encode(
            &forged_header,
            &json!({"exp": 2_000, "sub": "0"}),
            &EncodingKey::from_secret(b"an unknown key, 32 bytes or more"),
        )
        .unwrap();
        assert_eq!(
            rotated.verify(&forged, now).unwrap_err(),
            TokenError::Invalid("signature is invalid".into())
        );
        let explicit = JwtKeys::new(new_secret).with_key_id("2026-11".into());
        let token = explicit.issue_system(Timestamp::from_unix(2_000)).unwrap();
        assert_eq!(kid_of(&token).as_deref(), Some("2026-11"));
        assert!(explicit.verify(&token, now).is_ok());
    }

    #[test]
    fn nbf_in_the_future_is_refused() {
        let sign =
            |claims: Value| jsonwebtoken::encode(&header(), &claims, &keys().encoding).unwrap();
        let now = Timestamp::from_unix(1_000);
        let early = sign(json!({"exp": 2_000, "sub": "0", "nbf": 1_001}));
        assert_eq!(
            keys().verify(&early, now).unwrap_err(),
            TokenError::Invalid("token is not valid yet".into())
        );
        assert!(keys().verify(&early, Timestamp::from_unix(1_001)).is_ok());
        let bad = sign(json!({"exp": 2_000, "sub": "0", "nbf": "soon"}));
        assert!(keys().verify(&bad, now).is_err());
    }

    #[test]
    fn a_configured_issuer_is_put_in_and_required() {
        let keys = keys().with_issuer("https://id.example.org".into());
        let token = keys.issue_system(Timestamp::from_unix(2_000)).unwrap();
        assert_eq!(payload(&token)["iss"], json!("https://id.example.org"));
        let now = Timestamp::from_unix(1_000);
        assert!(keys.verify(&token, now).is_ok());
        let sign =
            |claims: Value| jsonwebtoken::encode(&header(), &claims, &keys.encoding).unwrap();
        for refused in [
            json!({"exp": 2_000, "sub": "0"}),
            json!({"exp": 2_000, "sub": "0", "iss": "https://evil.example"}),
        ] {
            assert_eq!(
                keys.verify(&sign(refused), now).unwrap_err(),
                TokenError::Invalid("token has invalid issuer".into())
            );
        }
        let plain = super::tests::keys()
            .issue_system(Timestamp::from_unix(2_000))
            .unwrap();
        assert!(
            payload(&plain).get("iss").is_none(),
            "no iss unless configured"
        );
    }

    /// Rule: a token verified before is checked again in full on every call but its
    /// signature: expiry, `nbf`, issuer and audience hold for a cached token as for a new one,
    /// and keys a token was verified under never vouch for it in keys without them.
    #[test]
    fn a_token_verified_before_meets_every_other_check_again() {
        let checked = keys()
            .with_issuer("https://site.example/.netlify/identity".into())
            .allowing_audiences(vec![String::new()]);
        let token =
            |claims: Value| jsonwebtoken::encode(&header(), &claims, &checked.encoding).unwrap();
        let live = token(json!({
            "exp": 2_000, "nbf": 1_000, "sub": "u1",
            "iss": "https://site.example/.netlify/identity"
        }));
        assert!(checked.verify(&live, Timestamp::from_unix(1_500)).is_ok());
        assert!(
            checked.verify(&live, Timestamp::from_unix(1_500)).is_ok(),
            "from the cache"
        );
        let expired = checked.verify(&live, Timestamp::from_unix(2_000));
        assert!(expired.is_err(), "{expired:?}");
        let early = checked.verify(&live, Timestamp::from_unix(999));
        assert!(early.is_err(), "{early:?}");
        let other_audience = token(json!({
            "aud": "shop", "exp": 2_000, "sub": "u1",
            "iss": "https://site.example/.netlify/identity"
        }));
        for _ in 0..2 {
            assert!(
                checked
                    .verify(&other_audience, Timestamp::from_unix(1_500))
                    .is_err()
            );
        }

        // Verified under a previous key, the token is not vouched for by keys without it.
        let previous = b"previous-secret-previous-secret-0";
        let old_keys = JwtKeys::new(previous);
        let old = jsonwebtoken::encode(
            &header(),
            &json!({"exp": 2_000, "sub": "u1"}),
            &old_keys.encoding,
        )
        .unwrap();
        let current = keys();
        let rotated = current.clone().verifying_previous([previous.as_slice()]);
        assert!(rotated.verify(&old, Timestamp::from_unix(1_500)).is_ok());
        assert!(rotated.verify(&old, Timestamp::from_unix(1_500)).is_ok());
        assert!(current.verify(&old, Timestamp::from_unix(1_500)).is_err());
        // A tampered copy of a cached token is a new string: its signature is checked.
        let mut tampered = live.clone();
        tampered.pop();
        tampered.push(if live.ends_with('A') { 'B' } else { 'A' });
        assert!(
            checked
                .verify(&tampered, Timestamp::from_unix(1_500))
                .is_err()
        );
    }
}
