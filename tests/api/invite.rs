//! `POST /invite` and invite acceptance.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR_TOKEN, PASSWORD, assert_gotrue_error, spawn_app, spawn_app_with, test_from,
};
use chipflap::mail::Mailer;

#[tokio::test]
async fn invited_users_set_a_password_through_the_link() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "guest@example.org", "data": {"full_name": "Guest"}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["invited_at"], "2027-01-15T08:00:00Z");
    assert!(user.get("confirmed_at").is_none());
    let sent = app.sent_emails().await;
    assert_eq!(sent[0].subject, "You have been invited");
    let token = crate::helpers::link_token(&sent[0].text, "invite");

    assert_gotrue_error(
        app.post_verify("signup", &token, None).await,
        422,
        "Invited users must specify a password",
    )
    .await;
    let r = app.post_verify("signup", &token, Some(PASSWORD)).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let me: Value = app
        .get("/user", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert!(me.get("confirmed_at").is_some());
    assert_eq!(me["user_metadata"]["full_name"], "Guest");
    assert_eq!(
        app.post_token_password("guest@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    assert_gotrue_error(
        app.post_verify("signup", &token, Some(PASSWORD)).await,
        404,
        "User not found",
    )
    .await;
}

#[tokio::test]
async fn invite_links_expire_counted_from_invited_at() {
    let app = spawn_app().await;
    app.post_json(
        "/invite",
        Some(OPERATOR_TOKEN),
        &json!({"email": "guest@example.org"}),
    )
    .await;
    let token = app.token_in_last_email("guest@example.org", "invite").await;
    app.advance(Duration::from_secs(168 * 3600));
    assert_gotrue_error(
        app.post_verify("signup", &token, Some(PASSWORD)).await,
        422,
        "Confirmation token expired",
    )
    .await;
}

#[tokio::test]
async fn invites_need_an_admin_and_a_free_valid_address() {
    let app = spawn_app().await;
    let user = app.confirmed_user("ada@example.org").await;
    assert_gotrue_error(
        app.post_json(
            "/invite",
            user["access_token"].as_str(),
            &json!({"email": "x@example.org"}),
        )
        .await,
        401,
        "User not allowed",
    )
    .await;
    assert_gotrue_error(
        app.post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "ADA@example.org"}),
        )
        .await,
        422,
        "Email address already registered by another user",
    )
    .await;
    let r = app
        .post_json("/invite", Some(OPERATOR_TOKEN), &json!({"email": "nope"}))
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_failed_invite_mail_leaves_no_user() {
    let app = spawn_app_with(|_| {}, Mailer::memory_failing(test_from())).await;
    let r = app
        .post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "guest@example.org"}),
        )
        .await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap()["msg"],
        "Error inviting user"
    );
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn invite_audits_the_admin() {
    let app = spawn_app().await;
    let admin = app.admin_user("admin@example.org").await;
    app.post_json(
        "/invite",
        admin["access_token"].as_str(),
        &json!({"email": "guest@example.org"}),
    )
    .await;
    let r = app
        .get(
            "/admin/audit?query=action:user_invited",
            Some(OPERATOR_TOKEN),
        )
        .await;
    let entries: Value = r.json().await.unwrap();
    assert_eq!(entries[0]["payload"]["actor_email"], "admin@example.org");
    assert_eq!(
        entries[0]["payload"]["traits"]["user_email"],
        "guest@example.org"
    );
}

#[tokio::test]
async fn an_invite_link_is_dead_once_the_account_has_a_password() {
    let app = spawn_app().await;
    app.post_json(
        "/invite",
        Some(OPERATOR_TOKEN),
        &json!({"email": "guest@example.org"}),
    )
    .await;
    let invite = app.token_in_last_email("guest@example.org", "invite").await;
    // The guest sets a password through recovery instead.
    app.post_json("/recover", None, &json!({"email": "guest@example.org"}))
        .await;
    let sent = app.wait_for_emails(2).await;
    let recovery = crate::helpers::link_token(&sent[1].text, "recovery");
    let t: Value = app
        .post_verify("recovery", &recovery, None)
        .await
        .json()
        .await
        .unwrap();
    app.put_json(
        "/user",
        t["access_token"].as_str().unwrap(),
        &json!({"password": PASSWORD}),
    )
    .await;
    assert_gotrue_error(
        app.post_verify("signup", &invite, Some("attacker password"))
            .await,
        404,
        "User not found",
    )
    .await;
    assert_eq!(
        app.post_token_password("guest@example.org", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn signing_up_with_an_invited_address_resends_the_invite() {
    let app = spawn_app().await;
    app.post_json(
        "/invite",
        Some(OPERATOR_TOKEN),
        &json!({"email": "guest@example.org"}),
    )
    .await;
    app.advance(Duration::from_secs(3600));
    let r = app.post_signup("guest@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let sent = app.sent_emails().await;
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1].subject, "You have been invited");
    let token = crate::helpers::link_token(&sent[1].text, "invite");
    assert_eq!(
        app.post_verify("signup", &token, Some(PASSWORD))
            .await
            .status(),
        200
    );
}
