//! `GET /console/sessions` and `POST /console/sessions/end-all`: end every session at once.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, Notice, query, redirect, render};
use crate::routes::errors::PageError;
use crate::routes::extractors::ConsoleSession;
use crate::services::Actor;
use crate::services::admin_users;
use crate::state::AppState;

/// What the admin types to confirm; a click alone must not log everyone out.
pub const CONFIRMATION: &str = "end every session";

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    chrome: Option<Chrome>,
    section: &'static str,
    notice: Option<Notice>,
    live: i64,
    confirmation: &'static str,
}

#[derive(Deserialize)]
pub struct SessionsQuery {
    #[serde(default)]
    ended: Option<u64>,
    #[serde(default)]
    console: Option<u64>,
}

pub async fn sessions(
    state: web::Data<AppState>,
    session: ConsoleSession,
    params: web::Query<SessionsQuery>,
) -> Result<HttpResponse, PageError> {
    let live = admin_users::count_unended_sessions(&state)
        .await
        .map_err(PageError::internal)?;
    let notice = params.ended.map(|ended| Notice {
        kind: "ok",
        text: format!(
            "Ended {ended} sessions and {} other console sessions. Every refresh token and \
             access token of them is refused from now on.",
            params.console.unwrap_or(0)
        ),
    });
    render(&SessionsPage {
        chrome: Chrome::of(&session),
        section: "sessions",
        notice,
        live,
        confirmation: CONFIRMATION,
    })
}

#[derive(Deserialize)]
pub struct EndAllForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

/// The confirmation step: the admin types [`CONFIRMATION`]. Their own console session stays.
pub async fn end_all(
    state: web::Data<AppState>,
    session: ConsoleSession,
    form: web::Form<EndAllForm>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    if !form.confirm.trim().eq_ignore_ascii_case(CONFIRMATION) {
        return Err(PageError::BadRequest(format!(
            "Type \"{CONFIRMATION}\" to confirm; no session was ended."
        )));
    }
    let ended = admin_users::end_every_session(
        &state,
        &Actor::user(&session.admin),
        Some(&session.token.digest()),
    )
    .await
    .map_err(PageError::internal)?;
    Ok(redirect(&format!(
        "/console/sessions?{}",
        query(&[
            ("ended", &ended.sessions.to_string()),
            ("console", &ended.console_sessions.to_string()),
        ])
    )))
}
