//! `GET|POST /console/invite`.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, Notice, render};
use crate::routes::errors::PageError;
use crate::routes::extractors::ConsoleSession;
use crate::services::Actor;
use crate::services::invite::{InviteError, invite as run_invite};
use crate::services::mail_links::human_duration;
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/invite.html")]
struct InvitePage {
    chrome: Option<Chrome>,
    section: &'static str,
    notice: Option<Notice>,
    email: String,
    full_name: String,
    valid_for: String,
}

fn page(
    state: &AppState,
    session: &ConsoleSession,
    notice: Option<Notice>,
    email: String,
    full_name: String,
) -> Result<HttpResponse, PageError> {
    render(&InvitePage {
        chrome: Chrome::of(session),
        section: "invite",
        notice,
        email,
        full_name,
        valid_for: human_duration(state.settings.mailer.invite_max_age),
    })
}

pub async fn invite_form(
    state: web::Data<AppState>,
    session: ConsoleSession,
) -> Result<HttpResponse, PageError> {
    page(&state, &session, None, String::new(), String::new())
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    full_name: String,
}

pub async fn invite(
    state: web::Data<AppState>,
    session: ConsoleSession,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    let form = form.into_inner();
    let name = form.full_name.trim().chars().take(200).collect::<String>();
    let data = (!name.is_empty()).then(|| {
        let mut m = crate::domain::metadata::Metadata::new();
        m.insert("full_name".into(), serde_json::json!(name));
        m
    });
    let actor = Actor::user(&session.admin);
    let failed = |text: String| {
        Some(Notice {
            kind: "error",
            text,
        })
    };
    match run_invite(&state, &actor, &state.settings.jwt.aud, &form.email, data).await {
        Ok(user) => page(
            &state,
            &session,
            Some(Notice {
                kind: "ok",
                text: format!("Invite sent to {}.", user.email),
            }),
            String::new(),
            String::new(),
        ),
        Err(InviteError::Invalid(v)) => page(&state, &session, failed(v.reason), form.email, name),
        Err(InviteError::EmailTaken) => page(
            &state,
            &session,
            failed("This address already has an account.".into()),
            form.email,
            name,
        ),
        Err(InviteError::Mail(e)) => {
            tracing::error!(error = ?e, "console: invite mail failed");
            page(
                &state,
                &session,
                failed("The invite mail could not be sent; no user was created.".into()),
                form.email,
                name,
            )
        }
        Err(InviteError::Unexpected(e)) => Err(PageError::internal(e)),
    }
}
