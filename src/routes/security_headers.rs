//! Response headers that every kind of answer carries (OWASP ASVS 5.0 V3.4), one set per surface.
//! Built on actix's `DefaultHeaders`, which adds a header only where the handler set none, so a
//! handler may still choose its own (the Ably endpoint's `Cache-Control`, the console's CSP).

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;

use crate::config::Settings;

/// HSTS lifetime: one year, the value the HSTS preload list asks for (RFC 6797 §6.1.1).
const HSTS: &str = "max-age=31536000";

/// Every response, whatever its surface: `X-Content-Type-Options: nosniff`, and
/// `Strict-Transport-Security` when `GOTRUE_SITE_URL` is https (RFC 6797; over plain http the
/// header would be ignored, and local development must keep working).
pub fn everywhere(settings: &Settings) -> DefaultHeaders {
    let headers = DefaultHeaders::new().add(("x-content-type-options", "nosniff"));
    if settings.secure_cookies() {
        headers.add(("strict-transport-security", HSTS))
    } else {
        headers
    }
}

/// The JSON API (`/.netlify/identity`, `/.netlify/functions`): nothing in an answer may be
/// cached (user data, tokens), rendered as a page, framed, or leak the URL as a referrer.
pub fn api() -> DefaultHeaders {
    from_pairs(&[
        ("cache-control", "no-store"),
        (
            "content-security-policy",
            "default-src 'none'; frame-ancestors 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ])
}

/// Everything outside the API and the console (`routes::site`). The built-in demo page hosts
/// the login widget, so it is never framed: no other site can overlay it to catch clicks or
/// typed passwords. Files from `CHIPFLAP_SITE_DIR` get framing protection only when the
/// operator opts in with `CHIPFLAP_SITE_FRAME_ANCESTORS` (a site may embed itself or be embedded
/// on purpose, which chipflap cannot know). Headers the handler already set are kept.
pub fn add_site_headers(headers: &mut HeaderMap, demo: bool, frame_ancestors: Option<&str>) {
    let mut add = |name: &'static str, value: HeaderValue| {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, value);
        }
    };
    add(
        "referrer-policy",
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    let ancestors = if demo {
        Some("'none'")
    } else {
        frame_ancestors
    };
    if let Some(policy) =
        ancestors.and_then(|v| HeaderValue::from_str(&format!("frame-ancestors {v}")).ok())
    {
        add("content-security-policy", policy);
    }
    if demo {
        add("x-frame-options", HeaderValue::from_static("DENY"));
    }
}

fn from_pairs(pairs: &[(&'static str, &'static str)]) -> DefaultHeaders {
    pairs
        .iter()
        .fold(DefaultHeaders::new(), |acc, (name, value)| {
            acc.add((
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        })
}
