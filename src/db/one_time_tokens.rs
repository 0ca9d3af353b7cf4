//! The `one_time_tokens` table: digests of mailed links (confirmation, recovery, invite, email change).

use sqlx::{SqliteConnection, SqliteExecutor};

use crate::domain::one_time_token::{TokenDigest, TokenPurpose};
use crate::domain::password::PasswordHash;
pub use crate::domain::store::ConsumedToken;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;

/// Stores one more confirmation link for the user, bound to the password `hash` of the signup
/// that asked for it, beside the links already mailed; only the newest `keep` links stay (the
/// oldest are dropped), so repeated signups cannot grow the table. `mail_pending` until
/// [`mark_token_mailed`].
#[allow(clippy::too_many_arguments, reason = "one row's columns")]
pub async fn add_confirmation_token(
    conn: &mut SqliteConnection,
    user_id: UserId,
    digest: &TokenDigest,
    hash: Option<&PasswordHash>,
    now: Timestamp,
    expires_at: Timestamp,
    keep: i64,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    let purpose = TokenPurpose::Confirmation.as_str();
    let digest = digest.as_bytes();
    let hash = hash.map(PasswordHash::as_str);
    let now = now.unix();
    let expires_at = expires_at.unix();
    sqlx::query!(
        "insert into one_time_tokens (digest, user_id, purpose, new_email, created_at, expires_at, mail_pending, password_hash)
         values (?, ?, ?, null, ?, ?, 1, ?)",
        digest,
        user_id,
        purpose,
        now,
        expires_at,
        hash
    )
    .execute(&mut *conn)
    .await?;
    let offset = keep.max(1);
    sqlx::query!(
        "delete from one_time_tokens where user_id = ?1 and purpose = ?2 and digest in (
             select digest from one_time_tokens where user_id = ?1 and purpose = ?2
             order by created_at desc, rowid desc limit -1 offset ?3)",
        user_id,
        purpose,
        offset
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the mail carrying this one link was handed to the transport.
pub async fn mark_token_mailed(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
) -> sqlx::Result<()> {
    let digest = digest.as_bytes();
    sqlx::query!(
        "update one_time_tokens set mail_pending = 0 where digest = ?",
        digest
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// How many links of `purpose` the user has (used or not).
pub async fn count_user_tokens(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
    purpose: TokenPurpose,
) -> sqlx::Result<i64> {
    let user_id = user_id.to_string();
    let purpose = purpose.as_str();
    sqlx::query_scalar!(
        r#"select count(*) as "n!: i64" from one_time_tokens where user_id = ? and purpose = ?"#,
        user_id,
        purpose
    )
    .fetch_one(executor)
    .await
}

/// Forgets one link (its mail could not be sent).
pub async fn delete_token(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
) -> sqlx::Result<()> {
    let digest = digest.as_bytes();
    sqlx::query!("delete from one_time_tokens where digest = ?", digest)
        .execute(executor)
        .await?;
    Ok(())
}

/// The user an unused link of one of `purposes` belongs to, without consuming it: lets a
/// service learn whose link it is (for the password policy) before its write transaction.
pub async fn find_token_user(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
    purposes: (TokenPurpose, TokenPurpose),
) -> sqlx::Result<Option<UserId>> {
    let digest = digest.as_bytes();
    let (first, second) = (purposes.0.as_str(), purposes.1.as_str());
    let row = sqlx::query_scalar!(
        r#"select user_id as "user_id!: String" from one_time_tokens
           where digest = ? and used_at is null and purpose in (?, ?)"#,
        digest,
        first,
        second
    )
    .fetch_optional(executor)
    .await?;
    row.map(|id| super::decode_user_id(&id)).transpose()
}

/// Stores a new token of `purpose` for the user, dropping any earlier one (only the newest link
/// works). The row starts as `mail_pending` until [`mark_mailed`] records that its mail went out.
pub async fn replace_token(
    conn: &mut SqliteConnection,
    user_id: UserId,
    purpose: TokenPurpose,
    digest: &TokenDigest,
    new_email: Option<&str>,
    now: Timestamp,
    expires_at: Timestamp,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    let purpose = purpose.as_str();
    sqlx::query!(
        "delete from one_time_tokens where user_id = ? and purpose = ?",
        user_id,
        purpose
    )
    .execute(&mut *conn)
    .await?;
    let digest = digest.as_bytes();
    let now = now.unix();
    let expires_at = expires_at.unix();
    sqlx::query!(
        "insert into one_time_tokens (digest, user_id, purpose, new_email, created_at, expires_at, mail_pending)
         values (?, ?, ?, ?, ?, ?, 1)",
        digest,
        user_id,
        purpose,
        new_email,
        now,
        expires_at
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records that the mail carrying the user's current `purpose` link was handed to the transport.
pub async fn mark_mailed(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
    purpose: TokenPurpose,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    let purpose = purpose.as_str();
    sqlx::query!(
        "update one_time_tokens set mail_pending = 0
         where user_id = ? and purpose = ? and mail_pending = 1",
        user_id,
        purpose
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// At start, before serving: forgets every link whose mail an earlier process stored but never
/// handed to the transport (it died in between), and clears the throttle stamp that link set, so
/// the user can be mailed again at once. Returns how many links were forgotten.
pub async fn forget_links_never_mailed(conn: &mut SqliteConnection) -> sqlx::Result<u64> {
    sqlx::query!(
        "update users set confirmation_sent_at = null where id in (
             select user_id from one_time_tokens
             where mail_pending = 1 and purpose in ('confirmation', 'invite'))"
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update users set recovery_sent_at = null where id in (
             select user_id from one_time_tokens where mail_pending = 1 and purpose = 'recovery')"
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "update users set email_change = null, email_change_sent_at = null where id in (
             select user_id from one_time_tokens where mail_pending = 1 and purpose = 'email_change')"
    )
    .execute(&mut *conn)
    .await?;
    let forgotten = sqlx::query!("delete from one_time_tokens where mail_pending = 1")
        .execute(&mut *conn)
        .await?;
    Ok(forgotten.rows_affected())
}

/// Marks an unused token of one of `purposes` used and returns it; single use is atomic because
/// the check and the write are one statement. Expiry is the caller's to judge (an expired token
/// gets its own error message), and the caller rolls back if it refuses the token.
pub async fn consume_token(
    executor: impl SqliteExecutor<'_>,
    digest: &TokenDigest,
    purposes: (TokenPurpose, TokenPurpose),
    user_id: Option<UserId>,
    now: Timestamp,
) -> sqlx::Result<Option<ConsumedToken>> {
    let digest = digest.as_bytes();
    let (first, second) = (purposes.0.as_str(), purposes.1.as_str());
    let user_id = user_id.map(|id| id.to_string());
    let now = now.unix();
    let row = sqlx::query!(
        r#"update one_time_tokens set used_at = ?1
           where digest = ?2 and used_at is null and purpose in (?3, ?4) and (?5 is null or user_id = ?5)
           returning user_id as "user_id!: String", purpose as "purpose!: String", new_email, expires_at as "expires_at!: i64", password_hash"#,
        now,
        digest,
        first,
        second,
        user_id
    )
    .fetch_optional(executor)
    .await?;
    row.map(|r| {
        Ok(ConsumedToken {
            user_id: super::decode_user_id(&r.user_id)?,
            purpose: TokenPurpose::parse(&r.purpose)
                .ok_or_else(|| sqlx::Error::Decode("unknown token purpose".into()))?,
            new_email: r.new_email,
            expires_at: Timestamp::from_unix(r.expires_at),
            password_hash: r.password_hash.map(PasswordHash::from_phc),
        })
    })
    .transpose()
}

pub async fn delete_user_tokens(
    executor: impl SqliteExecutor<'_>,
    user_id: UserId,
    purpose: TokenPurpose,
) -> sqlx::Result<()> {
    let user_id = user_id.to_string();
    let purpose = purpose.as_str();
    sqlx::query!(
        "delete from one_time_tokens where user_id = ? and purpose = ?",
        user_id,
        purpose
    )
    .execute(executor)
    .await?;
    Ok(())
}
