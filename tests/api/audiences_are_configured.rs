//! Rule: only configured audiences exist. `X-JWT-AUD` naming any other is a 400 on every
//! endpoint, a token for any other is refused, and no account can be made in one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app, spawn_app_with, test_from};
use chipflap::mail::Mailer;

const UNKNOWN: &str = "X-JWT-AUD names an audience this server does not serve (the audiences are GOTRUE_JWT_AUD and GOTRUE_JWT_ALLOWED_AUDIENCES)";

/// An HS256 token signed with the test server's secret, with these claims.
fn forged_with_our_secret(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(b"test-secret-test-secret-test-secret!").unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

async fn send(
    app: &TestApp,
    method: Method,
    url: &str,
    aud: &[u8],
    token: Option<&str>,
) -> reqwest::Response {
    let mut r = app.client.request(method.clone(), url).header(
        "x-jwt-aud",
        reqwest::header::HeaderValue::from_bytes(aud).unwrap(),
    );
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if method == Method::POST && url.ends_with("/token") {
        r = r.form(&[
            ("grant_type", "password"),
            ("username", "a@example.test"),
            ("password", PASSWORD),
        ]);
    } else if method != Method::GET && method != Method::DELETE {
        r = r.json(&json!({"email": "a@example.test", "password": PASSWORD}));
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn an_unknown_audience_is_a_400_on_every_endpoint() {
    let app = spawn_app().await;
    let user = app.confirmed_user("a@example.test").await;
    let token = user["access_token"].as_str().unwrap().to_owned();
    let id = app.user_id(&token).await;
    let users_before = app.count("users").await;
    let identity = [
        (Method::GET, "/health".to_owned(), None),
        (Method::GET, "/settings".to_owned(), None),
        (Method::POST, "/signup".to_owned(), None),
        (Method::POST, "/verify".to_owned(), None),
        (Method::POST, "/recover".to_owned(), None),
        (Method::GET, "/user".to_owned(), Some(token.as_str())),
        (Method::PUT, "/user".to_owned(), Some(token.as_str())),
        (Method::POST, "/logout".to_owned(), Some(token.as_str())),
        (Method::POST, "/invite".to_owned(), Some(OPERATOR_TOKEN)),
        (Method::GET, "/admin/users".to_owned(), Some(OPERATOR_TOKEN)),
        (
            Method::POST,
            "/admin/users".to_owned(),
            Some(OPERATOR_TOKEN),
        ),
        (
            Method::GET,
            format!("/admin/users/{id}"),
            Some(OPERATOR_TOKEN),
        ),
        (
            Method::PUT,
            format!("/admin/users/{id}"),
            Some(OPERATOR_TOKEN),
        ),
        (
            Method::DELETE,
            format!("/admin/users/{id}"),
            Some(OPERATOR_TOKEN),
        ),
        (Method::GET, "/admin/audit".to_owned(), Some(OPERATOR_TOKEN)),
    ];
    for aud in [&b"anything"[..], b"x", b"\xc3\xa4", b" other "] {
        for (method, path, bearer) in &identity {
            let r = send(&app, method.clone(), &app.url(path), aud, *bearer).await;
            assert_eq!(r.status(), 400, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(
                body,
                json!({"code": 400, "msg": UNKNOWN}),
                "{method} {path}"
            );
        }
        let r = send(&app, Method::POST, &app.url("/token"), aud, None).await;
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "invalid_request", "error_description": UNKNOWN})
        );
        let ably = format!("{}/.netlify/functions/ably-jwt", app.base);
        let r = send(&app, Method::GET, &ably, aud, Some(&token)).await;
        assert_eq!(r.status(), 400);
        assert_eq!(r.headers()["x-ably-errorcode"], "40000");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["message"], UNKNOWN);
    }
    // Nothing happened behind the refusals.
    assert_eq!(app.count("users").await, users_before);
    assert_eq!(app.user_id(&token).await, id);
    // The configured audience (here the default, "") may be named.
    let r = send(&app, Method::GET, &app.url("/user"), b"", Some(&token)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_banned_mailbox_cannot_come_back_through_another_audience() {
    let app = spawn_app().await;
    let user = app.confirmed_user("banned@example.test").await;
    let id = app.user_id(user["access_token"].as_str().unwrap()).await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": ["banned"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    for aud in ["anything", "BANNED", "shop"] {
        let r = app
            .client
            .post(app.url("/signup"))
            .header("x-jwt-aud", aud)
            .json(&json!({"email": "banned@example.test", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    // Nor through an admin-created account whose body names another audience.
    let r = app
        .post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "banned@example.test", "aud": "anything", "confirm": true, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(app.count("users").await, 1);
}

#[tokio::test]
async fn a_token_for_an_unconfigured_audience_is_refused() {
    let app = spawn_app().await;
    let user = app.confirmed_user("a@example.test").await;
    let id = app.user_id(user["access_token"].as_str().unwrap()).await;
    let exp = app.clock.now().unix() + 600;
    for aud in [json!("anything"), json!(["anything", ""])] {
        let token = forged_with_our_secret(&json!({"aud": aud, "exp": exp, "sub": id}));
        let r = app.get("/user", Some(&token)).await;
        assert_eq!(r.status(), 401);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["msg"],
            "Invalid token: token audience is not served by this server"
        );
        let r = app
            .client
            .get(format!("{}/.netlify/functions/ably-jwt", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = app.get("/admin/users", Some(&token)).await;
        assert_eq!(r.status(), 401);
    }
    // The system token carries no audience and stays an admin.
    let system = forged_with_our_secret(&json!({"exp": exp, "sub": "0"}));
    assert_eq!(app.get("/admin/users", Some(&system)).await.status(), 200);
}

#[tokio::test]
async fn allowed_audiences_are_separate_user_bases() {
    let app = spawn_app_with(
        |s| s.jwt.extra_audiences = vec!["shop".into()],
        Mailer::memory(test_from()),
    )
    .await;
    app.confirmed_user("ada@example.test").await;
    let r = app
        .client
        .post(app.url("/signup"))
        .header("x-jwt-aud", "shop")
        .json(&json!({"email": "ADA@example.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["aud"], "shop");
    assert_eq!(app.count("users").await, 2);
    // The admin list of the default audience does not show the shop's account.
    let r = app.get("/admin/users", Some(OPERATOR_TOKEN)).await;
    assert_eq!(r.headers()["x-total-count"], "1");
    let r = app
        .client
        .get(app.url("/admin/users"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("x-jwt-aud", "shop")
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["aud"], "shop");
    assert_eq!(list["users"][0]["email"], "ADA@example.test");
    // Still no made-up audience.
    let r = app
        .client
        .post(app.url("/signup"))
        .header("x-jwt-aud", "shop2")
        .json(&json!({"email": "ada@example.test", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}
