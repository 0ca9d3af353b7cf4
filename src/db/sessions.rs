//! The `sessions` table: one row per login; its refresh tokens point at it.

use sqlx::SqliteExecutor;
use uuid::Uuid;

use crate::domain::session::{EndReason, Session};
pub use crate::domain::store::RefreshTokenWithOwner;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;

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
            user_id: super::decode_user_id(&row.user_id)?,
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
    user_id: UserId,
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
    user_id: UserId,
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
    user_id: UserId,
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

/// The refresh token stored under `digest`, joined with its session and its user (see
/// `RefreshTokenWithOwner`); `None` for an unknown digest.
pub async fn find_refresh_token_with_owner(
    executor: impl SqliteExecutor<'_>,
    digest: &crate::domain::one_time_token::TokenDigest,
) -> sqlx::Result<Option<RefreshTokenWithOwner>> {
    let digest = digest.as_bytes();
    let Some(row) = sqlx::query!(
        r#"select rt.id as "id!: i64", rt.user_id as "token_user_id!", rt.session_id as "session_id!",
                  rt.rotated_at, rt.revoked_at, rt.created_at as "token_created_at!: i64",
                  s.id as "s_id?: String", s.user_id as "s_user_id?: String",
                  s.created_at as "s_created_at?: i64", s.refreshed_at as "s_refreshed_at?: i64",
                  s.ended_at as "s_ended_at?: i64", s.ended_reason as "s_ended_reason?: String",
                  s.aal as "s_aal?: String", s.sign_in_method as "s_sign_in_method?: String",
                  s.aal2_at as "s_aal2_at?: i64", s.version as "s_version?: i64",
                  u.id as "u_id?: String", u.aud as "u_aud?: String", u.role as "u_role?: String",
                  u.email as "u_email?: String", u.password_hash as "u_password_hash?: String",
                  u.confirmed_at as "u_confirmed_at?: i64", u.invited_at as "u_invited_at?: i64",
                  u.confirmation_sent_at as "u_confirmation_sent_at?: i64",
                  u.recovery_sent_at as "u_recovery_sent_at?: i64",
                  u.email_change as "u_email_change?: String",
                  u.email_change_sent_at as "u_email_change_sent_at?: i64",
                  u.last_sign_in_at as "u_last_sign_in_at?: i64",
                  u.banned_until as "u_banned_until?: i64",
                  u.app_metadata as "u_app_metadata?: String",
                  u.user_metadata as "u_user_metadata?: String",
                  u.created_at as "u_created_at?: i64", u.updated_at as "u_updated_at?: i64",
                  u.version as "u_version?: i64"
           from refresh_tokens rt
           left join sessions s on s.id = rt.session_id
           left join users u on u.id = rt.user_id
           where rt.digest = ?"#,
        digest
    )
    .fetch_optional(executor)
    .await?
    else {
        return Ok(None);
    };
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)));
    let token = super::refresh_tokens::RefreshTokenRecord {
        id: row.id,
        user_id: super::decode_user_id(&row.token_user_id)?,
        session_id: uuid(&row.session_id)?,
        rotated_at: row.rotated_at.map(Timestamp::from_unix),
        revoked_at: row.revoked_at.map(Timestamp::from_unix),
        created_at: Timestamp::from_unix(row.token_created_at),
    };
    let session = match (
        row.s_id,
        row.s_user_id,
        row.s_created_at,
        row.s_refreshed_at,
        row.s_aal,
        row.s_sign_in_method,
    ) {
        (
            Some(id),
            Some(user_id),
            Some(created_at),
            Some(refreshed_at),
            Some(aal),
            Some(method),
        ) => {
            let session = Session::try_from(Row {
                id,
                user_id,
                created_at,
                refreshed_at,
                ended_at: row.s_ended_at,
                ended_reason: row.s_ended_reason,
            })?;
            let assurance = crate::domain::mfa::Assurance {
                aal: crate::domain::mfa::Aal::parse(&aal),
                sign_in_method: method,
                signed_in_at: Timestamp::from_unix(created_at),
                aal2_at: row.s_aal2_at.map(Timestamp::from_unix),
            };
            Some((session, assurance))
        }
        _ => None,
    };
    let user = match (
        row.u_id,
        row.u_aud,
        row.u_role,
        row.u_email,
        row.u_app_metadata,
        row.u_user_metadata,
        row.u_created_at,
        row.u_updated_at,
    ) {
        (
            Some(id),
            Some(aud),
            Some(role),
            Some(email),
            Some(app_metadata),
            Some(user_metadata),
            Some(created_at),
            Some(updated_at),
        ) => Some(crate::domain::user::User::try_from(
            super::users::UserRow {
                id,
                aud,
                role,
                email,
                password_hash: row.u_password_hash,
                confirmed_at: row.u_confirmed_at,
                invited_at: row.u_invited_at,
                confirmation_sent_at: row.u_confirmation_sent_at,
                recovery_sent_at: row.u_recovery_sent_at,
                email_change: row.u_email_change,
                email_change_sent_at: row.u_email_change_sent_at,
                last_sign_in_at: row.u_last_sign_in_at,
                banned_until: row.u_banned_until,
                app_metadata,
                user_metadata,
                created_at,
                updated_at,
            },
        )?),
        _ => None,
    };
    let versions = match (row.u_version, row.s_version) {
        (Some(user), Some(session)) => Some(super::refresh_tokens::OwnerVersions { user, session }),
        _ => None,
    };
    Ok(Some(RefreshTokenWithOwner {
        token,
        session,
        user,
        versions,
    }))
}
