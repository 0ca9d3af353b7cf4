//! `POST /token`: the password and refresh_token grants, read from a form body and the query
//! string alike (Go's FormValue, spec §1.4); a JSON body is ignored.

use actix_web::{HttpRequest, HttpResponse, web};

use super::cookies::nf_jwt_for;
use super::errors::{OAuthError, TokenEndpointError};
use crate::auth::extractors::{client_ip, request_aud};
use crate::services::throttle::{self, Limit};
use crate::services::token::{TokenResponse, password_grant, refresh_grant};
use crate::state::AppState;

pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, TokenEndpointError> {
    throttle::check(&state, Limit::Token, &client_ip(&request, &state.settings)).await?;
    let fields = super::form_params::query_and_form(&request, &body);
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    let response = match field("grant_type") {
        "password" => {
            let aud = request_aud(&request, None, &state.settings.jwt.aud);
            password_grant(&state, &aud, field("username"), field("password")).await?
        }
        "refresh_token" => refresh_grant(&state, field("refresh_token")).await?,
        _ => {
            return Err(TokenEndpointError::OAuth(OAuthError::new(
                "unsupported_grant_type",
                None,
            )));
        }
    };
    Ok(token_http_response(&request, &state, &response))
}

/// The token response, with the `nf_jwt` cookie when asked for (also used by `/verify`).
pub fn token_http_response(
    request: &HttpRequest,
    state: &AppState,
    response: &TokenResponse,
) -> HttpResponse {
    let mut http = HttpResponse::Ok();
    http.insert_header(("cache-control", "no-store"));
    if let Some(cookie) = nf_jwt_for(request, &state.settings, &response.access_token) {
        http.cookie(cookie);
    }
    http.json(response)
}
