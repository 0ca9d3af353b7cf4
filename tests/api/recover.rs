//! `POST /recover` and the recovery flow.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, assert_gotrue_error, assert_oauth_error, spawn_app, spawn_app_with, test_from,
};
use chipflap::mail::Mailer;

#[tokio::test]
async fn recovery_flow_sets_a_new_password() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    let r = app
        .post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    let sent = app.wait_for_emails(2).await;
    assert_eq!(sent[1].subject, "Reset Your Password");
    let token = crate::helpers::link_token(&sent[1].text, "recovery");

    let t: Value = app
        .post_verify("recovery", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let access = t["access_token"].as_str().unwrap();
    let r = app
        .put_json(
            "/user",
            access,
            &json!({"password": "a brand new password"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_oauth_error(
        app.post_token_password("ada@example.org", PASSWORD).await,
        "invalid_grant",
        "No user found with that email, or password invalid.",
    )
    .await;
    assert_eq!(
        app.post_token_password("ada@example.org", "a brand new password")
            .await
            .status(),
        200
    );
    assert_gotrue_error(
        app.post_verify("recovery", &token, None).await,
        404,
        "User not found",
    )
    .await;
}

#[tokio::test]
async fn recover_answers_the_same_for_unknown_and_throttled_addresses() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    for email in [
        "nobody@example.org",
        "ada@example.org",
        "ada@example.org",
        "ADA@example.org",
    ] {
        let r = app
            .post_json("/recover", None, &json!({"email": email}))
            .await;
        assert_eq!(r.status(), 200, "{email}");
        assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    }
    app.settle().await;
    assert_eq!(
        app.sent_emails().await.len(),
        2,
        "confirmation + one throttled recovery"
    );
    app.advance(Duration::from_secs(15 * 60));
    app.post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    app.wait_for_emails(3).await;
}

#[tokio::test]
async fn recovery_links_expire_after_ten_minutes() {
    // ASVS 5.0 V6.5.5: an out-of-band link that logs the user in lives at most 10 minutes.
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    app.post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    let sent = app.wait_for_emails(2).await;
    assert!(sent[1].text.contains("10 minutes"), "{}", sent[1].text);
    let token = crate::helpers::link_token(&sent[1].text, "recovery");
    app.advance(Duration::from_secs(600));
    assert_gotrue_error(
        app.post_verify("recovery", &token, None).await,
        422,
        "Recovery token expired",
    )
    .await;
}

#[tokio::test]
async fn recovery_confirms_an_unconfirmed_address() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    app.post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    let sent = app.wait_for_emails(2).await;
    let token = crate::helpers::link_token(&sent[1].text, "recovery");
    let t: Value = app
        .post_verify("recovery", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let me: Value = app
        .get("/user", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert!(me.get("confirmed_at").is_some());
}

#[tokio::test]
async fn recover_requires_an_email() {
    let app = spawn_app().await;
    assert_gotrue_error(
        app.post_json("/recover", None, &json!({"email": " "}))
            .await,
        422,
        "Password recovery requires an email",
    )
    .await;
}

#[tokio::test]
async fn a_failed_recovery_mail_is_forgotten_so_the_user_can_ask_again() {
    let app = spawn_app_with(|_| {}, Mailer::memory_failing(test_from())).await;
    chipflap::services::admin_users::create_user(
        &app.state,
        &chipflap::services::Actor::command_line(),
        chipflap::services::admin_users::NewUser {
            email: "ada@example.org".into(),
            password: Some(PASSWORD.into()),
            confirm: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let r = app
        .post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    assert_eq!(r.status(), 200);
    app.settle().await;
    // The recovery did run (and was undone): it is in the audit log, its link is gone.
    let audit: Value = app
        .get(
            "/admin/audit?query=action:user_recovery_requested",
            Some(crate::helpers::OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(audit.as_array().unwrap().len(), 1);
    assert_eq!(app.count("one_time_tokens").await, 0);
    let user: Value = app
        .get(
            "/admin/users?filter=ada",
            Some(crate::helpers::OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        user["users"][0].get("recovery_sent_at").is_none(),
        "the throttle stamp is undone"
    );
}
