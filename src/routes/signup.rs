//! `POST /signup`.

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::errors::HttpError;
use super::json_body::{object, parse_json};
use super::user_json::UserJson;
use crate::routes::extractors::{client_ip, request_aud};
use crate::services::signup::{SignupRequest, signup as run_signup};
use crate::services::throttle::{self, Limit};
use crate::state::AppState;

#[derive(Deserialize)]
struct SignupParams {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

/// 200 (not 201) with the user object (spec §1.3).
pub async fn signup(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    if state.settings.signup.disabled {
        return Err(HttpError::forbidden(
            "Signups not allowed for this instance",
        ));
    }
    throttle::check(&state, Limit::Signup, &client_ip(&request, &state.settings)).await?;
    let params: SignupParams = parse_json(&body, "Could not read Signup params")?;
    if params.password.is_empty() {
        return Err(HttpError::unprocessable("Signup requires a valid password"));
    }
    let aud = request_aud(&request, None, &state.settings.jwt.aud);
    let user = run_signup(
        &state,
        SignupRequest {
            aud: &aud,
            email: &params.email,
            password: &params.password,
            data: object(params.data, "data")?,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}
