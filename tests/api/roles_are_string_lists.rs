//! Rule: `app_metadata.roles` is a list of strings on every write path; anything else is a 422
//! that says so, and changes nothing.

use serde_json::{Value, json};

use crate::console::{console_login, csrf_in, get_page, post_form};
use crate::helpers::{OPERATOR_TOKEN, PASSWORD, spawn_app};

const MSG: &str = r#"app_metadata.roles must be a list of strings, such as ["banned"]"#;

fn bad_roles() -> Vec<Value> {
    vec![
        json!("banned"),
        json!({"0": "banned"}),
        json!(["banned", 7]),
        json!([["banned"]]),
        json!(true),
        json!(42),
    ]
}

#[tokio::test]
async fn roles_that_are_not_a_list_of_strings_are_refused_by_the_admin_api() {
    let app = spawn_app().await;
    let user = app.confirmed_user("target@example.test").await;
    let token = user["access_token"].as_str().unwrap();
    let id = app.user_id(token).await;
    for roles in bad_roles() {
        let r = app
            .put_json(
                &format!("/admin/users/{id}"),
                OPERATOR_TOKEN,
                &json!({"app_metadata": {"roles": roles}}),
            )
            .await;
        assert_eq!(r.status(), 422, "{roles}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body, json!({"code": 422, "msg": MSG}));

        let r = app
            .post_json(
                "/admin/users",
                Some(OPERATOR_TOKEN),
                &json!({"email": "new@example.test", "app_metadata": {"roles": roles}}),
            )
            .await;
        assert_eq!(r.status(), 422, "{roles}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["msg"], MSG);
    }
    // Nothing was stored: the user is unchanged and may still use their session.
    assert_eq!(app.count("users").await, 1);
    let r = app.get("/user", Some(token)).await;
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["app_metadata"], json!({"provider": "email"}));

    // A list bans; null removes the roles.
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": ["banned"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    // Banned (403), or, where a ban also ends the session, logged out (401).
    let status = app.get("/user", Some(token)).await.status();
    assert!(status == 403 || status == 401, "{status}");
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": null}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["app_metadata"], json!({"provider": "email"}));
}

#[tokio::test]
async fn an_admin_user_cannot_write_string_roles_through_put_user() {
    let app = spawn_app().await;
    let admin = app.admin_user("boss@example.test").await;
    let token = admin["access_token"].as_str().unwrap();
    for roles in bad_roles() {
        let r = app
            .put_json("/user", token, &json!({"app_metadata": {"roles": roles}}))
            .await;
        assert_eq!(r.status(), 422, "{roles}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["msg"], MSG);
    }
    let r = app
        .put_json(
            "/user",
            token,
            &json!({"app_metadata": {"roles": ["editor"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["app_metadata"]["roles"], json!(["editor"]));
}

#[tokio::test]
async fn the_console_roles_form_always_writes_a_list() {
    let app = spawn_app().await;
    let user = app.confirmed_user("target@example.test").await;
    let token = user["access_token"].as_str().unwrap();
    let id = app.user_id(token).await;
    app.admin_user("boss@example.test").await;
    let r = console_login(&app, "boss@example.test", PASSWORD).await;
    assert_eq!(r.status(), 303);
    let (_, html) = get_page(&app, &format!("/users/{id}")).await;
    let csrf = csrf_in(&html);
    let r = post_form(
        &app,
        &format!("/users/{id}/roles"),
        &[("csrf", csrf.as_str()), ("roles", "banned")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let view: Value = app
        .get(&format!("/admin/users/{id}"), Some(OPERATOR_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(view["app_metadata"]["roles"], json!(["banned"]));
    // Banned (403), or, where a ban also ends the session, logged out (401).
    let status = app.get("/user", Some(token)).await.status();
    assert!(status == 403 || status == 401, "{status}");
}
