//! The whole signup flow with mail through lettre's SMTP transport to a real SMTP server.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{PASSWORD, link_token, spawn_app_with, test_from};
use crate::support::smtp_sink::SmtpSink;
use chipflap::mail::Mailer;

#[tokio::test]
async fn signup_mail_goes_over_smtp_and_its_link_confirms_the_account() {
    let sink = SmtpSink::start_with_auth("mailer", "s3cret");
    let mailer = Mailer::smtp(
        test_from(),
        "127.0.0.1",
        sink.port(),
        Some(("mailer".into(), "s3cret".into())),
        chipflap::config::SmtpTls::Opportunistic,
        Duration::from_secs(10),
    )
    .unwrap();
    let app = spawn_app_with(|_| {}, mailer).await;

    assert_eq!(
        app.post_signup("ada@example.org", PASSWORD).await.status(),
        200
    );
    let received = sink.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_eq!(received[0].to, ["ada@example.org"]);
    assert_eq!(received[0].subject(), "Confirm Your Signup");
    let token = link_token(&received[0].text(), "confirmation");

    let r = app.post_verify("signup", &token, None).await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let me: Value = app
        .get("/user", t["access_token"].as_str())
        .await
        .json()
        .await
        .unwrap();
    assert!(me.get("confirmed_at").is_some());
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_unreachable_smtp_server_gives_the_documented_500_and_no_user() {
    // Bind and drop a listener: nothing answers on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mailer = Mailer::smtp(
        test_from(),
        "127.0.0.1",
        port,
        None,
        chipflap::config::SmtpTls::Opportunistic,
        Duration::from_secs(5),
    )
    .unwrap();
    let app = spawn_app_with(|_| {}, mailer).await;
    let r = app.post_signup("ada@example.org", PASSWORD).await;
    assert_eq!(r.status(), 500);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["msg"], "Error sending confirmation mail");
    assert_eq!(app.count("users").await, 0);
}
