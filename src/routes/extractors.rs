//! Request guards as proof types: a handler that takes `BearerUser` or `AdminUser` cannot run
//! without that authority. They answer in `routes::errors`' shapes, so they live beside them
//! (under `auth` they made an import cycle); users are looked up through `services`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::cookies::{NF_JWT, SESSION_COOKIE};
use crate::auth::jwt::VerifiedClaims;
use crate::domain::one_time_token::SecretToken;
use crate::domain::session::SessionRefusal;
use crate::domain::user::UserId;
use crate::routes::errors::{AblyError, HttpError, PageError};
use crate::services::Actor;
use crate::services::ably_token::AblyCaller;
use crate::services::audit::Origin;
use crate::services::sessions::{SessionError, session_user};
use crate::state::AppState;

/// The raw bearer token: `Authorization` must match `^[Bb]earer (\S+)$` (spec §0).
pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    let value = request.headers().get("authorization")?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?;
    // `char::is_whitespace` on ASCII is exactly these bytes; only other tokens need chars.
    let blank = if token.is_ascii() {
        token.bytes().any(|b| matches!(b, b'\t'..=b'\r' | b' '))
    } else {
        token.chars().any(char::is_whitespace)
    };
    (!token.is_empty() && !blank).then_some(token)
}

fn app_state(request: &HttpRequest) -> Result<web::Data<AppState>, HttpError> {
    request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| HttpError::internal(anyhow::anyhow!("AppState is not registered")))
}

/// The client's IP for per-IP throttles: the first value of the `GOTRUE_RATE_LIMIT_HEADER`
/// header when that variable is set (supabase/auth's rule: a trusted proxy names the client),
/// else the peer address. A request without the configured header (one that bypassed the
/// proxy) is keyed by its peer address.
pub fn client_ip(request: &HttpRequest, settings: &crate::config::Settings) -> String {
    if let Some(name) = &settings.rate_limits.header {
        let first = request
            .headers()
            .get_all(name.as_str())
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .find(|v| !v.is_empty());
        if let Some(ip) = first {
            return ip.to_owned();
        }
    }
    request
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| addr.ip().to_string())
}

/// The request's origin for audit entries and log lines: `client_ip` and the `User-Agent`.
pub fn request_origin(request: &HttpRequest, settings: &crate::config::Settings) -> Origin {
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Origin::new(client_ip(request, settings), user_agent)
}

/// The audience a request speaks for: `X-JWT-AUD`, else the token's `aud`, else `GOTRUE_JWT_AUD`.
pub fn request_aud(
    request: &HttpRequest,
    claims: Option<&VerifiedClaims>,
    default: &str,
) -> String {
    if let Some(aud) = request
        .headers()
        .get("x-jwt-aud")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        return aud.to_owned();
    }
    match claims.map(VerifiedClaims::aud) {
        Some(aud) if !aud.is_empty() => aud.to_owned(),
        _ => default.to_owned(),
    }
}

/// A request carrying a valid access token (any subject, including the system token).
pub struct BearerUser {
    pub claims: VerifiedClaims,
    pub aud: String,
    /// The token's `session_id` claim: the services refuse the token once that session ends.
    pub session_id: Option<Uuid>,
}

impl BearerUser {
    /// The subject as a user id: 400 "Could not read User ID claim" otherwise (spec §1.8).
    pub fn user_id(&self) -> Result<UserId, HttpError> {
        self.claims
            .user_id()
            .ok_or_else(|| HttpError::bad_request("Could not read User ID claim"))
    }
}

fn verify_bearer(request: &HttpRequest) -> Result<BearerUser, HttpError> {
    let state = app_state(request)?;
    let token = bearer_token(request)
        .ok_or_else(|| HttpError::unauthorized("This endpoint requires a Bearer token"))?;
    let claims = state
        .jwt
        .verify(token, state.clock.now())
        .map_err(|e| HttpError::unauthorized(format!("Invalid token: {e}")).clearing_cookie())?;
    let aud = request_aud(request, Some(&claims), &state.settings.jwt.aud);
    let session_id = claims.session_id();
    Ok(BearerUser {
        claims,
        aud,
        session_id,
    })
}

impl FromRequest for BearerUser {
    type Error = HttpError;
    type Future = std::future::Ready<Result<Self, HttpError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        std::future::ready(verify_bearer(request))
    }
}

/// Admin authority exactly as GoTrue grants it (DESIGN §3): the operator token, a system token
/// (`sub` "0" or the nil UUID), or a user whose `role` is the admin group in the request's audience.
pub struct AdminUser {
    pub actor: Actor,
    /// The audience the admin acts in.
    pub aud: String,
}

async fn authorize_admin(request: HttpRequest) -> Result<AdminUser, HttpError> {
    let state = app_state(&request)?;
    let token = bearer_token(&request)
        .ok_or_else(|| HttpError::unauthorized("This endpoint requires a Bearer token"))?;
    let default_aud = &state.settings.jwt.aud;
    if let Some(operator) = &state.settings.jwt.operator_token {
        use secrecy::ExposeSecret;
        if bool::from(token.as_bytes().ct_eq(operator.expose_secret().as_bytes())) {
            return Ok(AdminUser {
                actor: Actor::operator(),
                aud: request_aud(&request, None, default_aud),
            });
        }
    }
    let claims = state
        .jwt
        .verify(token, state.clock.now())
        .map_err(|e| HttpError::unauthorized(format!("Invalid token: {e}")).clearing_cookie())?;
    let aud = request_aud(&request, Some(&claims), default_aud);
    if claims.is_system() {
        return Ok(AdminUser {
            actor: Actor::system(),
            aud,
        });
    }
    let id =
        UserId::parse(&claims.sub).map_err(|_| HttpError::unauthorized("Invalid admin user"))?;
    let mut conn = state.store.read().await.map_err(HttpError::internal)?;
    let now = state.clock.now();
    let user = match session_user(
        &mut conn.conn(),
        id,
        claims.session_id(),
        now,
        &state.settings.sessions,
    )
    .await
    {
        Ok(user) => user,
        Err(SessionError::Refused(SessionRefusal::UnknownUser)) => {
            return Err(HttpError::unauthorized("Invalid admin user"));
        }
        Err(SessionError::Refused(SessionRefusal::Banned)) => {
            return Err(HttpError::unauthorized("User not allowed"));
        }
        Err(SessionError::Refused(SessionRefusal::Ended)) => {
            return Err(HttpError::session_ended());
        }
        Err(SessionError::Unexpected(e)) => return Err(HttpError::internal(e)),
    };
    if !user.is_admin(&state.settings.jwt.admin_group) || user.aud != aud {
        return Err(HttpError::unauthorized("User not allowed"));
    }
    crate::services::mfa::require_assurance(
        &state,
        &mut conn.conn(),
        user.id,
        claims.session_id(),
        Some(claims.aal()),
    )
    .await
    .map_err(HttpError::from)?;
    Ok(AdminUser {
        actor: Actor::user(&user),
        aud,
    })
}

impl FromRequest for AdminUser {
    type Error = HttpError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HttpError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authorize_admin(request.clone()))
    }
}

/// The console session cookie's name on a plain-http site (see `console_cookie`).
pub const CONSOLE_COOKIE: &str = "chipflap_console";

/// The name and path a console cookie called `name`, scoped to `path`, takes on this site. On
/// an https site it is `__Host-<name>` with `Path=/` (RFC 6265bis §4.1.3.2: the browser keeps
/// it only when Secure, host-only and `Path=/`, so no sibling subdomain or plain-http page can
/// set or shadow it); on plain http (local development) the name and path stay as they are.
pub fn console_cookie(
    settings: &crate::config::Settings,
    name: &'static str,
    path: &'static str,
) -> (String, &'static str) {
    if settings.secure_cookies() {
        (format!("__Host-{name}"), "/")
    } else {
        (name.to_owned(), path)
    }
}

/// A logged-in console admin (DESIGN §7): a server-side session from an HttpOnly,
/// SameSite=Strict cookie. Without one, pages redirect to the login page.
pub struct ConsoleSession {
    pub admin: crate::domain::user::User,
    pub token: SecretToken,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
}

impl ConsoleSession {
    /// Every state-changing console request must carry the session's CSRF token.
    pub fn check_csrf(&self, state: &AppState, presented: &str) -> Result<(), PageError> {
        if crate::services::console_session::csrf_matches(state, &self.token, presented) {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "This form has expired or did not come from this console. Go back, reload the page and try again.",
            ))
        }
    }
}

async fn console_session(request: HttpRequest) -> Result<ConsoleSession, PageError> {
    let state = request
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| PageError::internal(anyhow::anyhow!("AppState is not registered")))?;
    let token = request
        .cookie(&console_cookie(&state.settings, CONSOLE_COOKIE, "/console").0)
        .map(|c| SecretToken::presented(c.value()))
        .ok_or(PageError::LoginRequired)?;
    let admin = crate::services::console_session::session_admin(&state, &token)
        .await
        .map_err(PageError::internal)?
        .ok_or(PageError::LoginRequired)?;
    let csrf = crate::services::console_session::csrf_token(&state, &token);
    if state.settings.mfa.console_require_mfa
        && !request.path().starts_with("/console/mfa")
        && request.path() != "/console/logout"
        && !crate::services::mfa::has_verified_factor(&state, admin.id)
            .await
            .map_err(PageError::internal)?
    {
        return Err(PageError::MfaEnrollmentRequired);
    }
    Ok(ConsoleSession { admin, token, csrf })
}

impl FromRequest for ConsoleSession {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(console_session(request.clone()))
    }
}

/// Who asks the Ably endpoint for a token: a Bearer access token (never replaced by anything
/// else, so an expired one is a 401); else the `nf_jwt` cookie; else, when that is absent,
/// expired or invalid, the session cookie set with it (`cookies::SESSION_COOKIE`). Refusals
/// are in Ably's error shape (`AblyError`), so ably-js keeps retrying a 401 and stops on a 403
/// (spec/ably.md §3). The session itself is checked by `services::ably_token::ably_user`.
pub struct AblyCallerGuard(pub AblyCaller);

impl FromRequest for AblyCallerGuard {
    type Error = AblyError;
    type Future = std::future::Ready<Result<Self, AblyError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = request.app_data::<web::Data<AppState>>() else {
            return std::future::ready(Err(AblyError::from(
                crate::services::ably_token::AblyTokenError::Unexpected(anyhow::anyhow!(
                    "AppState missing"
                )),
            )));
        };
        std::future::ready(ably_caller(state, request).map(AblyCallerGuard))
    }
}

fn ably_caller(state: &AppState, request: &HttpRequest) -> Result<AblyCaller, AblyError> {
    let now = state.clock.now();
    let from_claims = |claims: VerifiedClaims| {
        let user_id = claims
            .user_id()
            .ok_or_else(|| AblyError::forbidden("This token does not belong to a user"))?;
        Ok(AblyCaller::Token {
            user_id,
            session_id: claims.session_id(),
            aal: claims.aal(),
        })
    };
    if let Some(token) = bearer_token(request) {
        let claims = state
            .jwt
            .verify(token, now)
            .map_err(|e| AblyError::unauthorized(format!("Invalid token: {e}")))?;
        return from_claims(claims);
    }
    let nf_jwt = request
        .cookie(NF_JWT)
        .filter(|c| !c.value().is_empty())
        .map(|c| state.jwt.verify(c.value(), now));
    let nf_jwt_error = match nf_jwt {
        Some(Ok(claims)) => return from_claims(claims),
        Some(Err(e)) => Some(e),
        None => None,
    };
    if let Some(session_id) = request
        .cookie(SESSION_COOKIE)
        .and_then(|c| state.session_cookie.session_of(c.value()))
    {
        return Ok(AblyCaller::SessionCookie(session_id));
    }
    Err(AblyError::unauthorized(match nf_jwt_error {
        Some(e) => format!("Invalid token: {e}"),
        None => {
            "No session: send the access token as a Bearer header or the nf_jwt cookie".to_owned()
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_with_whitespace_inside_is_no_token() {
        let others = [
            '\u{85}', '\u{a0}', '\u{2003}', '\u{3000}', 'é', '\u{1c}', '\u{7f}',
        ];
        for c in (0u8..128).map(char::from).chain(others) {
            let token = format!("abc{c}def");
            let Ok(value) =
                actix_web::http::header::HeaderValue::from_str(&format!("Bearer {token}"))
            else {
                continue;
            };
            let request = actix_web::test::TestRequest::default()
                .insert_header(("authorization", value))
                .to_http_request();
            // Header values that are not visible ASCII are no token at all (`to_str`).
            let expected = (c.is_ascii() && !c.is_whitespace()).then_some(token.as_str());
            assert_eq!(bearer_token(&request), expected, "{:?}", c);
        }
    }
}
