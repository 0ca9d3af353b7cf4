//! `POST /signup`.

use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, assert_gotrue_error, assert_oauth_error, spawn_app, spawn_app_with, test_from,
};
use chipflap::mail::Mailer;

#[tokio::test]
async fn signup_answers_the_user_and_mails_a_confirmation_link() {
    let app = spawn_app().await;
    let r = app.post_signup("Ada@Example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "Ada@Example.org");
    assert_eq!(user["aud"], "");
    assert_eq!(user["role"], "");
    assert_eq!(user["app_metadata"], json!({"provider": "email"}));
    assert_eq!(user["user_metadata"], json!({"full_name": "Test User"}));
    assert_eq!(user["confirmation_sent_at"], "2027-01-15T08:00:00Z");
    assert!(user.get("confirmed_at").is_none());
    for secret in ["password_hash", "encrypted_password", "confirmation_token"] {
        assert!(user.get(secret).is_none());
    }
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "aud",
            "role",
            "email",
            "confirmation_sent_at",
            "app_metadata",
            "user_metadata",
            "created_at",
            "updated_at"
        ]
    );
    let sent = app.sent_emails().await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "Confirm Your Signup");
    assert_eq!(sent[0].to, "Ada@Example.org");
    let token = crate::helpers::link_token(&sent[0].text, "confirmation");
    assert_eq!(token.len(), 22);
    assert!(sent[0].html.contains(&token));
}

#[tokio::test]
async fn login_before_confirmation_is_refused_after_the_password_check() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    assert_oauth_error(
        app.post_token_password("ada@example.org", PASSWORD).await,
        "invalid_grant",
        "Email not confirmed",
    )
    .await;
    // With a wrong password the answer does not reveal the account.
    assert_oauth_error(
        app.post_token_password("ada@example.org", "wrong password")
            .await,
        "invalid_grant",
        "No user found with that email, or password invalid.",
    )
    .await;
}

#[tokio::test]
async fn duplicate_signup_of_a_confirmed_address_looks_new_and_mails_the_owner() {
    let app = spawn_app().await;
    let tokens = app.confirmed_user("ada@example.org").await;
    let real_id = app.user_id(tokens["access_token"].as_str().unwrap()).await;
    app.advance(std::time::Duration::from_secs(3600));

    let r = app
        .post_json("/signup", None, &json!({"email": "ADA@example.org", "password": "another password", "data": {"full_name": "Mallory"}}))
        .await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert_ne!(answer["id"], real_id.as_str(), "the real id must not leak");
    assert_eq!(answer["email"], "ADA@example.org");
    assert!(answer.get("confirmation_sent_at").is_some());
    assert!(answer.get("confirmed_at").is_none());

    let sent = app.sent_emails().await;
    let last = sent.last().unwrap();
    assert_eq!(last.to, "ada@example.org");
    assert_eq!(last.subject, "You already have an account");
    // Nothing stored changed: the old password still works, the metadata is untouched.
    let r = app.post_token_password("ada@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let me: Value = app
        .get("/user", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_metadata"]["full_name"], "Test User");
    assert_oauth_error(
        app.post_token_password("ada@example.org", "another password")
            .await,
        "invalid_grant",
        "No user found with that email, or password invalid.",
    )
    .await;
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn duplicate_signup_of_an_unconfirmed_address_mails_its_own_link_without_overwriting() {
    let app = spawn_app().await;
    app.post_signup("ada@example.org", PASSWORD).await;
    let first = app
        .token_in_last_email("ada@example.org", "confirmation")
        .await;

    // Even inside the throttle window the second signup mails its own link (issue 9: the
    // mailbox owner decides the password), and the answer is the same.
    let r = app
        .post_json("/signup", None, &json!({"email": "ada@example.org", "password": "other password", "data": {"full_name": "Mallory"}}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(app.sent_emails().await.len(), 2);
    let second = app
        .token_in_last_email("ada@example.org", "confirmation")
        .await;
    assert_ne!(first, second);
    // The clicked link decides the password; the other link dies; metadata stays the first.
    let t: Value = app
        .post_verify("signup", &second, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.post_verify("signup", &first, None).await.status(), 404);
    let me: Value = app
        .get("/user", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["user_metadata"]["full_name"], "Test User");
    assert_eq!(
        app.post_token_password("ada@example.org", "other password")
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn signup_validates_its_input() {
    let app = spawn_app().await;
    assert_gotrue_error(
        app.post_json("/signup", None, &json!({"email": "a@example.org"}))
            .await,
        422,
        "Signup requires a valid password",
    )
    .await;
    assert_gotrue_error(
        app.post_json("/signup", None, &json!({"email": "", "password": PASSWORD}))
            .await,
        422,
        "An email address is required",
    )
    .await;
    let r = app
        .post_json(
            "/signup",
            None,
            &json!({"email": "not-an-address", "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Unable to validate email address")
    );
    assert_gotrue_error(
        app.post_json(
            "/signup",
            None,
            &json!({"email": "a@example.org", "password": "short"}),
        )
        .await,
        422,
        "Password must be at least 8 characters long",
    )
    .await;
    let r = app
        .client
        .post(app.url("/signup"))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Could not read Signup params: ")
    );
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn disabled_signup_is_refused() {
    let app = spawn_app_with(|s| s.signup.disabled = true, Mailer::memory(test_from())).await;
    assert_gotrue_error(
        app.post_signup("a@example.org", PASSWORD).await,
        403,
        "Signups not allowed for this instance",
    )
    .await;
}

#[tokio::test]
async fn autoconfirm_confirms_at_once_and_sends_nothing() {
    let app = spawn_app_with(|s| s.signup.autoconfirm = true, Mailer::memory(test_from())).await;
    let user: Value = app
        .post_signup("a@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["confirmed_at"], "2027-01-15T08:00:00Z");
    assert!(app.sent_emails().await.is_empty());
    assert_eq!(
        app.post_token_password("a@example.org", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_failed_confirmation_mail_undoes_the_signup() {
    let app = spawn_app_with(|_| {}, Mailer::memory_failing(test_from())).await;
    let r = app.post_signup("a@example.org", PASSWORD).await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["msg"], "Error sending confirmation mail");
    assert_eq!(body["error_id"].as_str().unwrap().len(), 36);
    assert_eq!(app.count("users").await, 0);
    assert_eq!(app.count("one_time_tokens").await, 0);
}

#[tokio::test]
async fn emails_are_unique_per_audience_case_insensitively() {
    let app = spawn_app_with(
        |s| s.jwt.extra_audiences = vec!["other".into()],
        Mailer::memory(test_from()),
    )
    .await;
    app.post_signup("ada@example.org", PASSWORD).await;
    app.post_signup("ADA@EXAMPLE.ORG", PASSWORD).await;
    assert_eq!(app.count("users").await, 1);
    // Another configured audience is another namespace.
    let r = app
        .client
        .post(app.url("/signup"))
        .header("x-jwt-aud", "other")
        .json(&json!({"email": "ada@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["aud"], "other");
    assert_eq!(app.count("users").await, 2);
}

#[tokio::test]
async fn under_autoconfirm_a_taken_address_is_still_mailed_but_after_the_answer() {
    let app = spawn_app_with(|s| s.signup.autoconfirm = true, Mailer::memory(test_from())).await;
    app.post_signup("ada@example.org", PASSWORD).await;
    let r = app.post_signup("ada@example.org", "another password").await;
    assert_eq!(r.status(), 200);
    let answer: Value = r.json().await.unwrap();
    assert!(
        answer.get("confirmed_at").is_some(),
        "looks like a fresh autoconfirmed signup"
    );
    let sent = app.wait_for_emails(1).await;
    assert_eq!(sent[0].subject, "You already have an account");
}
