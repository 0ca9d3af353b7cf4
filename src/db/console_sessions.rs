//! The `console_sessions` table.

use sqlx::SqliteExecutor;

use crate::domain::one_time_token::TokenDigest;
pub use crate::domain::store::ConsoleSessionRecord;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;

pub async fn insert_console_session(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
    user_id: UserId,
    now: Timestamp,
) -> sqlx::Result<()> {
    let digest = digest.as_bytes();
    let user_id = user_id.to_string();
    let now = now.unix();
    sqlx::query!(
        "insert into console_sessions (digest, user_id, created_at, last_seen_at) values (?, ?, ?, ?)",
        digest,
        user_id,
        now,
        now
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn find_console_session(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
) -> sqlx::Result<Option<ConsoleSessionRecord>> {
    let digest = digest.as_bytes();
    let row = sqlx::query!(
        r#"select user_id as "user_id!", created_at, last_seen_at from console_sessions where digest = ?"#,
        digest
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| {
        Ok(ConsoleSessionRecord {
            user_id: super::decode_user_id(&r.user_id)?,
            created_at: Timestamp::from_unix(r.created_at),
            last_seen_at: Timestamp::from_unix(r.last_seen_at),
        })
    })
    .transpose()
}

pub async fn touch_console_session(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
    now: Timestamp,
) -> sqlx::Result<()> {
    let digest = digest.as_bytes();
    let now = now.unix();
    sqlx::query!(
        "update console_sessions set last_seen_at = ? where digest = ?",
        now,
        digest
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn delete_console_session(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
) -> sqlx::Result<()> {
    let digest = digest.as_bytes();
    sqlx::query!("delete from console_sessions where digest = ?", digest)
        .execute(executor)
        .await?;
    Ok(())
}

/// Ends every console session of a user (banned or demoted admins).
pub async fn delete_user_console_sessions(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    sqlx::query!("delete from console_sessions where user_id = ?", user_id)
        .execute(executor)
        .await?;
    Ok(())
}

/// Ends every console session but `keep` (the admin who ends them all stays logged in).
pub async fn delete_console_sessions_except(
    executor: impl SqliteExecutor<'_>,
    keep: Option<&TokenDigest>,
) -> sqlx::Result<u64> {
    let keep = keep.map(TokenDigest::as_bytes);
    let deleted = sqlx::query!(
        "delete from console_sessions where ?1 is null or digest <> ?1",
        keep
    )
    .execute(executor)
    .await?;
    Ok(deleted.rows_affected())
}
