//! The console's multi-factor pages: the login's second step (`/console/login/mfa`) and an
//! admin's own TOTP enrollment (`/console/mfa`).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;
use uuid::Uuid;

use super::login::{login_csrf_matches, strict_cookie, with_login_csrf};
use super::{Chrome, redirect, render, when};
use crate::domain::mfa::Factor;
use crate::domain::one_time_token::SecretToken;
use crate::domain::user::UserId;
use crate::routes::errors::PageError;
use crate::routes::extractors::{
    CONSOLE_COOKIE, ConsoleSession, client_ip, console_cookie, request_origin,
};
use crate::services::mfa::{self, MfaError};
use crate::services::throttle::{self, Limit};
use crate::state::AppState;

/// The pending login's cookie (HttpOnly, SameSite=Strict, path `/console/login`).
pub const PENDING_COOKIE: &str = "chipflap_console_mfa";
/// Where the login sends an admin with a verified factor.
pub const SECOND_STEP_PATH: &str = "/console/login/mfa";

#[derive(Template)]
#[template(path = "console/login_mfa.html")]
struct SecondStepPage {
    chrome: Option<Chrome>,
    section: &'static str,
    login_csrf: String,
    error: Option<&'static str>,
}

fn second_step_page(
    state: &AppState,
    error: Option<&'static str>,
) -> Result<HttpResponse, PageError> {
    with_login_csrf(state, |login_csrf| SecondStepPage {
        chrome: None,
        section: "",
        login_csrf,
        error,
    })
}

fn pending_of(state: &AppState, request: &HttpRequest) -> Option<SecretToken> {
    request
        .cookie(&console_cookie(&state.settings, PENDING_COOKIE, "/console/login").0)
        .map(|c| SecretToken::presented(c.value()))
}

/// `GET /console/login/mfa`: the code form, while a pending login lives.
pub async fn second_step_form(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let Some(pending) = pending_of(&state, &request) else {
        return Ok(redirect("/console/login"));
    };
    if mfa::console_pending_admin(&state, &pending)
        .await
        .map_err(PageError::internal)?
        .is_none()
    {
        return Ok(redirect("/console/login"));
    }
    second_step_page(&state, None)
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    factor_id: String,
}

/// `POST /console/login/mfa`: a code from the admin's authenticator app starts the session.
/// CSRF as the login form; throttled per client IP like the login, and per account.
pub async fn second_step(
    state: web::Data<AppState>,
    request: HttpRequest,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    if !login_csrf_matches(&state, &request, &form.csrf) {
        return second_step_page(&state, Some("The form expired. Please try again."));
    }
    let Some(pending) = pending_of(&state, &request) else {
        return Ok(redirect("/console/login"));
    };
    throttle::check(
        &state,
        Limit::ConsoleLogin,
        &client_ip(&request, &state.settings),
    )
    .await?;
    let origin = request_origin(&request, &state.settings);
    match mfa::console_second_step(&state, &pending, &form.code, &origin).await {
        Ok(token) => {
            super::login::end_presented_session(&state, &request).await?;
            let mut gone = strict_cookie(&state, PENDING_COOKIE, "", "/console/login");
            gone.make_removal();
            let mut response = redirect("/console/users");
            response.add_cookie(&gone).map_err(PageError::internal)?;
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
        Err(MfaError::InvalidCode) => second_step_page(
            &state,
            Some("That code is not right, or was already used. Wait for the next one."),
        ),
        Err(MfaError::ChallengeNotFound) => Ok(redirect("/console/login")),
        Err(MfaError::RateLimited(wait)) => Err(PageError::TooManyRequests(wait)),
        Err(e) => Err(PageError::internal(anyhow::anyhow!("{e:?}"))),
    }
}

struct FactorRow {
    id: String,
    name: String,
    status: &'static str,
    created: String,
}

impl From<&Factor> for FactorRow {
    fn from(f: &Factor) -> Self {
        FactorRow {
            id: f.id.to_string(),
            name: f.friendly_name.clone().unwrap_or_else(|| "TOTP".to_owned()),
            status: f.status.as_str(),
            created: when(Some(f.created_at)),
        }
    }
}

/// A new factor's secret, shown once.
struct NewFactor {
    id: String,
    secret: String,
    uri: String,
    qr_code: Option<String>,
}

#[derive(Template)]
#[template(path = "console/mfa.html")]
struct MfaPage {
    chrome: Option<Chrome>,
    section: &'static str,
    csrf: String,
    factors: Vec<FactorRow>,
    has_verified: bool,
    required: bool,
    new_factor: Option<NewFactor>,
    error: Option<&'static str>,
    notice: Option<&'static str>,
}

async fn mfa_page(
    state: &AppState,
    session: &ConsoleSession,
    new_factor: Option<NewFactor>,
    error: Option<&'static str>,
    notice: Option<&'static str>,
) -> Result<HttpResponse, PageError> {
    let factors = mfa::list_factors(state, session.admin.id)
        .await
        .map_err(PageError::internal)?;
    render(&MfaPage {
        chrome: Chrome::of(session),
        section: "mfa",
        csrf: session.csrf.clone(),
        has_verified: factors.iter().any(Factor::is_verified),
        factors: factors
            .iter()
            .filter(|f| f.is_verified())
            .map(FactorRow::from)
            .collect(),
        required: state.settings.mfa.console_require_mfa,
        new_factor,
        error,
        notice,
    })
}

/// `GET /console/mfa`: the admin's factors and a button to add one.
pub async fn show(
    state: web::Data<AppState>,
    session: ConsoleSession,
) -> Result<HttpResponse, PageError> {
    mfa_page(&state, &session, None, None, None).await
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// `POST /console/mfa/enroll`: a new factor; the page shows its secret and asks for a code.
pub async fn enroll(
    state: web::Data<AppState>,
    session: ConsoleSession,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    match mfa::console_enroll(&state, &session.admin).await {
        Ok(e) => {
            let new_factor = NewFactor {
                id: e.factor.id.to_string(),
                secret: e.secret,
                uri: e.uri,
                qr_code: e.qr_code,
            };
            let mut response = mfa_page(&state, &session, Some(new_factor), None, None).await?;
            response.headers_mut().insert(
                actix_web::http::header::CACHE_CONTROL,
                actix_web::http::header::HeaderValue::from_static("no-store"),
            );
            Ok(response)
        }
        Err(MfaError::TooManyFactors) => {
            mfa_page(
                &state,
                &session,
                None,
                Some("This account has too many factors: remove one first."),
                None,
            )
            .await
        }
        Err(e) => Err(PageError::internal(anyhow::anyhow!("{e:?}"))),
    }
}

fn factor_id(raw: &str) -> Result<Uuid, PageError> {
    Uuid::parse_str(raw.trim()).map_err(|_| PageError::NotFound)
}

/// `POST /console/mfa/confirm`: a code from the new factor verifies it.
pub async fn confirm(
    state: web::Data<AppState>,
    session: ConsoleSession,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    let id = factor_id(&form.factor_id)?;
    match mfa::console_confirm(&state, &session.admin, id, &form.code).await {
        Ok(()) => mfa_page(
            &state,
            &session,
            None,
            None,
            Some(
                "Your authenticator app is set up: the console will ask for a code at each login.",
            ),
        )
        .await,
        Err(MfaError::InvalidCode) => {
            mfa_page(
                &state,
                &session,
                None,
                Some("That code was not right. Set up the app again and enter a fresh code."),
                None,
            )
            .await
        }
        Err(MfaError::FactorNotFound) => Err(PageError::NotFound),
        Err(MfaError::RateLimited(wait)) => Err(PageError::TooManyRequests(wait)),
        Err(e) => Err(PageError::internal(anyhow::anyhow!("{e:?}"))),
    }
}

/// `POST /console/mfa/{id}/delete`: removes one of the admin's own factors.
pub async fn remove(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    let id = factor_id(&path)?;
    match mfa::console_unenroll(&state, &session.admin, id).await {
        Ok(()) => Ok(redirect("/console/mfa")),
        Err(MfaError::FactorNotFound) => Err(PageError::NotFound),
        Err(e) => Err(PageError::internal(anyhow::anyhow!("{e:?}"))),
    }
}

/// `POST /console/users/{id}/reset-mfa`: removes every factor of a user who lost their
/// authenticator (audited; the sessions they raised fall back to aal1).
pub async fn reset_user(
    state: web::Data<AppState>,
    session: ConsoleSession,
    path: web::Path<String>,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(&state, &form.csrf)?;
    let id = UserId::parse(path.trim()).map_err(|_| PageError::NotFound)?;
    mfa::admin_reset_factors(&state, &crate::services::Actor::user(&session.admin), id)
        .await
        .map_err(|e| PageError::internal(anyhow::anyhow!("{e:?}")))?;
    Ok(super::users::back(id, "mfa-reset"))
}
