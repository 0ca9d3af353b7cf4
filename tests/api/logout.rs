//! `POST /logout`.

use serde_json::Value;

use crate::helpers::{PASSWORD, assert_oauth_error, spawn_app};

#[tokio::test]
async fn logout_is_204_without_content_type_and_ends_every_session() {
    let app = spawn_app().await;
    let a = app.confirmed_user("ada@example.org").await;
    let b: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .client
        .post(app.url("/logout"))
        .bearer_auth(a["access_token"].as_str().unwrap())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(r.headers().get("content-type").is_none());
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("nf_jwt=;")
    );
    assert!(r.text().await.unwrap().is_empty());
    for t in [&a, &b] {
        assert_oauth_error(
            app.post_token_refresh(t["refresh_token"].as_str().unwrap())
                .await,
            "invalid_grant",
            "Invalid Refresh Token",
        )
        .await;
    }
}

#[tokio::test]
async fn logout_needs_a_token() {
    let app = spawn_app().await;
    let r = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}
