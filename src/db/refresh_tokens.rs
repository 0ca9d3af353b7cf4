//! The `refresh_tokens` table: digests only, grouped into session families for reuse detection.

use sqlx::SqliteExecutor;
use uuid::Uuid;

use crate::domain::one_time_token::TokenDigest;
use crate::domain::timestamp::Timestamp;

#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub id: i64,
    pub user_id: Uuid,
    pub family_id: String,
    pub rotated_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

struct Row {
    id: i64,
    user_id: String,
    family_id: String,
    rotated_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
}

impl TryFrom<Row> for RefreshTokenRecord {
    type Error = sqlx::Error;

    fn try_from(row: Row) -> Result<Self, Self::Error> {
        Ok(RefreshTokenRecord {
            id: row.id,
            user_id: Uuid::parse_str(&row.user_id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            family_id: row.family_id,
            rotated_at: row.rotated_at.map(Timestamp::from_unix),
            revoked_at: row.revoked_at.map(Timestamp::from_unix),
            created_at: Timestamp::from_unix(row.created_at),
        })
    }
}

/// `access_digest` is the SHA-256 of the access token handed out with this refresh token.
pub async fn insert_refresh_token(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
    access_digest: &TokenDigest,
    user_id: Uuid,
    family_id: &str,
    parent_id: Option<i64>,
    now: Timestamp,
) -> sqlx::Result<i64> {
    let digest = digest.as_bytes();
    let access_digest = access_digest.as_bytes();
    let user_id = user_id.to_string();
    let now = now.unix();
    sqlx::query_scalar!(
        r#"insert into refresh_tokens (digest, access_digest, user_id, family_id, parent_id, created_at)
           values (?, ?, ?, ?, ?, ?) returning id as "id!: i64""#,
        digest,
        access_digest,
        user_id,
        family_id,
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
        r#"select id as "id!", user_id, family_id, rotated_at, revoked_at, created_at
           from refresh_tokens where digest = ?"#,
        digest
    )
    .fetch_optional(executor)
    .await?
    .map(RefreshTokenRecord::try_from)
    .transpose()
}

/// Marks a live token rotated; false when another request rotated or revoked it first.
pub async fn mark_rotated(
    executor: impl SqliteExecutor<'_>,
    id: i64,
    now: Timestamp,
) -> sqlx::Result<bool> {
    let now = now.unix();
    let done = sqlx::query!(
        "update refresh_tokens set rotated_at = ? where id = ? and rotated_at is null and revoked_at is null",
        now,
        id
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn revoke_family(
    executor: impl SqliteExecutor<'_>,
    family_id: &str,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let now = now.unix();
    let done = sqlx::query!(
        "update refresh_tokens set revoked_at = ? where family_id = ? and revoked_at is null",
        now,
        family_id
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Ends every session of a user, except the family `keep` when given (the caller's own).
pub async fn revoke_user_refresh_tokens(
    executor: impl SqliteExecutor<'_>,
    user_id: Uuid,
    keep: Option<&str>,
    now: Timestamp,
) -> sqlx::Result<u64> {
    let user_id = user_id.to_string();
    let now = now.unix();
    let done = sqlx::query!(
        "update refresh_tokens set revoked_at = ?1
         where user_id = ?2 and revoked_at is null and (?3 is null or family_id <> ?3)",
        now,
        user_id,
        keep
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Records the access token most recently handed out with a refresh token (grace-window reissue).
pub async fn set_access_digest(
    executor: impl SqliteExecutor<'_>,
    id: i64,
    access_digest: &TokenDigest,
) -> sqlx::Result<()> {
    let access_digest = access_digest.as_bytes();
    sqlx::query!(
        "update refresh_tokens set access_digest = ? where id = ?",
        access_digest,
        id
    )
    .execute(executor)
    .await?;
    Ok(())
}

pub async fn access_digest_exists(
    executor: impl SqliteExecutor<'_>,
    access_digest: &TokenDigest,
) -> sqlx::Result<bool> {
    let access_digest = access_digest.as_bytes();
    sqlx::query_scalar!(
        r#"select exists(select 1 from refresh_tokens where access_digest = ?) as "found!: bool""#,
        access_digest
    )
    .fetch_one(executor)
    .await
}

/// The live session families an access token was issued with: one, since issuing keeps access
/// tokens unique; more only for rows written before that (treated as ambiguous by the caller).
pub async fn find_families_by_access_token(
    executor: impl SqliteExecutor<'_>,
    user_id: Uuid,
    access_digest: &TokenDigest,
) -> sqlx::Result<Vec<String>> {
    let user_id = user_id.to_string();
    let access_digest = access_digest.as_bytes();
    sqlx::query_scalar!(
        r#"select distinct family_id as "family_id!" from refresh_tokens
           where access_digest = ? and user_id = ? and revoked_at is null"#,
        access_digest,
        user_id
    )
    .fetch_all(executor)
    .await
}

/// Live sessions of a user: one row per family, with when it started and was last refreshed.
#[derive(Debug, Clone)]
pub struct Session {
    pub family_id: String,
    pub started_at: Timestamp,
    pub last_refreshed_at: Timestamp,
}

pub async fn list_user_sessions(
    executor: impl SqliteExecutor<'_>,
    user_id: Uuid,
) -> sqlx::Result<Vec<Session>> {
    let user_id = user_id.to_string();
    let rows = sqlx::query!(
        r#"select family_id as "family_id!", min(created_at) as "started_at!: i64", max(created_at) as "last_at!: i64"
           from refresh_tokens
           where user_id = ? and revoked_at is null
           group by family_id order by 3 desc"#,
        user_id
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Session {
            family_id: r.family_id,
            started_at: Timestamp::from_unix(r.started_at),
            last_refreshed_at: Timestamp::from_unix(r.last_at),
        })
        .collect())
}
