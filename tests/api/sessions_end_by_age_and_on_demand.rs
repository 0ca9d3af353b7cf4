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
    app.advance(10 * MINUTE + Duration::from_secs(1));
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
