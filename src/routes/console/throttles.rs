//! `GET /console/throttles` (keys currently limited) and `POST /console/throttles/clear`.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, Notice, query, redirect, render};
use crate::routes::errors::PageError;
use crate::routes::extractors::ConsoleSession;
use crate::services::Actor;
use crate::services::mail_links::human_duration;
use crate::services::throttle;
use crate::state::AppState;

/// Rows shown per kind of throttle.
const PER_KIND: i64 = 200;

struct ThrottleRow {
    kind: &'static str,
    subject: String,
    key: String,
    free_in: String,
}

#[derive(Template)]
#[template(path = "console/throttles.html")]
struct ThrottlesPage {
    chrome: Option<Chrome>,
    section: &'static str,
    notice: Option<Notice>,
    rows: Vec<ThrottleRow>,
}

#[derive(Deserialize)]
pub struct ThrottlesQuery {
    #[serde(default)]
    done: String,
    #[serde(default)]
    subject: String,
}

pub async fn throttles(
    state: web::Data<AppState>,
    session: ConsoleSession,
    params: web::Query<ThrottlesQuery>,
) -> Result<HttpResponse, PageError> {
    let limited = throttle::list_limited(&state, PER_KIND)
        .await
        .map_err(PageError::internal)?;
    let rows = limited
        .into_iter()
        .map(|k| ThrottleRow {
            kind: k.limit.label(),
            subject: k.subject,
            key: k.key,
            free_in: human_duration(k.free_in),
        })
        .collect();
    let subject: String = params.subject.chars().take(320).collect();
    let notice = match params.done.as_str() {
        "cleared" => Some(Notice {
            kind: "ok",
            text: format!("Cleared the throttle for {subject}."),
        }),
        "gone" => Some(Notice {
            kind: "ok",
            text: format!("{subject} was no longer throttled."),
        }),
        _ => None,
    };
    render(&ThrottlesPage {
        chrome: Chrome::of(&session),
        section: "throttles",
        notice,
        rows,
    })
}

#[derive(Deserialize)]
pub struct ClearForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
}

pub async fn clear(
    state: web::Data<AppState>,
    session: ConsoleSession,
    form: web::Form<ClearForm>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    let cleared = throttle::clear(&state, &Actor::user(&session.admin), &form.key)
        .await
        .map_err(PageError::internal)?;
    let subject = form.key.split_once(':').map_or("", |(_, s)| s);
    let done = if cleared { "cleared" } else { "gone" };
    Ok(redirect(&format!(
        "/console/throttles?{}",
        query(&[("done", done), ("subject", subject)])
    )))
}
