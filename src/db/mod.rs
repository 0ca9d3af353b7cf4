//! The store: every SQL statement lives under this module, behind plain async functions.

pub mod audit_log;
pub mod console_sessions;
pub mod factors;
pub mod one_time_tokens;
pub mod refresh_tokens;
pub mod sessions;
pub mod throttles;
pub mod users;

use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::config::DatabaseSettings;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Opens (creating if missing) the SQLite file: WAL so readers never wait for the writer,
/// a busy timeout so concurrent writers queue instead of failing, foreign keys on.
pub async fn connect_pool(settings: &DatabaseSettings) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = settings.path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(&settings.path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // Scans (searches, counts) read pages straight from the OS cache instead of copying them
        // through SQLite's small per-connection cache.
        .pragma("mmap_size", "268435456");
    SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await
}

/// Turns a unique-constraint violation into a typed outcome (rw's `on_constraint`, for SQLite,
/// whose driver reports the kind but no constraint name).
pub trait UniqueViolationExt<T> {
    fn on_unique_violation<E>(self, f: impl FnOnce() -> E) -> Result<Result<T, E>, sqlx::Error>;
}

impl<T> UniqueViolationExt<T> for Result<T, sqlx::Error> {
    fn on_unique_violation<E>(self, f: impl FnOnce() -> E) -> Result<Result<T, E>, sqlx::Error> {
        match self {
            Ok(v) => Ok(Ok(v)),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => Ok(Err(f())),
            Err(e) => Err(e),
        }
    }
}

/// Escapes `%`, `_` and `\` for a `like … escape '\'` pattern (GoTrue forgot to, spec §10.11).
pub fn like_contains(needle: &str) -> String {
    let mut pattern = String::with_capacity(needle.len() + 2);
    pattern.push('%');
    for c in needle.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// `prefix%` for a `like … escape '\'` pattern, with the prefix's own wildcards escaped.
pub fn like_prefix(prefix: &str) -> String {
    let mut pattern = like_contains(prefix);
    pattern.remove(0);
    pattern
}

/// Starts a write transaction. `begin immediate` takes the write lock up front: a deferred
/// transaction that reads first cannot upgrade once another writer has committed in WAL mode
/// (SQLITE_BUSY_SNAPSHOT, which no busy timeout retries), so concurrent refreshes would fail.
pub async fn begin_write(
    pool: &SqlitePool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("begin immediate").await
}
