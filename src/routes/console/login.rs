//! `GET|POST /console/login` and `POST /console/logout`.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::{Chrome, redirect, render};
use crate::auth::extractors::{
    CONSOLE_COOKIE, ConsoleSession, client_ip, console_cookie, request_origin,
};
use crate::domain::one_time_token::SecretToken;
use crate::routes::errors::PageError;
use crate::services::console_session::{self, ABSOLUTE_TIMEOUT, ConsoleLoginError};
use crate::services::throttle::{self, Limit};
use crate::state::AppState;

/// Before there is a session, the login form's CSRF token is a double-submit cookie.
const LOGIN_CSRF_COOKIE: &str = "chipflap_login_csrf";

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
    let csrf = SecretToken::generate();
    let mut response = render(&LoginPage {
        chrome: None,
        section: "",
        login_csrf: csrf.expose().to_owned(),
        email,
        error,
    })?;
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
    let expected = request
        .cookie(&console_cookie(&state.settings, LOGIN_CSRF_COOKIE, "/console/login").0)
        .map(|c| c.value().to_owned())
        .unwrap_or_default();
    if expected.is_empty() || !bool::from(expected.as_bytes().ct_eq(form.csrf.as_bytes())) {
        return login_page(
            &state,
            form.email,
            Some("The form expired. Please try again."),
        );
    }
    let ip = client_ip(&request, &state.settings);
    throttle::check(&state, Limit::ConsoleLogin, &ip).await?;
    let origin = request_origin(&request, &state.settings);
    match console_session::login(&state, &form.email, &form.password, &origin).await {
        Ok((token, _)) => {
            // A console session presented with the login ends here: a login always gets a
            // fresh session, so a planted or stale cookie is never carried into it (ASVS V7.2.4).
            let (cookie_name, _) = console_cookie(&state.settings, CONSOLE_COOKIE, "/console");
            if let Some(previous) = request.cookie(&cookie_name) {
                let previous = SecretToken::presented(previous.value());
                console_session::logout(&state, &previous)
                    .await
                    .map_err(PageError::internal)?;
            }
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
        Err(ConsoleLoginError::Unexpected(e)) => Err(PageError::internal(e)),
    }
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
fn strict_cookie(
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
