//! Rule (ASVS 5.0 V14.2.1): credentials and tokens are read only from the body. A URL that
//! carries a password, a refresh token or the account name is refused, not read, since reverse
//! proxies write URLs to their access logs.

use serde_json::Value;

use crate::helpers::{PASSWORD, spawn_app};

#[tokio::test]
async fn a_password_grant_in_the_query_string_is_refused() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    let query = format!("grant_type=password&username=ada%40example.org&password={PASSWORD}");
    for body in ["", "grant_type=password"] {
        let r = app
            .client
            .post(format!("{}?{query}", app.url("/token")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let error: Value = r.json().await.unwrap();
        assert_eq!(error["error"], "invalid_request");
        assert_eq!(
            error["error_description"],
            "Credentials must be sent in the request body, never in the URL"
        );
    }
    // Even alongside correct body credentials: the URL alone decides.
    let r = app
        .client
        .post(format!("{}?password=x", app.url("/token")))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.org"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn a_refresh_token_in_the_query_string_is_refused_and_stays_usable() {
    let app = spawn_app().await;
    let tokens = app.confirmed_user("ada@example.org").await;
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = app
        .client
        .post(format!(
            "{}?grant_type=refresh_token&refresh_token={refresh}",
            app.url("/token")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Refused, not consumed: the body form of the same token still works.
    assert_eq!(app.post_token_refresh(refresh).await.status(), 200);
}

#[tokio::test]
async fn the_grant_type_alone_in_the_query_string_is_not_read() {
    let app = spawn_app().await;
    app.confirmed_user("ada@example.org").await;
    let r = app
        .client
        .post(format!("{}?grant_type=password", app.url("/token")))
        .form(&[("username", "ada@example.org"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}
