//! Rule (ASVS 5.0 V6.2.4): no new password may be one of the 100,000 most common, in any case,
//! on any path that sets one: signup, self-service change, recovery, invite acceptance, the
//! admin API and the command line. Nothing is stored when it is refused.

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, assert_gotrue_error, spawn_app};

const MESSAGE: &str =
    "Password is known to be weak and easy to guess, please choose a different one.";
const WEAK: [&str; 4] = ["password", "12345678", "aaaaaaaa", "Password1"];

#[tokio::test]
async fn signup_refuses_a_common_password_and_stores_nothing() {
    let app = spawn_app().await;
    for weak in WEAK {
        assert_gotrue_error(app.post_signup("kim@example.org", weak).await, 422, MESSAGE).await;
    }
    assert_eq!(app.count("users").await, 0);
    assert!(app.sent_emails().await.is_empty());
}

#[tokio::test]
async fn a_password_change_and_a_recovery_refuse_a_common_password() {
    let app = spawn_app().await;
    let token = app.confirmed_user("kim@example.org").await;
    let access = token["access_token"].as_str().unwrap();
    for weak in WEAK {
        let r = app
            .put_json("/user", access, &json!({"password": weak}))
            .await;
        assert_gotrue_error(r, 422, MESSAGE).await;
    }
    // Recovery: the link logs in, then the new password is set through PUT /user.
    let r = app
        .post_json("/recover", None, &json!({"email": "kim@example.org"}))
        .await;
    assert_eq!(r.status(), 200);
    app.wait_for_emails(2).await;
    let recovery = app.token_in_last_email("kim@example.org", "recovery").await;
    let r = app.post_verify("recovery", &recovery, None).await;
    let session: Value = r.json().await.unwrap();
    let r = app
        .put_json(
            "/user",
            session["access_token"].as_str().unwrap(),
            &json!({"password": "Password1"}),
        )
        .await;
    assert_gotrue_error(r, 422, MESSAGE).await;
    // The old password still works: nothing was changed.
    assert_eq!(
        app.post_token_password("kim@example.org", PASSWORD)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn invite_acceptance_refuses_a_common_password() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "guest@example.org"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let invite = app.token_in_last_email("guest@example.org", "invite").await;
    assert_gotrue_error(
        app.post_verify("signup", &invite, Some("12345678")).await,
        422,
        MESSAGE,
    )
    .await;
    // The link is still good for a real password.
    assert_eq!(
        app.post_verify("signup", &invite, Some(PASSWORD))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_admin_api_refuses_a_common_password_on_create_and_update() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "new@example.org", "password": "aaaaaaaa", "confirm": true}),
        )
        .await;
    assert_gotrue_error(r, 422, MESSAGE).await;
    assert_eq!(app.count("users").await, 0);
    app.confirmed_user("kim@example.org").await;
    let list: Value = app
        .get("/admin/users?filter=kim", Some(OPERATOR_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let id = list["users"][0]["id"].as_str().unwrap();
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"password": "PASSWORD"}),
        )
        .await;
    assert_gotrue_error(r, 422, MESSAGE).await;
}

#[test]
fn the_command_line_refuses_a_common_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::cli_passwords_never_come_from_arguments::run_with_stdin(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "ops@example.org",
            "--password-stdin",
        ],
        "password1\n",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(MESSAGE), "{stderr}");
}
