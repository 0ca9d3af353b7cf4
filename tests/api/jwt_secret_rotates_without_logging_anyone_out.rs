//! Rule: the JWT secret rotates without logging anyone out. Tokens carry a `kid` derived from
//! their key; after a rotation, tokens signed with a secret listed in
//! `CHIPFLAP_JWT_PREVIOUS_SECRETS` verify on every path until they expire, new ones are signed
//! with the new secret only, and a token signed by a key the server does not hold is refused.
//! Refresh tokens are opaque (found by digest), so their chains survive any rotation; logging
//! everyone out is `chipflap sessions end --all`'s job.

use std::time::Duration;

use secrecy::SecretString;

use crate::helpers::{TestApp, assert_oauth_error, spawn_app_with, test_from};
use crate::support::sessions::{
    ABLY_KEY, Login, claims, login, outcome, probe_paths, read_login, refresh,
};
use chipflap::auth::ably::AblyKey;
use chipflap::auth::jwt::key_id_of;
use chipflap::mail::Mailer;

const VICTIM: &str = "victim@example.org";
const OLD_SECRET: &str = "the old secret, at least 32 bytes long";
const NEW_SECRET: &str = "the new secret, at least 32 bytes long";

/// A server on `database` (a fresh one when `None`) signing with `secret`.
async fn server(database: Option<&TestApp>, secret: &str, previous: &[&str]) -> TestApp {
    let database = database.map(|app| {
        app.state
            .settings
            .database
            .sqlite_path()
            .unwrap()
            .to_path_buf()
    });
    spawn_app_with(
        |s| {
            if let Some(path) = database {
                s.database.backend = chipflap::config::DatabaseBackend::Sqlite(path);
            }
            s.jwt.secret = SecretString::from(secret.to_owned());
            s.jwt.previous_secrets = previous
                .iter()
                .map(|p| SecretString::from((*p).to_owned()))
                .collect();
            s.ably.key = Some(AblyKey::parse(ABLY_KEY).unwrap());
            s.ably.revoke_on_ban = false;
        },
        Mailer::memory(test_from()),
    )
    .await
}

fn kid(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

async fn assert_live(app: &TestApp, login: &Login, when: &str) {
    for (path, status, msg) in probe_paths(app, login, false).await {
        assert_eq!(status, 200, "{path} {when}: {msg}");
    }
}

#[tokio::test]
async fn tokens_of_a_previous_secret_verify_everywhere_until_they_expire() {
    // Arrange: a login on the server before the rotation.
    let before = server(None, OLD_SECRET, &[]).await;
    before.admin_user(VICTIM).await;
    let held = login(&before, VICTIM).await;
    assert_eq!(kid(&held.access_token), key_id_of(OLD_SECRET.as_bytes()));

    // Act: the same database, the new secret, the old one listed as previous.
    let after = server(Some(&before), NEW_SECRET, &[OLD_SECRET]).await;

    // The old access token, nf_jwt and session cookie still work on every path.
    assert_live(&after, &held, "after the rotation").await;
    // New tokens use the new key only.
    let fresh = login(&after, VICTIM).await;
    assert_eq!(kid(&fresh.access_token), key_id_of(NEW_SECRET.as_bytes()));
    let refreshed = read_login(refresh(&after, &held.refresh_token).await).await;
    assert_eq!(
        kid(&refreshed.access_token),
        key_id_of(NEW_SECRET.as_bytes())
    );
    assert_eq!(refreshed.session_id, held.session_id, "the session goes on");
    // The server before the rotation does not accept the new key's tokens.
    let r = before.get("/user", Some(&fresh.access_token)).await;
    assert_eq!(
        outcome(r).await,
        (401, "Invalid token: signature is invalid".into())
    );

    // Until it expires (an hour after it was issued).
    after.advance(Duration::from_secs(3600));
    let r = after.get("/user", Some(&held.access_token)).await;
    assert_eq!(
        outcome(r).await,
        (401, "Invalid token: token is expired by 0s".into())
    );
}

#[tokio::test]
async fn a_token_signed_by_a_key_the_server_does_not_hold_is_refused_whatever_its_kid() {
    let before = server(None, OLD_SECRET, &[]).await;
    before.admin_user(VICTIM).await;
    let held = login(&before, VICTIM).await;
    // Rotated without keeping the old secret: its tokens are refused on every path.
    let after = server(Some(&before), NEW_SECRET, &[]).await;
    for (path, status, msg) in probe_paths(&after, &held, false).await {
        if path == "Ably, session cookie" {
            continue; // not a JWT; its own test below
        }
        assert_eq!(
            (status, msg.as_str()),
            (401, "Invalid token: signature is invalid"),
            "{path}"
        );
    }
    // The same claims, signed by an attacker's key under our current kid.
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(key_id_of(NEW_SECRET.as_bytes()));
    let forged = jsonwebtoken::encode(
        &header,
        &claims(&held.access_token),
        &jsonwebtoken::EncodingKey::from_secret(b"an attacker's key, 32 bytes long"),
    )
    .unwrap();
    let r = after.get("/user", Some(&forged)).await;
    assert_eq!(
        outcome(r).await,
        (401, "Invalid token: signature is invalid".into())
    );
}

#[tokio::test]
async fn refresh_chains_survive_a_rotation_even_inside_the_reuse_grace_window() {
    let before = server(None, OLD_SECRET, &[]).await;
    before.confirmed_user(VICTIM).await;
    let first = login(&before, VICTIM).await;
    // Rotated on the old server: its successor was derived with the old secret.
    let second = read_login(refresh(&before, &first.refresh_token).await).await;

    let after = server(Some(&before), NEW_SECRET, &[OLD_SECRET]).await;
    // Another tab re-presents the rotated token within the grace window: it gets the
    // session's head, found through the previous secret, and the session is not ended.
    let again = read_login(refresh(&after, &first.refresh_token).await).await;
    assert_eq!(again.refresh_token, second.refresh_token);
    let third = read_login(refresh(&after, &second.refresh_token).await).await;
    assert_eq!(third.session_id, first.session_id);

    // Refresh tokens are opaque: even a rotation that drops the old secret keeps them.
    let dropped = server(Some(&before), "a third secret, 32 bytes or longer", &[]).await;
    let fourth = read_login(refresh(&dropped, &third.refresh_token).await).await;
    assert_eq!(fourth.session_id, first.session_id);
    // And the session cookie made under a dropped secret no longer names the session.
    let r = crate::support::sessions::ably_with_cookies(
        &dropped,
        &first.user_id,
        &format!("chipflap_session={}", first.session_cookie),
    )
    .await;
    assert_eq!(outcome(r).await.0, 401);
    // Ending every session is what logs everyone out.
    chipflap::services::admin_users::end_every_session(
        &dropped.state,
        &chipflap::services::Actor::command_line(),
        None,
    )
    .await
    .unwrap();
    assert_oauth_error(
        refresh(&dropped, &fourth.refresh_token).await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
}
