//! `GET /user/sessions` and `DELETE /user/sessions/{id}`: the caller's own sessions (ASVS 5.0
//! V7.5.2; neither GoTrue nor supabase/auth has these routes).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::errors::HttpError;
use super::json_body::parse_json;
use super::request_body::Body;
use crate::routes::extractors::{BearerUser, request_origin};
use crate::services::user_sessions::{end_session, list_sessions};
use crate::state::AppState;

/// `{"sessions":[{"id","created_at","refreshed_at","current"}]}`, newest activity first.
pub async fn list(
    state: web::Data<AppState>,
    bearer: BearerUser,
) -> Result<HttpResponse, HttpError> {
    let id = bearer.user_id()?;
    let sessions = list_sessions(&state, id, bearer.session_id).await?;
    Ok(HttpResponse::Ok().json(json!({ "sessions": sessions })))
}

#[derive(Deserialize, Default)]
struct EndParams {
    #[serde(default)]
    current_password: Option<String>,
}

/// 204 once the session has ended. Another session than the caller's needs
/// `{"current_password": …}`: 400 without it or when it is wrong, 404 for no such live session.
pub async fn end(
    state: web::Data<AppState>,
    bearer: BearerUser,
    request: HttpRequest,
    path: web::Path<String>,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    let id = bearer.user_id()?;
    let target = Uuid::parse_str(&path).map_err(|_| HttpError::not_found("Session not found"))?;
    let params: EndParams = parse_json(&body, "Could not read the session params")?;
    let origin = request_origin(&request, &state.settings);
    end_session(
        &state,
        id,
        bearer.session_id,
        target,
        params.current_password.as_deref(),
        &origin,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
