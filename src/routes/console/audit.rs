//! The audit log page, with filters by action, actor and user.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Chrome, Pager, query, render, when};
use crate::domain::user::UserId;
use crate::routes::errors::PageError;
use crate::routes::extractors::ConsoleSession;
use crate::state::AppState;
use crate::store::{AuditEntry, AuditFilter};

const PER_PAGE: u32 = 50;

/// The actions an admin may filter on.
const ACTIONS: &[&str] = &[
    "user_banned",
    "user_unbanned",
    "user_modified",
    "user_signedup",
    "user_invited",
    "user_deleted",
    "login",
    "logout",
    "token_revoked",
    "user_recovery_requested",
    "invite_accepted",
    "token_refreshed",
    "user_confirmation_requested",
    "ably_tokens_revoked",
    "ably_revocation_failed",
    "ably_token_issued",
    "throttle_cleared",
];

pub struct AuditRow {
    pub when: String,
    pub when_iso: String,
    pub action: String,
    pub actor: String,
    pub details: String,
}

/// Display-ready rows: the target user and any reason or error, never raw JSON.
pub fn audit_rows(entries: &[AuditEntry]) -> Vec<AuditRow> {
    entries
        .iter()
        .map(|e| {
            let mut details = Vec::new();
            for (key, label) in [
                ("user_email", ""),
                ("reason", "reason: "),
                ("banned_until", "until "),
                ("error", "error: "),
                ("provider", "via "),
                ("throttle", "throttle: "),
                ("subject", "for "),
            ] {
                if let Some(value) = e.traits.get(key).and_then(|v| v.as_str()) {
                    // Times read the same as the When column.
                    let value = match key {
                        "banned_until" if value.len() >= 16 => {
                            format!("{} {} UTC", &value[..10], &value[11..16])
                        }
                        _ => value.to_owned(),
                    };
                    details.push(format!("{label}{value}"));
                }
            }
            AuditRow {
                when: when(Some(e.created_at)),
                when_iso: e.created_at.to_rfc3339(),
                action: e.action.clone(),
                actor: e.actor_email.clone(),
                details: details.join(" · "),
            }
        })
        .collect()
}

struct ActionOption {
    value: &'static str,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Option<Chrome>,
    section: &'static str,
    actions: Vec<ActionOption>,
    actor: String,
    user: String,
    audit: Vec<AuditRow>,
    total: i64,
    pager: Pager,
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    user: String,
    #[serde(default)]
    page: Option<u32>,
}

pub async fn audit(
    state: web::Data<AppState>,
    session: ConsoleSession,
    params: web::Query<AuditQuery>,
) -> Result<HttpResponse, PageError> {
    let params = params.into_inner();
    let action = ACTIONS.iter().copied().find(|a| *a == params.action);
    let actor: String = params.actor.trim().chars().take(200).collect();
    // A user filter that is not a user id filters nothing (the field shows empty again).
    let user_id = UserId::parse(params.user.trim()).ok();
    let user = user_id.map(|u| u.to_string()).unwrap_or_default();
    let page = params.page.unwrap_or(1).max(1);
    let filter = AuditFilter::Combined {
        author: Some(actor.clone()).filter(|a| !a.is_empty()),
        action: action.map(str::to_owned),
        user: user_id,
    };
    let result = crate::services::audit::list(&state, &filter, page, PER_PAGE)
        .await
        .map_err(PageError::internal)?;
    let action_value = action.unwrap_or("");
    let link = |p: u32| {
        format!(
            "/console/audit?{}",
            query(&[
                ("action", action_value),
                ("actor", &actor),
                ("user", &user),
                ("page", &p.to_string())
            ])
        )
    };
    render(&AuditPage {
        chrome: Chrome::of(&session),
        section: "audit",
        actions: ACTIONS
            .iter()
            .map(|a| ActionOption {
                value: a,
                selected: Some(*a) == action,
            })
            .collect(),
        pager: Pager::new(page, PER_PAGE, result.total, link),
        actor,
        user,
        audit: audit_rows(&result.entries),
        total: result.total,
    })
}
