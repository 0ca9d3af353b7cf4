//! The `sessions` table: one row per login; its refresh tokens point at it.

use sqlx::SqliteExecutor;
use uuid::Uuid;

use crate::domain::session::{EndReason, Session};
use crate::domain::timestamp::Timestamp;

struct Row {
    id: String,
    user_id: String,
    created_at: i64,
    refreshed_at: i64,
    ended_at: Option<i64>,
    ended_reason: Option<String>,
}

impl TryFrom<Row> for Session {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)));
        Ok(Session {
            id: uuid(&row.id)?,
            user_id: uuid(&row.user_id)?,
            created_at: Timestamp::from_unix(row.created_at),
            refreshed_at: Timestamp::from_unix(row.refreshed_at),
            ended: row.ended_at.map(|at| {
                (
                    Timestamp::from_unix(at),
                    EndReason::parse(row.ended_reason.as_deref().unwrap_or("")),
                )
            }),
        })
    }
}

pub async fn insert_session(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    user_id: Uuid,
    now: Timestamp,
) -> sqlx::Result<()> {
    let id = id.to_string();
    let user_id = user_id.to_string();
    let now = now.unix();
    sqlx::query!(
        "insert into sessions (id, user_id, created_at, refreshed_at, updated_at) values (?, ?, ?, ?, ?)",
        id,
        user_id,
        now,
        now,
        now
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn find_session(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<Session>> {
    let id = id.to_string();
    sqlx::query_as!(
        Row,
        r#"select id as "id!", user_id, created_at, refreshed_at, ended_at, ended_reason
           from sessions where id = ?"#,
        id
    )
    .fetch_optional(executor)
    .await?
    .map(Session::try_from)
    .transpose()
}

/// Records a refresh of the session.
pub async fn touch_session(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    now: Timestamp,
) -> sqlx::Result<()> {
    let id = id.to_string();
    let now = now.unix();
    sqlx::query!(
        "update sessions set refreshed_at = ?1, updated_at = ?1 where id = ?2",
        now,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Ends one session and revokes its refresh tokens; false when it had already ended.
pub async fn end_session(
    conn: &mut sqlx::SqliteConnection,
    id: Uuid,
    reason: EndReason,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let id = id.to_string();
    let at = now.unix();
    let reason = reason.as_str();
    let ended = sqlx::query!(
        "update sessions set ended_at = ?1, ended_reason = ?2, updated_at = ?1
         where id = ?3 and ended_at is null",
        at,
        reason,
        id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update refresh_tokens set revoked_at = ?1 where session_id = ?2 and revoked_at is null",
        at,
        id
    )
    .execute(&mut *conn)
    .await?;
    Ok(ended.rows_affected() == 1)
}

/// Ends every live session of a user except `keep` (the caller's own, on a password change),
/// and revokes their refresh tokens. Answers how many sessions ended.
pub async fn end_user_sessions(
    conn: &mut sqlx::SqliteConnection,
    user_id: Uuid,
    keep: Option<Uuid>,
    reason: EndReason,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let user_id = user_id.to_string();
    let keep = keep.map(|k| k.to_string());
    let at = now.unix();
    let reason = reason.as_str();
    let ended = sqlx::query!(
        "update sessions set ended_at = ?1, ended_reason = ?2, updated_at = ?1
         where user_id = ?3 and ended_at is null and (?4 is null or id <> ?4)",
        at,
        reason,
        user_id,
        keep
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update refresh_tokens set revoked_at = ?1
         where user_id = ?2 and revoked_at is null and (?3 is null or session_id <> ?3)",
        at,
        user_id,
        keep
    )
    .execute(&mut *conn)
    .await?;
    Ok(ended.rows_affected())
}

/// A user's sessions that have not been ended, newest refresh first (the console lists them).
pub async fn list_live_sessions(
    executor: impl SqliteExecutor<'_>,
    user_id: Uuid,
) -> sqlx::Result<Vec<Session>> {
    let user_id = user_id.to_string();
    sqlx::query_as!(
        Row,
        r#"select id as "id!", user_id, created_at, refreshed_at, ended_at, ended_reason
           from sessions where user_id = ? and ended_at is null
           order by refreshed_at desc, id"#,
        user_id
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Session::try_from)
    .collect()
}

/// Ends every session of every user and revokes every refresh token (after a breach). Answers
/// how many sessions ended. It touches every live row, so it scans: a rare operator action.
pub async fn end_every_session(
    conn: &mut sqlx::SqliteConnection,
    reason: EndReason,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let at = now.unix();
    let reason = reason.as_str();
    let ended = sqlx::query!(
        "update sessions set ended_at = ?1, ended_reason = ?2, updated_at = ?1
         where ended_at is null",
        at,
        reason
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update refresh_tokens set revoked_at = ?1 where revoked_at is null",
        at
    )
    .execute(&mut *conn)
    .await?;
    Ok(ended.rows_affected())
}

/// How many sessions have not been ended (some may be past a configured limit).
pub async fn count_unended_sessions(executor: impl SqliteExecutor<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"select count(*) as "n!: i64" from sessions where ended_at is null"#)
        .fetch_one(executor)
        .await
}
