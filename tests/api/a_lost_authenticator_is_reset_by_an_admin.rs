//! A user who lost their authenticator cannot step up; an admin (supabase/auth's admin API)
//! lists and removes the factor, and the user's sessions fall back to aal1. Only admins can.

use serde_json::Value;

use crate::helpers::{OPERATOR_TOKEN, spawn_app};
use crate::support::mfa::{claims, enroll_and_verify};

#[tokio::test]
async fn an_admin_lists_and_removes_a_users_factor() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let (factor, secret, tokens) = enroll_and_verify(&app, &token).await;
    let id = app.user_id(&token).await;

    // Not by the user themselves, nor another user.
    let r = app
        .get(&format!("/admin/users/{id}/factors"), Some(&token))
        .await;
    assert_eq!(r.status(), 401);
    let r = app
        .delete(&format!("/admin/users/{id}/factors/{factor}"), &token)
        .await;
    assert_eq!(r.status(), 401);

    let r = app
        .get(&format!("/admin/users/{id}/factors"), Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(&secret), "no secret in the admin answer");
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list[0]["id"], factor.as_str());
    assert_eq!(list[0]["status"], "verified");

    let r = app
        .delete(
            &format!("/admin/users/{id}/factors/{factor}"),
            OPERATOR_TOKEN,
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = app
        .delete(
            &format!("/admin/users/{id}/factors/{factor}"),
            OPERATOR_TOKEN,
        )
        .await;
    assert_eq!(r.status(), 404);
    let r = app
        .get(
            "/admin/users/00000000-0000-4000-8000-000000000000/factors",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(r.status(), 404);

    // The session the factor raised is aal1 again, and nothing requires aal2 any more.
    let refreshed: Value = app
        .post_token_refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["aal"],
        "aal1"
    );
    let audit: Value = app
        .get(
            "/admin/audit?query=action:factor_unenrolled",
            Some(OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(audit.to_string().contains(&factor));
}
