//! Ably credentials for a user (spec/ably.md): HS256 Ably JWTs and signed TokenRequests, and the
//! capability rules (canonical JSON, role unions, `{clientId}` substitution). Pure: no I/O.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::domain::timestamp::Timestamp;

/// `appId.keyId:keySecret`, split; the secret never prints.
#[derive(Clone)]
pub struct AblyKey {
    pub name: String,
    secret: SecretString,
    /// The secret as jsonwebtoken's HS256 key (its UTF-8 bytes, spec §1), made once.
    jwt_key: jsonwebtoken::EncodingKey,
}

impl std::fmt::Debug for AblyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AblyKey({}:***)", self.name)
    }
}

impl AblyKey {
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, secret) = text
            .split_once(':')
            .ok_or("expected appId.keyId:keySecret")?;
        let valid_name = name
            .split_once('.')
            .is_some_and(|(app, key)| !app.is_empty() && !key.is_empty() && !key.contains('.'));
        if !valid_name || secret.is_empty() || name.chars().any(char::is_whitespace) {
            return Err("expected appId.keyId:keySecret".into());
        }
        Ok(AblyKey {
            name: name.to_owned(),
            jwt_key: jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
            secret: SecretString::from(secret.to_owned()),
        })
    }

    /// `Authorization: Basic …` for Ably's REST API (revocation).
    pub fn basic_auth(&self) -> String {
        let raw = format!("{}:{}", self.name, self.secret.expose_secret());
        format!("Basic {}", STANDARD.encode(raw))
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        // The key is the UTF-8 bytes of the secret as written, not base64-decoded (spec §1).
        super::hmac_sha256::hmac_sha256(self.secret.expose_secret().as_bytes(), &[message])
    }
}

/// Operations Ably knows (spec §4).
const OPERATIONS: &[&str] = &[
    "*",
    "subscribe",
    "publish",
    "presence",
    "history",
    "stats",
    "channel-metadata",
    "push-subscribe",
    "push-admin",
    "privileged-headers",
    "object-subscribe",
    "object-publish",
    "annotation-subscribe",
    "annotation-publish",
    "message-update-own",
    "message-update-any",
    "message-delete-own",
    "message-delete-any",
];

/// Resource → operations, kept sorted, so its JSON is Ably's canonical form (ably-js `c14n`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capability(BTreeMap<String, BTreeSet<String>>);

impl Capability {
    /// A JSON object of non-empty arrays of known operations.
    pub fn parse(text: &str) -> Result<Self, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let object = value.as_object().ok_or("expected a JSON object")?;
        if object.is_empty() {
            return Err("expected at least one resource".into());
        }
        let mut map = BTreeMap::new();
        for (resource, ops) in object {
            let ops = ops
                .as_array()
                .filter(|a| !a.is_empty())
                .ok_or_else(|| format!("{resource:?}: expected a non-empty array of operations"))?;
            let mut set = BTreeSet::new();
            for op in ops {
                let op = op
                    .as_str()
                    .filter(|op| OPERATIONS.contains(op))
                    .ok_or_else(|| format!("{resource:?}: unknown operation {op}"))?;
                set.insert(op.to_owned());
            }
            if resource.is_empty() {
                return Err("empty resource name".into());
            }
            map.insert(resource.clone(), set);
        }
        Ok(Capability(map))
    }

    /// Adds `other`'s resources and operations to these.
    pub fn union(&mut self, other: &Capability) {
        for (resource, ops) in &other.0 {
            self.0
                .entry(resource.clone())
                .or_default()
                .extend(ops.iter().cloned());
        }
    }

    /// Replaces `{clientId}` in resource names with the user's id.
    pub fn for_client(&self, client_id: &str) -> Capability {
        let mut out = Capability::default();
        for (resource, ops) in &self.0 {
            out.0
                .entry(resource.replace("{clientId}", client_id))
                .or_default()
                .extend(ops.iter().cloned());
        }
        out
    }

    /// Compact JSON with sorted keys and operations and raw UTF-8: the exact string Ably signs.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// An Ably JWT (spec §1), signed by jsonwebtoken: header `typ, alg, kid`; `iat` backdated 5 s
/// against clock skew, `exp = iat + ttl` (seconds); the capability as a JSON string; the
/// user's id as clientId. Errors only if the claims cannot be serialized.
pub fn issue_jwt(
    key: &AblyKey,
    capability: &Capability,
    client_id: &str,
    now: Timestamp,
    ttl_seconds: u64,
) -> Result<AblyJwt, jsonwebtoken::errors::Error> {
    let iat = now.unix() - 5;
    let exp = iat + i64::try_from(ttl_seconds).unwrap_or(86_400);
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key.name.clone());
    let claims = JwtClaims {
        iat,
        exp,
        capability: capability.canonical_json(),
        client_id,
    };
    Ok(AblyJwt {
        token: jsonwebtoken::encode(&header, &claims, &key.jwt_key)?,
        expires_at: Timestamp::from_unix(exp),
    })
}

pub struct AblyJwt {
    pub token: String,
    pub expires_at: Timestamp,
}

#[derive(Serialize)]
struct JwtClaims<'a> {
    iat: i64,
    exp: i64,
    #[serde(rename = "x-ably-capability")]
    capability: String,
    #[serde(rename = "x-ably-clientId")]
    client_id: &'a str,
}

/// An Ably TokenRequest (spec §2), signed exactly as ably-js signs one.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    pub key_name: String,
    /// Milliseconds; never 0 (ably-js signs 0 as empty but sends 0).
    pub ttl: u64,
    pub capability: String,
    pub client_id: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    pub nonce: String,
    pub mac: String,
}

/// 16 random bytes as 32 hex characters from the OS CSPRNG.
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn sign_token_request(
    key: &AblyKey,
    capability: &Capability,
    client_id: &str,
    ttl_ms: u64,
    timestamp_ms: i64,
    nonce: String,
) -> TokenRequest {
    let capability = capability.canonical_json();
    let sign_text = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        key.name, ttl_ms, capability, client_id, timestamp_ms, nonce
    );
    TokenRequest {
        key_name: key.name.clone(),
        ttl: ttl_ms.max(1),
        mac: STANDARD.encode(key.mac(sign_text.as_bytes())),
        capability,
        client_id: client_id.to_owned(),
        timestamp: timestamp_ms,
        nonce,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MAC over a sign text, to reproduce Ably's vectors field by field.
    fn mac_of(key: &AblyKey, sign_text: &str) -> String {
        STANDARD.encode(key.mac(sign_text.as_bytes()))
    }

    fn key() -> AblyKey {
        AblyKey::parse("appId1.keyId1:s3cr3tKeyValue_ForTests-0123").unwrap()
    }

    #[test]
    fn keys_parse_and_refuse_malformed_values() {
        let k = key();
        assert_eq!(k.name, "appId1.keyId1");
        assert!(!format!("{k:?}").contains("s3cr3t"));
        for bad in [
            "",
            "nokey",
            "app.key",
            "app:secret",
            ".key:secret",
            "app.:secret",
            "app.key:",
        ] {
            assert!(AblyKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn tv1_canonical_capability_and_mac() {
        let cap = Capability::parse(
            r#"{"notifications":["subscribe"],"chat:*":["subscribe","publish","presence"]}"#,
        )
        .unwrap();
        assert_eq!(
            cap.canonical_json(),
            r#"{"chat:*":["presence","publish","subscribe"],"notifications":["subscribe"]}"#
        );
        let tr = sign_token_request(
            &key(),
            &cap,
            "user-123",
            3_600_000,
            1_700_000_000_000,
            "0123456789abcdef".into(),
        );
        assert_eq!(tr.mac, "6R0kxOTBtleuzDhAnCBjdCoCjG/NeJXyFX1EcbUkn8k=");
        assert_eq!(
            serde_json::to_string(&tr).unwrap(),
            format!(
                r#"{{"keyName":"appId1.keyId1","ttl":3600000,"capability":{},"clientId":"user-123","timestamp":1700000000000,"nonce":"0123456789abcdef","mac":"6R0kxOTBtleuzDhAnCBjdCoCjG/NeJXyFX1EcbUkn8k="}}"#,
                serde_json::to_string(&tr.capability).unwrap()
            )
        );
    }

    #[test]
    fn tv2_and_tv3_sign_absent_fields_as_empty_lines() {
        assert_eq!(
            mac_of(
                &key(),
                "appId1.keyId1\n\n\n\n1700000000000\nfedcba9876543210\n"
            ),
            "ROhiKlaCseNIH2AUzG0j0x3rTNZ2h0zH/tVj3BaHdpQ="
        );
        assert_eq!(
            mac_of(
                &key(),
                "appId1.keyId1\n\n\nalice@example.com\n1700000000123\nAAAABBBBCCCCDDDD\n"
            ),
            "G3e5BbNTf0yIEcCEtv8wgKGO6mPB6CqLJtflHTsvMRg="
        );
    }

    #[test]
    fn tv4_wildcards() {
        let cap = Capability::parse(r#"{"*":["*"]}"#).unwrap();
        let tr = sign_token_request(
            &key(),
            &cap,
            "*",
            86_400_000,
            1_700_000_000_000,
            "nonce-nonce-nonce".into(),
        );
        assert_eq!(tr.mac, "jZNGxmqiF2XDoD2oPjGIMXkckozChys6h9V2fECy6qo=");
    }

    #[test]
    fn tv5_utf8_is_signed_raw() {
        let cap =
            Capability::parse(r#"{"room:café":["subscribe"],"room:日本":["publish","history"]}"#)
                .unwrap();
        assert_eq!(
            cap.canonical_json(),
            r#"{"room:café":["subscribe"],"room:日本":["history","publish"]}"#
        );
        let tr = sign_token_request(
            &key(),
            &cap,
            "Jürgen ☃",
            600_000,
            1_700_000_000_000,
            "0000000000000000".into(),
        );
        assert_eq!(tr.mac, "J99z73Nb0Dft9aqpFSns4LaSUzFuWDI1yT5kGYAsl98=");
    }

    #[test]
    fn tv6_rule_ttl_zero_is_never_emitted() {
        // ably-js would sign 0 as an empty line but send "ttl":0; we never produce a 0.
        let tr = sign_token_request(
            &key(),
            &Capability::default(),
            "u",
            0,
            1_700_000_000_000,
            "zzzzzzzzzzzzzzzz".into(),
        );
        assert_ne!(tr.ttl, 0);
        assert_eq!(
            mac_of(
                &key(),
                "appId1.keyId1\n\n\n\n1700000000000\nzzzzzzzzzzzzzzzz\n"
            ),
            "N0xUSPGUQSnsLrV15qv+6j5DAfi4gdlypSCdCt2SYZA="
        );
    }

    #[test]
    fn jwt_vector_is_reproduced_byte_for_byte() {
        let cap = Capability::parse(r#"{"*":["subscribe"]}"#).unwrap();
        let jwt = issue_jwt(
            &key(),
            &cap,
            "user-123",
            Timestamp::from_unix(1_700_000_005),
            3600,
        )
        .unwrap();
        assert_eq!(
            jwt.token,
            "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiIsImtpZCI6ImFwcElkMS5rZXlJZDEifQ.eyJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYwMCwieC1hYmx5LWNhcGFiaWxpdHkiOiJ7XCIqXCI6W1wic3Vic2NyaWJlXCJdfSIsIngtYWJseS1jbGllbnRJZCI6InVzZXItMTIzIn0.rTgUSCGSv0AAUzb_asfhAXiDXJxtG1lWarnNF1LAEgc"
        );
        assert_eq!(jwt.expires_at.unix(), 1_700_003_600);
    }

    #[test]
    fn capabilities_validate_union_and_substitute() {
        for bad in [
            "[]",
            "{}",
            r#"{"a":[]}"#,
            r#"{"a":["fly"]}"#,
            r#"{"a":"subscribe"}"#,
            "nope",
        ] {
            assert!(Capability::parse(bad).is_err(), "{bad}");
        }
        let mut cap = Capability::parse(r#"{"*":["subscribe"]}"#).unwrap();
        cap.union(
            &Capability::parse(r#"{"*":["publish"],"user:{clientId}":["presence","publish"]}"#)
                .unwrap(),
        );
        assert_eq!(
            cap.for_client("u1").canonical_json(),
            r#"{"*":["publish","subscribe"],"user:u1":["presence","publish"]}"#
        );
    }

    #[test]
    fn nonces_are_32_hex_characters() {
        let n = new_nonce();
        assert_eq!(n.len(), 32);
        assert!(n.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(n, new_nonce());
    }
}
