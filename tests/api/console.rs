//! The admin console: login, sessions, CSRF, pages and every action.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app};

pub fn console(app: &TestApp, path: &str) -> String {
    format!("{}/console{path}", app.base)
}

/// The value of the first `name="csrf"` field in a page.
pub fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no csrf field in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

pub async fn get_page(app: &TestApp, path: &str) -> (StatusCode, String) {
    let r = app.client.get(console(app, path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

/// A console page through another client (a second browser).
pub async fn get_page_with(
    app: &TestApp,
    client: &reqwest::Client,
    path: &str,
) -> (StatusCode, String) {
    let r = client.get(console(app, path)).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

pub async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(console(app, path))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// Logs the test client in as a fresh admin; answers the session's CSRF token.
pub async fn login_admin(app: &TestApp) -> String {
    app.admin_user("boss@example.org").await;
    let r = console_login(app, "boss@example.org", PASSWORD).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/users");
    let (_, html) = get_page(app, "/users").await;
    csrf_in(&html)
}

pub async fn console_login(app: &TestApp, email: &str, password: &str) -> reqwest::Response {
    let (_, html) = get_page(app, "/login").await;
    let csrf = csrf_in(&html);
    post_form(
        app,
        "/login",
        &[("email", email), ("password", password), ("csrf", &csrf)],
    )
    .await
}

pub async fn user_id_of(app: &TestApp, email: &str) -> String {
    let list: Value = app
        .get(
            &format!("/admin/users?filter={email}"),
            Some(OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    list["users"][0]["id"].as_str().unwrap().to_owned()
}

async fn admin_view(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/admin/users/{id}"), Some(OPERATOR_TOKEN))
        .await
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_console_response_carries_the_security_headers() {
    let app = spawn_app().await;
    for path in ["/login", "/users", "/nope"] {
        let r = app.client.get(console(&app, path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "same-origin", "{path}");
    }
}

#[tokio::test]
async fn pages_need_a_session_and_login_sets_a_strict_cookie() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(console(&app, "/users"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    app.admin_user("boss@example.org").await;
    let r = console_login(&app, "boss@example.org", PASSWORD).await;
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("chipflap_console="))
        .unwrap();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && cookie.contains("Path=/console")
    );
    assert!(!cookie.contains("Secure"), "plain-http site");
    let (status, html) = get_page(&app, "/users").await;
    assert_eq!(status, 200);
    assert!(html.contains("boss@example.org"));
}

#[tokio::test]
async fn only_confirmed_unbanned_admins_can_log_in() {
    let app = spawn_app().await;
    app.confirmed_user("plain@example.org").await;
    app.admin_user("boss@example.org").await;
    for (email, password) in [
        ("plain@example.org", PASSWORD),
        ("boss@example.org", "wrong password"),
        ("nobody@example.org", PASSWORD),
    ] {
        let r = console_login(&app, email, password).await;
        assert_eq!(r.status(), 200, "{email}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains("Wrong email or password, or this account is not an admin."),
            "{email}"
        );
    }
    // A login form without its CSRF cookie pair is refused.
    let r = post_form(
        &app,
        "/login",
        &[
            ("email", "boss@example.org"),
            ("password", PASSWORD),
            ("csrf", "forged"),
        ],
    )
    .await;
    assert!(r.text().await.unwrap().contains("The form expired"));
    assert_eq!(
        app.client
            .get(console(&app, "/users"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
}

#[tokio::test]
async fn the_users_page_searches_filters_and_counts() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    app.confirmed_user("ada@example.org").await;
    app.post_signup("pending@example.org", PASSWORD).await;
    let bob = app.confirmed_user("bob@example.org").await;
    let bob_id = app.user_id(bob["access_token"].as_str().unwrap()).await;
    post_form(
        &app,
        &format!("/users/{bob_id}/ban"),
        &[("csrf", &csrf), ("duration", "24h"), ("reason", "spam")],
    )
    .await;

    let (_, html) = get_page(&app, "/users").await;
    assert!(html.contains("4 users"));
    let (_, html) = get_page(&app, "/users?q=ADA%40ex").await;
    assert!(html.contains("ada@example.org") && !html.contains("bob@example.org"));
    assert!(html.contains("1 user matching"));
    let (_, html) = get_page(&app, "/users?status=unconfirmed").await;
    assert!(html.contains("pending@example.org") && !html.contains("ada@example.org"));
    let (_, html) = get_page(&app, "/users?status=banned").await;
    assert!(html.contains("bob@example.org") && html.contains("1 user"));
    let (_, html) = get_page(&app, "/users?status=admins").await;
    assert!(html.contains("boss@example.org") && !html.contains("ada@example.org"));
    // User data is escaped.
    app.post_json("/signup", None, &json!({"email": "x@example.org", "password": PASSWORD, "data": {"full_name": "<script>alert(1)</script>"}}))
        .await;
    let (_, html) = get_page(&app, "/users").await;
    assert!(
        !html.contains("<script>alert") && html.contains("&#60;script&#62;")
            || html.contains("&lt;script&gt;")
    );
}

#[tokio::test]
async fn ban_with_duration_and_reason_then_unban() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;

    let r = post_form(
        &app,
        &format!("/users/{id}/ban"),
        &[
            ("csrf", &csrf),
            ("duration", "24h"),
            ("reason", "spam links"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/console/users/{id}?done=banned").as_str()
    );
    let user = admin_view(&app, &id).await;
    assert_eq!(user["banned_until"], "2027-01-16T08:00:00Z");
    assert_eq!(
        app.post_token_refresh(t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get("/user", t["access_token"].as_str()).await.status(),
        403
    );
    let (_, html) = get_page(&app, &format!("/users/{id}?done=banned")).await;
    assert!(html.contains("The user is banned") && html.contains("Unban"));

    let audit: Value = app
        .get(
            "/admin/audit?query=action:user_banned",
            Some(OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["payload"]["actor_email"], "boss@example.org");
    assert_eq!(audit[0]["payload"]["traits"]["reason"], "spam links");

    let r = post_form(&app, &format!("/users/{id}/unban"), &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );

    // "Until unbanned" uses the banned role.
    post_form(
        &app,
        &format!("/users/{id}/ban"),
        &[("csrf", &csrf), ("duration", "permanent"), ("reason", "")],
    )
    .await;
    assert_eq!(
        admin_view(&app, &id).await["app_metadata"]["roles"],
        json!(["banned"])
    );
    post_form(&app, &format!("/users/{id}/unban"), &[("csrf", &csrf)]).await;
    assert_eq!(
        admin_view(&app, &id).await["app_metadata"]["roles"],
        json!([])
    );
}

#[tokio::test]
async fn confirm_resend_recovery_roles_and_end_sessions() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    app.post_signup("pending@example.org", PASSWORD).await;
    let pending = user_id_of(&app, "pending@").await;
    let mails = app.sent_emails().await.len();
    let r = post_form(
        &app,
        &format!("/users/{pending}/resend-confirmation"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        r.headers()["location"],
        format!("/console/users/{pending}?done=confirmation-sent").as_str()
    );
    assert_eq!(app.sent_emails().await.len(), mails + 1);
    post_form(
        &app,
        &format!("/users/{pending}/confirm"),
        &[("csrf", &csrf)],
    )
    .await;
    assert!(
        admin_view(&app, &pending)
            .await
            .get("confirmed_at")
            .is_some()
    );

    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    post_form(
        &app,
        &format!("/users/{id}/send-recovery"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        app.sent_emails().await.last().unwrap().subject,
        "Reset Your Password"
    );

    post_form(
        &app,
        &format!("/users/{id}/roles"),
        &[("csrf", &csrf), ("roles", "editor, ,viewer,editor")],
    )
    .await;
    assert_eq!(
        admin_view(&app, &id).await["app_metadata"]["roles"],
        json!(["editor", "viewer"])
    );

    post_form(
        &app,
        &format!("/users/{id}/end-sessions"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(
        app.post_token_refresh(t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
    let (_, html) = get_page(&app, &format!("/users/{id}")).await;
    assert!(html.contains("Active sessions (0)"));
    assert!(
        html.contains("token_revoked"),
        "recent activity lists the action"
    );
}

#[tokio::test]
async fn delete_needs_the_typed_address() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    let (status, html) = get_page(&app, &format!("/users/{id}/delete")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Delete ada@example.org?"));
    let r = post_form(
        &app,
        &format!("/users/{id}/delete"),
        &[("csrf", &csrf), ("confirm_email", "someone@else.org")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.get(&format!("/admin/users/{id}"), Some(OPERATOR_TOKEN))
            .await
            .status(),
        200
    );
    let r = post_form(
        &app,
        &format!("/users/{id}/delete"),
        &[("csrf", &csrf), ("confirm_email", "ADA@example.org")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        app.get(&format!("/admin/users/{id}"), Some(OPERATOR_TOKEN))
            .await
            .status(),
        404
    );
    let (status, _) = get_page(&app, &format!("/users/{id}")).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn invite_from_the_console() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    let r = post_form(
        &app,
        "/invite",
        &[
            ("csrf", &csrf),
            ("email", "guest@example.org"),
            ("full_name", "Guest"),
        ],
    )
    .await;
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Invite sent to guest@example.org.")
    );
    assert_eq!(
        app.sent_emails().await.last().unwrap().subject,
        "You have been invited"
    );
    let r = post_form(
        &app,
        "/invite",
        &[
            ("csrf", &csrf),
            ("email", "guest@example.org"),
            ("full_name", ""),
        ],
    )
    .await;
    assert!(r.text().await.unwrap().contains("already has an account"));
    let audit: Value = app
        .get(
            "/admin/audit?query=action:user_invited",
            Some(OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit[0]["payload"]["actor_email"], "boss@example.org");
}

#[tokio::test]
async fn forms_without_the_sessions_csrf_token_change_nothing() {
    let app = spawn_app().await;
    login_admin(&app).await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    for csrf in ["", "forged-token-value-1234"] {
        for (path, extra) in [
            (format!("/users/{id}/ban"), ("duration", "24h")),
            (format!("/users/{id}/roles"), ("roles", "admin")),
            (
                format!("/users/{id}/delete"),
                ("confirm_email", "ada@example.org"),
            ),
            ("/invite".to_owned(), ("email", "x@example.org")),
            ("/logout".to_owned(), ("x", "y")),
        ] {
            let r = post_form(&app, &path, &[("csrf", csrf), extra]).await;
            assert_eq!(r.status(), 403, "{path}");
        }
    }
    let user = admin_view(&app, &id).await;
    assert!(user.get("banned_until").is_none());
    assert!(user["app_metadata"].get("roles").is_none());
    assert_eq!(app.count("users").await, 2);
    assert_eq!(get_page(&app, "/users").await.0, 200, "still logged in");
}

#[tokio::test]
async fn sessions_expire_when_idle_and_absolutely() {
    let app = spawn_app().await;
    login_admin(&app).await;
    app.advance(Duration::from_secs(29 * 60));
    assert_eq!(get_page(&app, "/users").await.0, 200);
    app.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        get_page(&app, "/users").await.0,
        200,
        "activity keeps it alive"
    );
    app.advance(Duration::from_secs(31 * 60));
    assert_eq!(get_page(&app, "/users").await.0, 303, "idle for 31 minutes");

    let r = console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(r.status(), 303);
    // 28 × 25 minutes = 11 h 40 min of steady use, then past the 12-hour limit.
    for _ in 0..28 {
        app.advance(Duration::from_secs(25 * 60));
        assert_eq!(get_page(&app, "/users").await.0, 200);
    }
    app.advance(Duration::from_secs(25 * 60));
    assert_eq!(
        get_page(&app, "/users").await.0,
        303,
        "12 hours after login"
    );
}

#[tokio::test]
async fn logged_out_and_demoted_sessions_are_dead() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    // Keep the cookie value to replay it after logout.
    let r = post_form(&app, "/logout", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");
    assert_eq!(get_page(&app, "/users").await.0, 303);
    assert_eq!(app.count("console_sessions").await, 0);

    // A session whose admin loses the role ends at once.
    console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(get_page(&app, "/users").await.0, 200);
    let id = user_id_of(&app, "boss@").await;
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"role": ""}),
    )
    .await;
    assert_eq!(get_page(&app, "/users").await.0, 303);
}

#[tokio::test]
async fn the_audit_page_filters_by_action_and_actor() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    post_form(
        &app,
        &format!("/users/{id}/ban"),
        &[("csrf", &csrf), ("duration", "1h"), ("reason", "testing")],
    )
    .await;
    let (_, html) = get_page(&app, "/audit?action=user_banned").await;
    assert!(
        html.contains("1 entry")
            && html.contains("boss@example.org")
            && html.contains("reason: testing")
    );
    let (_, html) = get_page(&app, "/audit?actor=nobody").await;
    assert!(html.contains("0 entries"));
    let (_, html) = get_page(&app, &format!("/audit?user={id}")).await;
    assert!(html.contains("user_banned") && html.contains("user_signedup"));
}

#[tokio::test]
async fn the_stylesheet_is_served_and_pages_have_no_inline_script() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(console(&app, "/static/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    login_admin(&app).await;
    for path in ["/users", "/invite", "/audit", "/login"] {
        let (_, html) = get_page(&app, path).await;
        assert!(!html.contains("<script"), "{path}");
    }
}

#[tokio::test]
async fn console_sessions_end_with_a_password_change_or_ended_sessions() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    let boss = user_id_of(&app, "boss@").await;
    // "End all sessions" on the admin's own account ends the console session too.
    post_form(
        &app,
        &format!("/users/{boss}/end-sessions"),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(get_page(&app, "/users").await.0, 303);

    // A password change through the API ends console sessions as well.
    console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(get_page(&app, "/users").await.0, 200);
    let t: Value = app
        .post_token_password("boss@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    app.put_json(
        "/user",
        t["access_token"].as_str().unwrap(),
        &json!({"password": "a new password"}),
    )
    .await;
    assert_eq!(get_page(&app, "/users").await.0, 303);
}

#[tokio::test]
async fn absurd_ban_durations_are_refused_and_role_bans_read_until_unbanned() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    let r = post_form(
        &app,
        &format!("/users/{id}/ban"),
        &[
            ("csrf", &csrf),
            ("duration", "999999999999"),
            ("reason", ""),
        ],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(get_page(&app, &format!("/users/{id}")).await.0, 200);
    // An old dated ban and a current role ban: the page says the role ban holds until lifted.
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"ban_duration": "1h"}),
    )
    .await;
    app.advance(Duration::from_secs(7200));
    console_login(&app, "boss@example.org", PASSWORD).await;
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": ["banned"]}}),
    )
    .await;
    let (_, html) = get_page(&app, &format!("/users/{id}")).await;
    assert!(html.contains("until unbanned (role)"), "{html}");
}

#[tokio::test]
async fn the_console_lists_and_clears_a_throttled_account() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    app.confirmed_user("ada@example.org").await;
    let (_, html) = get_page(&app, "/throttles").await;
    assert!(html.contains("Nothing is throttled."), "{html}");
    // Someone guesses Ada's password until her account is throttled.
    for _ in 0..6 {
        app.post_token_password("ada@example.org", "wrong guess")
            .await;
    }
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        429
    );
    let (status, html) = get_page(&app, "/throttles").await;
    assert_eq!(status, 200);
    assert!(html.contains("Password attempts for an account"), "{html}");
    assert!(html.contains("ada@example.org"), "{html}");
    // Clearing needs the session's CSRF token.
    let r = post_form(
        &app,
        "/throttles/clear",
        &[("csrf", "forged"), ("key", "password:ada@example.org")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &app,
        "/throttles/clear",
        &[("csrf", &csrf), ("key", "password:ada@example.org")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = get_page(&app, location.trim_start_matches("/console")).await;
    assert!(
        html.contains("Cleared the throttle for ada@example.org."),
        "{html}"
    );
    assert!(!html.contains("Password attempts for an account"), "{html}");
    // Ada gets in at once, and the audit log names who cleared what.
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    let (_, html) = get_page(&app, "/audit?action=throttle_cleared").await;
    assert!(
        html.contains("boss@example.org") && html.contains("ada@example.org"),
        "{html}"
    );
}

#[tokio::test]
async fn the_console_login_is_throttled_with_its_own_error_page() {
    let app = spawn_app().await;
    app.admin_user("boss@example.org").await;
    for _ in 0..5 {
        let r = console_login(&app, "boss@example.org", "wrong password").await;
        assert_eq!(r.status(), 200);
    }
    // The account is throttled, known or not: the same page for an unknown address.
    for email in ["boss@example.org", "nobody@example.org"] {
        if email == "nobody@example.org" {
            for _ in 0..5 {
                console_login(&app, email, "wrong password").await;
            }
        }
        let r = console_login(&app, email, "wrong password").await;
        assert_eq!(r.status(), 429, "{email}");
        assert_eq!(r.headers()["retry-after"], "60");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("Too many attempts"), "{html}");
    }
    // Per client IP too: a stream of different addresses is cut off at the burst.
    let mut statuses = Vec::new();
    for i in 0..25 {
        let r = console_login(&app, &format!("guess{i}@example.org"), "x").await;
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.iter().filter(|&&s| s == 200).count() < 25);
}
