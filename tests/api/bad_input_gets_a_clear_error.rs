//! Rule: input never panics a worker or answers 500. Durations are checked, bodies are read the
//! way GoTrue reads them, and body failures answer in the endpoint's own error shape.

use serde_json::{Value, json};

use crate::console::{console, login_admin, post_form, user_id_of};
use crate::helpers::{OPERATOR_TOKEN, PASSWORD, spawn_app};

const HUGE_DURATIONS: [&str; 4] = [
    "18000000000000000000s18000000000000000000s",
    "18446744073709551615",
    "2562048h",
    "99999999999999999999999999999999999999h",
];

#[tokio::test]
async fn an_overflowing_ban_duration_is_a_400_in_the_admin_api() {
    let app = spawn_app().await;
    app.confirmed_user("eve@example.org").await;
    let id = user_id_of(&app, "eve@example.org").await;
    for huge in HUGE_DURATIONS {
        let r = app
            .put_json(
                &format!("/admin/users/{id}"),
                OPERATOR_TOKEN,
                &json!({"ban_duration": huge}),
            )
            .await;
        assert_eq!(r.status(), 400, "{huge}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["code"], 400);
        assert!(
            body["msg"].as_str().unwrap().contains("ban_duration"),
            "{body}"
        );
    }
    // The server is alive and the user unbanned.
    let r = app.post_token_password("eve@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_overflowing_ban_duration_is_a_400_page_in_the_console() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    app.confirmed_user("eve@example.org").await;
    let id = user_id_of(&app, "eve@example.org").await;
    for huge in HUGE_DURATIONS {
        let r = post_form(
            &app,
            &format!("/users/{id}/ban"),
            &[("csrf", &csrf), ("duration", huge), ("reason", "x")],
        )
        .await;
        assert_eq!(r.status(), 400, "{huge}");
        assert!(
            r.text()
                .await
                .unwrap()
                .contains("Choose how long the ban lasts")
        );
    }
    let r = app.post_token_password("eve@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
}

#[test]
fn an_overflowing_duration_in_the_configuration_stops_with_the_variable_named() {
    for huge in HUGE_DURATIONS {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chipflap"))
            .current_dir(dir.path())
            .env_clear()
            .env("GOTRUE_SMTP_MAX_FREQUENCY", huge)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{huge}: {stderr}");
        assert!(stderr.contains("GOTRUE_SMTP_MAX_FREQUENCY"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

fn multipart(boundary: &str, fields: &[(&str, &str)]) -> String {
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    body
}

#[tokio::test]
async fn the_token_endpoint_reads_multipart_and_any_case_of_media_type() {
    let app = spawn_app().await;
    app.confirmed_user("ann@example.org").await;
    let url = format!("{}/.netlify/identity/token", app.base);
    let fields = [
        ("grant_type", "password"),
        ("username", "ann@example.org"),
        ("password", PASSWORD),
    ];
    let form = serde_urlencoded::to_string(fields).unwrap();
    let bodies = [
        (
            "multipart/form-data; boundary=XyZ",
            multipart("XyZ", &fields),
        ),
        (
            "Multipart/Form-Data; Boundary=\"q1\"",
            multipart("q1", &fields),
        ),
        ("APPLICATION/X-WWW-FORM-URLENCODED", form.clone()),
        ("Application/x-www-form-urlencoded; charset=UTF-8", form),
    ];
    for (content_type, body) in bodies {
        let r = app
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{content_type}");
        let token: Value = r.json().await.unwrap();
        assert!(token["refresh_token"].is_string());
    }
}

#[tokio::test]
async fn a_malformed_multipart_body_is_a_400_not_ignored() {
    let app = spawn_app().await;
    let url = format!("{}/.netlify/identity/token?grant_type=password", app.base);
    for (content_type, body) in [
        (
            "multipart/form-data; boundary=XyZ",
            "--XyZ\r\nbroken".to_owned(),
        ),
        (
            "multipart/form-data",
            multipart("XyZ", &[("username", "a")]),
        ),
    ] {
        let r = app
            .client
            .post(&url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{content_type}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["msg"], "Could not read the request body");
    }
}

#[tokio::test]
async fn an_oversized_body_is_a_413_in_each_endpoints_shape() {
    let app = spawn_app().await;
    let big = "x".repeat(70 * 1024);
    let identity = |path: &str| format!("{}/.netlify/identity{path}", app.base);
    let message = "Request body too large: at most 64 KiB is accepted";

    for path in [
        "/signup",
        "/recover",
        "/verify",
        "/token",
        "/invite",
        "/admin/users",
    ] {
        let r = app
            .client
            .post(identity(path))
            .bearer_auth(OPERATOR_TOKEN)
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
        assert_eq!(r.headers()["content-type"], "application/json", "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"code": 413, "msg": message}), "{path}");
    }

    let r = app
        .client
        .post(format!("{}/.netlify/functions/ably-jwt", app.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-ably-errorcode"], "41300");
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {"code": 41300, "statusCode": 413, "message": message}})
    );
}

#[tokio::test]
async fn a_bad_console_form_renders_the_error_page() {
    let app = spawn_app().await;
    login_admin(&app).await;
    let r = app
        .client
        .post(console(&app, "/invite"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}", "x".repeat(40 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let r = app
        .client
        .get(console(&app, "/users?page=-1"))
        .send()
        .await
        .unwrap();
    assert!(r.status().as_u16() < 500);
}
