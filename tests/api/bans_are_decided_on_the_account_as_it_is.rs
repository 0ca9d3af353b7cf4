//! Rule: a ban and an unban are decided on the account as it is inside their own transaction.
//! A role change committed while they waited for the store is kept, and the ban stands: the
//! console's and the CLI's "ban" (role `banned`) and "unban" (every banned role and
//! `banned_until` cleared) never write back roles read before they held the write lock.

use chipflap::domain::user::UserId;
use serde_json::json;

use crate::helpers::{TestApp, committed_while, spawn_app_with, test_from};
use chipflap::mail::Mailer;
use chipflap::services::Actor;
use chipflap::services::admin_users;

fn admin() -> Actor {
    Actor {
        id: "operator".to_owned(),
        email: "ops@example.org".to_owned(),
    }
}

async fn roles(app: &TestApp, id: UserId) -> Vec<String> {
    let app_metadata: String = sqlx::query_scalar("select app_metadata from users where id = ?")
        .bind(id.to_string())
        .fetch_one(app.db())
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&app_metadata).unwrap();
    value["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect()
}

/// Commits `roles` for the user while `change` runs (`helpers::committed_while`).
async fn roles_change_while<T>(
    app: &TestApp,
    id: UserId,
    new_roles: &[&str],
    change: impl std::future::Future<Output = T>,
) -> T {
    let roles = json!({"provider": "email", "roles": new_roles}).to_string();
    committed_while(
        app,
        async |tx| {
            sqlx::query("update users set app_metadata = ? where id = ?")
                .bind(roles)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
        },
        change,
    )
    .await
}

async fn user_with_roles(app: &TestApp, roles: &[&str]) -> UserId {
    let session = app.confirmed_user("ada@example.org").await;
    let id: UserId = app
        .user_id(session["access_token"].as_str().unwrap())
        .await
        .parse()
        .unwrap();
    sqlx::query("update users set app_metadata = ? where id = ?")
        .bind(json!({"provider": "email", "roles": roles}).to_string())
        .bind(id.to_string())
        .execute(app.db())
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn a_ban_keeps_a_role_granted_while_it_waited_and_stands() {
    let app = spawn_app_with(|_| {}, Mailer::memory(test_from())).await;
    let id = user_with_roles(&app, &["editor"]).await;
    let banned = roles_change_while(&app, id, &["editor", "admin"], async {
        admin_users::ban(&app.state, &admin(), id, None, None).await
    })
    .await
    .unwrap();
    assert!(banned.is_banned(app.state.clock.now()));
    assert_eq!(roles(&app, id).await, ["editor", "admin", "banned"]);
}

#[tokio::test]
async fn an_unban_keeps_a_role_granted_while_it_waited() {
    let app = spawn_app_with(|_| {}, Mailer::memory(test_from())).await;
    let id = user_with_roles(&app, &["editor", "banned"]).await;
    let lifted = roles_change_while(&app, id, &["editor", "banned", "admin"], async {
        admin_users::unban(&app.state, &admin(), id).await
    })
    .await
    .unwrap();
    assert!(!lifted.is_banned(app.state.clock.now()));
    assert_eq!(roles(&app, id).await, ["editor", "admin"]);
}
