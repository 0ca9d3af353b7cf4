//! `GET /user` and `PUT /user`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, assert_gotrue_error, assert_oauth_error, spawn_app};

#[tokio::test]
async fn get_user_needs_a_valid_bearer_token() {
    let app = spawn_app().await;
    assert_gotrue_error(
        app.get("/user", None).await,
        401,
        "This endpoint requires a Bearer token",
    )
    .await;
    let r = app.get("/user", Some("garbage")).await;
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("nf_jwt=;")
    );
    assert_gotrue_error(r, 401, "Invalid token: token is malformed").await;
    let t = app.confirmed_user("ada@example.org").await;
    app.advance(Duration::from_secs(3600 + 303));
    assert_gotrue_error(
        app.get("/user", t["access_token"].as_str()).await,
        401,
        "Invalid token: token is expired by 5m3s",
    )
    .await;
}

#[tokio::test]
async fn get_user_answers_the_user_without_secrets() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let r = app.get("/user", t["access_token"].as_str()).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.org");
    for key in me.as_object().unwrap().keys() {
        assert!(!key.contains("token") && !key.contains("password"), "{key}");
    }
}

#[tokio::test]
async fn system_tokens_have_no_user() {
    let app = spawn_app().await;
    let system = app
        .state
        .jwt
        .issue_system(app.clock.now().plus(Duration::from_secs(60)))
        .unwrap();
    assert_gotrue_error(
        app.get("/user", Some(&system)).await,
        400,
        "Could not read User ID claim",
    )
    .await;
}

#[tokio::test]
async fn data_merges_and_null_deletes_keys() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let token = t["access_token"].as_str().unwrap();
    app.put_json("/user", token, &json!({"data": {"a": 1, "b": {"x": 1}}}))
        .await;
    let r = app
        .put_json(
            "/user",
            token,
            &json!({"data": {"b": {"y": 2}, "full_name": null}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["user_metadata"], json!({"a": 1, "b": {"y": 2}}));
}

#[tokio::test]
async fn users_cannot_change_their_own_app_metadata() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    assert_gotrue_error(
        app.put_json(
            "/user",
            t["access_token"].as_str().unwrap(),
            &json!({"app_metadata": {"roles": ["admin"]}}),
        )
        .await,
        401,
        "Updating app_metadata requires admin privileges",
    )
    .await;
    // Admins may change theirs, merged the same way.
    let a = app.admin_user("admin@example.org").await;
    let r = app
        .put_json(
            "/user",
            a["access_token"].as_str().unwrap(),
            &json!({"app_metadata": {"roles": ["x"], "provider": null}}),
        )
        .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["app_metadata"],
        json!({"roles": ["x"]})
    );
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_only() {
    let app = spawn_app().await;
    let here = app.confirmed_user("ada@example.org").await;
    app.advance(Duration::from_secs(5));
    let elsewhere: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    app.advance(Duration::from_secs(5));
    let r = app
        .put_json(
            "/user",
            here["access_token"].as_str().unwrap(),
            &json!({"password": "new password 123"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_oauth_error(
        app.post_token_refresh(elsewhere["refresh_token"].as_str().unwrap())
            .await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
    assert_eq!(
        app.post_token_refresh(here["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn new_passwords_follow_the_policy() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    assert_gotrue_error(
        app.put_json(
            "/user",
            t["access_token"].as_str().unwrap(),
            &json!({"password": "short"}),
        )
        .await,
        422,
        "Password must be at least 8 characters long",
    )
    .await;
}

#[tokio::test]
async fn email_change_mails_the_new_address_and_swaps_on_the_token() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let token = t["access_token"].as_str().unwrap();
    let r = app
        .put_json("/user", token, &json!({"email": "ada@new.example"}))
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.org");
    assert_eq!(me["new_email"], "ada@new.example");
    let sent = app.sent_emails().await;
    // The old address's notice goes out in the background, so it may come before or after.
    let last = sent
        .iter()
        .rev()
        .find(|m| m.to != "ada@example.org")
        .unwrap();
    assert_eq!(
        (last.to.as_str(), last.subject.as_str()),
        ("ada@new.example", "Confirm Email Change")
    );
    let change = crate::helpers::link_token(&last.text, "email_change");

    assert_gotrue_error(
        app.put_json("/user", token, &json!({"email_change_token": "wrong"}))
            .await,
        401,
        "Email Change Token didn't match token on file",
    )
    .await;
    let r = app
        .put_json("/user", token, &json!({"email_change_token": change}))
        .await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["email"], "ada@new.example");
    assert!(me.get("new_email").is_none());
    assert_eq!(
        app.post_token_password("ada@new.example", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn email_change_tokens_expire() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    app.put_json(
        "/user",
        t["access_token"].as_str().unwrap(),
        &json!({"email": "ada@new.example"}),
    )
    .await;
    let change = app
        .token_in_last_email("ada@new.example", "email_change")
        .await;
    app.advance(Duration::from_secs(24 * 3600));
    let fresh: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_gotrue_error(
        app.put_json(
            "/user",
            fresh["access_token"].as_str().unwrap(),
            &json!({"email_change_token": change}),
        )
        .await,
        422,
        "Email change token expired",
    )
    .await;
}

#[tokio::test]
async fn put_user_rejects_non_json() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let r = app
        .client
        .put(app.url("/user"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Could not read User Update params: ")
    );
}

#[tokio::test]
async fn sessions_started_in_the_same_second_are_told_apart() {
    // GoTrue's claims carry no nonce; chipflap keeps each session's access token unique so a
    // password change keeps exactly the caller's session.
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    app.advance(Duration::from_secs(1));
    let mine: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let theirs: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(mine["access_token"], theirs["access_token"]);
    let r = app
        .put_json(
            "/user",
            mine["access_token"].as_str().unwrap(),
            &json!({"password": "new password 123"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.post_token_refresh(mine["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_token_refresh(theirs["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn a_token_reissued_in_the_grace_window_still_identifies_its_session() {
    let app = spawn_app().await;
    let first = app.confirmed_user("ada@example.org").await;
    let t0 = first["refresh_token"].as_str().unwrap();
    app.advance(Duration::from_secs(30));
    app.post_token_refresh(t0).await;
    app.advance(Duration::from_secs(5));
    // The second tab presents the rotated token: same successor, fresh access token.
    let tab_b: Value = app.post_token_refresh(t0).await.json().await.unwrap();
    app.advance(Duration::from_secs(5));
    let elsewhere: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .put_json(
            "/user",
            tab_b["access_token"].as_str().unwrap(),
            &json!({"password": "new password 123"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        app.post_token_refresh(tab_b["refresh_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_token_refresh(elsewhere["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn metadata_cannot_grow_past_its_limit_by_merging() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let token = t["access_token"].as_str().unwrap();
    let chunk = "x".repeat(6000);
    for key in ["a", "b"] {
        assert_eq!(
            app.put_json("/user", token, &json!({"data": {key: chunk}}))
                .await
                .status(),
            200
        );
    }
    let r = app
        .put_json("/user", token, &json!({"data": {"c": chunk}}))
        .await;
    assert_eq!(r.status(), 422);
}

#[tokio::test]
async fn a_failed_email_change_mail_stores_nothing() {
    let app = crate::helpers::spawn_app_with(
        |_| {},
        chipflap::mail::Mailer::memory_failing(crate::helpers::test_from()),
    )
    .await;
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
    let t: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let token = t["access_token"].as_str().unwrap();
    let r = app
        .put_json(
            "/user",
            token,
            &json!({"email": "ada@new.example", "password": "another password", "data": {"x": 1}}),
        )
        .await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap()["msg"],
        "Error sending change email"
    );
    let me: Value = app.get("/user", Some(token)).await.json().await.unwrap();
    assert!(me.get("new_email").is_none());
    assert!(me["user_metadata"].get("x").is_none());
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(app.count("one_time_tokens").await, 0);
}
