//! `mfa_factors`, `mfa_challenges`, the sessions' assurance columns and pending console
//! second steps (`console_mfa_logins`).

use sqlx::SqliteExecutor;
use uuid::Uuid;

use crate::domain::mfa::{Aal, Assurance, Factor, FactorStatus};
pub use crate::domain::store::Challenge;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;

fn uuid(s: &str) -> Result<Uuid, sqlx::Error> {
    Uuid::parse_str(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

struct FactorRow {
    id: String,
    user_id: String,
    friendly_name: Option<String>,
    factor_type: String,
    status: String,
    last_used_step: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<FactorRow> for Factor {
    type Error = sqlx::Error;

    fn try_from(row: FactorRow) -> Result<Self, Self::Error> {
        Ok(Factor {
            id: uuid(&row.id)?,
            user_id: super::decode_user_id(&row.user_id)?,
            friendly_name: row.friendly_name,
            factor_type: row.factor_type,
            status: FactorStatus::parse(&row.status),
            last_used_step: row.last_used_step,
            created_at: Timestamp::from_unix(row.created_at),
            updated_at: Timestamp::from_unix(row.updated_at),
        })
    }
}

/// Stores a new factor with its sealed secret.
pub async fn insert_factor(
    executor: impl SqliteExecutor<'_>,
    factor: &Factor,
    sealed_secret: &[u8],
) -> sqlx::Result<()> {
    let id = factor.id.to_string();
    let user_id = factor.user_id.to_string();
    let status = factor.status.as_str();
    let created = factor.created_at.unix();
    sqlx::query!(
        "insert into mfa_factors (id, user_id, friendly_name, factor_type, status, secret,
                                  created_at, updated_at)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        id,
        user_id,
        factor.friendly_name,
        factor.factor_type,
        status,
        sealed_secret,
        created
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A user's factors, oldest first.
pub async fn list_factors(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
) -> sqlx::Result<Vec<Factor>> {
    let user_id = user_id.to_string();
    sqlx::query_as!(
        FactorRow,
        r#"select id as "id!", user_id, friendly_name, factor_type, status, last_used_step,
                  created_at, updated_at
           from mfa_factors where user_id = ? order by created_at, id"#,
        user_id
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Factor::try_from)
    .collect()
}

/// One of the user's factors and its sealed secret; `None` for another user's or an unknown id.
pub async fn find_factor(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
    id: Uuid,
) -> sqlx::Result<Option<(Factor, Vec<u8>)>> {
    let id = id.to_string();
    let user_id = user_id.to_string();
    let row = sqlx::query!(
        r#"select id as "id!", user_id, friendly_name, factor_type, status, last_used_step,
                  created_at, updated_at, secret
           from mfa_factors where id = ? and user_id = ?"#,
        id,
        user_id
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| {
        let factor = Factor::try_from(FactorRow {
            id: r.id,
            user_id: r.user_id,
            friendly_name: r.friendly_name,
            factor_type: r.factor_type,
            status: r.status,
            last_used_step: r.last_used_step,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })?;
        Ok((factor, r.secret))
    })
    .transpose()
}

/// Whether the user has a verified factor (the condition for requiring aal2).
pub async fn has_verified_factor(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
) -> sqlx::Result<bool> {
    let user_id = user_id.to_string();
    let found = sqlx::query_scalar!(
        r#"select exists(select 1 from mfa_factors where user_id = ? and status = 'verified') as "found!: bool""#,
        user_id
    )
    .fetch_one(executor)
    .await?;
    Ok(found)
}

/// Records that a code for `step` was accepted: true only when `step` is later than every step
/// accepted before, so each code is single-use (and older codes die with it). Also marks the
/// factor verified.
pub async fn use_factor_step(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    step: i64,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let id = id.to_string();
    let now = now.unix();
    let done = sqlx::query!(
        "update mfa_factors set last_used_step = ?1, status = 'verified', updated_at = ?2
         where id = ?3 and (last_used_step is null or last_used_step < ?1)",
        step,
        now,
        id
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_factor(executor: impl SqliteExecutor<'_>, id: Uuid) -> sqlx::Result<bool> {
    let id = id.to_string();
    let done = sqlx::query!("delete from mfa_factors where id = ?", id)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Drops the user's unverified factors (once one is verified, abandoned enrollments go, as
/// supabase/auth does).
pub async fn delete_unverified_factors(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    sqlx::query!(
        "delete from mfa_factors where user_id = ? and status = 'unverified'",
        user_id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Drops the user's unverified factors created before `before` (abandoned enrollments expire,
/// as supabase/auth's `DeleteExpiredFactors`).
pub async fn delete_expired_factors(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
    before: Timestamp,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    let before = before.unix();
    sqlx::query!(
        "delete from mfa_factors where user_id = ? and status = 'unverified' and created_at < ?",
        user_id,
        before
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Stores a challenge, and sweeps the factor's challenges older than `expired_before` so the
/// table stays bounded.
pub async fn insert_challenge(
    conn: &mut sqlx::SqliteConnection,
    challenge: &Challenge,
    expired_before: Timestamp,
) -> sqlx::Result<()> {
    let id = challenge.id.to_string();
    let factor_id = challenge.factor_id.to_string();
    let created = challenge.created_at.unix();
    let before = expired_before.unix();
    sqlx::query!(
        "delete from mfa_challenges where factor_id = ? and created_at < ?",
        factor_id,
        before
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "insert into mfa_challenges (id, factor_id, ip_address, created_at) values (?, ?, ?, ?)",
        id,
        factor_id,
        challenge.ip_address,
        created
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update mfa_factors set last_challenged_at = ? where id = ?",
        created,
        factor_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn find_challenge(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
) -> sqlx::Result<Option<Challenge>> {
    let id = id.to_string();
    let row = sqlx::query!(
        r#"select id as "id!", factor_id, ip_address, created_at, verified_at
           from mfa_challenges where id = ?"#,
        id
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| {
        Ok(Challenge {
            id: uuid(&r.id)?,
            factor_id: uuid(&r.factor_id)?,
            ip_address: r.ip_address,
            created_at: Timestamp::from_unix(r.created_at),
            verified_at: r.verified_at.map(Timestamp::from_unix),
        })
    })
    .transpose()
}

/// Marks a challenge answered; false when it already was.
pub async fn verify_challenge(
    executor: impl SqliteExecutor<'_>,
    id: Uuid,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let id = id.to_string();
    let now = now.unix();
    let done = sqlx::query!(
        "update mfa_challenges set verified_at = ? where id = ? and verified_at is null",
        now,
        id
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// What a session has proved; `None` for an unknown session.
pub async fn session_assurance(
    executor: impl SqliteExecutor<'_>,
    session_id: Uuid,
) -> sqlx::Result<Option<Assurance>> {
    let id = session_id.to_string();
    let row = sqlx::query!(
        "select aal, sign_in_method, created_at, aal2_at from sessions where id = ?",
        id
    )
    .fetch_optional(executor)
    .await?;
    Ok(row.map(|r| Assurance {
        aal: Aal::parse(&r.aal),
        sign_in_method: r.sign_in_method,
        signed_in_at: Timestamp::from_unix(r.created_at),
        aal2_at: r.aal2_at.map(Timestamp::from_unix),
    }))
}

/// Records the first factor of a new session (`password` is the column's default).
pub async fn set_sign_in_method(
    executor: impl SqliteExecutor<'_>,
    session_id: Uuid,
    method: &str,
) -> sqlx::Result<()> {
    let id = session_id.to_string();
    sqlx::query!(
        "update sessions set sign_in_method = ? where id = ?",
        method,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Raises a session to aal2 through `factor_id`.
pub async fn raise_session_to_aal2(
    executor: impl SqliteExecutor<'_>,
    session_id: Uuid,
    factor_id: Uuid,
    now: Timestamp,
) -> sqlx::Result<()> {
    let id = session_id.to_string();
    let factor_id = factor_id.to_string();
    let now = now.unix();
    sqlx::query!(
        "update sessions set aal = 'aal2', factor_id = ?1, aal2_at = ?2, updated_at = ?2
         where id = ?3",
        factor_id,
        now,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Lowers the sessions a removed factor had raised back to aal1 (supabase/auth's
/// `DowngradeSessionsToAAL1`). Run before the factor row is deleted.
pub async fn downgrade_sessions_of_factor(
    executor: impl SqliteExecutor<'_>,
    factor_id: Uuid,
    now: Timestamp,
) -> sqlx::Result<()> {
    let factor_id = factor_id.to_string();
    let now = now.unix();
    sqlx::query!(
        "update sessions set aal = 'aal1', factor_id = null, aal2_at = null, updated_at = ?1
         where factor_id = ?2",
        now,
        factor_id
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// A console login waiting for its code.
pub async fn insert_console_mfa_login(
    executor: impl SqliteExecutor<'_>,
    digest: &[u8],
    user_id: UserId,
    now: Timestamp,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    let now = now.unix();
    sqlx::query!(
        "insert into console_mfa_logins (digest, user_id, created_at) values (?, ?, ?)",
        digest,
        user_id,
        now
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// The user of a pending console login started after `not_before`.
pub async fn find_console_mfa_login(
    executor: impl SqliteExecutor<'_>,
    digest: &[u8],
    not_before: Timestamp,
) -> sqlx::Result<Option<UserId>> {
    let not_before = not_before.unix();
    let user_id = sqlx::query_scalar!(
        "select user_id from console_mfa_logins where digest = ? and created_at >= ?",
        digest,
        not_before
    )
    .fetch_optional(executor)
    .await?;
    user_id.as_deref().map(super::decode_user_id).transpose()
}

/// Ends a pending console login, and sweeps every expired one.
pub async fn delete_console_mfa_login(
    executor: impl SqliteExecutor<'_>,
    digest: &[u8],
    expired_before: Timestamp,
) -> sqlx::Result<()> {
    let before = expired_before.unix();
    sqlx::query!(
        "delete from console_mfa_logins where digest = ? or created_at < ?",
        digest,
        before
    )
    .execute(executor)
    .await?;
    Ok(())
}
