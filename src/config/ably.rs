//! Ably settings: the API key, capabilities per user and per role, token lifetime, revocation.

use std::collections::BTreeMap;

use url::Url;

use crate::auth::ably::{AblyKey, Capability};

use super::{ConfigError, Source, invalid};

/// The Ably token endpoint (spec/ably.md).
#[derive(Debug, Clone)]
pub struct AblySettings {
    /// `ABLY_APIKEY` (`appId.keyId:keySecret`); without it the token endpoint answers 503 and
    /// the rest runs.
    pub key: Option<AblyKey>,
    /// `ABLY_CAPABILITY` (JSON, default `{"*":["subscribe"]}`): granted to every user.
    pub capability: Capability,
    /// `CHIPFLAP_ABLY_ROLE_CAPABILITIES` (JSON object from role to capability): added per role
    /// in `app_metadata.roles`.
    pub role_capabilities: BTreeMap<String, Capability>,
    /// `ABLY_TTLSECONDS` (seconds, 1 to 86400, default 3600; at most 3600 while
    /// `revoke_on_ban` is on): lifetime of the Ably tokens issued.
    pub ttl_seconds: u64,
    /// `CHIPFLAP_ABLY_REST_URL` (https; default `https://main.realtime.ably.net`): base of
    /// Ably's REST API, where revocations go.
    pub rest_url: Url,
    /// `CHIPFLAP_ABLY_REVOKE_ON_BAN` (default true when a key is set): revoke a user's live
    /// Ably tokens when they are banned or deleted.
    pub revoke_on_ban: bool,
}

/// `ABLY_APIKEY`, `ABLY_CAPABILITY`, `CHIPFLAP_ABLY_ROLE_CAPABILITIES`, `ABLY_TTLSECONDS`,
/// `CHIPFLAP_ABLY_REST_URL` (plain http only to a loopback address outside production) and
/// `CHIPFLAP_ABLY_REVOKE_ON_BAN`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
) -> Result<AblySettings, ConfigError> {
    let key = env
        .get("ABLY_APIKEY")
        .map(|k| AblyKey::parse(&k).map_err(|e| invalid("ABLY_APIKEY", e)))
        .transpose()?;
    let capability = Capability::parse(&env.string("ABLY_CAPABILITY", r#"{"*":["subscribe"]}"#))
        .map_err(|e| {
            invalid(
                "ABLY_CAPABILITY",
                format!("expected a JSON object of operation arrays such as {{\"*\":[\"subscribe\"]}}: {e}"),
            )
        })?;
    let mut role_capabilities = BTreeMap::new();
    if let Some(text) = env.get("CHIPFLAP_ABLY_ROLE_CAPABILITIES") {
        let expected = "expected a JSON object from role to capability, such as {\"editor\":{\"chat:*\":[\"publish\"]}}";
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| {
                invalid(
                    "CHIPFLAP_ABLY_ROLE_CAPABILITIES",
                    format!("{expected}: {e}"),
                )
            })?;
        for (role, cap) in map {
            let cap = Capability::parse(&cap.to_string()).map_err(|e| {
                invalid(
                    "CHIPFLAP_ABLY_ROLE_CAPABILITIES",
                    format!("role {role:?}: {e}"),
                )
            })?;
            role_capabilities.insert(role, cap);
        }
    }
    let ttl_seconds: u64 = env.parsed("ABLY_TTLSECONDS", 3600, "seconds from 1 to 86400")?;
    if !(1..=86_400).contains(&ttl_seconds) {
        return Err(invalid(
            "ABLY_TTLSECONDS",
            "expected seconds from 1 to 86400",
        ));
    }
    let rest_text = env.string("CHIPFLAP_ABLY_REST_URL", "https://main.realtime.ably.net");
    // The key goes there in a Basic header: https only. Plain http is allowed to a loopback
    // address outside production (a local TLS-terminating proxy, the tests' stand-in).
    let rest_url = Url::parse(&rest_text)
        .ok()
        .filter(|u| {
            u.scheme() == "https" || (u.scheme() == "http" && !production && is_loopback(u))
        })
        .ok_or_else(|| {
            invalid(
                "CHIPFLAP_ABLY_REST_URL",
                format!("expected an https URL (the Ably key is sent there), got {rest_text:?}"),
            )
        })?;
    let revoke_on_ban = env
        .optional_flag("CHIPFLAP_ABLY_REVOKE_ON_BAN")?
        .unwrap_or(key.is_some());
    // Ably refuses tokens longer than an hour from keys with revocable tokens (spec §1).
    if key.is_some() && revoke_on_ban && ttl_seconds > 3600 {
        return Err(invalid(
            "ABLY_TTLSECONDS",
            "must be at most 3600 while CHIPFLAP_ABLY_REVOKE_ON_BAN is on (Ably's limit for revocable keys)",
        ));
    }
    Ok(AblySettings {
        key,
        capability,
        role_capabilities,
        ttl_seconds,
        rest_url,
        revoke_on_ban,
    })
}

/// `localhost` or a loopback IP: traffic that never leaves the machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error_names, production_with, settings};

    #[test]
    fn the_ably_rest_url_must_be_https_where_the_key_could_leave_the_machine() {
        let refused = |vars: &[(&'static str, &'static str)], prod: bool| {
            let result = if prod {
                production_with(vars)
            } else {
                settings(vars)
            };
            result
                .unwrap_err()
                .to_string()
                .contains("CHIPFLAP_ABLY_REST_URL")
        };
        assert!(refused(
            &[("CHIPFLAP_ABLY_REST_URL", "http://rest.ably.io")],
            true
        ));
        assert!(refused(
            &[("CHIPFLAP_ABLY_REST_URL", "http://127.0.0.1:8080")],
            true
        ));
        assert!(refused(
            &[("CHIPFLAP_ABLY_REST_URL", "http://rest.ably.io")],
            false
        ));
        assert!(settings(&[("CHIPFLAP_ABLY_REST_URL", "http://127.0.0.1:8080")]).is_ok());
        assert!(settings(&[("CHIPFLAP_ABLY_REST_URL", "http://[::1]:8080")]).is_ok());
        assert!(production_with(&[("CHIPFLAP_ABLY_REST_URL", "https://rest.example.org")]).is_ok());
    }

    #[test]
    fn ably_settings_default_and_guard_revocable_ttls() {
        let secret = ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let s = settings(&[secret]).unwrap();
        assert!(s.ably.key.is_none());
        assert!(!s.ably.revoke_on_ban);
        assert_eq!(s.ably.capability.canonical_json(), r#"{"*":["subscribe"]}"#);
        let key = ("ABLY_APIKEY", "app.key:secret");
        let s = settings(&[secret, key]).unwrap();
        assert!(s.ably.revoke_on_ban, "on by default once a key is set");
        assert_eq!(s.ably.rest_url.as_str(), "https://main.realtime.ably.net/");
        let message = error_names(&[secret, key, ("ABLY_TTLSECONDS", "7200")]);
        assert!(message.starts_with("ABLY_TTLSECONDS"), "{message}");
        let s = settings(&[
            secret,
            key,
            ("ABLY_TTLSECONDS", "7200"),
            ("CHIPFLAP_ABLY_REVOKE_ON_BAN", "false"),
        ])
        .unwrap();
        assert_eq!(s.ably.ttl_seconds, 7200);
    }
}
