//! `POST /token`: the password and refresh_token grants, read from a form body (urlencoded or
//! multipart, spec §1.4); a JSON body is ignored. Unlike GoTrue, which also reads the query
//! string, a URL carrying credentials is refused: proxies log URLs.

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};

use super::cookies::token_cookies;
use super::errors::{OAuthError, TokenEndpointError};
use crate::routes::extractors::{client_ip, request_aud, request_origin};
use crate::services::credentials;
use crate::services::throttle::{self, Limit};
use crate::services::token::{TokenError, TokenResponse, password_grant, refresh_grant};
use crate::state::AppState;

/// The fields that carry a secret or name the account.
const CREDENTIAL_FIELDS: &[&str] = &["password", "refresh_token", "username"];
const CREDENTIALS_IN_URL: &str = "Credentials must be sent in the request body, never in the URL";

pub async fn token(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Body<TokenEndpointError>,
) -> Result<HttpResponse, TokenEndpointError> {
    let fields = super::form_params::body_fields(&request, &body).await?;
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
    // A password grant first takes its place in the hashing engine: a busy server answers 503
    // before the throttle's write, so a login flood costs the store nothing.
    let slot = match field("grant_type") {
        "password" => Some(credentials::reserve(&state).map_err(TokenError::from)?),
        _ => None,
    };
    let client = client_ip(&request, &state.settings);
    // Credentials and tokens only ever come in the body: a URL carrying them is refused, not
    // read, so a client that puts them there learns at once (ASVS 5.0 V14.2.1).
    if super::form_params::query_names_any(&request, CREDENTIAL_FIELDS) {
        throttle::check(&state, Limit::Token, &client).await?;
        return Err(TokenEndpointError::OAuth(OAuthError::new(
            "invalid_request",
            Some(CREDENTIALS_IN_URL),
        )));
    }
    // Each grant's store work runs off the HTTP workers (`AppState::store_work`).
    let st = state.clone();
    let response = match (field("grant_type"), slot) {
        ("password", Some(slot)) => {
            let aud = request_aud(&request, None, &state.settings.jwt.aud);
            let origin = request_origin(&request, &state.settings);
            let (username, password) = (field("username").to_owned(), field("password").to_owned());
            state
                .store_work(async move {
                    throttle::check(&st, Limit::Token, &client).await?;
                    password_grant(&st, slot, &aud, &username, &password, &origin)
                        .await
                        .map_err(TokenEndpointError::from)
                })
                .await
                .map_err(TokenError::from)??
        }
        // The grant counts the request itself, inside its own write.
        ("refresh_token", _) => {
            let presented = field("refresh_token").to_owned();
            state
                .store_work(async move { refresh_grant(&st, &presented, &client).await })
                .await
                .map_err(TokenError::from)??
        }
        _ => {
            throttle::check(&state, Limit::Token, &client).await?;
            return Err(TokenEndpointError::OAuth(OAuthError::new(
                "unsupported_grant_type",
                None,
            )));
        }
    };
    Ok(token_http_response(&request, &state, &response))
}

/// The token response, with the `nf_jwt` and session cookies when asked for (also used by
/// `/verify`).
pub fn token_http_response(
    request: &HttpRequest,
    state: &AppState,
    response: &TokenResponse,
) -> HttpResponse {
    let mut http = HttpResponse::Ok();
    http.insert_header(("cache-control", "no-store"));
    for cookie in token_cookies(request, state, response)
        .into_iter()
        .flatten()
    {
        http.cookie(cookie);
    }
    http.json(response)
}
