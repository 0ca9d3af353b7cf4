//! Rule: an answer kept in memory never outlives the change that revokes it.

// The Ably endpoint and `GET /user` check sessions against rows cached while nothing is written.
// Whatever stops a user or a session from being allowed, the very next request after the
// change's response is refused exactly as without the cache; a change made by another process
// within the server's 100 ms poll.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app_with, test_from};
use crate::support::sessions::{ABLY_KEY, Login, bare_client, login, outcome, spawn_app_with_ably};
use chipflap::auth::ably::AblyKey;
use chipflap::mail::Mailer;
use chipflap::routes::errors::MFA_REQUIRED;
use chipflap::routes::errors::SESSION_ENDED;
use chipflap::services::auth_cache::SnapshotKey;

const USER: &str = "held@example.org";

/// What the three cached paths answer for `login`: the Ably endpoint with the Bearer token and
/// with the session cookie, and `GET /user`.
async fn answers(app: &TestApp, login: &Login) -> Vec<(&'static str, u16, String)> {
    let client = bare_client();
    let url = format!("{}/.netlify/functions/ably-jwt", app.base);
    let bearer = client
        .get(&url)
        .bearer_auth(&login.access_token)
        .send()
        .await
        .unwrap();
    let cookie = client
        .get(&url)
        .header(
            "cookie",
            format!("chipflap_session={}", login.session_cookie),
        )
        .send()
        .await
        .unwrap();
    let user = client
        .get(app.url("/user"))
        .bearer_auth(&login.access_token)
        .send()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for (path, r) in [
        ("Ably, Bearer", bearer),
        ("Ably, session cookie", cookie),
        ("GET /user", user),
    ] {
        let (status, msg) = outcome(r).await;
        seen.push((path, status, msg));
    }
    seen
}

/// Each path succeeds, and the rows behind each are then held in memory under the current
/// epoch (so a missed invalidation would be answered from memory, not hidden by a re-read).
/// The server's poll also moves the epoch after its own audit writes, so this retries until
/// both keys are current at once.
async fn warm(app: &TestApp, login: &Login) {
    let user_id = login.user_id.parse().unwrap();
    let session_id = login.session_id.parse().unwrap();
    let keys = [
        SnapshotKey::Token {
            user_id,
            session_id: Some(session_id),
        },
        SnapshotKey::SessionCookie(session_id),
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        for (path, status, msg) in answers(app, login).await {
            assert_eq!(status, 200, "{path} before the change: {msg}");
        }
        if keys.iter().all(|k| app.state.auth_cache.get(k).is_some()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{keys:?} never answered from memory"
        );
    }
}

fn expect(
    bearer: (u16, &str),
    cookie: (u16, &str),
    user: (u16, &str),
) -> Vec<(&'static str, u16, String)> {
    vec![
        ("Ably, Bearer", bearer.0, bearer.1.to_owned()),
        ("Ably, session cookie", cookie.0, cookie.1.to_owned()),
        ("GET /user", user.0, user.1.to_owned()),
    ]
}

fn ended() -> Vec<(&'static str, u16, String)> {
    expect(
        (401, SESSION_ENDED),
        (401, SESSION_ENDED),
        (401, SESSION_ENDED),
    )
}

fn banned() -> Vec<(&'static str, u16, String)> {
    expect(
        (403, "User is banned"),
        (403, "User is banned"),
        (403, "User is banned"),
    )
}

async fn held_login(app: &TestApp) -> Login {
    app.confirmed_user(USER).await;
    let held = login(app, USER).await;
    warm(app, &held).await;
    held
}

#[tokio::test]
async fn a_ban_through_the_admin_api_is_refused_on_the_next_request() {
    for ban in [
        json!({"app_metadata": {"roles": ["banned"]}}),
        json!({"ban_duration": "24h"}),
    ] {
        let app = spawn_app_with_ably().await;
        let held = held_login(&app).await;
        let r = app
            .put_json(
                &format!("/admin/users/{}", held.user_id),
                OPERATOR_TOKEN,
                &ban,
            )
            .await;
        assert_eq!(r.status(), 200);
        assert_eq!(answers(&app, &held).await, banned(), "after {ban}");
    }
}

#[tokio::test]
async fn a_ban_through_the_console_is_refused_on_the_next_request() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    let csrf = crate::console::login_admin(&app).await;
    let r = crate::console::post_form(
        &app,
        &format!("/users/{}/ban", held.user_id),
        &[("csrf", &csrf), ("duration", "permanent"), ("reason", "")],
    )
    .await;
    assert_eq!(r.status(), 303);
    assert_eq!(answers(&app, &held).await, banned());
}

#[tokio::test]
async fn deleting_the_user_is_refused_on_the_next_request() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    let r = app
        .delete(&format!("/admin/users/{}", held.user_id), OPERATOR_TOKEN)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        answers(&app, &held).await,
        expect(
            (403, "User not found"),
            (401, SESSION_ENDED),
            (404, "User not found")
        )
    );
}

#[tokio::test]
async fn a_logout_is_refused_on_the_next_request() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    let other = login(&app, USER).await;
    let r = bare_client()
        .post(app.url("/logout"))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(answers(&app, &held).await, ended());
}

#[tokio::test]
async fn ending_a_session_from_the_sessions_list_is_refused_on_the_next_request() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    // From another device, with the password; then the held device ends its own.
    let other = login(&app, USER).await;
    warm(&app, &other).await;
    let r = bare_client()
        .delete(app.url(&format!("/user/sessions/{}", held.session_id)))
        .bearer_auth(&other.access_token)
        .json(&json!({"current_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(answers(&app, &held).await, ended());
    let r = bare_client()
        .delete(app.url(&format!("/user/sessions/{}", other.session_id)))
        .bearer_auth(&other.access_token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(answers(&app, &other).await, ended());
}

#[tokio::test]
async fn a_password_change_is_refused_on_the_next_request() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    let other = login(&app, USER).await;
    let r = app
        .put_json(
            "/user",
            &other.access_token,
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(answers(&app, &held).await, ended());
}

#[tokio::test]
async fn a_factor_verified_elsewhere_refuses_the_aal1_session_on_the_next_request() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    let other = login(&app, USER).await;
    crate::support::mfa::enroll_and_verify(&app, &other.access_token).await;
    // `GET /user` stays readable at aal1 (so a client learns it must step up).
    assert_eq!(
        answers(&app, &held).await,
        expect((403, MFA_REQUIRED), (403, MFA_REQUIRED), (200, ""))
    );
}

#[tokio::test]
async fn a_session_past_its_timebox_or_idle_limit_is_refused_on_the_next_request() {
    for (timebox, idle) in [(Some(600), None), (None, Some(300))] {
        let app = spawn_app_with(
            |s| {
                s.ably.key = Some(AblyKey::parse(ABLY_KEY).unwrap());
                s.ably.revoke_on_ban = false;
                s.sessions.timebox = timebox.map(Duration::from_secs);
                s.sessions.inactivity_timeout = idle.map(Duration::from_secs);
            },
            Mailer::memory(test_from()),
        )
        .await;
        let held = held_login(&app).await;
        let limit = timebox.or(idle).unwrap();
        // The limit's own second still lives; nothing is written in between.
        app.advance(Duration::from_secs(limit));
        warm(&app, &held).await;
        app.advance(Duration::from_secs(1));
        assert_eq!(answers(&app, &held).await, ended(), "{timebox:?} {idle:?}");
    }
}

/// Polls `answers` until it is `want` or a few seconds pass; answers the last seen.
async fn eventually(
    app: &TestApp,
    held: &Login,
    want: &[(&'static str, u16, String)],
) -> Vec<(&'static str, u16, String)> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = answers(app, held).await;
        if seen == want || Instant::now() > deadline {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sessions_ended_by_the_command_line_are_refused_within_the_poll() {
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    let url = format!(
        "sqlite://{}",
        app.state
            .settings
            .database
            .sqlite_path()
            .unwrap()
            .to_str()
            .unwrap()
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .args(["sessions", "end", "--all"])
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("GOTRUE_JWT_SECRET", "test-secret-test-secret-test-secret!")
        .env("CHIPFLAP_ARGON2_MEMORY_KIB", "64")
        .env("CHIPFLAP_ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(eventually(&app, &held, &ended()).await, ended());
}

#[tokio::test]
async fn a_ban_written_by_another_connection_is_refused_within_the_poll() {
    use sqlx::Connection;
    let app = spawn_app_with_ably().await;
    let held = held_login(&app).await;
    // As a sqlite3 shell would: a connection of its own, outside the server's pool.
    let path = app.state.settings.database.sqlite_path().unwrap();
    let mut shell = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("update users set banned_until = ? where id = ?")
        .bind(app.clock.now().unix() + 3600)
        .bind(&held.user_id)
        .execute(&mut shell)
        .await
        .unwrap();
    shell.close().await.unwrap();
    assert_eq!(eventually(&app, &held, &banned()).await, banned());
}
