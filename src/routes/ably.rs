//! `GET|POST /.netlify/functions/ably-jwt`: an Ably token for the logged-in user (DESIGN §6).
//! Refusals use Ably's error shape, so ably-js stops retrying a banned user (403) and keeps
//! retrying a logged-out one (401) (spec/ably.md §3).

use super::request_body::{Body, BodyError};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use serde_json::json;
use uuid::Uuid;

use super::cookies::{NF_JWT, SESSION_COOKIE};
use crate::auth::jwt::VerifiedClaims;
use crate::routes::errors::SESSION_ENDED;
use crate::routes::extractors::bearer_token;
use crate::services::ably_token::{
    AblyCaller, AblyFormat, AblyGrant, AblyTokenError, ably_user, issue_ably_token,
};
use crate::state::AppState;

/// Who is asking: a Bearer access token (never replaced by anything else, so an expired one
/// is a 401); else the `nf_jwt` cookie; else, when that is absent, expired or invalid, the
/// session cookie set with it (`cookies::SESSION_COOKIE`). Whatever names the caller, their
/// session must be live.
pub async fn ably_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Body<AblyError>,
) -> Result<HttpResponse, AblyError> {
    // Only `id`, `clientId` and `format` are read; everything else the client sends (`rnd`,
    // `ttl`, `capability`, …) is ignored, never trusted.
    let params = super::form_params::query_and_form(&request, &body).await?;
    let caller = caller(&state, &request)?;
    let user = ably_user(&state, caller).await?;
    let user_id = user.id.to_string();
    // The seed page sends ?id=<user id>: it must be the caller, never someone else.
    if params
        .get("id")
        .is_some_and(|id| !id.is_empty() && *id != user_id)
    {
        return Err(AblyError::forbidden("id does not match the logged-in user"));
    }
    if params
        .get("clientId")
        .is_some_and(|c| !c.is_empty() && *c != user_id)
    {
        return Err(AblyError::forbidden(
            "clientId does not match the logged-in user",
        ));
    }
    let format = match params.get("format").map(String::as_str) {
        Some("token_request") => AblyFormat::TokenRequest,
        _ => AblyFormat::Jwt,
    };
    let grant = issue_ably_token(&state, &user, format).await?;
    let mut response = HttpResponse::Ok();
    response.insert_header(("cache-control", "no-store"));
    Ok(match grant {
        AblyGrant::Jwt(jwt) => response.content_type("application/jwt").body(jwt.token),
        AblyGrant::TokenRequest(request) => response.json(request),
    })
}

fn caller(state: &AppState, request: &HttpRequest) -> Result<AblyCaller, AblyError> {
    let now = state.clock.now();
    let from_claims = |claims: VerifiedClaims| {
        let user_id = Uuid::parse_str(&claims.sub)
            .ok()
            .filter(|id| !id.is_nil())
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

/// Why an aal1 session of a user with a verified factor gets no Ably token.
pub const MFA_REQUIRED: &str = "Multi-factor authentication required: verify a code from your authenticator app (POST /.netlify/identity/factors/{id}/verify), then reconnect";

/// `{"error":{"code","statusCode","message"}}` with `Content-Type: application/json` exactly
/// (ably-js in Node compares it exactly) and `x-ably-errorcode` (browsers need it to read the body).
pub struct AblyError {
    status: StatusCode,
    code: u32,
    message: String,
    cause: Option<anyhow::Error>,
}

impl AblyError {
    fn unauthorized(message: impl Into<String>) -> Self {
        AblyError {
            status: StatusCode::UNAUTHORIZED,
            code: 40100,
            message: message.into(),
            cause: None,
        }
    }

    fn forbidden(message: impl Into<String>) -> Self {
        AblyError {
            status: StatusCode::FORBIDDEN,
            code: 40300,
            message: message.into(),
            cause: None,
        }
    }

    /// 400 with Ably's generic bad-request code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        AblyError {
            status: StatusCode::BAD_REQUEST,
            code: 40000,
            message: message.into(),
            cause: None,
        }
    }
}

/// Ably's shape with the HTTP status as its code's first three digits (40000, 41300).
impl From<BodyError> for AblyError {
    fn from(e: BodyError) -> Self {
        let (status, code) = match e {
            BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, 41300),
            BodyError::Unreadable => (StatusCode::BAD_REQUEST, 40000),
        };
        AblyError {
            status,
            code,
            message: e.message().to_owned(),
            cause: None,
        }
    }
}

impl From<AblyTokenError> for AblyError {
    fn from(e: AblyTokenError) -> Self {
        match e {
            AblyTokenError::NotConfigured => AblyError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: 50300,
                message: "Ably is not configured on this server (ABLY_APIKEY is not set)".into(),
                cause: None,
            },
            AblyTokenError::UnknownUser => AblyError::forbidden("User not found"),
            AblyTokenError::Banned => AblyError::forbidden("User is banned"),
            AblyTokenError::Unconfirmed => AblyError::forbidden("Email not confirmed"),
            AblyTokenError::SessionEnded => AblyError::unauthorized(SESSION_ENDED),
            // 403, not 401: ably-js retries a 401 with the same aal1 token forever, while a
            // 403 stops it; the user must verify a code in the app and reconnect.
            AblyTokenError::InsufficientAal => AblyError::forbidden(MFA_REQUIRED),
            AblyTokenError::Unexpected(cause) => AblyError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: 50000,
                message: "Internal server error".into(),
                cause: Some(cause),
            },
        }
    }
}

impl std::fmt::Debug for AblyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause:?}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for AblyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for AblyError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": {
            "code": self.code,
            "statusCode": self.status.as_u16(),
            "message": self.message,
        }});
        if self.status.is_server_error() && self.cause.is_some() {
            let error_id = Uuid::new_v4().to_string();
            tracing::error!(error_id = %error_id, error = ?self, "Ably token request failed");
            body["error"]["error_id"] = json!(error_id);
        }
        HttpResponse::build(self.status)
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-ably-errorcode", self.code.to_string()))
            .insert_header(("cache-control", "no-store"))
            .body(body.to_string())
    }
}
