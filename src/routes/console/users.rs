//! The users pages: list with search and filters, one user, and every action on a user.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::audit::{AuditRow, audit_rows};
use super::login::CsrfForm;
use super::{Chrome, Notice, Pager, full_name, query, redirect, render, status_of, when};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::has_banned_role;
use crate::domain::user::{User, UserId};
use crate::routes::errors::PageError;
use crate::routes::extractors::ConsoleSession;
use crate::services::Actor;
use crate::services::admin_users::{
    self, AblyRevocation, AdminUserError, BanChange, Cursor, ListPosition, UserChanges, UserQuery,
    UserStatus, UserTotal,
};
use crate::state::AppState;

const PER_PAGE: u32 = 50;
/// A list counts its users up to this many and then shows "more than 10,000" (GitHub's way):
/// counting every match of a common search at 1,000,000 users reads every one of them.
const COUNT_CAP: u32 = 10_000;

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    page: Option<u32>,
    /// The next page's start: the last user shown, as [`cursor_of`] writes it.
    #[serde(default)]
    after: Option<String>,
    /// The previous page's start: the first user shown.
    #[serde(default)]
    before: Option<String>,
}

/// A user's place in list order as a link carries it: `<created_at unix seconds>.<id>`. The
/// next and previous links start from it with an index seek, so walking page after page never
/// skips over the users of the pages before (an offset costs one index step per user).
fn cursor_of(user: &User) -> String {
    format!("{}.{}", user.created_at.unix(), user.id)
}

fn parse_cursor(text: &str) -> Result<ListPosition, PageError> {
    let invalid = || PageError::BadRequest("That page link is not valid.".into());
    let (seconds, id) = text.split_once('.').ok_or_else(invalid)?;
    Ok(ListPosition {
        created_at: Timestamp::from_unix(seconds.parse().map_err(|_| invalid())?),
        id: UserId::parse(id).map_err(|_| invalid())?,
    })
}

struct UserRow {
    id: UserId,
    email: String,
    name: String,
    status_label: &'static str,
    status_class: &'static str,
    roles: String,
    created: String,
    created_iso: String,
}

struct FilterLink {
    label: &'static str,
    url: String,
    active: bool,
}

#[derive(Template)]
#[template(path = "console/users/list.html")]
struct UsersPage {
    chrome: Option<Chrome>,
    section: &'static str,
    q: String,
    status: &'static str,
    filters: Vec<FilterLink>,
    rows: Vec<UserRow>,
    total: i64,
    /// `total` is a cap the count passed.
    more_than: bool,
    pager: Pager,
}

const FILTERS: [(&str, &str, UserStatus); 4] = [
    ("all", "All", UserStatus::All),
    ("unconfirmed", "Unconfirmed", UserStatus::Unconfirmed),
    ("banned", "Banned", UserStatus::Banned),
    ("admins", "Admins", UserStatus::Admins),
];

pub async fn list(
    state: web::Data<AppState>,
    session: ConsoleSession,
    params: web::Query<ListQuery>,
) -> Result<HttpResponse, PageError> {
    let params = params.into_inner();
    let q = params.q.trim().chars().take(200).collect::<String>();
    let (status_key, _, status) = FILTERS
        .iter()
        .copied()
        .find(|(key, _, _)| *key == params.status)
        .unwrap_or(FILTERS[0]);
    let page = params.page.unwrap_or(1).max(1);
    let from = match (params.after.as_deref(), params.before.as_deref()) {
        (None, None) => None,
        (Some(after), None) => Some(Cursor::After(parse_cursor(after)?)),
        (None, Some(before)) => Some(Cursor::Before(parse_cursor(before)?)),
        (Some(_), Some(_)) => {
            return Err(PageError::BadRequest(
                "A page link names either the users after a position or those before it.".into(),
            ));
        }
    };
    let result = admin_users::list_users(
        &state,
        &UserQuery {
            aud: state.settings.jwt.aud.clone(),
            filter: Some(q.clone()),
            status,
            ascending: false,
            page,
            per_page: PER_PAGE,
            from,
            count_cap: Some(COUNT_CAP),
        },
    )
    .await
    .map_err(page_error)?;
    let now = state.clock.now();
    let admin_group = &state.settings.jwt.admin_group;
    let rows = result
        .users
        .iter()
        .map(|u| {
            let (status_label, status_class) = status_of(u, now, admin_group);
            UserRow {
                id: u.id,
                email: u.email.clone(),
                name: full_name(u),
                status_label,
                status_class,
                roles: match u.roles() {
                    roles if roles.is_empty() => "—".to_owned(),
                    roles => roles.join(", "),
                },
                created: when(Some(u.created_at)),
                created_iso: u.created_at.to_rfc3339(),
            }
        })
        .collect();
    let link = |status: &str, page: u32, cursor: Option<(&str, String)>| {
        let page = page.to_string();
        let mut pairs = vec![
            ("q", q.as_str()),
            ("status", status),
            ("page", page.as_str()),
        ];
        if let Some((key, value)) = &cursor {
            pairs.push((key, value.as_str()));
        }
        format!("/console/users?{}", query(&pairs))
    };
    let filters = FILTERS
        .iter()
        .map(|(key, label, _)| FilterLink {
            label,
            url: link(key, 1, None),
            active: *key == status_key,
        })
        .collect();
    // Next and previous start from the last and first user shown; page 1 is its plain link.
    let prev = (result.earlier && page > 1).then(|| match result.users.first() {
        Some(first) if page > 2 => link(status_key, page - 1, Some(("before", cursor_of(first)))),
        _ => link(status_key, 1, None),
    });
    let next = result.more.then(|| {
        result.users.last().map_or_else(
            || link(status_key, page + 1, None),
            |last| link(status_key, page + 1, Some(("after", cursor_of(last)))),
        )
    });
    let pages = match result.total {
        UserTotal::Exact(total) => {
            let per = i64::from(PER_PAGE);
            u32::try_from(((total + per - 1) / per).max(1)).unwrap_or(u32::MAX)
        }
        UserTotal::MoreThan(_) => 0,
    };
    render(&UsersPage {
        chrome: Chrome::of(&session),
        section: "users",
        pager: Pager {
            page,
            pages,
            prev,
            next,
        },
        q,
        status: status_key,
        filters,
        rows,
        total: result.total.count(),
        more_than: matches!(result.total, UserTotal::MoreThan(_)),
    })
}

struct UserView {
    id: UserId,
    email: String,
    name: String,
    role: String,
    roles: String,
    roles_input: String,
    confirmed: String,
    is_confirmed: bool,
    banned: bool,
    banned_until: String,
    last_sign_in: String,
    created: String,
    new_email: Option<String>,
    status_label: &'static str,
    status_class: &'static str,
    app_metadata: String,
    user_metadata: String,
}

struct SessionRow {
    started: String,
    last_refreshed: String,
}

struct AblyStatus {
    ok: bool,
    text: String,
}

#[derive(Template)]
#[template(path = "console/users/detail.html")]
struct UserDetailPage {
    chrome: Option<Chrome>,
    section: &'static str,
    user: UserView,
    notice: Option<Notice>,
    ably: Option<AblyStatus>,
    sessions: Vec<SessionRow>,
    audit: Vec<AuditRow>,
    /// Verified TOTP factors (README "Multi-factor authentication").
    mfa_factors: usize,
}

#[derive(Deserialize)]
pub struct DetailQuery {
    #[serde(default)]
    done: String,
}

fn parse_id(path: &str) -> Result<UserId, PageError> {
    UserId::parse(path).map_err(|_| PageError::NotFound)
}

/// What every action form starts with: the CSRF check, the target user's id, and the admin
/// as the actor the audit log records.
fn action_target(
    state: &AppState,
    session: &ConsoleSession,
    path: &str,
    csrf: &str,
) -> Result<(UserId, Actor), PageError> {
    session.check_csrf(state, csrf)?;
    Ok((parse_id(path)?, Actor::user(&session.admin)))
}

fn page_error(e: AdminUserError) -> PageError {
    match e {
        AdminUserError::NotFound => PageError::NotFound,
        AdminUserError::Invalid(v) => PageError::BadRequest(v.reason),
        AdminUserError::EmailTaken => {
            PageError::BadRequest("Email address already registered by another user".into())
        }
        AdminUserError::Busy => PageError::Busy,
        AdminUserError::Unexpected(e) => PageError::internal(e),
    }
}

/// The messages behind `?done=…` after each action.
fn notice_for(done: &str) -> Option<Notice> {
    let (kind, text) = match done {
        "banned" => ("ok", "The user is banned and their sessions are ended."),
        "unbanned" => ("ok", "The ban is lifted. The user can log in again."),
        "confirmed" => ("ok", "The email address is confirmed."),
        "confirmation-sent" => ("ok", "A new confirmation link is on its way."),
        "recovery-sent" => ("ok", "A password recovery link is on its way."),
        "roles" => ("ok", "Roles saved."),
        "sessions-ended" => ("ok", "Every session of this user has ended."),
        "mfa-reset" => (
            "ok",
            "Two-step login removed: the user logs in with the password and can set it up again.",
        ),
        "mail-failed" => (
            "error",
            "The mail could not be sent; nothing was changed. The server log has the details.",
        ),
        _ => return None,
    };
    Some(Notice {
        kind,
        text: text.to_owned(),
    })
}

pub async fn detail(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    params: web::Query<DetailQuery>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path)?;
    let user = admin_users::get_user(&state, id)
        .await
        .map_err(page_error)?;
    let details = admin_users::user_details(&state, id)
        .await
        .map_err(page_error)?;
    let now = state.clock.now();
    let banned = user.is_banned(now);
    let (status_label, status_class) = status_of(&user, now, &state.settings.jwt.admin_group);
    let roles = user.roles();
    let ably = match details.ably_revocation {
        _ if !banned => None,
        AblyRevocation::NotApplicable => None,
        AblyRevocation::Pending => Some(AblyStatus {
            ok: true,
            text: "Revoking the live Ably tokens… reload to see how it went.".into(),
        }),
        AblyRevocation::Revoked(at) => Some(AblyStatus {
            ok: true,
            text: format!("Live Ably tokens were revoked at {}.", when(Some(at))),
        }),
        AblyRevocation::Failed(at, error) => Some(AblyStatus {
            ok: false,
            text: format!(
                "Revoking the live Ably tokens failed at {} ({error}). The ban stands; tokens already issued expire on their own.",
                when(Some(at))
            ),
        }),
    };
    let view = UserView {
        id: user.id,
        email: user.email.clone(),
        name: full_name(&user),
        role: if user.role.is_empty() {
            "—".into()
        } else {
            user.role.clone()
        },
        roles: if roles.is_empty() {
            "—".into()
        } else {
            roles.join(", ")
        },
        roles_input: roles.join(", "),
        confirmed: when(user.confirmed_at),
        is_confirmed: user.is_confirmed(),
        banned,
        // A banned role outlasts any date: it holds until someone removes it.
        banned_until: if !banned {
            "—".into()
        } else if has_banned_role(&user.app_metadata) {
            "until unbanned (role)".into()
        } else {
            when(user.banned_until)
        },
        last_sign_in: when(user.last_sign_in_at),
        created: when(Some(user.created_at)),
        new_email: user.new_email.clone(),
        status_label,
        status_class,
        app_metadata: serde_json::to_string_pretty(&user.app_metadata).unwrap_or_default(),
        user_metadata: serde_json::to_string_pretty(&user.user_metadata).unwrap_or_default(),
    };
    render(&UserDetailPage {
        chrome: Chrome::of(&session),
        section: "users",
        user: view,
        notice: notice_for(&params.done),
        ably,
        sessions: details
            .sessions
            .iter()
            .map(|s| SessionRow {
                started: when(Some(s.created_at)),
                last_refreshed: when(Some(s.refreshed_at)),
            })
            .collect(),
        audit: audit_rows(&details.recent_activity),
        mfa_factors: crate::services::mfa::list_factors(&state, id)
            .await
            .map_err(PageError::internal)?
            .iter()
            .filter(|f| f.is_verified())
            .count(),
    })
}

pub(super) fn back(id: UserId, done: &str) -> HttpResponse {
    redirect(&format!("/console/users/{id}?done={done}"))
}

#[derive(Deserialize)]
pub struct BanForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    duration: String,
    #[serde(default)]
    reason: String,
}

pub async fn ban(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<BanForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    let duration = match form.duration.as_str() {
        "permanent" => None,
        text => match BanChange::parse(text) {
            Ok(BanChange::For(d)) => Some(d),
            _ => {
                return Err(PageError::BadRequest(
                    "Choose how long the ban lasts.".into(),
                ));
            }
        },
    };
    let reason =
        Some(form.reason.trim().chars().take(500).collect::<String>()).filter(|r| !r.is_empty());
    admin_users::ban(&state, &actor, id, duration, reason)
        .await
        .map_err(page_error)?;
    Ok(back(id, "banned"))
}

pub async fn unban(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    admin_users::unban(&state, &actor, id)
        .await
        .map_err(page_error)?;
    Ok(back(id, "unbanned"))
}

pub async fn confirm(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    let changes = UserChanges {
        confirm: true,
        ..UserChanges::default()
    };
    admin_users::update_user(&state, &actor, id, changes)
        .await
        .map_err(page_error)?;
    Ok(back(id, "confirmed"))
}

pub async fn resend_confirmation(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    match admin_users::resend_confirmation(&state, &actor, id).await {
        Ok(()) => Ok(back(id, "confirmation-sent")),
        Err(AdminUserError::Unexpected(e)) => {
            tracing::error!(error = ?e, "console: confirmation mail failed");
            Ok(back(id, "mail-failed"))
        }
        Err(e) => Err(page_error(e)),
    }
}

pub async fn send_recovery(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    let user = admin_users::get_user(&state, id)
        .await
        .map_err(page_error)?;
    match crate::services::recover::deliver_recovery(
        &state,
        &actor,
        &user,
        crate::services::recover::Throttle::Skip,
    )
    .await
    {
        Ok(()) => Ok(back(id, "recovery-sent")),
        Err(e) => {
            tracing::error!(error = ?e, "console: recovery mail failed");
            Ok(back(id, "mail-failed"))
        }
    }
}

#[derive(Deserialize)]
pub struct RolesForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    roles: String,
}

pub async fn roles(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<RolesForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    let mut roles: Vec<String> = Vec::new();
    for role in form
        .roles
        .split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        if role.chars().count() > 100 {
            return Err(PageError::BadRequest(
                "A role is at most 100 characters.".into(),
            ));
        }
        if !roles.iter().any(|r| r == role) {
            roles.push(role.to_owned());
        }
    }
    let mut app = crate::domain::metadata::Metadata::new();
    app.insert("roles".into(), serde_json::json!(roles));
    let changes = UserChanges {
        app_metadata: Some(app),
        ..UserChanges::default()
    };
    admin_users::update_user(&state, &actor, id, changes)
        .await
        .map_err(page_error)?;
    Ok(back(id, "roles"))
}

pub async fn end_sessions(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    admin_users::end_sessions(&state, &actor, id)
        .await
        .map_err(page_error)?;
    Ok(back(id, "sessions-ended"))
}

#[derive(Template)]
#[template(path = "console/users/delete.html")]
struct DeletePage {
    chrome: Option<Chrome>,
    section: &'static str,
    id: UserId,
    email: String,
}

pub async fn delete_form(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let id = parse_id(&path)?;
    let user = admin_users::get_user(&state, id)
        .await
        .map_err(page_error)?;
    render(&DeletePage {
        chrome: Chrome::of(&session),
        section: "users",
        id: user.id,
        email: user.email,
    })
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm_email: String,
}

/// The confirmation step: the admin types the address of the user being deleted.
pub async fn delete(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, PageError> {
    let (id, actor) = action_target(&state, &session, &path, &form.csrf)?;
    let user = admin_users::get_user(&state, id)
        .await
        .map_err(page_error)?;
    use crate::domain::email_address::mailbox_key;
    if mailbox_key(&form.confirm_email) != mailbox_key(&user.email) {
        return Err(PageError::BadRequest(
            "The address typed does not match; nothing was deleted.".into(),
        ));
    }
    if user.id == session.admin.id {
        return Err(PageError::BadRequest(
            "You cannot delete your own account from the console.".into(),
        ));
    }
    admin_users::delete_user(&state, &actor, id)
        .await
        .map_err(page_error)?;
    Ok(redirect(&format!(
        "/console/users?{}",
        query(&[("deleted", &user.email)])
    )))
}
