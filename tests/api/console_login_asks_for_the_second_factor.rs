//! The console: an admin enrolls TOTP from the console; once verified, the login asks for a
//! code as a second step (CSRF, throttled, single-use codes); with
//! `CHIPFLAP_CONSOLE_REQUIRE_MFA` an admin without a factor sees only the enrollment page.

use std::time::Duration;

use reqwest::StatusCode;

use crate::console::{console_login, csrf_in, get_page, login_admin, post_form};
use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with, test_from};
use crate::support::mfa::code_now;
use chipflap::mail::Mailer;

fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    html[from..].split(end).next().unwrap()
}

/// Enrolls and confirms a factor from the console; answers its secret.
async fn enroll_in_console(app: &TestApp) -> String {
    let (status, html) = get_page(app, "/mfa").await;
    assert_eq!(status, 200);
    let csrf = csrf_in(&html);
    let r = post_form(app, "/mfa/enroll", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let html = r.text().await.unwrap();
    let secret = between(&html, "<code class=\"secret\">", "</code>").to_owned();
    assert!(html.contains("otpauth://totp/"));
    assert!(html.contains("src=\"data:image/svg+xml"));
    let factor_id = between(&html, "name=\"factor_id\" value=\"", "\"").to_owned();
    let r = post_form(
        app,
        "/mfa/confirm",
        &[
            ("csrf", &csrf),
            ("factor_id", &factor_id),
            ("code", &code_now(app, &secret)),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("is set up"));
    app.advance(Duration::from_secs(30));
    secret
}

async fn log_out(app: &TestApp) {
    let (_, html) = get_page(app, "/users").await;
    let r = post_form(app, "/logout", &[("csrf", &csrf_in(&html))]).await;
    assert_eq!(r.status(), 303);
}

async fn second_step(app: &TestApp, code: &str) -> reqwest::Response {
    let (status, html) = get_page(app, "/login/mfa").await;
    assert_eq!(status, 200, "{html}");
    post_form(
        app,
        "/login/mfa",
        &[("code", code), ("csrf", &csrf_in(&html))],
    )
    .await
}

#[tokio::test]
async fn an_admin_with_a_verified_factor_needs_a_code_after_the_password() {
    let app = spawn_app().await;
    login_admin(&app).await;
    let secret = enroll_in_console(&app).await;
    log_out(&app).await;

    // The password alone gives no session.
    let r = console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login/mfa");
    let r = app
        .client
        .get(crate::console::console(&app, "/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/console/login");

    // A wrong code is refused, with the form again.
    let right = code_now(&app, &secret);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    let r = second_step(&app, wrong).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("not right"));
    // Without the form's CSRF token, nothing is checked.
    let r = post_form(&app, "/login/mfa", &[("code", &right), ("csrf", "forged")]).await;
    assert!(r.text().await.unwrap().contains("The form expired"));
    // The right code logs in.
    let r = second_step(&app, &right).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/users");
    let (status, _) = get_page(&app, "/users").await;
    assert_eq!(status, 200);

    // The same code cannot log in again (single-use within its window).
    log_out(&app).await;
    let r = console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(r.headers()["location"], "/console/login/mfa");
    let r = second_step(&app, &right).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("already used"));
    // The pending login expires.
    app.advance(Duration::from_secs(301));
    let r = app
        .client
        .get(crate::console::console(&app, "/login/mfa"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/login");
    let r = post_form(
        &app,
        "/login/mfa",
        &[("code", &code_now(&app, &secret)), ("csrf", "x")],
    )
    .await;
    assert_ne!(r.status(), 303, "no session from an expired pending login");
}

#[tokio::test]
async fn an_admin_without_a_factor_logs_in_with_the_password_as_before() {
    let app = spawn_app().await;
    login_admin(&app).await;
    let (status, html) = get_page(&app, "/mfa").await;
    assert_eq!(status, 200);
    assert!(html.contains("no authenticator app"));
}

#[tokio::test]
async fn guessing_the_console_code_is_throttled() {
    let app = spawn_app().await;
    login_admin(&app).await;
    let secret = enroll_in_console(&app).await;
    log_out(&app).await;
    console_login(&app, "boss@example.org", PASSWORD).await;
    let right = code_now(&app, &secret);

    let mut statuses = Vec::new();
    for guess in 0..8 {
        let code = format!("{:06}", (guess * 104_729 + 13) % 1_000_000);
        if code == right {
            continue;
        }
        statuses.push(second_step(&app, &code).await.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // The per-user budget is shared with the API: the right code waits too.
    assert_eq!(second_step(&app, &right).await.status(), 429);
}

#[tokio::test]
async fn with_console_require_mfa_an_admin_without_a_factor_sees_only_enrollment() {
    let app = spawn_app_with(
        |s| s.mfa.console_require_mfa = true,
        Mailer::memory(test_from()),
    )
    .await;
    app.admin_user("boss@example.org").await;
    let r = console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(r.status(), 303);
    for path in ["/users", "/audit", "/throttles", "/invite"] {
        let r = app
            .client
            .get(crate::console::console(&app, path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/console/mfa", "{path}");
    }
    let (status, html) = get_page(&app, "/mfa").await;
    assert_eq!(status, 200);
    assert!(html.contains("requires an authenticator app"));

    enroll_in_console(&app).await;

    let (status, _) = get_page(&app, "/users").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_admin_removes_a_users_lost_authenticator_from_the_console() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();
    crate::support::mfa::enroll_and_verify(&app, token).await;
    let id = app.user_id(token).await;
    login_admin(&app).await;

    let (status, html) = get_page(&app, &format!("/users/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Remove two-step login (1 app)"));
    // Without the CSRF token: refused.
    let r = post_form(
        &app,
        &format!("/users/{id}/reset-mfa"),
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &app,
        &format!("/users/{id}/reset-mfa"),
        &[("csrf", &csrf_in(&html))],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(app.count("mfa_factors").await, 0);
    let (_, html) = get_page(&app, &format!("/users/{id}?done=mfa-reset")).await;
    assert!(html.contains("Two-step login removed"));
    assert!(!html.contains("Remove two-step login ("));
}
