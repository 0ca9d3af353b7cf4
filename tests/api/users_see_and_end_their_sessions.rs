//! Rule (ASVS 5.0 V7.5.2): users can see their live sessions and end any of them; ending
//! another device's session needs the current password again, so a stolen access token alone
//! cannot lock the owner out of their other devices or hide itself.

use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app};

async fn login(app: &TestApp, email: &str) -> Value {
    let r = app.post_token_password(email, PASSWORD).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

fn access(tokens: &Value) -> &str {
    tokens["access_token"].as_str().unwrap()
}

async fn sessions(app: &TestApp, token: &str) -> Vec<Value> {
    let r = app.get("/user/sessions", Some(token)).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["sessions"].as_array().unwrap().clone()
}

async fn end(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    app.client
        .delete(app.url(&format!("/user/sessions/{id}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_user_sees_each_live_session_and_which_one_is_theirs() {
    let app = spawn_app().await;
    app.confirmed_user("kim@example.org").await;
    let laptop = login(&app, "kim@example.org").await;
    let phone = login(&app, "kim@example.org").await;
    let listed = sessions(&app, access(&laptop)).await;
    // The confirmation's own session, the laptop and the phone.
    assert_eq!(listed.len(), 3);
    assert_eq!(listed.iter().filter(|s| s["current"] == true).count(), 1);
    for s in &listed {
        assert!(
            s["id"].is_string() && s["created_at"].is_string() && s["refreshed_at"].is_string()
        );
        assert_eq!(
            s.as_object().unwrap().len(),
            4,
            "no more than id, times and current: {s}"
        );
    }
    let from_phone = sessions(&app, access(&phone)).await;
    let current =
        |list: &[Value]| list.iter().find(|s| s["current"] == true).unwrap()["id"].clone();
    assert_ne!(current(&listed), current(&from_phone));
}

#[tokio::test]
async fn ending_another_session_needs_the_current_password() {
    let app = spawn_app().await;
    app.confirmed_user("kim@example.org").await;
    let owner = login(&app, "kim@example.org").await;
    let thief = login(&app, "kim@example.org").await;
    let owner_id = sessions(&app, access(&owner))
        .await
        .into_iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The thief's token alone cannot end the owner's session.
    for body in [
        json!({}),
        json!({"current_password": ""}),
        json!({"current_password": "guess guess"}),
    ] {
        let r = end(&app, access(&thief), &owner_id, &body).await;
        assert_eq!(r.status(), 400, "{body}");
    }
    assert_eq!(app.get("/user", Some(access(&owner))).await.status(), 200);

    // The owner, with the password, ends the thief's session: its tokens die at once.
    let thief_id = sessions(&app, access(&thief))
        .await
        .into_iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = end(
        &app,
        access(&owner),
        &thief_id,
        &json!({"current_password": PASSWORD}),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.get("/user", Some(access(&thief))).await.status(), 401);
    let refresh = app
        .post_token_refresh(thief["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(refresh.status(), 400);
    assert!(
        !sessions(&app, access(&owner))
            .await
            .iter()
            .any(|s| s["id"] == thief_id.as_str()),
        "an ended session is no longer listed"
    );
}

#[tokio::test]
async fn ending_ones_own_session_is_a_logout_of_this_device_only() {
    let app = spawn_app().await;
    app.confirmed_user("kim@example.org").await;
    let laptop = login(&app, "kim@example.org").await;
    let phone = login(&app, "kim@example.org").await;
    let own = sessions(&app, access(&laptop))
        .await
        .into_iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = end(&app, access(&laptop), &own, &json!({})).await;
    assert_eq!(r.status(), 204);
    assert_eq!(app.get("/user", Some(access(&laptop))).await.status(), 401);
    assert_eq!(app.get("/user", Some(access(&phone))).await.status(), 200);
}

#[tokio::test]
async fn another_users_session_is_not_found_even_with_the_right_password() {
    let app = spawn_app().await;
    app.confirmed_user("kim@example.org").await;
    app.confirmed_user("lee@example.org").await;
    let kim = login(&app, "kim@example.org").await;
    let lee = login(&app, "lee@example.org").await;
    let lee_id = sessions(&app, access(&lee)).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for id in [
        lee_id.as_str(),
        "not-a-uuid",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let r = end(
            &app,
            access(&kim),
            id,
            &json!({"current_password": PASSWORD}),
        )
        .await;
        assert_eq!(r.status(), 404, "{id}");
    }
    assert_eq!(app.get("/user", Some(access(&lee))).await.status(), 200);
}
