//! `POST /verify`: confirmation, invite acceptance and recovery links.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_gotrue_error, spawn_app};

#[tokio::test]
async fn confirmation_link_logs_the_user_in_once() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    let token = app
        .token_in_last_email("ada@example.org", "confirmation")
        .await;
    let r = app.post_verify("signup", &token, None).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["token_type"], "bearer");
    let me: Value = app
        .get("/user", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["confirmed_at"], "2027-01-15T08:00:00Z");
    // Single use.
    assert_gotrue_error(
        app.post_verify("signup", &token, None).await,
        404,
        "User not found",
    )
    .await;
}

#[tokio::test]
async fn expired_confirmation_links_are_refused_and_stay_unused() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    let token = app
        .token_in_last_email("ada@example.org", "confirmation")
        .await;
    app.advance(Duration::from_secs(24 * 3600));
    assert_gotrue_error(
        app.post_verify("signup", &token, None).await,
        422,
        "Confirmation token expired",
    )
    .await;
    assert_gotrue_error(
        app.post_verify("signup", &token, None).await,
        422,
        "Confirmation token expired",
    )
    .await;
}

#[tokio::test]
async fn verify_validates_its_input() {
    let app = spawn_app().await;
    assert_gotrue_error(
        app.post_verify("signup", "  ", None).await,
        422,
        "Verify requires a token",
    )
    .await;
    assert_gotrue_error(
        app.post_verify("magic", "abc", None).await,
        422,
        "Verify requires a verification type",
    )
    .await;
    assert_gotrue_error(
        app.post_verify("signup", "unknown-token", None).await,
        404,
        "User not found",
    )
    .await;
    let r = app
        .client
        .post(app.url("/verify"))
        .body("[")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Could not read verification params: ")
    );
}

#[tokio::test]
async fn tokens_only_work_for_their_purpose() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    let token = app
        .token_in_last_email("ada@example.org", "confirmation")
        .await;
    assert_gotrue_error(
        app.post_verify("recovery", &token, None).await,
        404,
        "User not found",
    )
    .await;
    // The wrong-purpose attempt did not burn it.
    assert_eq!(app.post_verify("signup", &token, None).await.status(), 200);
}

#[tokio::test]
async fn x_use_cookie_is_honoured_on_verify() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    let token = app
        .token_in_last_email("ada@example.org", "confirmation")
        .await;
    let r = app
        .client
        .post(app.url("/verify"))
        .header("x-use-cookie", "1")
        .json(&json!({"type": "signup", "token": token}))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("nf_jwt=ey")
    );
}
