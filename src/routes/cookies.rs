//! The cookies the identity API sets for same-origin pages: `nf_jwt`, which mirrors the access
//! token when a client sends `X-Use-Cookie` (spec §3.4), and the session cookie that keeps the
//! seed page's Ably token endpoint working after `nf_jwt` expires (README "How sessions end").

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};

use crate::config::Settings;
use crate::services::token::TokenResponse;
use crate::state::AppState;

pub const NF_JWT: &str = "nf_jwt";
/// GoTrue's `COOKIE_DURATION` default.
const DURATION_SECONDS: i64 = 86_400;

/// The session cookie: HttpOnly, SameSite=Strict, sent only to the Ably token endpoint; its
/// value names a session and carries a MAC (`auth::session_cookie`).
pub const SESSION_COOKIE: &str = "chipflap_session";
/// The only path that reads the session cookie.
pub const SESSION_COOKIE_PATH: &str = "/.netlify/functions/ably-jwt";

/// The cookies to set with a fresh token response, if the request asked for them: `nf_jwt`
/// (`X-Use-Cookie: session` gives a session cookie, any other value one that lasts a day) and
/// the session cookie (a browser-session cookie, or one that lasts as long as a refresh token).
pub fn token_cookies(
    request: &HttpRequest,
    state: &AppState,
    response: &TokenResponse,
) -> Option<[Cookie<'static>; 2]> {
    let mode = request.headers().get("x-use-cookie")?.to_str().ok()?.trim();
    if mode.is_empty() {
        return None;
    }
    let settings = &state.settings;
    let mut nf_jwt = Cookie::build(NF_JWT, response.cookie_token.clone())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure_cookies())
        .finish();
    let mut session = Cookie::build(
        SESSION_COOKIE,
        state.session_cookie.value_for(response.session_id),
    )
    .path(SESSION_COOKIE_PATH)
    .http_only(true)
    .same_site(SameSite::Strict)
    .secure(settings.secure_cookies())
    .finish();
    if mode != "session" {
        nf_jwt.set_max_age(CookieDuration::seconds(DURATION_SECONDS));
        session.set_max_age(session_cookie_max_age(settings));
    }
    Some([nf_jwt, session])
}

fn session_cookie_max_age(settings: &Settings) -> CookieDuration {
    let seconds = settings.jwt.refresh_token_lifetime.as_secs();
    CookieDuration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

pub fn cleared_nf_jwt() -> Cookie<'static> {
    let mut cookie = Cookie::build(NF_JWT, "").path("/").http_only(true).finish();
    cookie.make_removal();
    cookie
}

pub fn cleared_session_cookie() -> Cookie<'static> {
    let mut cookie = Cookie::build(SESSION_COOKIE, "")
        .path(SESSION_COOKIE_PATH)
        .http_only(true)
        .finish();
    cookie.make_removal();
    cookie
}
