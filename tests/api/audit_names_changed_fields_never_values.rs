//! Rule: an audit entry of a change (self-service `PUT /user` or an admin update) names the
//! fields that changed, never their values.

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app};

const NEW_PASSWORD: &str = "a brand new passphrase 42";
const SECRET_NOTE: &str = "my-private-note-value";

async fn modified_entries(app: &TestApp) -> Vec<Value> {
    let r = app
        .get(
            "/admin/audit?query=action:user_modified",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn self_service_changes_are_audited_by_field_name_without_values() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let token = t["access_token"].as_str().unwrap();

    let r = app
        .put_json(
            "/user",
            token,
            &json!({"password": NEW_PASSWORD, "data": {"note": SECRET_NOTE}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .put_json("/user", token, &json!({"email": "ada.new@example.org"}))
        .await;
    assert_eq!(r.status(), 200);

    let entries = modified_entries(&app).await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    // Newest first.
    assert_eq!(
        entries[0]["payload"]["traits"]["fields"],
        json!(["new_email"])
    );
    assert_eq!(
        entries[1]["payload"]["traits"]["fields"],
        json!(["password", "user_metadata"])
    );
    let all = serde_json::to_string(&entries).unwrap();
    for value in [
        NEW_PASSWORD,
        PASSWORD,
        SECRET_NOTE,
        "ada.new@example.org",
        "$argon2",
    ] {
        assert!(!all.contains(value), "{value} reached the audit log");
    }
}

#[tokio::test]
async fn admin_changes_are_audited_by_field_name_without_values() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;

    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"password": NEW_PASSWORD, "app_metadata": {"roles": ["editor"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);

    let entries = modified_entries(&app).await;
    let traits = &entries[0]["payload"]["traits"];
    assert_eq!(traits["fields"], json!(["password", "app_metadata"]));
    assert_eq!(traits["user_id"], id.as_str());
    let all = serde_json::to_string(&entries).unwrap();
    assert!(!all.contains(NEW_PASSWORD) && !all.contains("editor"));
}
