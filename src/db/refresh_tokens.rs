//! The `refresh_tokens` table: digests only, each belonging to a session (`db::sessions`).

use sqlx::SqliteExecutor;
use uuid::Uuid;

use crate::domain::one_time_token::TokenDigest;
pub use crate::domain::store::{OwnerVersions, RefreshTokenRecord};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;

struct Row {
    id: i64,
    user_id: String,
    session_id: String,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<Row> for RefreshTokenRecord {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(RefreshTokenRecord {
            id: row.id,
            user_id: super::decode_user_id(&row.user_id)?,
            session_id: Uuid::parse_str(&row.session_id)
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            rotated_at: row.rotated_at.map(Timestamp::from_unix),
            revoked_at: row.revoked_at.map(Timestamp::from_unix),
            created_at: Timestamp::from_unix(row.created_at),
        })
    }
}

pub async fn insert_refresh_token(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
    user_id: UserId,
    session_id: Uuid,
    parent_id: Option<i64>,
    now: Timestamp,
) -> sqlx::Result<i64> {
    let digest = digest.as_bytes();
    let user_id = user_id.to_string();
    let session_id = session_id.to_string();
    let now = now.unix();
    sqlx::query_scalar!(
        r#"insert into refresh_tokens (digest, user_id, session_id, parent_id, created_at)
           values (?, ?, ?, ?, ?) returning id as "id!: i64""#,
        digest,
        user_id,
        session_id,
        parent_id,
        now
    )
    .fetch_one(executor)
    .await
}

pub async fn find_refresh_token(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
) -> sqlx::Result<Option<RefreshTokenRecord>> {
    let digest = digest.as_bytes();
    sqlx::query_as!(
        Row,
        r#"select id as "id!", user_id, session_id, rotated_at, revoked_at, created_at
           from refresh_tokens where digest = ?"#,
        digest
    )
    .fetch_optional(executor)
    .await?
    .map(RefreshTokenRecord::try_from)
    .transpose()
}

/// Rotates the live token `id` (of `session_id`, owned by `user_id`) into its successor: marks
/// it rotated, then stores `successor`, records the refresh on the session and appends `audit`.
/// Answers false, having written nothing, when another request rotated or revoked it first
/// (a session that ended, a ban or a deleted user all revoke or delete its tokens).
///
/// One round trip to the connection's thread: the four writes go as one statement list, each
/// one applying only when the one before it changed exactly one row (SQLite's `changes()` is
/// the count of the last statement that completed). Under load each round trip waits for a
/// core while the caller holds the write gate, so the refresh grant's share of the gate is
/// counted in round trips. Errors: the driver's, and `sqlx::Error::Protocol` when only part of
/// the list applied (a missing session row): the caller's transaction must then roll back.
#[allow(clippy::too_many_arguments)]
pub async fn rotate_refresh_token(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
    successor: &TokenDigest,
    user_id: UserId,
    session_id: Uuid,
    audit: &super::audit_log::AuditEntry,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let digest = successor.as_bytes();
    let user_id = user_id.to_string();
    let session_id = session_id.to_string();
    let now = now.unix();
    let audit_id = audit.id.to_string();
    let traits = audit.traits.to_string();
    let audit_at = audit.created_at.unix();
    let subject_id = super::audit_log::subject_id(audit);
    // One statement list: sqlx binds the bare `?`s in order across its statements. The macro
    // checks only the total count and strict tables only a value's type, so a value moved to
    // another column of the same type goes unnoticed: statements and arguments move together,
    // and a `?NNN` would name the NNN-th argument of the whole list.
    // tests/api/a_rotation_is_recorded_exactly.rs reads the values back from their columns.
    let done = sqlx::query!(
        "update refresh_tokens set rotated_at = ?
         where id = ? and rotated_at is null and revoked_at is null;
         insert into refresh_tokens (digest, user_id, session_id, parent_id, created_at)
         select ?, ?, ?, ?, ? where changes() = 1;
         update sessions set refreshed_at = ?, updated_at = ? where id = ? and changes() = 1;
         insert into audit_log_entries (id, actor_id, actor_email, action, log_type, traits, subject_id, created_at)
         select ?, ?, ?, ?, ?, ?, ?, ? where changes() = 1",
        now,
        id,
        digest,
        user_id,
        session_id,
        id,
        now,
        now,
        now,
        session_id,
        audit_id,
        audit.actor_id,
        audit.actor_email,
        audit.action,
        audit.log_type,
        traits,
        subject_id,
        audit_at
    )
    .execute(&mut *conn)
    .await?;
    match done.rows_affected() {
        ROTATION_WRITES => Ok(true),
        0 => Ok(false),
        partial => Err(sqlx::Error::Protocol(format!(
            "a refresh-token rotation applied {partial} of its {ROTATION_WRITES} writes"
        ))),
    }
}

/// The rows `rotate_refresh_token` changes when it rotates: the mark, the successor, the
/// session and the audit entry.
const ROTATION_WRITES: u64 = 4;

/// `rotate_refresh_token` in a transaction of its own, in one round trip, applied only while
/// the user and session rows are still at the versions `seen` (the refresh grant read them
/// before it waited for the write gate and decided on them). Answers false, having written
/// nothing, when either row moved or the token was rotated or revoked meanwhile: the caller
/// then decides again on the rows as they are.
///
/// `writer` must hold the write gate (`db::writer`) with no transaction open. The list is
/// `begin immediate`, the same four writes as `rotate_refresh_token` with the versions checked
/// by the first, and `commit`: each write applies only when the one before it changed one row,
/// and once the first applies, the next ones apply too (the session row exists at the version
/// read, and the write lock is held) or fail (a successor digest already stored), which stops
/// the list before its `commit`. So it commits all four or none. The caller bumps the
/// write epoch whatever the outcome. Errors: the driver's, after whatever the list left open
/// was rolled back (`Writer::send_list`), so no connection goes back to the pool inside a
/// transaction. An error from the last `select` alone would come after the `commit`: the
/// rotation then stands and the client's retry meets the grace window.
#[allow(clippy::too_many_arguments)]
pub async fn rotate_in_own_transaction(
    writer: &mut super::Writer,
    id: i64,
    successor: &TokenDigest,
    user_id: UserId,
    session_id: Uuid,
    seen: OwnerVersions,
    audit: &super::audit_log::AuditEntry,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let (user_id, session_id) = (user_id.to_string(), session_id.to_string());
    writer
        .send_list(async |conn| {
            rotate_list(
                conn,
                id,
                successor.as_bytes(),
                &user_id,
                &session_id,
                seen,
                audit,
                now.unix(),
            )
            .await
        })
        .await
}

/// The statement list of `rotate_in_own_transaction`, sent on `conn`.
#[allow(clippy::too_many_arguments)]
async fn rotate_list(
    conn: &mut sqlx::SqliteConnection,
    id: i64,
    digest: &[u8],
    user_id: &str,
    session_id: &str,
    seen: OwnerVersions,
    audit: &super::audit_log::AuditEntry,
    now: i64,
) -> sqlx::Result<bool> {
    let audit_id = audit.id.to_string();
    let traits = audit.traits.to_string();
    let audit_at = audit.created_at.unix();
    let subject_id = super::audit_log::subject_id(audit);
    // Bare `?`s bind in order across the statements, as in `rotate_refresh_token`;
    // tests/api/a_rotation_is_recorded_exactly.rs reads each value back from its column.
    let rotated = sqlx::query_scalar!(
        r#"begin immediate;
         update refresh_tokens set rotated_at = ?
         where id = ? and rotated_at is null and revoked_at is null
           and (select version from users where id = ?) = ?
           and (select version from sessions where id = ?) = ?;
         insert into refresh_tokens (digest, user_id, session_id, parent_id, created_at)
         select ?, ?, ?, ?, ? where changes() = 1;
         update sessions set refreshed_at = ?, updated_at = ? where id = ? and changes() = 1;
         insert into audit_log_entries (id, actor_id, actor_email, action, log_type, traits, subject_id, created_at)
         select ?, ?, ?, ?, ?, ?, ?, ? where changes() = 1;
         commit;
         select changes() as "rotated!: i64""#,
        now,
        id,
        user_id,
        seen.user,
        session_id,
        seen.session,
        digest,
        user_id,
        session_id,
        id,
        now,
        now,
        now,
        session_id,
        audit_id,
        audit.actor_id,
        audit.actor_email,
        audit.action,
        audit.log_type,
        traits,
        subject_id,
        audit_at
    )
    // The last statement, after the commit, answers the row count of the audit entry's
    // insert: 1 when the whole chain applied. (Not `rows_affected`: sqlx sums SQLite's
    // `changes()` after every statement, and after `begin` or `commit` that still holds the
    // count of whichever write came before them.) Fetched whole, the list runs to its end.
    .fetch_one(conn)
    .await?;
    Ok(rotated == 1)
}
