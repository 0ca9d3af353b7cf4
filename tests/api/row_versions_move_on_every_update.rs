//! Rule: every update of a user or a session row moves its version, whichever statement or
//! process makes it, even one that names no version and changes no value. The refresh grant
//! rotates on rows it read before the write gate only while their versions stand
//! (migration 20261201000050_row_versions), so an update that left a version in place would let
//! a token carry a row that has changed.

use crate::helpers::spawn_app;
use crate::support::mfa::claims;

async fn version(app: &crate::helpers::TestApp, table: &str, id: &str) -> i64 {
    let sql = format!("select version from {table} where id = ?");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_one(app.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn every_update_of_a_user_or_session_row_moves_its_version_once() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let access = session["access_token"].as_str().unwrap().to_owned();
    let user = app.user_id(&access).await;
    let session_id = claims(&access)["session_id"].as_str().unwrap().to_owned();
    for (table, id, update) in [
        (
            "users",
            &user,
            "update users set user_metadata = user_metadata where id = ?",
        ),
        (
            "users",
            &user,
            "update users set banned_until = 1 where id = ?",
        ),
        (
            "sessions",
            &session_id,
            "update sessions set aal = aal where id = ?",
        ),
        (
            "sessions",
            &session_id,
            "update sessions set refreshed_at = 7 where id = ?",
        ),
    ] {
        let before = version(&app, table, id).await;
        sqlx::query(sqlx::AssertSqlSafe(update))
            .bind(id)
            .execute(app.db())
            .await
            .unwrap();
        assert_eq!(version(&app, table, id).await, before + 1, "{update}");
    }
}

#[tokio::test]
async fn a_refresh_moves_its_session_version() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let access = session["access_token"].as_str().unwrap().to_owned();
    let session_id = claims(&access)["session_id"].as_str().unwrap().to_owned();
    let before = version(&app, "sessions", &session_id).await;
    let refresh = session["refresh_token"].as_str().unwrap();
    assert_eq!(app.post_token_refresh(refresh).await.status(), 200);
    assert_eq!(version(&app, "sessions", &session_id).await, before + 1);
}
