//! Rule: sessions end everywhere at once. Whatever ends a session (logout, a password change,
//! a ban, an admin's "end sessions", a reused refresh token, deleting the user), every path
//! that authenticates a user refuses the session's still-unexpired access token (and the
//! cookies the seed page holds) from that moment: `GET`/`PUT /user`, admin calls by a user
//! admin, the Ably token endpoint (Bearer, `nf_jwt`, session cookie) and `/logout`.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp};
use crate::support::sessions::{
    Login, bare_client, login, outcome, probe_every_path, probe_paths, refresh, spawn_app_with_ably,
};
use chipflap::routes::errors::SESSION_ENDED;

const VICTIM: &str = "victim@example.org";

/// An admin user (so the admin path is exercised too) with two sessions: the one whose
/// tokens the attacker holds, and another.
async fn victim_with_two_sessions(app: &TestApp) -> (Login, Login) {
    app.admin_user(VICTIM).await;
    let held = login(app, VICTIM).await;
    let other = login(app, VICTIM).await;
    assert_ne!(held.session_id, other.session_id);
    (held, other)
}

/// Every path works for a live session (all but `/logout`, which would end it).
async fn assert_live(app: &TestApp, login: &Login) {
    for (path, status, msg) in probe_paths(app, login, false).await {
        assert_eq!(status, 200, "{path} for a live session: {msg}");
    }
}

/// Every path refuses the held session as an invalid token.
async fn assert_ended_everywhere(app: &TestApp, login: &Login, how: &str) {
    for (path, status, msg) in probe_every_path(app, login).await {
        assert_eq!(
            (status, msg.as_str()),
            (401, SESSION_ENDED),
            "{path} after {how}"
        );
    }
}

#[tokio::test]
async fn logout_ends_every_session_of_the_user_on_every_path() {
    let app = spawn_app_with_ably().await;
    let (held, other) = victim_with_two_sessions(&app).await;
    assert_live(&app, &held).await;
    let r = bare_client()
        .post(app.url("/logout"))
        .bearer_auth(&other.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_ended_everywhere(&app, &held, "logout").await;
    assert_ended_everywhere(&app, &other, "logout").await;
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_on_every_path() {
    let app = spawn_app_with_ably().await;
    let (held, other) = victim_with_two_sessions(&app).await;
    assert_live(&app, &held).await;
    let r = app
        .put_json(
            "/user",
            &other.access_token,
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_ended_everywhere(&app, &held, "a password change").await;
    // The session that changed the password goes on.
    assert_live(&app, &other).await;
}

#[tokio::test]
async fn an_admin_password_change_ends_every_session_on_every_path() {
    let app = spawn_app_with_ably().await;
    let (held, other) = victim_with_two_sessions(&app).await;
    let r = app
        .put_json(
            &format!("/admin/users/{}", held.user_id),
            OPERATOR_TOKEN,
            &json!({"password": "set by an admin 123"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_ended_everywhere(&app, &held, "an admin's password change").await;
    assert_ended_everywhere(&app, &other, "an admin's password change").await;
}

#[tokio::test]
async fn an_admin_ending_the_sessions_in_the_console_ends_them_on_every_path() {
    let app = spawn_app_with_ably().await;
    let (held, _) = victim_with_two_sessions(&app).await;
    assert_live(&app, &held).await;
    // The console, through its real pages (the test client keeps the console cookie).
    app.admin_user("boss@example.org").await;
    let console = |path: &str| format!("{}/console{path}", app.base);
    let page = app
        .client
        .get(console("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = |html: &str| {
        let marker = "name=\"csrf\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        html[start..].split('"').next().unwrap().to_owned()
    };
    let r = app
        .client
        .post(console("/login"))
        .form(&[
            ("email", "boss@example.org"),
            ("password", PASSWORD),
            ("csrf", &csrf(&page)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = app
        .client
        .get(console(&format!("/users/{}", held.user_id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = app
        .client
        .post(console(&format!("/users/{}/end-sessions", held.user_id)))
        .form(&[("csrf", csrf(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_ended_everywhere(&app, &held, "the console's end sessions").await;
}

#[tokio::test]
async fn a_reused_refresh_token_ends_its_session_on_every_path() {
    let app = spawn_app_with_ably().await;
    let (held, other) = victim_with_two_sessions(&app).await;
    // The owner refreshes; later someone presents the rotated token again.
    let r = refresh(&app, &held.refresh_token).await;
    assert_eq!(r.status(), 200);
    let rotated = crate::support::sessions::read_login(r).await;
    assert_eq!(
        rotated.session_id, held.session_id,
        "a refresh keeps the session"
    );
    app.advance(Duration::from_secs(11));
    assert_eq!(refresh(&app, &held.refresh_token).await.status(), 400);
    assert_ended_everywhere(&app, &held, "refresh-token reuse").await;
    assert_ended_everywhere(&app, &rotated, "refresh-token reuse").await;
    assert_eq!(refresh(&app, &rotated.refresh_token).await.status(), 400);
    // Only that session: the user's other one is untouched.
    assert_live(&app, &other).await;
}

#[tokio::test]
async fn a_ban_refuses_every_path_with_403_and_unbanning_revives_no_session() {
    for ban in [
        json!({"app_metadata": {"roles": ["banned"]}}),
        json!({"ban_duration": "24h"}),
    ] {
        let app = spawn_app_with_ably().await;
        let (held, _) = victim_with_two_sessions(&app).await;
        assert_live(&app, &held).await;
        let path = format!("/admin/users/{}", held.user_id);
        assert_eq!(
            app.put_json(&path, OPERATOR_TOKEN, &ban).await.status(),
            200
        );
        let seen = probe_every_path(&app, &held).await;
        let expected = [
            ("GET /user", 403, "User is banned"),
            ("PUT /user", 403, "User is banned"),
            ("GET /admin/users", 401, "User not allowed"),
            ("Ably, Bearer", 403, "User is banned"),
            ("Ably, nf_jwt", 403, "User is banned"),
            ("Ably, session cookie", 403, "User is banned"),
            ("POST /logout", 403, "User is banned"),
        ];
        let seen: Vec<_> = seen.iter().map(|(p, s, m)| (*p, *s, m.as_str())).collect();
        assert_eq!(seen, expected, "after {ban}");

        let unban = json!({"app_metadata": {"roles": []}, "ban_duration": "none"});
        assert_eq!(
            app.put_json(&path, OPERATOR_TOKEN, &unban).await.status(),
            200
        );
        assert_ended_everywhere(&app, &held, "a ban, then an unban").await;
        assert_eq!(refresh(&app, &held.refresh_token).await.status(), 400);
    }
}

#[tokio::test]
async fn deleting_the_user_refuses_every_path() {
    let app = spawn_app_with_ably().await;
    let (held, _) = victim_with_two_sessions(&app).await;
    let r = app
        .delete(&format!("/admin/users/{}", held.user_id), OPERATOR_TOKEN)
        .await;
    assert_eq!(r.status(), 200);
    let seen = probe_every_path(&app, &held).await;
    let seen: Vec<_> = seen.iter().map(|(p, s, m)| (*p, *s, m.as_str())).collect();
    // Each path answers as it documents an unknown user: GoTrue's 404 on /user, Ably's 403
    // (ably-js stops retrying), 401 elsewhere; the session cookie's session went with the user.
    assert_eq!(
        seen,
        [
            ("GET /user", 404, "User not found"),
            ("PUT /user", 404, "User not found"),
            ("GET /admin/users", 401, "Invalid admin user"),
            ("Ably, Bearer", 403, "User not found"),
            ("Ably, nf_jwt", 403, "User not found"),
            ("Ably, session cookie", 401, SESSION_ENDED),
            ("POST /logout", 401, "Invalid user"),
        ]
    );
}

#[tokio::test]
async fn a_user_token_that_names_no_session_is_refused_everywhere() {
    // A token signed with the right key but without `session_id` (as issued before sessions
    // were named) cannot be tied to a live session.
    let app = spawn_app_with_ably().await;
    let (held, _) = victim_with_two_sessions(&app).await;
    let user = chipflap::services::admin_users::get_user(&app.state, held.user_id.parse().unwrap())
        .await
        .unwrap();
    #[derive(serde::Serialize)]
    struct Legacy<'a> {
        exp: i64,
        sub: &'a str,
        email: &'a str,
    }
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("nf-ident".into());
    let secret = app.state.settings.jwt.secret_bytes();
    let legacy = jsonwebtoken::encode(
        &header,
        &Legacy {
            exp: app.clock.now().unix() + 600,
            sub: &held.user_id,
            email: &user.email,
        },
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
    .unwrap();
    let forged = Login {
        access_token: legacy.clone(),
        nf_jwt: legacy,
        session_cookie: String::new(),
        ..held.clone()
    };
    let seen = probe_every_path(&app, &forged).await;
    for (path, status, msg) in seen {
        if path == "Ably, session cookie" {
            assert_eq!(status, 401, "no session cookie, no session: {msg}");
            continue;
        }
        assert_eq!((status, msg.as_str()), (401, SESSION_ENDED), "{path}");
    }
    // The held session itself was not touched by any of that.
    assert_live(&app, &held).await;
}

#[tokio::test]
async fn system_and_operator_tokens_have_no_session_and_keep_working() {
    let app = spawn_app_with_ably().await;
    let (held, _) = victim_with_two_sessions(&app).await;
    let r = bare_client()
        .post(app.url("/logout"))
        .bearer_auth(&held.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let system = app
        .state
        .jwt
        .issue_system(app.clock.now().plus(Duration::from_secs(600)))
        .unwrap();
    for token in [system.as_str(), OPERATOR_TOKEN] {
        let (status, msg) = outcome(app.get("/admin/users", Some(token)).await).await;
        assert_eq!(status, 200, "{msg}");
    }
}

#[tokio::test]
async fn sessions_of_an_existing_database_migrate_and_end_like_new_ones() {
    use chipflap::domain::one_time_token::SecretToken;

    // A database as the previous version left it: every migration before the sessions one.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old-migrations");
    std::fs::create_dir(&old).unwrap();
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&here).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".sql") && name.as_str() < "20261130000007" {
            std::fs::copy(here.join(&name), old.join(&name)).unwrap();
        }
    }
    let settings = crate::helpers::test_settings(dir.path());
    let pool = chipflap::db::connect_pool(settings.database.sqlite_path().unwrap())
        .await
        .unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    // One user with two sessions as refresh-token families: one live (rotated once), one
    // revoked by an earlier logout.
    let user = "7b1d8a52-0c8e-4d4e-9d8f-2b8f5f0d6a11";
    let start = crate::helpers::START;
    sqlx::query(
        "insert into users (id, email, confirmed_at, created_at, updated_at) values (?, ?, ?, ?, ?)",
    )
    .bind(user)
    .bind("old@example.org")
    .bind(start)
    .bind(start)
    .bind(start)
    .execute(&pool)
    .await
    .unwrap();
    let live_family = "11111111-2222-4333-8444-555555555555";
    let dead_family = "66666666-7777-4888-8999-aaaaaaaaaaaa";
    let digest = |t: &str| SecretToken::presented(t).digest().as_bytes().to_vec();
    for (token, family, parent, rotated, revoked) in [
        ("old-live-first", live_family, None, Some(start - 50), None),
        ("old-live-head", live_family, Some(1), None, None),
        ("old-dead", dead_family, None, None, Some(start - 10)),
    ] {
        sqlx::query(
            "insert into refresh_tokens (digest, user_id, family_id, parent_id, rotated_at, revoked_at, created_at, access_digest)
             values (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(digest(token))
        .bind(user)
        .bind(family)
        .bind(parent)
        .bind(rotated)
        .bind(revoked)
        .bind(start - 100)
        .bind(digest("an old access token"))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    // The new version starts on it and migrates.
    let app = crate::helpers::spawn_in(
        dir,
        settings,
        chipflap::mail::Mailer::memory(crate::helpers::test_from()),
    )
    .await;
    let sessions: Vec<(String, Option<String>)> =
        sqlx::query_as("select id, ended_reason from sessions order by id")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(
        sessions,
        [
            (live_family.to_owned(), None),
            (dead_family.to_owned(), Some("admin".to_owned()))
        ]
    );
    // The live family's head refreshes into a token naming that session; the dead one does not.
    let migrated =
        crate::support::sessions::read_login(app.post_token_refresh("old-live-head").await).await;
    assert_eq!(migrated.session_id, live_family);
    assert_eq!(app.post_token_refresh("old-dead").await.status(), 400);
    assert_eq!(
        app.get("/user", Some(&migrated.access_token))
            .await
            .status(),
        200
    );
    // And it ends like any other session.
    let r = bare_client()
        .post(app.url("/logout"))
        .bearer_auth(&migrated.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (status, msg) = outcome(app.get("/user", Some(&migrated.access_token)).await).await;
    assert_eq!((status, msg.as_str()), (401, SESSION_ENDED));
}
