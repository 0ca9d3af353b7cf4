//! `POST /token`: password and refresh grants, rotation with reuse detection, cookies.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_oauth_error, spawn_app};

const BAD_CREDENTIALS: &str = "No user found with that email, or password invalid.";

fn claims(access_token: &str) -> Value {
    let part = access_token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn password_grant_answers_gotrue_token_response_and_claims() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    app.advance(Duration::from_secs(1));
    let r = app.post_token_password("ada@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_eq!(refresh.len(), 22);
    assert!(
        refresh
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    );
    let c = claims(body["access_token"].as_str().unwrap());
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "exp",
            "sub",
            "email",
            "app_metadata",
            "user_metadata",
            "session_id",
            "aal",
            "amr"
        ],
        "GoTrue's claims in GoTrue's order, no aud when empty, no iat/role; then the session \
         and supabase/auth's MFA claims"
    );
    assert!(uuid::Uuid::parse_str(c["session_id"].as_str().unwrap()).is_ok());
    assert_eq!(c["exp"], crate::helpers::START + 1 + 3600);
    assert_eq!(c["email"], "ada@example.org");
    assert_eq!(c["app_metadata"], json!({"provider": "email"}));
}

#[tokio::test]
async fn unknown_email_and_wrong_password_answer_identically() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    let wrong = app
        .post_token_password("ada@example.org", "wrong password")
        .await;
    let unknown = app
        .post_token_password("nobody@example.org", PASSWORD)
        .await;
    assert_eq!(wrong.status(), unknown.status());
    let (a, b): (Value, Value) = (wrong.json().await.unwrap(), unknown.json().await.unwrap());
    assert_eq!(a, b);
    assert_eq!(
        a,
        json!({"error": "invalid_grant", "error_description": BAD_CREDENTIALS})
    );
}

#[tokio::test]
async fn grant_errors_use_the_oauth_shape() {
    let app = spawn_app().await;
    let r = app
        .client
        .post(app.url("/token"))
        .form(&[("grant_type", "magic")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "unsupported_grant_type"})
    );
    let r = app.client.post(app.url("/token")).send().await.unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "unsupported_grant_type"})
    );
    assert_oauth_error(
        app.post_token_refresh("").await,
        "invalid_request",
        "refresh_token required",
    )
    .await;
    assert_oauth_error(
        app.post_token_refresh("nonsense").await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
}

#[tokio::test]
async fn json_bodies_are_ignored() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    let r = app
        .client
        .post(app.url("/token"))
        .json(
            &json!({"grant_type": "password", "username": "ada@example.org", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "unsupported_grant_type"})
    );
}

#[tokio::test]
async fn refresh_rotates_and_rebuilds_claims_from_the_current_user() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let admin = app.admin_user("admin@example.org").await;
    let id = app.user_id(first["access_token"].as_str().unwrap()).await;
    app.put_json(
        &format!("/admin/users/{id}"),
        admin["access_token"].as_str().unwrap(),
        &json!({"app_metadata": {"roles": ["editor"]}}),
    )
    .await;
    app.advance(Duration::from_secs(60));

    let r = app
        .post_token_refresh(first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let c = claims(second["access_token"].as_str().unwrap());
    assert_eq!(c["app_metadata"]["roles"], json!(["editor"]));
    assert_eq!(c["exp"], crate::helpers::START + 60 + 3600);
    // The successor works in turn.
    let r = app
        .post_token_refresh(second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn reuse_inside_the_grace_window_answers_the_same_successor() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let rt = first["refresh_token"].as_str().unwrap();
    let a: Value = app.post_token_refresh(rt).await.json().await.unwrap();
    app.advance(Duration::from_secs(9));
    let b: Value = app.post_token_refresh(rt).await.json().await.unwrap();
    assert_eq!(
        a["refresh_token"], b["refresh_token"],
        "both tabs hold the same successor"
    );
    // And that successor still works.
    assert_eq!(
        app.post_token_refresh(a["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_whole_family() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let rt = first["refresh_token"].as_str().unwrap();
    let second: Value = app.post_token_refresh(rt).await.json().await.unwrap();
    app.advance(Duration::from_secs(11));
    let r = app.post_token_refresh(rt).await;
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("nf_jwt=;"))
    );
    assert_oauth_error(r, "invalid_grant", "Invalid Refresh Token").await;
    // The successor, held by the legitimate client, is dead too.
    assert_oauth_error(
        app.post_token_refresh(second["refresh_token"].as_str().unwrap())
            .await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
    // Other sessions of the user are untouched.
    let other: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        app.post_token_refresh(other["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_all_succeed_with_the_same_successor() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let rt = first["refresh_token"].as_str().unwrap().to_owned();
    let requests = (0..8).map(|_| app.post_token_refresh(&rt));
    let answers = futures_util::future::join_all(requests).await;
    let mut successors = Vec::new();
    for r in answers {
        assert_eq!(r.status(), 200);
        successors.push(r.json::<Value>().await.unwrap()["refresh_token"].clone());
    }
    successors.dedup();
    assert_eq!(successors.len(), 1);
}

#[tokio::test]
async fn refresh_tokens_die_after_the_inactivity_lifetime() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    app.advance(Duration::from_secs(2_592_000));
    assert_oauth_error(
        app.post_token_refresh(first["refresh_token"].as_str().unwrap())
            .await,
        "invalid_grant",
        "Refresh token expired",
    )
    .await;
}

#[tokio::test]
async fn x_use_cookie_sets_nf_jwt() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    let login = |mode: &'static str| {
        app.client
            .post(app.url("/token"))
            .header("x-use-cookie", mode)
            .form(&[
                ("grant_type", "password"),
                ("username", "ada@example.org"),
                ("password", PASSWORD),
            ])
            .send()
    };
    let r = login("1").await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let token: Value = r.json().await.unwrap();
    assert!(cookie.starts_with(&format!(
        "nf_jwt={}",
        token["access_token"].as_str().unwrap()
    )));
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("Path=/")
            && cookie.contains("Max-Age=86400")
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http site: no Secure flag"
    );
    let r = login("session").await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(!cookie.contains("Max-Age"));
    let r = app.post_token_password("ada@example.org", PASSWORD).await;
    assert!(r.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn deleted_users_cannot_refresh() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(first["access_token"].as_str().unwrap()).await;
    let admin = app.admin_user("admin@example.org").await;
    app.delete(
        &format!("/admin/users/{id}"),
        admin["access_token"].as_str().unwrap(),
    )
    .await;
    assert_oauth_error(
        app.post_token_refresh(first["refresh_token"].as_str().unwrap())
            .await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
}

#[tokio::test]
async fn inside_the_grace_window_a_stale_token_gets_the_live_end_of_the_chain() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let t0 = first["refresh_token"].as_str().unwrap();
    // Tab A refreshes twice; tab B still holds t0.
    let a1: Value = app.post_token_refresh(t0).await.json().await.unwrap();
    app.advance(Duration::from_secs(2));
    let a2: Value = app
        .post_token_refresh(a1["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    app.advance(Duration::from_secs(2));
    let b: Value = app.post_token_refresh(t0).await.json().await.unwrap();
    assert_eq!(b["refresh_token"], a2["refresh_token"]);
    assert_eq!(
        app.post_token_refresh(b["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_ban_landing_during_logins_is_never_undone() {
    // 41 logins from one client IP at one instant: more than the per-IP /token burst.
    let app = crate::helpers::spawn_app_with(
        |s| s.rate_limits.token.burst = 1000,
        chipflap::mail::Mailer::memory(crate::helpers::test_from()),
    )
    .await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    let logins = (0..4).map(|_| async {
        for _ in 0..10 {
            app.post_token_password("ada@example.org", PASSWORD).await;
        }
    });
    let ban = async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        app.put_json(
            &format!("/admin/users/{id}"),
            crate::helpers::OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": ["banned"]}}),
        )
        .await
    };
    let (_, ban) = tokio::join!(futures_util::future::join_all(logins), ban);
    assert_eq!(ban.status(), 200);
    let user: Value = app
        .get(
            &format!("/admin/users/{id}"),
            Some(crate::helpers::OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["app_metadata"]["roles"], json!(["banned"]));
    assert_oauth_error(
        app.post_token_password("ada@example.org", PASSWORD).await,
        "invalid_grant",
        "User is banned",
    )
    .await;
}
