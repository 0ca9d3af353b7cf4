//! `GET /health` and `GET /settings`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

pub async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "name": "GoTrue",
        "description": "GoTrue is a user registration and authentication API",
    }))
}

/// Spec §5.7: no external providers; the widget reads `disable_signup` and `autoconfirm`.
pub async fn settings(state: web::Data<AppState>) -> HttpResponse {
    let signup = &state.settings.signup;
    HttpResponse::Ok().json(json!({
        "external": {
            "bitbucket": false, "github": false, "gitlab": false, "google": false,
            "facebook": false, "email": true, "saml": false,
        },
        "external_labels": {},
        "disable_signup": signup.disabled,
        "autoconfirm": signup.autoconfirm,
    }))
}
