//! Rule "no enumeration through email change", from the attacker's side: a signed-in user who
//! asks to move to an address learns nothing about whether it has an account, and cannot take
//! one that does.

use std::time::Duration;

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

/// What an observer sees of a `PUT /user` answer, with the caller's own data masked: the
/// status, the header names and the body's shape.
async fn shape(response: Response) -> (u16, Vec<String>, Value) {
    let status = response.status().as_u16();
    let mut headers: Vec<String> = response
        .headers()
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| k != "date")
        .collect();
    headers.sort();
    let mut body: Value = response.json().await.unwrap();
    for field in [
        "id",
        "email",
        "created_at",
        "updated_at",
        "confirmed_at",
        "last_sign_in_at",
    ] {
        if body.get(field).is_some() {
            body[field] = json!("…");
        }
    }
    (status, headers, body)
}

async fn change_email(app: &TestApp, token: &str, email: &str) -> Response {
    app.put_json("/user", token, &json!({"email": email})).await
}

fn token_of(login: &Value) -> &str {
    login["access_token"].as_str().unwrap()
}

#[tokio::test]
async fn asking_for_a_taken_address_answers_as_for_a_free_one() {
    let app = spawn_app().await;
    app.confirmed_user("bob@example.org").await;
    let ada = app.confirmed_user("ada@example.org").await;
    let cat = app.confirmed_user("cat@example.org").await;

    let taken = shape(change_email(&app, token_of(&ada), "BOB@example.org").await).await;
    let free = shape(change_email(&app, token_of(&cat), "dan@example.org").await).await;
    assert_eq!(taken.0, 200);
    let (mut taken_body, mut free_body) = (taken.2.clone(), free.2.clone());
    assert_eq!(taken_body["new_email"], "BOB@example.org");
    assert_eq!(free_body["new_email"], "dan@example.org");
    taken_body["new_email"] = json!("…");
    free_body["new_email"] = json!("…");
    assert_eq!(
        (taken.0, &taken.1, taken_body),
        (free.0, &free.1, free_body)
    );

    // The free address gets the link; the owner of the taken one only a notice, no link.
    let sent = app.sent_emails().await;
    let to_dan: Vec<_> = sent
        .iter()
        .filter(|m| m.to.contains("dan@example.org"))
        .collect();
    assert_eq!(to_dan.len(), 1);
    assert!(to_dan[0].text.contains("#email_change_token="));
    let to_bob: Vec<_> = sent
        .iter()
        .filter(|m| m.to.contains("bob@example.org") && m.subject != "Confirm Your Signup")
        .collect();
    assert_eq!(to_bob.len(), 1, "{to_bob:?}");
    assert_eq!(to_bob[0].subject, "Someone tried to use your email address");
    assert!(!to_bob[0].text.contains("_token="));

    // Ada's account still has her address, and Bob's is untouched.
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_token_password("bob@example.org", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_change_cannot_take_an_address_that_became_taken_before_it_was_applied() {
    let app = spawn_app().await;
    let ada = app.confirmed_user("ada@example.org").await;
    assert_eq!(
        change_email(&app, token_of(&ada), "new@example.org")
            .await
            .status(),
        200
    );
    let link = app
        .token_in_last_email("new@example.org", "email_change")
        .await;
    // Someone else registers the address before Ada follows her link.
    app.confirmed_user("NEW@example.org").await;
    let r = app
        .put_json(
            "/user",
            token_of(&ada),
            &json!({"email_change_token": link}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let me: Value = app
        .get("/user", Some(token_of(&ada)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "ada@example.org");
}

#[tokio::test]
async fn the_owner_of_a_taken_address_gets_a_limited_number_of_notices() {
    let app = spawn_app().await;
    app.confirmed_user("bob@example.org").await;
    let limit = app.state.settings.rate_limits.email_sent.burst as usize;
    for i in 0..limit + 4 {
        let mover = app.confirmed_user(&format!("mover{i}@example.org")).await;
        let r = change_email(&app, token_of(&mover), "bob@example.org").await;
        assert_eq!(r.status(), 200);
        // Keep the per-IP email change limit out of the way: this test is about the notices.
        app.advance(Duration::from_secs(10));
    }
    let notices = app
        .sent_emails()
        .await
        .iter()
        .filter(|m| m.to.contains("bob@example.org") && m.subject != "Confirm Your Signup")
        .count();
    // Bob's own confirmation mail counted against the same limit.
    assert_eq!(notices, limit - 1);
}
