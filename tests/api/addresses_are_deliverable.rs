//! Rule: the email check accepts exactly what the mailer can deliver. Every path that takes an
//! address answers 422 "Unable to validate email address: …" for anything else, never a 500.

use serde_json::{Value, json};

use crate::console::{console_login, csrf_in, get_page, post_form};
use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app};

/// Addresses an earlier check let through and lettre refuses, plus neighbours of the same kind.
const UNDELIVERABLE: [&str; 9] = [
    "a:b@example.test",
    "a@b@example.test",
    "a;b@example.test",
    "a,b@example.test",
    "a(b)@example.test",
    "a[b]@example.test",
    "a\\b@example.test",
    "a@example..test",
    "a@example.test.",
];

async fn assert_refused(r: reqwest::Response, what: &str) {
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 422, "{what}: {body}");
    assert!(
        body["msg"]
            .as_str()
            .unwrap()
            .starts_with("Unable to validate email address: "),
        "{what}: {body}"
    );
}

#[tokio::test]
async fn undeliverable_addresses_are_422_on_every_api_path() {
    let app = spawn_app().await;
    let user = app.confirmed_user("owner@example.test").await;
    let token = user["access_token"].as_str().unwrap();
    let id = app.user_id(token).await;
    for address in UNDELIVERABLE {
        assert!(
            address.parse::<lettre::Address>().is_err(),
            "{address} is deliverable after all"
        );
        let r = app
            .post_json(
                "/signup",
                None,
                &json!({"email": address, "password": PASSWORD}),
            )
            .await;
        assert_refused(r, &format!("signup {address}")).await;
        let r = app
            .post_json("/invite", Some(OPERATOR_TOKEN), &json!({"email": address}))
            .await;
        assert_refused(r, &format!("invite {address}")).await;
        let r = app
            .post_json(
                "/admin/users",
                Some(OPERATOR_TOKEN),
                &json!({"email": address, "password": PASSWORD}),
            )
            .await;
        assert_refused(r, &format!("admin create {address}")).await;
        let r = app
            .put_json(
                &format!("/admin/users/{id}"),
                OPERATOR_TOKEN,
                &json!({"email": address}),
            )
            .await;
        assert_refused(r, &format!("admin update {address}")).await;
        let r = app
            .put_json("/user", token, &json!({"email": address}))
            .await;
        assert_refused(r, &format!("email change {address}")).await;
        let r = app
            .post_json("/recover", None, &json!({"email": address}))
            .await;
        assert_refused(r, &format!("recover {address}")).await;
    }
    assert_eq!(app.count("users").await, 1);
    let me: Value = app.get("/user", Some(token)).await.json().await.unwrap();
    assert_eq!(me["email"], "owner@example.test");
    assert!(me.get("new_email").is_none_or(Value::is_null), "{me}");
}

#[tokio::test]
async fn unicode_addresses_that_pass_are_delivered() {
    let app = spawn_app().await;
    // (address, recipient): a Unicode domain is mailed as punycode.
    for (address, recipient) in [
        ("Ääkkönen@example.test", "Ääkkönen@example.test"),
        ("d@exämple.test", "d@xn--exmple-cua.test"),
        ("ü@xn--exmple-cua.test", "ü@xn--exmple-cua.test"),
    ] {
        let r = app
            .post_json(
                "/signup",
                None,
                &json!({"email": address, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status(), 200, "{address}");
        let user: Value = r.json().await.unwrap();
        assert_eq!(user["email"], address, "the account keeps the spelling");
        let token = app.token_in_last_email(recipient, "confirmation").await;
        assert_eq!(app.post_verify("signup", &token, None).await.status(), 200);
    }
    let r = app
        .post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "Ö@example.test"}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

async fn console_invite(app: &TestApp, address: &str) -> (u16, String) {
    let r = console_login(app, "boss@example.test", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let (_, html) = get_page(app, "/invite").await;
    let csrf = csrf_in(&html);
    let r = post_form(
        app,
        "/invite",
        &[
            ("csrf", csrf.as_str()),
            ("email", address),
            ("full_name", ""),
        ],
    )
    .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_console_invite_says_why_an_address_is_refused() {
    let app = spawn_app().await;
    app.admin_user("boss@example.test").await;
    for address in ["a:b@example.test", "a@b@example.test"] {
        let (status, html) = console_invite(&app, address).await;
        assert!(status < 500, "{status}");
        assert!(html.contains("Unable to validate email address"), "{html}");
    }
    assert_eq!(app.count("users").await, 1);
}

#[test]
fn the_command_line_refuses_undeliverable_addresses() {
    let dir = tempfile::tempdir().unwrap();
    for address in ["a:b@example.test", "a@b@example.test"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_chipflap"))
            .args(["users", "add", "--email", address])
            .current_dir(dir.path())
            .env_clear()
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("Unable to validate email address"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn an_internationalized_domain_goes_out_over_smtp() {
    use std::time::Duration;
    let sink = crate::support::smtp_sink::SmtpSink::start();
    let mailer = chipflap::mail::Mailer::smtp(
        crate::helpers::test_from(),
        "127.0.0.1",
        sink.port(),
        None,
        chipflap::config::SmtpTls::Opportunistic,
        Duration::from_secs(10),
    )
    .unwrap();
    let app = crate::helpers::spawn_app_with(|_| {}, mailer).await;
    let r = app.post_signup("d@EXÄMPLE.test", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let received = sink.wait_for_messages(1, Duration::from_secs(10)).await;
    // Punycode on the envelope: no SMTPUTF8 needed for an ASCII local part.
    assert_eq!(received[0].to, ["d@xn--exmple-cua.test"]);
    let token = crate::helpers::link_token(&received[0].text(), "confirmation");
    assert_eq!(app.post_verify("signup", &token, None).await.status(), 200);
}
