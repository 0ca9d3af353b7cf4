//! `POST /invite` (admin).

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::errors::HttpError;
use super::json_body::{object, parse_json};
use super::user_json::UserJson;
use crate::routes::extractors::{AdminUser, client_ip};
use crate::services::invite::invite as run_invite;
use crate::services::throttle::{self, Limit};
use crate::state::AppState;

#[derive(Deserialize)]
struct InviteParams {
    #[serde(default)]
    email: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
}

pub async fn invite(
    state: web::Data<AppState>,
    admin: AdminUser,
    request: HttpRequest,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    throttle::check(&state, Limit::Invite, &client_ip(&request, &state.settings)).await?;
    let params: InviteParams = parse_json(&body, "Could not read Invite params")?;
    let user = run_invite(
        &state,
        &admin.actor,
        &admin.aud,
        &params.email,
        object(params.data, "data")?,
    )
    .await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}
