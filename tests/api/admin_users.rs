//! The admin API: authority, users CRUD, pagination, audit log and bans.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR_TOKEN, PASSWORD, assert_gotrue_error, assert_oauth_error, spawn_app,
};

#[tokio::test]
async fn operator_system_and_admin_role_tokens_are_admins() {
    let app = spawn_app().await;
    let admin = app.admin_user("admin@example.org").await;
    let system = app
        .state
        .jwt
        .issue_system(app.clock.now().plus(Duration::from_secs(60)))
        .unwrap();
    for token in [
        OPERATOR_TOKEN,
        system.as_str(),
        admin["access_token"].as_str().unwrap(),
    ] {
        let r = app.get("/admin/users", Some(token)).await;
        assert_eq!(r.status(), 200, "{token}");
    }
}

#[tokio::test]
async fn plain_users_and_role_claims_are_not_admins() {
    let app = spawn_app().await;
    let user = app.confirmed_user("ada@example.org").await;
    let token = user["access_token"].as_str().unwrap();
    assert_gotrue_error(
        app.get("/admin/users", Some(token)).await,
        401,
        "User not allowed",
    )
    .await;
    // app_metadata.roles = ["admin"] is a site role, not API authority (DESIGN §3).
    let id = app.user_id(token).await;
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": ["admin"]}}),
    )
    .await;
    let fresh: Value = app
        .post_token_refresh(user["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_gotrue_error(
        app.get("/admin/users", fresh["access_token"].as_str())
            .await,
        401,
        "User not allowed",
    )
    .await;
    assert_gotrue_error(
        app.get("/admin/users", None).await,
        401,
        "This endpoint requires a Bearer token",
    )
    .await;
    assert_gotrue_error(
        app.get("/admin/users", Some("wrong-operator-token")).await,
        401,
        "Invalid token: token is malformed",
    )
    .await;
    // A deleted admin's still-valid token no longer works.
    let admin = app.admin_user("admin@example.org").await;
    let admin_id = app.user_id(admin["access_token"].as_str().unwrap()).await;
    app.delete(&format!("/admin/users/{admin_id}"), OPERATOR_TOKEN)
        .await;
    assert_gotrue_error(
        app.get("/admin/users", admin["access_token"].as_str())
            .await,
        401,
        "Invalid admin user",
    )
    .await;
}

#[tokio::test]
async fn list_pages_with_total_and_a_link_header() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.post_signup(&format!("user{i}@example.org"), PASSWORD)
            .await;
        app.advance(Duration::from_secs(1));
    }
    let r = app
        .get("/admin/users?per_page=2", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(r.headers()["x-total-count"], "3");
    assert_eq!(
        r.headers()["link"],
        "</.netlify/identity/admin/users?page=2&per_page=2>; rel=\"next\", </.netlify/identity/admin/users?page=2&per_page=2>; rel=\"last\""
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["aud"], "");
    let emails: Vec<&str> = body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        ["user2@example.org", "user1@example.org"],
        "newest first"
    );

    let r = app
        .get(
            "/admin/users?page=2&per_page=2&sort=created_at%20asc",
            Some(OPERATOR_TOKEN),
        )
        .await;
    let link = r.headers()["link"].to_str().unwrap().to_owned();
    assert!(link.contains("rel=\"prev\"") && link.contains("rel=\"last\""));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["users"][0]["email"], "user2@example.org");

    // A single page still gets a non-empty Link (gotrue-js 0.9 throws on an empty one).
    let r = app.get("/admin/users", Some(OPERATOR_TOKEN)).await;
    assert_eq!(
        r.headers()["link"],
        "</.netlify/identity/admin/users?page=1&per_page=50>; rel=\"last\""
    );
}

#[tokio::test]
async fn list_filters_by_email_or_name_and_escapes_wildcards() {
    let app = spawn_app().await;
    app.post_json("/signup", None, &json!({"email": "ada@example.org", "password": PASSWORD, "data": {"full_name": "Ada Lovelace"}})).await;
    app.post_json(
        "/signup",
        None,
        &json!({"email": "bob_x@example.org", "password": PASSWORD, "data": {"full_name": "Bob"}}),
    )
    .await;
    let emails = |body: Value| -> Vec<String> {
        body["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["email"].as_str().unwrap().to_owned())
            .collect()
    };
    let r = app
        .get("/admin/users?filter=LOVELACE", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(emails(r.json().await.unwrap()), ["ada@example.org"]);
    let r = app.get("/admin/users?filter=_", Some(OPERATOR_TOKEN)).await;
    assert_eq!(emails(r.json().await.unwrap()), ["bob_x@example.org"]);
    let r = app
        .get("/admin/users?filter=%25", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(r.headers()["x-total-count"], "0");
}

#[tokio::test]
async fn bad_list_parameters_are_400() {
    let app = spawn_app().await;
    for (q, prefix) in [
        ("per_page=0", "Bad Pagination Parameters"),
        ("page=abc", "Bad Pagination Parameters"),
        ("sort=email%20asc", "Bad Sort Parameters"),
        ("sort=created_at%20sideways", "Bad Sort Parameters"),
    ] {
        let r = app
            .get(&format!("/admin/users?{q}"), Some(OPERATOR_TOKEN))
            .await;
        assert_eq!(r.status(), 400, "{q}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["msg"].as_str().unwrap().starts_with(prefix),
            "{q}: {body}"
        );
    }
}

#[tokio::test]
async fn create_get_update_delete() {
    let app = spawn_app().await;
    let r = app
        .post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "new@example.org", "password": PASSWORD, "confirm": true,
                    "user_metadata": {"full_name": "New"}, "app_metadata": {"roles": ["editor"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(
        user["app_metadata"],
        json!({"provider": "email", "roles": ["editor"]})
    );
    assert!(user.get("confirmed_at").is_some());
    let id = user["id"].as_str().unwrap();
    assert_eq!(
        app.post_token_password("new@example.org", PASSWORD)
            .await
            .status(),
        200
    );

    let got: Value = app
        .get(&format!("/admin/users/{id}"), Some(OPERATOR_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["email"], "new@example.org");

    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"role": " editor ", "user_metadata": {"full_name": null, "x": 1}, "app_metadata": {"roles": null}}),
        )
        .await;
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["role"], "editor");
    assert_eq!(updated["user_metadata"], json!({"x": 1}));
    assert_eq!(updated["app_metadata"], json!({"provider": "email"}));

    let r = app
        .delete(&format!("/admin/users/{id}"), OPERATOR_TOKEN)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
    assert_gotrue_error(
        app.get(&format!("/admin/users/{id}"), Some(OPERATOR_TOKEN))
            .await,
        404,
        "User not found",
    )
    .await;
    assert_gotrue_error(
        app.delete(&format!("/admin/users/{id}"), OPERATOR_TOKEN)
            .await,
        404,
        "User not found",
    )
    .await;
    assert_gotrue_error(
        app.get("/admin/users/not-a-uuid", Some(OPERATOR_TOKEN))
            .await,
        400,
        "user_id must be an UUID",
    )
    .await;
}

#[tokio::test]
async fn created_users_without_a_password_cannot_log_in() {
    let app = spawn_app().await;
    app.post_json(
        "/admin/users",
        Some(OPERATOR_TOKEN),
        &json!({"email": "nopw@example.org", "confirm": true}),
    )
    .await;
    for attempt in ["", "anything at all"] {
        assert_oauth_error(
            app.post_token_password("nopw@example.org", attempt).await,
            "invalid_grant",
            "No user found with that email, or password invalid.",
        )
        .await;
    }
}

#[tokio::test]
async fn admin_email_changes_are_validated_and_unique() {
    let app = spawn_app().await;
    app.confirmed_user("bob@example.org").await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    assert_gotrue_error(
        app.put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"email": "Bob@example.org"}),
        )
        .await,
        422,
        "Email address already registered by another user",
    )
    .await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"email": "not an address"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "ada@example.org"}),
        )
        .await;
    assert_gotrue_error(r, 422, "Email address already registered by another user").await;
}

async fn assert_banned_everywhere(app: &crate::helpers::TestApp, t: &Value) {
    assert_oauth_error(
        app.post_token_password("ada@example.org", PASSWORD).await,
        "invalid_grant",
        "User is banned",
    )
    .await;
    assert_oauth_error(
        app.post_token_refresh(t["refresh_token"].as_str().unwrap())
            .await,
        "invalid_grant",
        "Invalid Refresh Token",
    )
    .await;
    assert_gotrue_error(
        app.get("/user", t["access_token"].as_str()).await,
        403,
        "User is banned",
    )
    .await;
    // A wrong password still says nothing about the ban.
    assert_oauth_error(
        app.post_token_password("ada@example.org", "wrong password")
            .await,
        "invalid_grant",
        "No user found with that email, or password invalid.",
    )
    .await;
}

#[tokio::test]
async fn a_banned_role_blocks_login_refresh_and_user_until_removed() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": ["editor", "Banned-spam"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_banned_everywhere(&app, &t).await;

    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": ["editor"]}}),
    )
    .await;
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    // Unbanning restores nothing but the right to log in: the old session stays dead.
    assert_eq!(
        app.post_token_refresh(t["refresh_token"].as_str().unwrap())
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn ban_duration_bans_until_it_passes_or_is_lifted() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"ban_duration": "24h", "ban_reason": "spam"}),
        )
        .await;
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["banned_until"], "2027-01-16T08:00:00Z");
    assert_banned_everywhere(&app, &t).await;

    app.advance(Duration::from_secs(24 * 3600));
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );

    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"ban_duration": "1h"}),
    )
    .await;
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        400
    );
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"ban_duration": "none"}),
        )
        .await;
    assert!(
        r.json::<Value>()
            .await
            .unwrap()
            .get("banned_until")
            .is_none()
    );
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );

    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"ban_duration": "forever"}),
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn the_audit_log_records_admin_actions_with_the_actor() {
    let app = spawn_app().await;
    let admin = app.admin_user("admin@example.org").await;
    let token = admin["access_token"].as_str().unwrap();
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    app.put_json(
        &format!("/admin/users/{id}"),
        token,
        &json!({"ban_duration": "1h", "ban_reason": "spam"}),
    )
    .await;

    let r = app
        .get("/admin/audit?query=action:user_banned", Some(token))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-total-count"], "1");
    let entries: Value = r.json().await.unwrap();
    let payload = &entries[0]["payload"];
    assert_eq!(payload["actor_email"], "admin@example.org");
    assert_eq!(payload["action"], "user_banned");
    assert_eq!(payload["log_type"], "team");
    assert_eq!(payload["traits"]["user_email"], "ada@example.org");
    assert_eq!(payload["traits"]["reason"], "spam");

    let r = app.get("/admin/audit?query=author:ada@", Some(token)).await;
    let entries: Value = r.json().await.unwrap();
    let actions: Vec<&str> = entries
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["payload"]["action"].as_str().unwrap())
        .collect();
    // Ada's own entries: the signup and the confirmation.
    assert_eq!(actions, ["user_signedup", "user_signedup"]);
    assert_gotrue_error(
        app.get("/admin/audit?query=color:red", Some(token)).await,
        400,
        "Invalid query scope: color:red",
    )
    .await;
}

#[tokio::test]
async fn an_admin_email_change_kills_links_sent_to_the_old_address() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    app.post_json("/recover", None, &json!({"email": "ada@example.org"}))
        .await;
    let sent = app.wait_for_emails(2).await;
    let recovery = crate::helpers::link_token(&sent[1].text, "recovery");
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"email": "ada@new.example"}),
    )
    .await;
    assert_gotrue_error(
        app.post_verify("recovery", &recovery, None).await,
        404,
        "User not found",
    )
    .await;
}
