//! `GET|POST /.netlify/functions/ably-jwt`: an Ably token for the logged-in user (DESIGN §6).
//! Refusals use Ably's error shape, so ably-js stops retrying a banned user (403) and keeps
//! retrying a logged-out one (401) (spec/ably.md §3).

use actix_web::{HttpRequest, HttpResponse, web};

use super::errors::AblyError;
use super::extractors::AblyCallerGuard;
use super::request_body::Body;
use crate::services::ably_token::{AblyFormat, AblyGrant, ably_user, issue_ably_token};
use crate::state::AppState;

/// An Ably token for the caller `AblyCallerGuard` names (`routes::extractors`); their session
/// must be live.
pub async fn ably_token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Body<AblyError>,
    AblyCallerGuard(caller): AblyCallerGuard,
) -> Result<HttpResponse, AblyError> {
    // Only `id`, `clientId` and `format` are read; everything else the client sends (`rnd`,
    // `ttl`, `capability`, …) is ignored, never trusted.
    let params = super::form_params::query_and_form(&request, &body).await?;
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
