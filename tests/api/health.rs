//! `/health`, `/settings`, unknown routes and CORS.

use serde_json::{Value, json};

use crate::helpers::{spawn_app, spawn_app_with};
use chipflap::mail::Mailer;

#[tokio::test]
async fn health_names_itself_gotrue() {
    let app = spawn_app().await;
    let r = app.get("/health", None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], "GoTrue");
    assert_eq!(
        body["description"],
        "GoTrue is a user registration and authentication API"
    );
}

#[tokio::test]
async fn settings_match_the_contract_and_follow_configuration() {
    let app = spawn_app().await;
    let body: Value = app.get("/settings", None).await.json().await.unwrap();
    assert_eq!(
        body,
        json!({"external": {"bitbucket": false, "github": false, "gitlab": false, "google": false,
                            "facebook": false, "email": true, "saml": false},
               "external_labels": {}, "disable_signup": false, "autoconfirm": false})
    );
    let app = spawn_app_with(
        |s| {
            s.signup.disabled = true;
            s.signup.autoconfirm = true;
        },
        Mailer::memory(crate::helpers::test_from()),
    )
    .await;
    let body: Value = app.get("/settings", None).await.json().await.unwrap();
    assert_eq!(body["disable_signup"], true);
    assert_eq!(body["autoconfirm"], true);
}

#[tokio::test]
async fn bodiless_requests_with_a_json_content_type_are_fine() {
    // gotrue-js 0.9 sends Content-Type: application/json on every request.
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/settings"))
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn unknown_routes_answer_chi_style_404_text() {
    let app = spawn_app().await;
    let r = app.get("/nope", None).await;
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(r.text().await.unwrap(), "404 page not found\n");
}

#[tokio::test]
async fn cors_allows_only_the_site_origin_with_the_clients_headers() {
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/user"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-nf-client,x-use-cookie,x-jwt-aud",
            )
            .send()
    };
    let ok = preflight("http://site.test").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(
        ok.headers()["access-control-allow-origin"],
        "http://site.test"
    );
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let allowed = ok.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "x-nf-client",
        "x-use-cookie",
        "x-jwt-aud",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    let refused = preflight("http://evil.test").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn oversized_bodies_are_refused() {
    let app = spawn_app().await;
    let big = "x".repeat(100 * 1024);
    let r = app
        .post_json(
            "/signup",
            None,
            &json!({"email": "a@example.org", "password": big}),
        )
        .await;
    assert_eq!(r.status(), 413);
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn a_known_path_with_another_method_is_405() {
    let app = spawn_app().await;
    let r = app.get("/signup", None).await;
    assert_eq!(r.status(), 405);
    let r = app.client.delete(app.url("/user")).send().await.unwrap();
    assert_eq!(r.status(), 405);
}
