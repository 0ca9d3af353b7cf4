//! The `nf_jwt` cookie that mirrors the access token when a client sends `X-Use-Cookie` (spec §3.4).

use actix_web::HttpRequest;
use actix_web::cookie::time::Duration as CookieDuration;
use actix_web::cookie::{Cookie, SameSite};

use crate::config::Settings;

pub const NF_JWT: &str = "nf_jwt";
/// GoTrue's `COOKIE_DURATION` default.
const DURATION_SECONDS: i64 = 86_400;

/// The cookie to set for a fresh access token, if the request asked for one: `X-Use-Cookie:
/// session` gives a session cookie, any other value one that lasts a day.
pub fn nf_jwt_for(
    request: &HttpRequest,
    settings: &Settings,
    access_token: &str,
) -> Option<Cookie<'static>> {
    let mode = request.headers().get("x-use-cookie")?.to_str().ok()?.trim();
    if mode.is_empty() {
        return None;
    }
    let mut cookie = Cookie::build(NF_JWT, access_token.to_owned())
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(settings.secure_cookies())
        .finish();
    if mode != "session" {
        cookie.set_max_age(CookieDuration::seconds(DURATION_SECONDS));
    }
    Some(cookie)
}

pub fn cleared_nf_jwt() -> Cookie<'static> {
    let mut cookie = Cookie::build(NF_JWT, "").path("/").http_only(true).finish();
    cookie.make_removal();
    cookie
}
