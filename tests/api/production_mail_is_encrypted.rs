//! Rule (ASVS 5.0 V12.3.1): in production, SMTP must use TLS. A server that offers no TLS gets
//! neither the SMTP credentials nor a mail (whose links are secrets); the request fails with
//! GoTrue's documented mail error and stores nothing.

use std::time::Duration;

use serde_json::json;

use crate::binary::{free_port, start_with};
use crate::helpers::{PASSWORD, spawn_app_with};
use crate::support::smtp_sink::SmtpSink;
use chipflap::config::SmtpTls;
use chipflap::mail::Mailer;

/// GoTrue's 500 for a mail that could not be sent (with our `error_id`).
async fn assert_mail_error(response: reqwest::Response) {
    assert_eq!(response.status(), 500);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["msg"], "Error sending confirmation mail");
}

#[tokio::test]
async fn a_plaintext_only_smtp_server_gets_no_credentials_and_no_mail_when_tls_is_required() {
    let sink = SmtpSink::start_with_auth("mailer", "s3cret");
    let mailer = Mailer::smtp(
        crate::helpers::test_from(),
        "127.0.0.1",
        sink.port(),
        Some(("mailer".into(), "s3cret".into())),
        SmtpTls::Required,
        Duration::from_secs(10),
    )
    .unwrap();
    let app = spawn_app_with(|_| {}, mailer).await;
    assert_mail_error(app.post_signup("ada@example.org", PASSWORD).await).await;
    assert_eq!(sink.auth_attempts(), 0, "no AUTH in clear text");
    assert!(sink.messages().is_empty());
    assert_eq!(app.count("users").await, 0);
}

#[tokio::test]
async fn the_production_binary_refuses_a_plaintext_only_smtp_server_by_default() {
    let sink = SmtpSink::start_with_auth("mailer", "s3cret");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let smtp_port = sink.port().to_string();
    let env = [
        ("CHIPFLAP_ENV", "production"),
        ("GOTRUE_SITE_URL", "https://site.test"),
        ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("GOTRUE_SMTP_HOST", "127.0.0.1"),
        ("GOTRUE_SMTP_PORT", smtp_port.as_str()),
        ("GOTRUE_SMTP_USER", "mailer"),
        ("GOTRUE_SMTP_PASS", "s3cret"),
        ("GOTRUE_SMTP_ADMIN_EMAIL", "noreply@site.test"),
        ("CHIPFLAP_ARGON2_MEMORY_KIB", "19456"),
        ("CHIPFLAP_ARGON2_ITERATIONS", "2"),
    ];
    let _server = start_with(dir.path(), port, &env);
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/.netlify/identity/signup"))
        .json(&json!({"email": "ada@example.org", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_mail_error(r).await;
    assert_eq!(sink.auth_attempts(), 0, "no AUTH in clear text");
    assert!(sink.messages().is_empty());
}
