//! `GET /user` and `PUT /user`.

use super::request_body::Body;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::errors::HttpError;
use super::json_body::{object, parse_json};
use super::user_json::UserJson;
use crate::routes::extractors::{BearerUser, client_ip};
use crate::services::throttle::{self, Limit};
use crate::services::user::{UserUpdate, get_user as load_user, update_user as run_update};
use crate::state::AppState;

pub async fn get_user(
    state: web::Data<AppState>,
    bearer: BearerUser,
) -> Result<HttpResponse, HttpError> {
    let id = bearer.user_id()?;
    if bearer.aud != bearer.claims.aud() {
        return Err(HttpError::bad_request(
            "Token audience doesn't match request audience",
        ));
    }
    let user = load_user(&state, id, bearer.session_id).await?;
    // Readable at aal1, so a client can see it must step up (as supabase/auth).
    let factors = crate::services::mfa::list_factors(&state, user.id)
        .await
        .map_err(HttpError::internal)?;
    Ok(HttpResponse::Ok().json(UserJson::from(&*user).with_factors(&factors)))
}

#[derive(Deserialize)]
struct UpdateParams {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    email_change_token: Option<String>,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    app_metadata: Option<serde_json::Value>,
    #[serde(default)]
    current_password: Option<String>,
}

pub async fn update_user(
    state: web::Data<AppState>,
    bearer: BearerUser,
    request: HttpRequest,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    let id = bearer.user_id()?;
    let params: UpdateParams = parse_json(&body, "Could not read User Update params")?;
    // Starting an email change mails the new address: throttled per client IP.
    if params
        .email
        .as_deref()
        .is_some_and(|e| !e.trim().is_empty())
        && params
            .email_change_token
            .as_deref()
            .is_none_or(|t| t.trim().is_empty())
    {
        throttle::check(
            &state,
            Limit::EmailChange,
            &client_ip(&request, &state.settings),
        )
        .await?;
    }
    // A password or email change is an account takeover if a stolen aal1 token suffices:
    // users with a verified factor need aal2 (supabase/auth refuses it too).
    if params.password.is_some() || params.email.is_some() {
        crate::services::mfa::require_assurance_of(
            &state,
            id,
            bearer.session_id,
            Some(bearer.claims.aal()),
        )
        .await?;
    }
    let update = UserUpdate {
        email: params.email,
        password: params.password,
        email_change_token: params.email_change_token,
        data: object(params.data, "data")?,
        app_metadata: object(params.app_metadata, "app_metadata")?,
        current_password: params.current_password,
        origin: crate::routes::extractors::request_origin(&request, &state.settings),
    };
    let user = run_update(&state, id, bearer.session_id, update).await?;
    Ok(HttpResponse::Ok().json(UserJson::from(&user)))
}
