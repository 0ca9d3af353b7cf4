//! The store seam (`docs/store.md`): services reach the database only through the handles
//! here, which implement the store traits of `chipflap_domain::store` and send each call to the
//! backend that `DATABASE_URL` chose at start. The handles name no driver in their methods.
//!
//! - [`Store::read`]: a pooled connection for reads (a WAL reader on SQLite; it never waits for
//!   a writer).
//! - [`Store::begin_write`]: a write transaction ([`WriteTx`]); dropped without `commit`, it
//!   rolls back.
//! - [`Store::writer`]: a connection for one or a few autocommit writes ([`Writer`]), or a
//!   transaction begun on it ([`Writer::begin`]).
//!
//! On SQLite the last two first take this process's write gate (`db::WriteEpoch`): at most one
//! connection asks SQLite for the write lock at a time.

use std::sync::Arc;

use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::config::DatabaseBackend;
pub use crate::db::WriteEpoch;
use crate::domain::mfa::{Assurance, Factor};
use crate::domain::one_time_token::{TokenDigest, TokenPurpose};
use crate::domain::password::PasswordHash;
use crate::domain::session::{EndReason, Session};
pub use crate::domain::store::*;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};

/// The database this process serves from, with what each backend needs to write safely.
#[derive(Clone)]
pub enum Store {
    /// A SQLite file (`sqlite://…`): its pool, and this process's write gate and epoch.
    Sqlite {
        pool: sqlx::SqlitePool,
        epoch: Arc<crate::store::WriteEpoch>,
    },
}

impl Store {
    /// A SQLite store on `pool`, writing under `epoch`'s gate.
    pub fn sqlite(pool: sqlx::SqlitePool, epoch: Arc<crate::store::WriteEpoch>) -> Self {
        Store::Sqlite { pool, epoch }
    }

    /// A pooled connection for reads. Errors: `Busy` when none frees up within the pool's
    /// acquire timeout.
    pub async fn read(&self) -> Result<ReadConn, StoreError> {
        match self {
            Store::Sqlite { pool, .. } => {
                Ok(ReadConn::Sqlite(pool.acquire().await.map_err(store_error)?))
            }
        }
    }

    /// Opens the store `settings` name and brings its schema up to date (migrations, and on
    /// SQLite the mailbox keys of rows older than them). Errors: the database cannot be opened
    /// or migrated; the message names it.
    pub async fn open(
        settings: &crate::config::DatabaseSettings,
        epoch: Arc<crate::store::WriteEpoch>,
    ) -> anyhow::Result<Store> {
        use anyhow::Context;
        let what = settings.describe();
        match &settings.backend {
            DatabaseBackend::Sqlite(path) => {
                let pool = crate::db::connect_pool(path)
                    .await
                    .with_context(|| format!("opening the database {what}"))?;
                crate::db::migrate(&pool).await?;
                Ok(Store::sqlite(pool, epoch))
            }
            DatabaseBackend::Postgres(_) => {
                anyhow::bail!("opening the database {what}: PostgreSQL is not wired in yet")
            }
        }
    }

    /// Starts what the store needs while a server runs; abort the tasks when it stops.
    /// SQLite: the watcher of other processes' commits (`watch_other_writers`) and the WAL
    /// checkpointer (`db::checkpoint`).
    pub fn spawn_maintenance(
        &self,
        epoch: Arc<crate::store::WriteEpoch>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        match self {
            Store::Sqlite { pool, .. } => vec![
                tokio::spawn(self.clone().watch_other_writers(epoch)),
                tokio::spawn(crate::db::checkpoint::checkpoint_in_background(
                    pool.clone(),
                )),
            ],
        }
    }

    /// Moves `epoch` whenever another process commits to this database, until aborted
    /// (SQLite: `db::other_writers`, polling `PRAGMA data_version` every `OTHER_WRITERS_POLL`).
    pub async fn watch_other_writers(self, epoch: Arc<crate::store::WriteEpoch>) {
        match self {
            Store::Sqlite { pool, .. } => {
                crate::db::other_writers::watch_other_writers(pool, epoch).await;
            }
        }
    }

    /// The SQLite pool when this store is SQLite: for SQLite-only tools and the tests that
    /// check rows directly.
    pub fn sqlite_pool(&self) -> Option<&sqlx::SqlitePool> {
        match self {
            Store::Sqlite { pool, .. } => Some(pool),
        }
    }

    /// A handle whose every call runs on a connection taken from the pool for that call alone,
    /// as a read outside any transaction (what passing the pool to a query does).
    pub fn pool(&self) -> Pool<'_> {
        Pool(self)
    }

    /// A write transaction. On SQLite it waits for the write gate, then `begin immediate`
    /// (`db::begin_write`); its `commit` moves the write epoch. Errors: `Busy` after
    /// `db::WRITE_GATE_TIMEOUT` in line, or the driver's.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        match self {
            Store::Sqlite { pool, epoch } => Ok(WriteTx::Sqlite(
                crate::db::begin_write(pool, epoch)
                    .await
                    .map_err(store_error)?,
            )),
        }
    }

    /// A connection for autocommit writes. On SQLite it holds the write gate (`db::writer`);
    /// the caller moves the epoch itself after writing a table the auth rules read. Errors as
    /// `begin_write`.
    pub async fn writer(&self) -> Result<Writer, StoreError> {
        match self {
            Store::Sqlite { pool, epoch } => Ok(Writer::Sqlite(
                crate::db::writer(pool, epoch).await.map_err(store_error)?,
            )),
        }
    }
}

/// How often each node asks the database whether another process (the command line, a
/// sqlite3 shell, another node) changed it: such a change reaches `services::auth_cache` within
/// this long.
pub const OTHER_WRITERS_POLL: std::time::Duration = std::time::Duration::from_millis(100);

/// Maps a driver error onto the store's: a unique violation is `Conflict`, a pool or write
/// gate timeout and SQLite's `SQLITE_BUSY` are `Busy`, anything else is kept as `Other`.
pub fn store_error(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict {
            constraint: db
                .constraint()
                .map_or_else(|| db.message().to_owned(), str::to_owned),
        },
        // SQLITE_BUSY (5) and its extended codes (… + 256 × n).
        sqlx::Error::Database(db)
            if db
                .code()
                .and_then(|c| c.parse::<i32>().ok())
                .is_some_and(|c| c & 0xff == 5) =>
        {
            StoreError::Busy
        }
        sqlx::Error::PoolTimedOut => StoreError::Busy,
        e => StoreError::Other(Box::new(e)),
    }
}

/// A borrowed connection of some backend: what every handle lends for one call, and what a
/// service helper that runs inside its caller's transaction takes (`&mut Conn<'_>`).
pub enum Conn<'c> {
    Sqlite(&'c mut SqliteConnection),
}

/// A pooled connection for reads, from [`Store::read`].
pub enum ReadConn {
    Sqlite(sqlx::pool::PoolConnection<sqlx::Sqlite>),
}

impl ReadConn {
    /// This connection, for one call or a helper.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            ReadConn::Sqlite(c) => Conn::Sqlite(c),
        }
    }
}

/// From [`Store::pool`]: each call takes a pooled connection for itself. Errors: `Busy` when
/// none frees up in time, then the call's own.
#[derive(Clone, Copy)]
pub struct Pool<'s>(&'s Store);

/// A write transaction from [`Store::begin_write`]; dropped without `commit`, it rolls back.
pub enum WriteTx {
    Sqlite(crate::db::WriteTx),
}

impl WriteTx {
    /// This transaction's connection, for one call or a helper.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            WriteTx::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    /// Commits (and moves the write epoch on SQLite, even when the commit reports an error:
    /// it may still have landed).
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx) => tx.commit().await.map_err(store_error),
        }
    }

    /// Rolls back; nothing changed.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            WriteTx::Sqlite(tx) => tx.rollback().await.map_err(store_error),
        }
    }
}

/// A connection for autocommit writes, from [`Store::writer`].
pub enum Writer {
    Sqlite(crate::db::Writer),
}

impl Writer {
    /// This connection, for one call or a helper.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            Writer::Sqlite(w) => Conn::Sqlite(w),
        }
    }

    /// A write transaction on this connection (on SQLite the gate still held, `begin
    /// immediate`); its `commit` moves the epoch. Dropped without `commit`, it rolls back.
    pub async fn begin(&mut self) -> Result<WriterTx<'_>, StoreError> {
        match self {
            Writer::Sqlite(w) => Ok(WriterTx::Sqlite(w.begin().await.map_err(store_error)?)),
        }
    }

    /// The refresh grant's rotation in one round trip, applied only while the token's user and
    /// session rows keep the versions `seen` and the token is neither rotated nor revoked:
    /// mark it rotated, store `successor`, touch the session, append `audit`. True when
    /// applied; false, having written nothing, otherwise (the caller decides again on the rows
    /// as they are). Call it with no transaction open. SQLite: one statement list in its own
    /// transaction (`db::refresh_tokens::rotate_in_own_transaction`).
    #[allow(clippy::too_many_arguments, reason = "one rotation's inputs")]
    pub async fn rotate_if_unchanged(
        &mut self,
        id: i64,
        successor: &TokenDigest,
        user_id: UserId,
        session_id: Uuid,
        seen: OwnerVersions,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        match self {
            Writer::Sqlite(w) => crate::db::refresh_tokens::rotate_in_own_transaction(
                w, id, successor, user_id, session_id, seen, audit, now,
            )
            .await
            .map_err(store_error),
        }
    }
}

/// A write transaction begun on a [`Writer`]; dropped without `commit`, it rolls back.
pub enum WriterTx<'w> {
    Sqlite(crate::db::WriterTx<'w>),
}

impl WriterTx<'_> {
    /// This transaction's connection, for one call or a helper.
    pub fn conn(&mut self) -> Conn<'_> {
        match self {
            WriterTx::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    /// Commits, then moves the epoch (as [`WriteTx::commit`]).
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            WriterTx::Sqlite(tx) => tx.commit().await.map_err(store_error),
        }
    }
}

/// Implements each store trait for [`Conn`] by sending the call to the backend's function of
/// the same name (`db::<module>::<name>` for SQLite), and for every handle by lending its
/// connection. The compiler checks each method against its trait.
macro_rules! dispatch {
    ($($trait:ident { $($module:ident :: $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ;)* })*) => {
        $(
            impl $trait for Conn<'_> {
                $(
                    async fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                        match self {
                            Conn::Sqlite(c) => crate::db::$module::$name(&mut **c, $($arg),*)
                                .await
                                .map_err(store_error),
                        }
                    }
                )*
            }
            dispatch!(@handle ReadConn, $trait { $($name ( $($arg : $ty),* ) -> $ret;)* });
            dispatch!(@handle WriteTx, $trait { $($name ( $($arg : $ty),* ) -> $ret;)* });
            dispatch!(@handle Writer, $trait { $($name ( $($arg : $ty),* ) -> $ret;)* });
            dispatch!(@handle WriterTx<'_>, $trait { $($name ( $($arg : $ty),* ) -> $ret;)* });
            impl $trait for Pool<'_> {
                $(
                    async fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                        self.0.read().await?.$name($($arg),*).await
                    }
                )*
            }
        )*
    };
    (@handle $handle:ty, $trait:ident { $($name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ;)* }) => {
        impl $trait for $handle {
            $(
                async fn $name(&mut self, $($arg: $ty),*) -> Result<$ret, StoreError> {
                    self.conn().$name($($arg),*).await
                }
            )*
        }
    };
}

dispatch! {
    Users {
        users::insert_user(user: &User) -> ();
        users::update_user(user: &User) -> ();
        users::record_sign_in(id: UserId, now: Timestamp) -> ();
        users::upgrade_password_hash(id: UserId, old: &PasswordHash, new: &PasswordHash) -> bool;
        users::set_confirmation_sent_at(id: UserId, at: Option<Timestamp>) -> ();
        users::set_recovery_sent_at(id: UserId, at: Option<Timestamp>) -> ();
        users::find_user_by_id(id: UserId) -> Option<User>;
        users::find_user_by_email(aud: &str, email: &str) -> Option<User>;
        users::delete_user(id: UserId) -> bool;
        users::list_users(q: &UserListQuery<'_>, count_cap: Option<i64>) -> UserListPage;
        users::count_by_audience() -> Vec<(String, i64)>;
    }
    Sessions {
        sessions::insert_session(id: Uuid, user_id: UserId, now: Timestamp) -> ();
        sessions::find_session(id: Uuid) -> Option<Session>;
        sessions::end_session(id: Uuid, reason: EndReason, now: Timestamp) -> bool;
        sessions::end_user_sessions(user_id: UserId, keep: Option<Uuid>, reason: EndReason, now: Timestamp) -> u64;
        sessions::list_live_sessions(user_id: UserId) -> Vec<Session>;
        sessions::end_every_session(reason: EndReason, now: Timestamp) -> u64;
        sessions::count_unended_sessions() -> i64;
        sessions::find_refresh_token_with_owner(digest: &TokenDigest) -> Option<RefreshTokenWithOwner>;
        refresh_tokens::insert_refresh_token(digest: &TokenDigest, user_id: UserId, session_id: Uuid, parent_id: Option<i64>, now: Timestamp) -> i64;
        refresh_tokens::find_refresh_token(digest: &TokenDigest) -> Option<RefreshTokenRecord>;
        refresh_tokens::rotate_refresh_token(id: i64, successor: &TokenDigest, user_id: UserId, session_id: Uuid, audit: &AuditEntry, now: Timestamp) -> bool;
    }
    OneTimeTokens {
        one_time_tokens::add_confirmation_token(user_id: UserId, digest: &TokenDigest, hash: Option<&PasswordHash>, now: Timestamp, expires_at: Timestamp, keep: i64) -> ();
        one_time_tokens::mark_token_mailed(digest: &TokenDigest) -> ();
        one_time_tokens::count_user_tokens(user_id: UserId, purpose: TokenPurpose) -> i64;
        one_time_tokens::delete_token(digest: &TokenDigest) -> ();
        one_time_tokens::find_token_user(digest: &TokenDigest, purposes: (TokenPurpose, TokenPurpose)) -> Option<UserId>;
        one_time_tokens::replace_token(user_id: UserId, purpose: TokenPurpose, digest: &TokenDigest, new_email: Option<&str>, now: Timestamp, expires_at: Timestamp) -> ();
        one_time_tokens::mark_mailed(user_id: UserId, purpose: TokenPurpose) -> ();
        one_time_tokens::forget_links_never_mailed() -> u64;
        one_time_tokens::consume_token(digest: &TokenDigest, purposes: (TokenPurpose, TokenPurpose), user_id: Option<UserId>, now: Timestamp) -> Option<ConsumedToken>;
        one_time_tokens::delete_user_tokens(user_id: UserId, purpose: TokenPurpose) -> ();
    }
    Factors {
        factors::insert_factor(factor: &Factor, sealed_secret: &[u8]) -> ();
        factors::list_factors(user_id: UserId) -> Vec<Factor>;
        factors::find_factor(user_id: UserId, id: Uuid) -> Option<(Factor, Vec<u8>)>;
        factors::has_verified_factor(user_id: UserId) -> bool;
        factors::use_factor_step(id: Uuid, step: i64, now: Timestamp) -> bool;
        factors::delete_factor(id: Uuid) -> bool;
        factors::delete_unverified_factors(user_id: UserId) -> ();
        factors::delete_expired_factors(user_id: UserId, before: Timestamp) -> ();
        factors::insert_challenge(challenge: &Challenge, expired_before: Timestamp) -> ();
        factors::find_challenge(id: Uuid) -> Option<Challenge>;
        factors::verify_challenge(id: Uuid, now: Timestamp) -> bool;
        factors::session_assurance(session_id: Uuid) -> Option<Assurance>;
        factors::set_sign_in_method(session_id: Uuid, method: &str) -> ();
        factors::raise_session_to_aal2(session_id: Uuid, factor_id: Uuid, now: Timestamp) -> ();
        factors::downgrade_sessions_of_factor(factor_id: Uuid, now: Timestamp) -> ();
        factors::insert_console_mfa_login(digest: &[u8], user_id: UserId, now: Timestamp) -> ();
        factors::find_console_mfa_login(digest: &[u8], not_before: Timestamp) -> Option<UserId>;
        factors::delete_console_mfa_login(digest: &[u8], expired_before: Timestamp) -> ();
    }
    AuditLog {
        audit_log::append_audit_entry(entry: &AuditEntry) -> ();
        audit_log::append_audit_entries(entries: &[AuditEntry]) -> ();
        audit_log::list_audit_entries(filter: &AuditFilter, limit: i64, offset: i64) -> Vec<AuditEntry>;
        audit_log::count_audit_entries(filter: &AuditFilter) -> i64;
    }
    Throttles {
        throttles::take_throttle(key: &str, now_ms: i64, emission_ms: i64, limit_ms: i64) -> Option<i64>;
        throttles::find_throttle(key: &str) -> Option<i64>;
        throttles::refund_throttle(key: &str, emission_ms: i64) -> ();
        throttles::delete_throttle(key: &str) -> bool;
        throttles::delete_expired_throttles(now_ms: i64, batch: i64) -> u64;
        throttles::list_limited_throttles(prefix: &str, threshold_ms: i64, max: i64) -> Vec<LimitedKey>;
    }
    ConsoleSessions {
        console_sessions::insert_console_session(digest: &TokenDigest, user_id: UserId, now: Timestamp) -> ();
        console_sessions::find_console_session(digest: &TokenDigest) -> Option<ConsoleSessionRecord>;
        console_sessions::touch_console_session(digest: &TokenDigest, now: Timestamp) -> ();
        console_sessions::delete_console_session(digest: &TokenDigest) -> ();
        console_sessions::delete_user_console_sessions(user_id: UserId) -> ();
        console_sessions::delete_console_sessions_except(keep: Option<&TokenDigest>) -> u64;
    }
}
