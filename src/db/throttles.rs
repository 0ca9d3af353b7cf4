//! The `throttles` table: GCRA state (one theoretical arrival time per key), updated atomically.

pub use crate::domain::store::LimitedKey;
use sqlx::SqliteExecutor;

/// One GCRA step for `key`, atomic in one statement: with `tat = max(stored, now)`, the request
/// conforms when `tat + emission - now <= limit` (`limit` = burst × emission, all in ms); then
/// `tat + emission` is stored. Answers the new TAT when allowed, `None` when refused (nothing
/// is written then, so refused requests never extend the wait).
pub async fn take_throttle(
    executor: impl SqliteExecutor<'_>,
    key: &str,
    now_ms: i64,
    emission_ms: i64,
    limit_ms: i64,
) -> sqlx::Result<Option<i64>> {
    let first = now_ms + emission_ms;
    // `case` instead of max()/greatest(): SQLite has only the first, PostgreSQL only the second.
    sqlx::query_scalar!(
        r#"insert into throttles (key, tat_ms) values (?1, ?2)
           on conflict (key) do update
              set tat_ms = (case when throttles.tat_ms > ?3 then throttles.tat_ms else ?3 end) + ?4
            where (case when throttles.tat_ms > ?3 then throttles.tat_ms else ?3 end) + ?4 - ?3 <= ?5
           returning tat_ms"#,
        key,
        first,
        now_ms,
        emission_ms,
        limit_ms
    )
    .fetch_optional(executor)
    .await
}

/// The stored TAT of `key`, if any (to tell a refused caller when to come back).
pub async fn find_throttle(
    executor: impl SqliteExecutor<'_>,
    key: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("select tat_ms from throttles where key = ?", key)
        .fetch_optional(executor)
        .await
}

/// Gives back one emission interval (a request that turned out legitimate). A TAT that falls
/// into the past is the same as no state at all.
pub async fn refund_throttle(
    executor: impl SqliteExecutor<'_>,
    key: &str,
    emission_ms: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "update throttles set tat_ms = tat_ms - ? where key = ?",
        emission_ms,
        key
    )
    .execute(executor)
    .await?;
    Ok(())
}

/// Forgets `key` entirely (an admin cleared it). Answers whether there was a row.
pub async fn delete_throttle(executor: impl SqliteExecutor<'_>, key: &str) -> sqlx::Result<bool> {
    let done = sqlx::query!("delete from throttles where key = ?", key)
        .execute(executor)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes up to `batch` rows whose TAT has passed (they hold no state).
pub async fn delete_expired_throttles(
    executor: impl SqliteExecutor<'_>,
    now_ms: i64,
    batch: i64,
) -> sqlx::Result<u64> {
    let done = sqlx::query!(
        "delete from throttles where key in (select key from throttles where tat_ms <= ? limit ?)",
        now_ms,
        batch
    )
    .execute(executor)
    .await?;
    Ok(done.rows_affected())
}

/// Keys starting with `prefix` whose TAT is beyond `threshold_ms` (= now + limit − emission:
/// one more request would not conform), soonest-free last, at most `max` of them.
pub async fn list_limited_throttles(
    executor: impl SqliteExecutor<'_>,
    prefix: &str,
    threshold_ms: i64,
    max: i64,
) -> sqlx::Result<Vec<LimitedKey>> {
    let pattern = super::like_prefix(prefix);
    let rows = sqlx::query!(
        r#"select key as "key!", tat_ms from throttles
            where key like ? escape '\' and tat_ms > ?
            order by tat_ms desc limit ?"#,
        pattern,
        threshold_ms,
        max
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LimitedKey {
            key: r.key,
            tat_ms: r.tat_ms,
        })
        .collect())
}
