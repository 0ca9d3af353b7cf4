//! Rule: a new password may not be a word tied to this service, this site or the account's
//! own address, ignoring case and surrounding digits and symbols (ASVS 5.0 V6.1.2, V6.2.11),
//! on every path that sets a password.

use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR_TOKEN, PASSWORD, assert_gotrue_error, spawn_app, spawn_app_with, test_from,
};
use chipflap::domain::password::CONTEXT_WORD_MESSAGE;
use chipflap::mail::Mailer;

#[tokio::test]
async fn signup_refuses_context_words() {
    let app = spawn_app_with(
        |s| {
            s.signup.password_policy = chipflap::domain::password::PasswordPolicy::new(
                8,
                Some("site.test"),
                &["Whiskers".to_owned()],
            )
        },
        Mailer::memory(test_from()),
    )
    .await;
    for (email, password) in [
        ("a@example.org", "Chipflap2024!"),
        ("b@example.org", "NETLIFY12345"),
        ("c@example.org", "gotrue!!2024"),
        ("d@example.org", "identity2024"),
        ("ada.lovelace@example.org", "ada.lovelace1"),
        ("e@analytical-engine.org", "analytical-engine99"),
        ("f@example.org", "site.test2024"),
        ("g@example.org", "whiskers-2024"),
    ] {
        assert_gotrue_error(
            app.post_signup(email, password).await,
            422,
            CONTEXT_WORD_MESSAGE,
        )
        .await;
    }
    assert_eq!(app.count("users").await, 0);
    assert!(app.sent_emails().await.is_empty());
}

#[tokio::test]
async fn every_path_that_sets_a_password_refuses_them() {
    let app = spawn_app().await;
    let login = app.confirmed_user("ada@example.org").await;
    let token = login["access_token"].as_str().unwrap();
    let id = app.user_id(token).await;

    // Self-service change.
    assert_gotrue_error(
        app.put_json("/user", token, &json!({"password": "Ada2024!"}))
            .await,
        422,
        CONTEXT_WORD_MESSAGE,
    )
    .await;
    // Admin update, against the stored and the new address.
    assert_gotrue_error(
        app.put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"password": "chipflap!!"}),
        )
        .await,
        422,
        CONTEXT_WORD_MESSAGE,
    )
    .await;
    assert_gotrue_error(
        app.put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"email": "grace@hopper.example", "password": "grace1906"}),
        )
        .await,
        422,
        CONTEXT_WORD_MESSAGE,
    )
    .await;
    // Admin create.
    assert_gotrue_error(
        app.post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "lin@example.org", "password": "lin#2024"}),
        )
        .await,
        422,
        CONTEXT_WORD_MESSAGE,
    )
    .await;

    // Recovery ends in PUT /user (above). Invite acceptance knows the invitee's address.
    let r = app
        .post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "kim.jones@example.org"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let invite = app
        .token_in_last_email("kim.jones@example.org", "invite")
        .await;
    assert_gotrue_error(
        app.post_verify("signup", &invite, Some("Kim.Jones2024"))
            .await,
        422,
        CONTEXT_WORD_MESSAGE,
    )
    .await;
    // The refused attempt did not use the link up.
    let r = app.post_verify("signup", &invite, Some(PASSWORD)).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    assert!(t["access_token"].is_string());
}

#[test]
fn the_shipped_command_line_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli_passwords_never_come_from_arguments::run_with_stdin(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "ada.lovelace@example.org",
            "--password-stdin",
        ],
        "ada.lovelace1\n",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(CONTEXT_WORD_MESSAGE), "{stderr}");
}

#[tokio::test]
async fn the_command_line_service_refuses_them() {
    let app = spawn_app().await;
    let err = chipflap::services::admin_users::create_user(
        &app.state,
        &chipflap::services::Actor::command_line(),
        chipflap::services::admin_users::NewUser {
            aud: String::new(),
            email: "ops@example.org".into(),
            password: Some("Identity!2024".into()),
            confirm: true,
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains(CONTEXT_WORD_MESSAGE), "{err}");
}
