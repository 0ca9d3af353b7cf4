//! Rule: a password or email change needs the current password when one is sent (and, with
//! `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`, the current password or a recent
//! login), and every change is announced to the account's address, without a secret.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR_TOKEN, PASSWORD, assert_gotrue_error, spawn_app, spawn_app_with, test_from,
};
use crate::support::smtp_sink::SmtpSink;
use chipflap::mail::Mailer;

use crate::support::sent_email::SentEmail;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// A stolen access token a day and more after its session began: the refresh grant mints a
/// fresh access token in the same (old) session.
async fn day_old_token(app: &crate::helpers::TestApp, email: &str) -> String {
    let login = app.confirmed_user(email).await;
    app.advance(Duration::from_secs(25 * 3600));
    let r = app
        .post_token_refresh(login["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

fn notices<'a>(mails: &'a [SentEmail], to: &str, subject: &str) -> Vec<&'a SentEmail> {
    mails
        .iter()
        .filter(|m| m.to == to && m.subject == subject)
        .collect()
}

fn assert_no_secret(mail: &SentEmail) {
    for body in [&mail.text, &mail.html, &mail.raw] {
        assert!(
            !body.contains("_token="),
            "a notice carries a link token: {body}"
        );
    }
}

#[tokio::test]
async fn a_stolen_token_cannot_change_the_password_or_email_when_reauthentication_is_required() {
    let app = spawn_app_with(
        |s| s.signup.update_requires_reauthentication = true,
        Mailer::memory(test_from()),
    )
    .await;
    let stolen = day_old_token(&app, "ada@example.org").await;

    assert_gotrue_error(
        app.put_json("/user", &stolen, &json!({"password": NEW_PASSWORD}))
            .await,
        400,
        "Password update requires reauthentication",
    )
    .await;
    assert_gotrue_error(
        app.put_json("/user", &stolen, &json!({"email": "mallory@example.net"}))
            .await,
        400,
        "Email update requires reauthentication",
    )
    .await;
    assert_gotrue_error(
        app.put_json(
            "/user",
            &stolen,
            &json!({"password": NEW_PASSWORD, "current_password": "a wrong guess"}),
        )
        .await,
        400,
        chipflap::services::user::WRONG_CURRENT_PASSWORD,
    )
    .await;
    // Other changes need nothing more.
    assert_eq!(
        app.put_json("/user", &stolen, &json!({"data": {"theme": "dark"}}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200,
        "the password did not change"
    );

    // The owner, who knows the password, can.
    let r = app
        .put_json(
            "/user",
            &stolen,
            &json!({"password": NEW_PASSWORD, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // And a fresh login counts as recent.
    let fresh: Value = app
        .post_token_password("ada@example.org", NEW_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .put_json(
            "/user",
            fresh["access_token"].as_str().unwrap(),
            &json!({"password": "yet another passphrase"}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_recovery_link_session_counts_as_a_recent_login() {
    let app = spawn_app_with(
        |s| s.signup.update_requires_reauthentication = true,
        Mailer::memory(test_from()),
    )
    .await;
    app.confirmed_user("ada@example.org").await;
    app.advance(Duration::from_secs(25 * 3600));
    app.post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    app.wait_for_emails(2).await;
    let token = app.token_in_last_email("ada@example.org", "recovery").await;
    let session: Value = app
        .post_verify("recovery", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .put_json(
            "/user",
            session["access_token"].as_str().unwrap(),
            &json!({"password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_sent_current_password_is_always_checked_and_throttled() {
    // Default settings (GoTrue-compatible): no current password is needed, but a wrong one
    // is refused, and guessing it is throttled like /token.
    let app = spawn_app().await;
    let login = app.confirmed_user("ada@example.org").await;
    let token = login["access_token"].as_str().unwrap();
    assert_eq!(
        app.put_json("/user", token, &json!({"data": {"a": 1}}))
            .await
            .status(),
        200
    );
    let mut statuses = Vec::new();
    for i in 0..40 {
        let r = app
            .put_json(
                "/user",
                token,
                &json!({"password": NEW_PASSWORD, "current_password": format!("guess {i}")}),
            )
            .await;
        statuses.push(r.status().as_u16());
        if r.status() == 429 {
            break;
        }
    }
    assert_eq!(statuses[0], 400);
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        429,
        "the same per-account throttle as /token"
    );
}

#[tokio::test]
async fn password_and_email_changes_are_announced_to_the_accounts_address() {
    let app = spawn_app().await;
    let login = app.confirmed_user("ada@example.org").await;
    let token = login["access_token"].as_str().unwrap();

    assert_eq!(
        app.put_json("/user", token, &json!({"password": NEW_PASSWORD}))
            .await
            .status(),
        200
    );
    app.settle().await;
    let mails = app.sent_emails().await;
    let changed = notices(&mails, "ada@example.org", "Your password has been changed");
    assert_eq!(changed.len(), 1);
    assert_no_secret(changed[0]);
    assert!(changed[0].text.contains("http://site.test"));

    // An email change request: the link to the new address, a notice to the old one.
    assert_eq!(
        app.put_json("/user", token, &json!({"email": "ada@new.example"}))
            .await
            .status(),
        200
    );
    app.settle().await;
    let mails = app.sent_emails().await;
    let requested = notices(
        &mails,
        "ada@example.org",
        "An email address change was requested",
    );
    assert_eq!(requested.len(), 1);
    assert!(requested[0].text.contains("ada@new.example"));
    assert_no_secret(requested[0]);
    let link = app
        .token_in_last_email("ada@new.example", "email_change")
        .await;

    // Completing it: the old address is told.
    assert_eq!(
        app.put_json("/user", token, &json!({"email_change_token": link}))
            .await
            .status(),
        200
    );
    app.settle().await;
    let mails = app.sent_emails().await;
    let done = notices(
        &mails,
        "ada@example.org",
        "Your email address has been changed",
    );
    assert_eq!(done.len(), 1);
    assert!(done[0].text.contains("ada@new.example"));
    assert_no_secret(done[0]);
}

#[tokio::test]
async fn admin_changes_are_announced_too() {
    let app = spawn_app().await;
    let login = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(login["access_token"].as_str().unwrap()).await;
    let before = app.sent_emails().await.len();

    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"password": NEW_PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"email": "ada@elsewhere.example"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.settle().await;
    let mails = app.sent_emails().await;
    let new: Vec<_> = mails[before..].iter().collect();
    let mut subjects: Vec<_> = new
        .iter()
        .map(|m| (m.to.as_str(), m.subject.as_str()))
        .collect();
    subjects.sort_unstable();
    assert_eq!(
        subjects,
        [
            ("ada@example.org", "Your email address has been changed"),
            ("ada@example.org", "Your password has been changed"),
        ]
    );
    assert!(new.iter().all(|m| m.text.contains("an administrator")));
    for mail in new {
        assert_no_secret(mail);
    }
}

#[tokio::test]
async fn notices_can_be_switched_off() {
    let app = spawn_app_with(
        |s| {
            s.mailer.notify_password_changed = false;
            s.mailer.notify_email_changed = false;
        },
        Mailer::memory(test_from()),
    )
    .await;
    let login = app.confirmed_user("ada@example.org").await;
    let token = login["access_token"].as_str().unwrap();
    app.put_json("/user", token, &json!({"password": NEW_PASSWORD}))
        .await;
    app.put_json("/user", token, &json!({"email": "ada@new.example"}))
        .await;
    app.settle().await;
    let mails = app.sent_emails().await;
    assert!(
        mails
            .iter()
            .all(|m| m.to != "ada@example.org" || m.subject == "Confirm Your Signup"),
        "{mails:?}"
    );
}

#[tokio::test]
async fn notices_count_against_the_per_address_mail_limit() {
    let app = spawn_app().await;
    let login = app.confirmed_user("ada@example.org").await;
    let token = login["access_token"].as_str().unwrap();
    for i in 0..40 {
        let r = app
            .put_json(
                "/user",
                token,
                &json!({"password": format!("{NEW_PASSWORD} {i}")}),
            )
            .await;
        assert_eq!(r.status(), 200);
    }
    app.settle().await;
    let mails = app.sent_emails().await;
    let changed = notices(&mails, "ada@example.org", "Your password has been changed");
    assert!(
        !changed.is_empty() && changed.len() < 40,
        "{}",
        changed.len()
    );
}

#[tokio::test]
async fn the_password_notice_reaches_a_real_smtp_server() {
    let sink = SmtpSink::start();
    let mailer = Mailer::smtp(
        test_from(),
        "127.0.0.1",
        sink.port(),
        None,
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
    let token = crate::helpers::link_token(&received[0].text(), "confirmation");
    let login: Value = app
        .post_verify("signup", &token, None)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .put_json(
            "/user",
            login["access_token"].as_str().unwrap(),
            &json!({"password": NEW_PASSWORD, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let received = sink.wait_for_messages(2, Duration::from_secs(10)).await;
    let notice = &received[1];
    assert_eq!(notice.to, ["ada@example.org"]);
    assert_eq!(notice.subject(), "Your password has been changed");
    assert!(!notice.text().contains("_token="));
    assert!(!notice.html().contains("_token="));
}
