//! The admin console at `/console/`: server-rendered pages, no JavaScript (DESIGN §7). Every
//! response carries a strict CSP and frame/referrer headers; every form carries a CSRF token.

mod audit;
mod invite;
mod login;
mod mfa;
mod sessions;
mod throttles;
mod users;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::errors::PageError;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::User;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/console")
            .wrap(security_headers())
            // A malformed form or query renders the console's error page, not actix's text.
            .app_data(web::FormConfig::default().error_handler(|e, _| {
                PageError::BadRequest(format!("The form could not be read: {e}")).into()
            }))
            .app_data(web::QueryConfig::default().error_handler(|e, _| {
                PageError::BadRequest(format!("The address could not be read: {e}")).into()
            }))
            .route("", web::get().to(home))
            .route("/", web::get().to(home))
            .route("/static/console.css", web::get().to(stylesheet))
            .route("/login", web::get().to(login::login_form))
            .route("/login", web::post().to(login::login))
            .route("/login/mfa", web::get().to(mfa::second_step_form))
            .route("/login/mfa", web::post().to(mfa::second_step))
            .route("/logout", web::post().to(login::logout))
            .route("/mfa", web::get().to(mfa::show))
            .route("/mfa/enroll", web::post().to(mfa::enroll))
            .route("/mfa/confirm", web::post().to(mfa::confirm))
            .route("/mfa/{id}/delete", web::post().to(mfa::remove))
            .route("/users", web::get().to(users::list))
            .route("/users/{id}", web::get().to(users::detail))
            .route("/users/{id}/ban", web::post().to(users::ban))
            .route("/users/{id}/unban", web::post().to(users::unban))
            .route("/users/{id}/confirm", web::post().to(users::confirm))
            .route(
                "/users/{id}/resend-confirmation",
                web::post().to(users::resend_confirmation),
            )
            .route(
                "/users/{id}/send-recovery",
                web::post().to(users::send_recovery),
            )
            .route("/users/{id}/roles", web::post().to(users::roles))
            .route(
                "/users/{id}/end-sessions",
                web::post().to(users::end_sessions),
            )
            .route("/users/{id}/reset-mfa", web::post().to(mfa::reset_user))
            .route("/users/{id}/delete", web::get().to(users::delete_form))
            .route("/users/{id}/delete", web::post().to(users::delete))
            .route("/invite", web::get().to(invite::invite_form))
            .route("/invite", web::post().to(invite::invite))
            .route("/audit", web::get().to(audit::audit))
            .route("/sessions", web::get().to(sessions::sessions))
            .route("/sessions/end-all", web::post().to(sessions::end_all))
            .route("/throttles", web::get().to(throttles::throttles))
            .route("/throttles/clear", web::post().to(throttles::clear))
            .default_service(web::to(|| async {
                Err::<HttpResponse, _>(PageError::NotFound)
            })),
    );
}

fn security_headers() -> DefaultHeaders {
    let headers: [(&str, &str); 6] = [
        (
            "content-security-policy",
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("x-content-type-options", "nosniff"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
    ];
    headers
        .into_iter()
        .fold(DefaultHeaders::new(), |acc, (name, value)| {
            acc.add((
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            ))
        })
}

async fn home() -> HttpResponse {
    redirect("/console/users")
}

/// Embedded, so the binary serves its console wherever it runs.
async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=3600"))
        .body(include_str!("../../../static/console.css"))
}

/// What every logged-in page shows around its content: who is logged in, and the CSRF token
/// the logout form (and every other form) carries.
pub struct Chrome {
    pub admin_email: String,
    pub csrf: String,
}

impl Chrome {
    /// The chrome of a logged-in page (login and error pages have none).
    fn of(session: &crate::routes::extractors::ConsoleSession) -> Option<Chrome> {
        Some(Chrome {
            admin_email: session.admin.email.clone(),
            csrf: session.csrf.clone(),
        })
    }
}

/// A one-line message after an action (`?done=…` on the redirect).
pub struct Notice {
    pub kind: &'static str,
    pub text: String,
}

pub struct Pager {
    pub page: u32,
    /// 0 when the total is not known (only "more than" it).
    pub pages: u32,
    pub prev: Option<String>,
    pub next: Option<String>,
}

impl Pager {
    /// `url(page)` builds the link for a page number.
    fn new(page: u32, per_page: u32, total: i64, url: impl Fn(u32) -> String) -> Self {
        let per = i64::from(per_page.max(1));
        let pages = u32::try_from(((total + per - 1) / per).max(1)).unwrap_or(u32::MAX);
        Pager {
            page,
            pages,
            prev: (page > 1).then(|| url(page - 1)),
            next: (page < pages).then(|| url(page + 1)),
        }
    }
}

fn render(page: &impl Template) -> Result<HttpResponse, PageError> {
    let body = page.render().map_err(PageError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body))
}

/// 303 See Other: after a POST, the browser GETs the target.
fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", location))
        .finish()
}

/// `2027-01-15 08:00 UTC`, or "—".
fn when(t: Option<Timestamp>) -> String {
    let Some(t) = t else {
        return "—".to_owned();
    };
    let iso = t.to_rfc3339();
    match (iso.get(..10), iso.get(11..16)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => iso,
    }
}

/// The label and CSS class of a user's state, most important first.
fn status_of(user: &User, now: Timestamp, admin_group: &str) -> (&'static str, &'static str) {
    if user.is_banned(now) {
        ("Banned", "banned")
    } else if user.invited_at.is_some() && user.password_hash.is_none() {
        ("Invited", "invited")
    } else if !user.is_confirmed() {
        ("Unconfirmed", "unconfirmed")
    } else if user.is_admin(admin_group) {
        ("Admin", "admin")
    } else {
        ("Active", "active")
    }
}

fn full_name(user: &User) -> String {
    user.user_metadata
        .get("full_name")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_owned()
}

/// Query strings for links built from user input.
fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}
