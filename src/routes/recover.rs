//! `POST /recover`: always 200 `{}` for a non-empty email (DESIGN §4.4).

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use super::errors::HttpError;
use super::json_body::parse_json;
use crate::routes::extractors::{client_ip, request_aud};
use crate::services::recover::recover as run_recover;
use crate::services::throttle::{self, Limit};
use crate::state::AppState;

#[derive(Deserialize)]
struct RecoverParams {
    #[serde(default)]
    email: String,
}

pub async fn recover(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    // Per client IP only: a 429 here does not depend on the address (DESIGN §4.4).
    throttle::check(
        &state,
        Limit::Recover,
        &client_ip(&request, &state.settings),
    )
    .await?;
    let params: RecoverParams = parse_json(&body, "Could not read verification params")?;
    let aud = request_aud(&request, None, &state.settings.jwt.aud);
    run_recover(&state, &aud, &params.email).await?;
    Ok(HttpResponse::Ok().json(json!({})))
}
