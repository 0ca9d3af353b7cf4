//! Only configured audiences: `X-JWT-AUD` naming any other answers 400 on every endpoint.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use super::errors::AblyError;
use super::errors::{HttpError, OAuthError};
use crate::state::AppState;

/// What a client is told when `X-JWT-AUD` names an audience the server does not serve.
pub const UNKNOWN_AUDIENCE: &str = "X-JWT-AUD names an audience this server does not serve (the audiences are GOTRUE_JWT_AUD and GOTRUE_JWT_ALLOWED_AUDIENCES)";

/// Whether the request's `X-JWT-AUD`, if any, names a configured audience. A header that is
/// absent or blank means "the default audience" (GoTrue's reading); one that is not visible
/// ASCII can name no configured audience.
fn names_configured_audience(request: &ServiceRequest) -> bool {
    let Some(state) = request.app_data::<web::Data<AppState>>() else {
        return false;
    };
    let mut values = request.headers().get_all("x-jwt-aud");
    values.all(|value| match value.to_str() {
        Ok(aud) => {
            let aud = aud.trim();
            aud.is_empty() || state.settings.jwt.serves_audience(aud)
        }
        Err(_) => false,
    })
}

/// For the GoTrue API: GoTrue's error shape, and OAuth's on `/token`.
pub async fn identity(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !names_configured_audience(&request) {
        if request.path().ends_with("/token") {
            return Err(OAuthError::new("invalid_request", Some(UNKNOWN_AUDIENCE)).into());
        }
        return Err(HttpError::bad_request(UNKNOWN_AUDIENCE).into());
    }
    next.call(request).await
}

/// For the Ably token endpoint: Ably's error shape.
pub async fn functions(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !names_configured_audience(&request) {
        return Err(AblyError::bad_request(UNKNOWN_AUDIENCE).into());
    }
    next.call(request).await
}
