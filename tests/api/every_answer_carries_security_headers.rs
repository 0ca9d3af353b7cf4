//! Rule (ASVS 5.0 V3.4): every kind of answer carries `nosniff` and a referrer policy; API
//! answers are never cached or framed; the demo page that hosts the login widget is never
//! framed; HSTS is sent when the site is https; a method a path does not serve is a 405.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::json;

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app, spawn_app_with, test_from};

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .map(|v| v.to_str().unwrap())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

async fn answer(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
) -> (u16, HeaderMap) {
    let mut request = app.client.request(method, format!("{}{path}", app.base));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.headers().clone())
}

#[tokio::test]
async fn api_answers_of_every_kind_are_not_sniffed_cached_framed_or_referred() {
    let app = spawn_app().await;
    let token = app.confirmed_user("kim@example.org").await;
    let access = token["access_token"].as_str().unwrap().to_owned();
    let cases = [
        (Method::GET, "/.netlify/identity/settings", None, 200),
        (
            Method::GET,
            "/.netlify/identity/user",
            Some(access.as_str()),
            200,
        ),
        (Method::GET, "/.netlify/identity/user", None, 401),
        (
            Method::GET,
            "/.netlify/identity/admin/users",
            Some(OPERATOR_TOKEN),
            200,
        ),
        (Method::POST, "/.netlify/identity/token", None, 400),
        (Method::GET, "/.netlify/identity/nowhere", None, 404),
        (
            Method::PATCH,
            "/.netlify/identity/user",
            Some(access.as_str()),
            405,
        ),
        (Method::GET, "/.netlify/functions/ably-jwt", None, 401),
        (Method::GET, "/.netlify/functions/nowhere", None, 404),
    ];
    for (method, path, token, status) in cases {
        let (got, headers) = answer(&app, method.clone(), path, token).await;
        assert_eq!(got, status, "{method} {path}");
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
        assert_eq!(header(&headers, "cache-control"), "no-store", "{path}");
        assert_eq!(header(&headers, "x-frame-options"), "DENY", "{path}");
        assert!(header(&headers, "content-security-policy").contains("frame-ancestors 'none'"));
        assert_eq!(header(&headers, "referrer-policy"), "no-referrer", "{path}");
        assert!(
            headers.get("strict-transport-security").is_none(),
            "http site: no HSTS"
        );
    }
    // A token answer too.
    let r = app.post_token_password("kim@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(r.headers(), "cache-control"), "no-store");
}

#[tokio::test]
async fn the_demo_page_is_never_framed_and_only_get_and_head_are_served() {
    let app = spawn_app().await;
    for path in ["/", "/demo.js"] {
        let (status, headers) = answer(&app, Method::GET, path, None).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
        assert_eq!(header(&headers, "x-frame-options"), "DENY");
        assert_eq!(
            header(&headers, "content-security-policy"),
            "frame-ancestors 'none'"
        );
        assert_eq!(
            header(&headers, "referrer-policy"),
            "strict-origin-when-cross-origin"
        );
    }
    for method in [
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::from_bytes(b"TRACE").unwrap(),
    ] {
        let (status, headers) = answer(&app, method.clone(), "/", None).await;
        assert_eq!(status, 405, "{method}");
        assert_eq!(header(&headers, "allow"), "GET, HEAD");
    }
}

#[tokio::test]
async fn site_files_are_framed_only_as_the_operator_says() {
    let site = tempfile::tempdir().unwrap();
    std::fs::write(site.path().join("index.html"), "<p>hi</p>").unwrap();
    let root = site.path().canonicalize().unwrap();
    let open = spawn_app_with(
        |s| s.http.site_dir = Some(root.clone()),
        chipflap::mail::Mailer::memory(test_from()),
    )
    .await;
    let (status, headers) = answer(&open, Method::GET, "/", None).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert_eq!(
        header(&headers, "referrer-policy"),
        "strict-origin-when-cross-origin"
    );
    assert!(headers.get("content-security-policy").is_none());

    let closed = spawn_app_with(
        |s| {
            s.http.site_dir = Some(root.clone());
            s.http.site_frame_ancestors = Some("'self'".into());
        },
        chipflap::mail::Mailer::memory(test_from()),
    )
    .await;
    let (_, headers) = answer(&closed, Method::GET, "/", None).await;
    assert_eq!(
        header(&headers, "content-security-policy"),
        "frame-ancestors 'self'"
    );
    let (status, _) = answer(&closed, Method::POST, "/index.html", None).await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn an_https_site_gets_hsts_on_every_surface() {
    let app = spawn_app_with(
        |s| s.http.site_url = "https://site.test".parse().unwrap(),
        chipflap::mail::Mailer::memory(test_from()),
    )
    .await;
    for path in [
        "/",
        "/.netlify/identity/settings",
        "/.netlify/functions/ably-jwt",
        "/console/login",
    ] {
        let (_, headers) = answer(&app, Method::GET, path, None).await;
        assert_eq!(
            header(&headers, "strict-transport-security"),
            "max-age=31536000",
            "{path}"
        );
        assert_eq!(
            header(&headers, "x-content-type-options"),
            "nosniff",
            "{path}"
        );
    }
    let r = app
        .client
        .post(format!("{}/.netlify/identity/signup", app.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("strict-transport-security"));
}
