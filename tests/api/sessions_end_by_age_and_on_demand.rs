//! Rule: sessions end by age and on demand. A login session ends `GOTRUE_SESSIONS_TIMEBOX`
//! after the login however often it is refreshed, and `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT`
//! after its last refresh (using an access token, Ably included, is not activity). Either way
//! every path refuses it: the refresh grant, `GET`/`PUT /user`, admin calls, Ably (Bearer,
//! `nf_jwt`, session cookie) and `/logout`. `chipflap sessions end --all` and the console's
//! "end every session" end every session of every user at once.

use std::time::Duration;

use chipflap::auth::ably::AblyKey;
use chipflap::config::Settings;
use chipflap::mail::Mailer;
use chipflap::routes::errors::SESSION_ENDED;
use serde_json::Value;

use crate::helpers::{TestApp, assert_oauth_error, spawn_app_with, test_from};
use crate::support::sessions::{
    ABLY_KEY, Login, login, probe_every_path, probe_paths, read_login, refresh,
};

const VICTIM: &str = "victim@example.org";
const MINUTE: Duration = Duration::from_secs(60);

async fn spawn_with_limits(timebox: Option<Duration>, inactivity: Option<Duration>) -> TestApp {
    spawn_app_with(
        |s| {
            s.ably.key = Some(AblyKey::parse(ABLY_KEY).unwrap());
            s.ably.revoke_on_ban = false;
            s.sessions.timebox = timebox;
            s.sessions.inactivity_timeout = inactivity;
        },
        Mailer::memory(test_from()),
    )
    .await
}

async fn assert_live(app: &TestApp, login: &Login, when: &str) {
    for (path, status, msg) in probe_paths(app, login, false).await {
        assert_eq!(status, 200, "{path} {when}: {msg}");
    }
}

async fn assert_ended_everywhere(app: &TestApp, login: &Login, how: &str) {
    assert_oauth_error(
        refresh(app, &login.refresh_token).await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
    for (path, status, msg) in probe_every_path(app, login).await {
        assert_eq!(
            (status, msg.as_str()),
            (401, SESSION_ENDED),
            "{path} after {how}"
        );
    }
}

#[tokio::test]
async fn a_session_refreshed_faithfully_still_ends_at_the_timebox_on_every_path() {
    let app = spawn_with_limits(Some(120 * MINUTE), None).await;
    app.admin_user(VICTIM).await;
    let mut held = login(&app, VICTIM).await;
    // Arrange: the client refreshes every 50 minutes, well inside every other limit.
    for _ in 0..2 {
        app.advance(50 * MINUTE);
        held = read_login(refresh(&app, &held.refresh_token).await).await;
        assert_live(&app, &held, "inside the timebox").await;
    }
    // At 100 minutes the last access token is good until 160; the session ends at 120.
    app.advance(20 * MINUTE);
    assert_live(&app, &held, "at the timebox's last second").await;
    app.advance(Duration::from_secs(1));
    assert_ended_everywhere(&app, &held, "the timebox").await;
    // A new login starts a new timebox.
    let fresh = login(&app, VICTIM).await;
    assert_live(&app, &fresh, "after logging in again").await;
}

#[tokio::test]
async fn an_idle_session_ends_at_the_inactivity_timeout_on_every_path() {
    let app = spawn_with_limits(None, Some(30 * MINUTE)).await;
    app.admin_user(VICTIM).await;
    let first = login(&app, VICTIM).await;
    app.advance(20 * MINUTE);
    // A refresh is activity: the session's clock restarts.
    let refreshed = read_login(refresh(&app, &first.refresh_token).await).await;
    app.advance(20 * MINUTE);
    // Using the tokens is not activity (Ably included): the page polls it unattended.
    assert_live(&app, &first, "20 minutes after a refresh").await;
    assert_live(&app, &refreshed, "20 minutes after a refresh").await;
    let user_id = refreshed.user_id.parse().unwrap();
    let listed = |app: &TestApp| {
        let state = app.state.clone();
        async move {
            chipflap::services::admin_users::user_details(&state, user_id)
                .await
                .unwrap()
                .sessions
                .len()
        }
    };
    assert_eq!(listed(&app).await, 1, "the console lists the live session");
    app.advance(10 * MINUTE + Duration::from_secs(1));
    assert_eq!(listed(&app).await, 0, "and no longer lists it once idle");
    // Both access tokens are unexpired (issued at 0 and 20 minutes, for an hour).
    assert_ended_everywhere(&app, &refreshed, "30 minutes without a refresh").await;
    assert_ended_everywhere(&app, &first, "30 minutes without a refresh").await;
}

#[tokio::test]
async fn without_limits_a_refreshed_session_lives_on_as_gotrue_does() {
    let app = spawn_with_limits(None, None).await;
    app.admin_user(VICTIM).await;
    let mut held = login(&app, VICTIM).await;
    for _ in 0..3 {
        app.advance(50 * MINUTE);
        held = read_login(refresh(&app, &held.refresh_token).await).await;
    }
    assert_live(&app, &held, "without limits").await;
}

#[tokio::test]
async fn limits_that_are_not_positive_durations_are_refused_at_start() {
    for (name, value) in [
        ("GOTRUE_SESSIONS_TIMEBOX", "0"),
        ("GOTRUE_SESSIONS_INACTIVITY_TIMEOUT", "-5m"),
        ("GOTRUE_SESSIONS_TIMEBOX", "soon"),
    ] {
        let err = Settings::from_lookup(|n| match n {
            "GOTRUE_JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            n if n == name => Some(value.into()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains(name), "{name}={value}: {err}");
    }
    let ok = Settings::from_lookup(|n| match n {
        "GOTRUE_JWT_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
        "GOTRUE_SESSIONS_TIMEBOX" => Some("720h".into()),
        "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT" => Some("86400".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(ok.sessions.timebox, Some(Duration::from_secs(720 * 3600)));
    assert_eq!(
        ok.sessions.inactivity_timeout,
        Some(Duration::from_secs(86_400))
    );
}

#[tokio::test]
async fn the_console_ends_every_session_of_every_user_after_a_typed_confirmation() {
    use crate::console::{get_page, login_admin, post_form};
    let app = spawn_with_limits(None, None).await;
    let csrf = login_admin(&app).await;
    app.admin_user(VICTIM).await;
    app.confirmed_user("bystander@example.org").await;
    let victim = login(&app, VICTIM).await;
    let bystander = login(&app, "bystander@example.org").await;
    // Another admin's console session (a second browser).
    let other_console = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let (_, html) = crate::console::get_page_with(&app, &other_console, "/login").await;
    let r = other_console
        .post(crate::console::console(&app, "/login"))
        .form(&[
            ("email", VICTIM),
            ("password", crate::helpers::PASSWORD),
            ("csrf", &crate::console::csrf_in(&html)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Without the CSRF token, or without the typed confirmation, nothing ends.
    let r = post_form(
        &app,
        "/sessions/end-all",
        &[("confirm", "end every session")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &app,
        "/sessions/end-all",
        &[("csrf", &csrf), ("confirm", "yes")],
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_live(&app, &victim, "after a refused attempt").await;

    let (status, page) = get_page(&app, "/sessions").await;
    assert_eq!(status, 200);
    assert!(page.contains("end every session"), "{page}");
    let r = post_form(
        &app,
        "/sessions/end-all",
        &[("csrf", &csrf), ("confirm", " End every session ")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/console/sessions?ended="),
        "{location}"
    );

    assert_ended_everywhere(&app, &victim, "the console's end every session").await;
    assert_ended_everywhere(&app, &bystander, "the console's end every session").await;
    let (status, _) = crate::console::get_page_with(&app, &other_console, "/users").await;
    assert_eq!(status, 303, "the other console session ended");
    assert_eq!(
        get_page(&app, "/users").await.0,
        200,
        "the acting admin stays"
    );
    let audit: Value = app
        .get("/admin/audit", Some(crate::helpers::OPERATOR_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(
        text.contains("token_revoked") && text.contains("sessions_ended"),
        "{text}"
    );
    // Users simply log in again.
    let again = login(&app, VICTIM).await;
    assert_live(&app, &again, "after logging in again").await;
}

#[tokio::test]
async fn sessions_end_all_from_the_command_line_kills_every_token_of_a_running_server() {
    use crate::binary::{free_port, start_with};
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("GOTRUE_MAILER_AUTOCONFIRM", "true"),
    ];
    let server = start_with(dir.path(), free_port(), &env);
    let client = reqwest::Client::new();
    let url = |path: &str| format!("http://127.0.0.1:{}/.netlify/identity{path}", server.port);
    let password = "a long and unusual passphrase 42";
    let mut logins = Vec::new();
    for email in ["ada@example.org", "bob@example.org", "cy@example.org"] {
        let r = client
            .post(url("/signup"))
            .json(&serde_json::json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .post(url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        logins.push((
            body["access_token"].as_str().unwrap().to_owned(),
            body["refresh_token"].as_str().unwrap().to_owned(),
        ));
    }
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_chipflap"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .envs(env)
            .output()
            .unwrap()
    };
    let user_status = |token: String| {
        let client = client.clone();
        let url = url("/user");
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let refresh_status = |token: String| {
        let client = client.clone();
        let url = url("/token");
        async move {
            client
                .post(url)
                .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };

    // Neither --all nor --email: a usage error, nothing ended.
    let out = cli(&["sessions", "end"]);
    assert!(!out.status.success());
    // One user first.
    let out = cli(&["sessions", "end", "--email", "cy@example.org"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Another process's change reaches the server's in-memory checks within its 100 ms poll.
    let eventually = |token: String, want: u16| {
        let user_status = &user_status;
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            loop {
                let status = user_status(token.clone()).await;
                if status == want || std::time::Instant::now() > deadline {
                    return status;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(eventually(logins[2].0.clone(), 401).await, 401);
    assert_eq!(user_status(logins[0].0.clone()).await, 200);

    let out = cli(&["sessions", "end", "--all"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "ended 2 sessions and 0 console sessions"
    );
    for (access, refresh) in &logins {
        assert_eq!(eventually(access.clone(), 401).await, 401);
        assert_eq!(refresh_status(refresh.clone()).await, 400);
    }
    let r = client
        .post(url("/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.org"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "users log in again");
}
