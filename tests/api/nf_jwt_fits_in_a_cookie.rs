//! Rule: `nf_jwt` stays under the browser's 4096-byte cookie limit whatever the user's
//! metadata (a larger cookie is dropped silently and the page gets "No session"). When the
//! full access token does not fit, the cookie carries a token of the same session and expiry
//! without `user_metadata`; then with only `provider` and `roles` of `app_metadata`; then with
//! neither. The JSON response always carries the full token.

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, TestApp};
use crate::support::sessions::{Login, ably_with_cookies, claims, login, spawn_app_with_ably};

const EMAIL: &str = "meta@example.org";

fn nf_jwt_header(l: &Login) -> &str {
    l.set_cookies
        .iter()
        .find(|c| c.starts_with("nf_jwt="))
        .unwrap()
}

/// A confirmed user with `user_metadata` and (set by an admin) `app_metadata`, logged in
/// with `X-Use-Cookie`.
async fn user_with(app: &TestApp, user_metadata: Value, app_metadata: Value) -> Login {
    let t = app.confirmed_user(EMAIL).await;
    let token = t["access_token"].as_str().unwrap();
    let r = app
        .put_json("/user", token, &json!({"data": user_metadata}))
        .await;
    assert_eq!(r.status(), 200);
    let id = app.user_id(token).await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": app_metadata}),
        )
        .await;
    assert_eq!(r.status(), 200);
    login(app, EMAIL).await
}

/// The cookie is under the limit, is a token of the same session, and works where the page
/// uses it (the Ably endpoint) and as a Bearer.
async fn assert_cookie_fits_and_works(app: &TestApp, l: &Login) -> Value {
    let header = nf_jwt_header(l);
    assert!(header.len() < 4096, "Set-Cookie is {} bytes", header.len());
    let full = claims(&l.access_token);
    let slim = claims(&l.nf_jwt);
    for claim in ["sub", "exp", "email", "session_id"] {
        assert_eq!(slim[claim], full[claim], "{claim}");
    }
    let r = ably_with_cookies(app, &l.user_id, &format!("nf_jwt={}", l.nf_jwt)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.get("/user", Some(&l.nf_jwt)).await.status(), 200);
    slim
}

#[tokio::test]
async fn small_metadata_keeps_the_full_token_in_the_cookie() {
    let app = spawn_app_with_ably().await;
    let l = user_with(
        &app,
        json!({"full_name": "Ada"}),
        json!({"roles": ["editor"]}),
    )
    .await;
    assert_eq!(l.nf_jwt, l.access_token);
    assert_cookie_fits_and_works(&app, &l).await;
}

#[tokio::test]
async fn eight_kilobytes_of_user_metadata_leave_it_out_of_the_cookie() {
    let app = spawn_app_with_ably().await;
    let bio = "x".repeat(8 * 1024);
    let l = user_with(&app, json!({"bio": bio}), json!({"roles": ["editor"]})).await;
    assert!(
        l.access_token.len() > 8 * 1024,
        "the response has the full token"
    );
    assert_eq!(claims(&l.access_token)["user_metadata"]["bio"], json!(bio));
    let slim = assert_cookie_fits_and_works(&app, &l).await;
    assert_eq!(slim["user_metadata"], json!({}));
    assert_eq!(
        slim["app_metadata"],
        json!({"provider": "email", "roles": ["editor"]}),
        "what the CDN and functions read stays"
    );
    // /user still answers the whole metadata from the store.
    let user: Value = app
        .get("/user", Some(&l.nf_jwt))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["user_metadata"]["bio"], json!(bio));
}

#[tokio::test]
async fn large_app_metadata_keeps_only_provider_and_roles() {
    let app = spawn_app_with_ably().await;
    let l = user_with(
        &app,
        json!({"bio": "y".repeat(4000)}),
        json!({"roles": ["editor", "member"], "notes": "z".repeat(6000)}),
    )
    .await;
    let slim = assert_cookie_fits_and_works(&app, &l).await;
    assert_eq!(
        slim["app_metadata"],
        json!({"provider": "email", "roles": ["editor", "member"]})
    );
}

#[tokio::test]
async fn even_huge_roles_leave_a_cookie_that_fits() {
    let app = spawn_app_with_ably().await;
    let roles: Vec<String> = (0..400).map(|i| format!("role-number-{i:05}")).collect();
    let l = user_with(&app, json!({}), json!({"roles": roles})).await;
    let slim = assert_cookie_fits_and_works(&app, &l).await;
    assert_eq!(slim["app_metadata"], json!({}));
    assert_eq!(slim["user_metadata"], json!({}));
}

#[tokio::test]
async fn the_refresh_grant_slims_the_cookie_too() {
    let app = spawn_app_with_ably().await;
    let l = user_with(&app, json!({"bio": "x".repeat(8 * 1024)}), json!({})).await;
    let r = crate::support::sessions::refresh(&app, &l.refresh_token).await;
    let refreshed = crate::support::sessions::read_login(r).await;
    assert_cookie_fits_and_works(&app, &refreshed).await;
}
