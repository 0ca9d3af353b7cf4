//! `POST /logout`: 204 with no body and no content type (gotrue-js parses any JSON content
//! type, and an empty body would then throw; spec §0).

use actix_web::{HttpResponse, web};

use super::cookies::{cleared_nf_jwt, cleared_session_cookie};
use super::errors::HttpError;
use crate::routes::extractors::BearerUser;
use crate::services::token::logout as run_logout;
use crate::state::AppState;

pub async fn logout(
    state: web::Data<AppState>,
    bearer: BearerUser,
) -> Result<HttpResponse, HttpError> {
    let id = bearer
        .user_id()
        .map_err(|_| HttpError::unauthorized("Invalid user"))?;
    run_logout(&state, id, bearer.session_id).await?;
    Ok(HttpResponse::NoContent()
        .cookie(cleared_nf_jwt())
        .cookie(cleared_session_cookie())
        .finish())
}
