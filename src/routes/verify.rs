//! `POST /verify`.

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::errors::HttpError;
use super::json_body::parse_json;
use super::token::token_http_response;
use crate::routes::extractors::{client_ip, request_origin};
use crate::services::throttle::{self, Limit};
use crate::services::verify::{VerifyType, verify as run_verify};
use crate::state::AppState;

#[derive(Deserialize)]
struct VerifyParams {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: Option<String>,
}

pub async fn verify(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    throttle::check(&state, Limit::Verify, &client_ip(&request, &state.settings)).await?;
    let params: VerifyParams = parse_json(&body, "Could not read verification params")?;
    if params.token.trim().is_empty() {
        return Err(HttpError::unprocessable("Verify requires a token"));
    }
    let kind = match params.kind.as_str() {
        "signup" => VerifyType::Signup,
        "recovery" => VerifyType::Recovery,
        _ => {
            return Err(HttpError::unprocessable(
                "Verify requires a verification type",
            ));
        }
    };
    let origin = request_origin(&request, &state.settings);
    let password = params.password.as_deref();
    let response = run_verify(&state, kind, &params.token, password, &origin).await?;
    Ok(token_http_response(&request, &state, &response))
}
