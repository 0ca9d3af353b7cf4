//! supabase/auth's MFA API under `/.netlify/identity`: `POST /factors`,
//! `POST /factors/{id}/challenge`, `POST /factors/{id}/verify`, `DELETE /factors/{id}`.
//! Bearer-authenticated; the token's session must be live. Admins: `GET /admin/users/{id}/factors`
//! and `DELETE /admin/users/{id}/factors/{factor_id}`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::errors::HttpError;
use super::json_body::parse_json;
use super::request_body::Body;
use super::user_json::FactorJson;
use crate::domain::mfa::TOTP;
use crate::domain::user::UserId;
use crate::routes::extractors::{AdminUser, BearerUser, client_ip};
use crate::services::mfa;
use crate::state::AppState;

#[derive(Deserialize)]
struct EnrollParams {
    #[serde(default)]
    factor_type: Option<String>,
    #[serde(default)]
    friendly_name: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
}

#[derive(Serialize)]
struct TotpObject {
    #[serde(skip_serializing_if = "Option::is_none")]
    qr_code: Option<String>,
    secret: String,
    uri: String,
}

#[derive(Serialize)]
struct EnrollResponse {
    id: Uuid,
    #[serde(rename = "type")]
    factor_type: &'static str,
    friendly_name: String,
    totp: TotpObject,
}

fn factor_id(raw: &str) -> Result<Uuid, HttpError> {
    Uuid::parse_str(raw).map_err(|_| HttpError::not_found("Factor not found"))
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    response
}

/// `POST /factors`: enroll a TOTP factor; the only answer that ever carries its secret.
pub async fn enroll(
    state: web::Data<AppState>,
    bearer: BearerUser,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    let user_id = bearer.user_id()?;
    let params: EnrollParams = parse_json(&body, "Could not read EnrollFactor params")?;
    match params.factor_type.as_deref().map(str::trim) {
        Some(TOTP) => {}
        _ => return Err(HttpError::bad_request("factor_type needs to be totp")),
    }
    let enrollment = mfa::enroll(
        &state,
        user_id,
        bearer.session_id,
        params.friendly_name,
        params.issuer.as_deref(),
    )
    .await?;
    Ok(no_store(HttpResponse::Ok().json(EnrollResponse {
        id: enrollment.factor.id,
        factor_type: TOTP,
        friendly_name: enrollment.factor.friendly_name.unwrap_or_default(),
        totp: TotpObject {
            qr_code: enrollment.qr_code,
            secret: enrollment.secret,
            uri: enrollment.uri,
        },
    })))
}

#[derive(Serialize)]
struct ChallengeResponse {
    id: Uuid,
    #[serde(rename = "type")]
    factor_type: &'static str,
    expires_at: i64,
}

/// `POST /factors/{id}/challenge`.
pub async fn challenge(
    state: web::Data<AppState>,
    bearer: BearerUser,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let user_id = bearer.user_id()?;
    let factor_id = factor_id(&path)?;
    let ip = client_ip(&request, &state.settings);
    let (id, expires_at) =
        mfa::challenge(&state, user_id, bearer.session_id, factor_id, &ip).await?;
    Ok(HttpResponse::Ok().json(ChallengeResponse {
        id,
        factor_type: TOTP,
        expires_at: expires_at.unix(),
    }))
}

#[derive(Deserialize)]
struct VerifyParams {
    #[serde(default)]
    challenge_id: Option<String>,
    #[serde(default)]
    code: Option<String>,
}

/// `POST /factors/{id}/verify`: a code for a challenge; answers a token pair at aal2 for the
/// same session.
pub async fn verify(
    state: web::Data<AppState>,
    bearer: BearerUser,
    request: HttpRequest,
    path: web::Path<String>,
    body: Body<HttpError>,
) -> Result<HttpResponse, HttpError> {
    let user_id = bearer.user_id()?;
    let factor_id = factor_id(&path)?;
    let params: VerifyParams = parse_json(&body, "Could not read VerifyFactor params")?;
    let code = params
        .code
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| HttpError::bad_request("Code needs to be non-empty"))?;
    let challenge_id = params
        .challenge_id
        .as_deref()
        .and_then(|c| Uuid::parse_str(c.trim()).ok())
        .ok_or_else(|| HttpError::bad_request("challenge_id needs to be a UUID"))?;
    let ip = client_ip(&request, &state.settings);
    let tokens = mfa::verify(
        &state,
        user_id,
        bearer.session_id,
        factor_id,
        challenge_id,
        &code,
        &ip,
    )
    .await?;
    Ok(super::token::token_http_response(&request, &state, &tokens))
}

#[derive(Serialize)]
struct UnenrollResponse {
    id: Uuid,
}

/// `DELETE /factors/{id}`: needs aal2 when the user has a verified factor.
pub async fn unenroll(
    state: web::Data<AppState>,
    bearer: BearerUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let user_id = bearer.user_id()?;
    let factor_id = factor_id(&path)?;
    let id = mfa::unenroll(&state, user_id, bearer.session_id, factor_id).await?;
    Ok(HttpResponse::Ok().json(UnenrollResponse { id }))
}

fn user_id(raw: &str) -> Result<UserId, HttpError> {
    UserId::parse(raw).map_err(|_| HttpError::not_found("User not found"))
}

/// `GET /admin/users/{id}/factors` (supabase/auth's admin API): the user's factors, no secrets.
pub async fn admin_list(
    state: web::Data<AppState>,
    _admin: AdminUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HttpError> {
    let factors = mfa::admin_list_factors(&state, user_id(&path)?).await?;
    let body: Vec<FactorJson> = factors.iter().map(FactorJson::from).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// `DELETE /admin/users/{id}/factors/{factor_id}`: answers the removed factor.
pub async fn admin_delete(
    state: web::Data<AppState>,
    admin: AdminUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, HttpError> {
    let (user, factor) = path.into_inner();
    let factor =
        mfa::admin_delete_factor(&state, &admin.actor, user_id(&user)?, factor_id(&factor)?)
            .await?;
    Ok(HttpResponse::Ok().json(FactorJson::from(&factor)))
}
