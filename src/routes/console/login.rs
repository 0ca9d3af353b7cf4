//! `GET|POST /console/login` and `POST /console/logout`.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Chrome, redirect, render};
use crate::domain::one_time_token::SecretToken;
use crate::routes::errors::PageError;
use crate::routes::extractors::{
    CONSOLE_COOKIE, ConsoleSession, client_ip, console_cookie, request_origin,
};
use crate::services::console_session::{self, ABSOLUTE_TIMEOUT, ConsoleLoginError};
use crate::services::mfa;
use crate::services::throttle::{self, Limit};
use crate::state::AppState;

/// Before there is a session, the login form's CSRF token is a double-submit cookie.
pub(super) const LOGIN_CSRF_COOKIE: &str = "chipflap_login_csrf";

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    chrome: Option<Chrome>,
    section: &'static str,
    login_csrf: String,
    email: String,
    error: Option<&'static str>,
}

fn login_page(
    state: &AppState,
    email: String,
    error: Option<&'static str>,
) -> Result<HttpResponse, PageError> {
    with_login_csrf(state, |login_csrf| LoginPage {
        chrome: None,
        section: "",
        login_csrf,
        email,
        error,
    })
}

/// A page shown before any session exists (the login form, its second step): a fresh CSRF
/// token goes into the page (`page` receives it) and into a Strict cookie the form must match.
pub(super) fn with_login_csrf<T: Template>(
    state: &AppState,
    page: impl FnOnce(String) -> T,
) -> Result<HttpResponse, PageError> {
    let csrf = SecretToken::generate();
    let mut response = render(&page(csrf.expose().to_owned()))?;
    response
        .add_cookie(&strict_cookie(
            state,
            LOGIN_CSRF_COOKIE,
            csrf.expose(),
            "/console/login",
        ))
        .map_err(PageError::internal)?;
    Ok(response)
}

pub async fn login_form(state: web::Data<AppState>) -> Result<HttpResponse, PageError> {
    login_page(&state, String::new(), None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

pub async fn login(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.into_inner();
    if !login_csrf_matches(&state, &request, &form.csrf) {
        return login_page(
            &state,
            form.email,
            Some("The form expired. Please try again."),
        );
    }
    // The password check's place in the hashing engine before the throttle's write (as
    // `POST /token`): a busy server answers at once and writes nothing.
    let slot = match state.hasher.reserve() {
        Ok(slot) => slot,
        Err(crate::auth::password_hasher::HashError::Busy) => return Err(PageError::Busy),
        Err(e) => return Err(PageError::internal(e)),
    };
    let ip = client_ip(&request, &state.settings);
    throttle::check(&state, Limit::ConsoleLogin, &ip).await?;
    let origin = request_origin(&request, &state.settings);
    let checked = console_session::authenticate(&state, slot, &form.email, &form.password, &origin);
    match checked.await {
        Ok(admin)
            if mfa::has_verified_factor(&state, admin.id)
                .await
                .map_err(PageError::internal)? =>
        {
            // The password was right; the session starts only with a code (README "Multi-factor
            // authentication").
            let pending = mfa::console_first_step(&state, &admin)
                .await
                .map_err(PageError::internal)?;
            let mut response = redirect(super::mfa::SECOND_STEP_PATH);
            response
                .add_cookie(&strict_cookie(
                    &state,
                    super::mfa::PENDING_COOKIE,
                    pending.expose(),
                    "/console/login",
                ))
                .map_err(PageError::internal)?;
            Ok(response)
        }
        Ok(admin) => {
            end_presented_session(&state, &request).await?;
            let token = console_session::start(&state, &admin, &origin)
                .await
                .map_err(PageError::internal)?;
            let mut response = redirect("/console/users");
            response
                .add_cookie(&strict_cookie(
                    &state,
                    CONSOLE_COOKIE,
                    token.expose(),
                    "/console",
                ))
                .map_err(PageError::internal)?;
            Ok(response)
        }
        Err(ConsoleLoginError::InvalidCredentials) => login_page(
            &state,
            form.email,
            Some("Wrong email or password, or this account is not an admin."),
        ),
        Err(ConsoleLoginError::RateLimited(wait)) => Err(PageError::TooManyRequests(wait)),
        Err(ConsoleLoginError::Busy) => Err(PageError::Busy),
        Err(ConsoleLoginError::Unexpected(e)) => Err(PageError::internal(e)),
    }
}

/// Whether `presented` is the login-CSRF token of this browser's cookie (constant time).
pub(super) fn login_csrf_matches(state: &AppState, request: &HttpRequest, presented: &str) -> bool {
    let expected = request
        .cookie(&console_cookie(&state.settings, LOGIN_CSRF_COOKIE, "/console/login").0)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Ends the console session whose cookie came with a login, before the new one starts: a login
/// always gets a fresh session, so a planted or stale cookie is never carried into it (session
/// fixation, ASVS 5.0 V7.2.4).
pub(super) async fn end_presented_session(
    state: &AppState,
    request: &HttpRequest,
) -> Result<(), PageError> {
    let (cookie_name, _) = console_cookie(&state.settings, CONSOLE_COOKIE, "/console");
    if let Some(previous) = request.cookie(&cookie_name) {
        console_session::logout(state, &SecretToken::presented(previous.value()))
            .await
            .map_err(PageError::internal)?;
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn logout(
    state: web::Data<AppState>,
    session: ConsoleSession,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    console_session::logout(&state, &session.token)
        .await
        .map_err(PageError::internal)?;
    let mut gone = strict_cookie(&state, CONSOLE_COOKIE, "", "/console");
    gone.make_removal();
    let mut response = redirect("/console/login");
    response.add_cookie(&gone).map_err(PageError::internal)?;
    Ok(response)
}

/// HttpOnly, SameSite=Strict, scoped to the console; `Secure` and `__Host-` prefixed behind
/// https (DESIGN §7, `console_cookie`).
pub(super) fn strict_cookie(
    state: &AppState,
    name: &'static str,
    value: &str,
    path: &'static str,
) -> Cookie<'static> {
    let (name, path) = console_cookie(&state.settings, name, path);
    Cookie::build(name, value.to_owned())
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.settings.secure_cookies())
        .max_age(actix_web::cookie::time::Duration::seconds(
            i64::try_from(ABSOLUTE_TIMEOUT.as_secs()).unwrap_or(43_200),
        ))
        .finish()
}
