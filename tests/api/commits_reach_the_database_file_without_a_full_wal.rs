//! Rule: a serving process checkpoints its WAL in the background (`db::checkpoint`), so
//! committed rows reach the database file itself within moments, never only when a commit
//! finds the WAL past `wal_autocheckpoint` pages (a commit that checkpoints holds every other
//! writer back while it syncs).

use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use crate::helpers::spawn_app;

/// Users in the database file alone: `immutable` makes SQLite read the main file and ignore
/// the WAL, so rows still only in the WAL are not counted (nor tables: `None` while the
/// migrations are only there).
async fn users_in_the_file(path: &std::path::Path) -> Option<i64> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .immutable(true);
    let mut conn = SqliteConnection::connect_with(&options).await.unwrap();
    let n = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&mut conn)
        .await
        .ok();
    conn.close().await.unwrap();
    n
}

#[tokio::test]
async fn committed_rows_reach_the_database_file_without_waiting_for_the_wal_to_fill() {
    let app = spawn_app().await;
    let path = app
        .state
        .settings
        .database
        .sqlite_path()
        .unwrap()
        .to_path_buf();
    // The migrations and one signup: a few hundred pages of WAL, far below
    // `WAL_AUTOCHECKPOINT_PAGES`, so only the background checkpointer copies them.
    app.confirmed_user("ada@example.org").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if users_in_the_file(&path).await == Some(1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new user never reached the database file"
        );
        tokio::time::sleep(chipflap::db::checkpoint::CHECKPOINT_EVERY).await;
    }
}
