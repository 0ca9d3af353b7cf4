//! The store: every SQL statement lives under this module, behind plain async functions.

pub mod audit_log;
pub mod checkpoint;
pub mod console_sessions;
pub mod factors;
pub mod one_time_tokens;
pub mod other_writers;
pub mod refresh_tokens;
pub mod sessions;
pub mod throttles;
pub mod users;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::domain::user::UserId;

/// A user id read back from a `TEXT` column (hyphenated UUID); anything else is a decode error,
/// since only chipflap writes these columns.
pub(crate) fn decode_user_id(s: &str) -> sqlx::Result<UserId> {
    UserId::parse(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();

/// Why the store could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("applying database migrations: {0}")]
    Migrations(#[from] sqlx::migrate::MigrateError),
    #[error("computing mailbox keys of existing accounts: {0}")]
    Backfill(#[source] sqlx::Error),
    /// Accounts that now share a mailbox: the report says which and what to do.
    #[error("{}", collision_report(.0))]
    MailboxCollisions(Vec<users::MailboxCollision>),
}

/// Applies the SQL migrations, then the steps SQL cannot do (the mailbox keys of rows written
/// before migration `20261130000006`). Run at every start and by `chipflap migrate`.
pub async fn migrate(pool: &SqlitePool) -> Result<(), MigrateError> {
    MIGRATOR.run(pool).await?;
    match users::backfill_email_keys(pool)
        .await
        .map_err(MigrateError::Backfill)?
    {
        Ok(0) => Ok(()),
        Ok(keyed) => {
            tracing::info!(
                accounts = keyed,
                "stored the mailbox key of existing accounts"
            );
            Ok(())
        }
        Err(collisions) => Err(MigrateError::MailboxCollisions(collisions)),
    }
}

fn collision_report(collisions: &[users::MailboxCollision]) -> String {
    use std::fmt::Write;
    let mut out = format!(
        "{} group(s) of accounts share one mailbox now that addresses are compared under Unicode \
         case folding and normalization (ASCII only before); chipflap keeps one account per \
         mailbox and audience and never merges accounts, so nothing was changed and the server \
         did not start.\n",
        collisions.len()
    );
    for c in collisions {
        let _ = writeln!(
            out,
            "  audience {:?}, mailbox key {:?}:",
            c.aud, c.email_key
        );
        for (id, email) in &c.accounts {
            let _ = writeln!(out, "    id {id}  email {email:?}");
        }
    }
    out.push_str(
        "To resolve: in each group keep one account and give the others a different address \
         or delete them, with the sqlite3 shell on the database file while chipflap is stopped, \
         e.g. `update users set email = 'other@example.org' where id = '<id>';` or \
         `delete from users where id = '<id>';`. Then start chipflap (or run `chipflap migrate`) \
         again.",
    );
    out
}

/// Opens (creating if missing) the SQLite file: WAL so readers never wait for the writer,
/// a busy timeout so concurrent writers queue instead of failing, foreign keys on.
pub async fn connect_pool(path: &std::path::Path) -> Result<SqlitePool, sqlx::Error> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(10))
        .foreign_keys(true)
        // `checkpoint::checkpoint_in_background` checkpoints; a commit does only when it falls
        // far behind.
        .pragma(
            "wal_autocheckpoint",
            checkpoint::WAL_AUTOCHECKPOINT_PAGES.to_string(),
        )
        // No memory-mapped reads. Once any connection has written, SQLite unmaps and maps the
        // file again at the next read transaction of every other connection (strace: an munmap,
        // an fstat and an mmap per request under refreshes), and each munmap stops every core
        // to flush its TLB. Without it, chained refreshes ran 12–19% faster (1,550 → 1,750 and
        // 1,700 → 2,030 /s, BENCHMARKS.md); reads copy pages through the page cache instead.
        .pragma("mmap_size", "0");
    SqlitePoolOptions::new()
        .max_connections(pool_size())
        // sqlx pings a connection before lending it by default: for SQLite that is a round
        // trip to the connection's thread on every acquire, guarding against a broken network
        // link that a local file does not have (a failed query reports the error anyway).
        .test_before_acquire(false)
        // Each connection runs its statements on a thread of its own; a request waits on it
        // while the write gate is held (`scheduling`).
        .after_connect(|_conn, _meta| {
            Box::pin(async {
                crate::scheduling::prefer_short_slices_for_threads_named("sqlx-sqlite-wor");
                Ok(())
            })
        })
        .connect_with(options)
        .await
}

/// Connections in the pool: `POOL_CONNECTIONS_PER_CORE` per core, at least `POOL_MIN_CONNECTIONS`
/// and at most `POOL_MAX_CONNECTIONS` (8 on 2 cores, 64 on 16). In WAL mode readers never wait
/// for the writer, but every query waits for a free connection, and SQLite runs each
/// connection's statements on its own thread: enough connections that reads keep every core busy
/// while writers hold some (a writer waiting for the write lock holds its connection meanwhile).
/// On 2 cores wrk showed no difference between 8, 16, 32 and 64 for the Ably endpoint and
/// `GET /user` (within noise), so the size only grows with cores. Each connection keeps its
/// prepared statements (sqlx's `statement_cache_capacity`, 100 by default, above the ~85
/// statements chipflap prepares), so no request parses its SQL again.
pub fn pool_size() -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    u32::try_from(cores)
        .unwrap_or(u32::MAX)
        .saturating_mul(POOL_CONNECTIONS_PER_CORE)
        .clamp(POOL_MIN_CONNECTIONS, POOL_MAX_CONNECTIONS)
}

/// See `pool_size`.
pub const POOL_CONNECTIONS_PER_CORE: u32 = 4;
/// See `pool_size`.
pub const POOL_MIN_CONNECTIONS: u32 = 8;
/// See `pool_size`: past this, more threads cost more than the waits they save.
pub const POOL_MAX_CONNECTIONS: u32 = 64;

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

/// Starts a write transaction. It first waits for this process's write gate
/// (`WriteEpoch::enter`), then `begin immediate` takes SQLite's write lock up front: a deferred
/// transaction that reads first cannot upgrade once another writer has committed in WAL mode
/// (SQLITE_BUSY_SNAPSHOT, which no busy timeout retries), so concurrent refreshes would fail.
/// Its `commit` bumps `epoch` (`AppState::write_epoch`), which invalidates `services::auth_cache`.
/// Errors: the driver's, or `sqlx::Error::PoolTimedOut` after `WRITE_GATE_TIMEOUT` in line.
pub async fn begin_write(pool: &SqlitePool, epoch: &Arc<WriteEpoch>) -> sqlx::Result<WriteTx> {
    let gate = epoch.enter().await?;
    Ok(WriteTx {
        tx: pool.begin_with("begin immediate").await?,
        epoch: epoch.clone(),
        _gate: gate,
    })
}

/// A pooled connection held with the write gate, for one or a few autocommit writes that need
/// no transaction. The caller bumps the epoch itself after writing a table the auth rules read
/// (users, sessions, refresh tokens, factors). Errors as `begin_write`.
pub async fn writer(pool: &SqlitePool, epoch: &Arc<WriteEpoch>) -> sqlx::Result<Writer> {
    let gate = epoch.enter().await?;
    Ok(Writer {
        conn: pool.acquire().await?,
        epoch: epoch.clone(),
        list_in_flight: false,
        _gate: gate,
    })
}

/// A connection from `writer`: use it as the connection (`&mut *writer`).
pub struct Writer {
    conn: sqlx::pool::PoolConnection<sqlx::Sqlite>,
    epoch: Arc<WriteEpoch>,
    /// A statement list that opens its own transaction was sent and its outcome not yet seen
    /// (`send_list`): if the caller is cancelled meanwhile, the list may have stopped inside its
    /// transaction (sqlx stops a list whose receiver went away), so `Drop` closes the
    /// connection instead of returning it to the pool.
    list_in_flight: bool,
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        if self.list_in_flight {
            self.conn.close_on_drop();
        }
    }
}

impl Writer {
    /// Runs `list`, a statement list that opens and commits its own transaction, on this
    /// connection. If the caller is cancelled before the list's outcome arrives, the connection
    /// is closed rather than returned to the pool (`list_in_flight`); if the list fails, whatever
    /// it left open is rolled back (`end_failed_list`).
    pub async fn send_list<T>(
        &mut self,
        list: impl AsyncFnOnce(&mut sqlx::SqliteConnection) -> sqlx::Result<T>,
    ) -> sqlx::Result<T> {
        self.list_in_flight = true;
        let outcome = list(&mut self.conn).await;
        self.list_in_flight = false;
        if outcome.is_err() {
            self.end_failed_list().await;
        }
        outcome
    }

    /// A write transaction on this connection, the gate still held (`begin immediate`, as
    /// `begin_write`); its `commit` bumps the epoch. Dropping it without `commit` rolls back.
    pub async fn begin(&mut self) -> sqlx::Result<WriterTx<'_>> {
        Ok(WriterTx {
            tx: sqlx::Connection::begin_with(&mut *self.conn, "begin immediate").await?,
            epoch: &self.epoch,
        })
    }

    /// After a statement list that opens its own transaction (`begin immediate; …; commit`)
    /// failed: rolls back whatever it left open, so the connection goes back to the pool with no
    /// transaction. "No transaction is active" (the list failed before its `begin` took, or
    /// after its `commit`) is what a clean connection answers; any other failure closes the
    /// connection instead of returning it.
    async fn end_failed_list(&mut self) {
        match sqlx::query("rollback").execute(&mut *self.conn).await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) if e.message().contains("no transaction is active") => {}
            Err(e) => {
                tracing::warn!(error = %e, "rolling back a failed statement list failed; closing its connection");
                self.conn.close_on_drop();
            }
        }
    }
}

impl std::ops::Deref for Writer {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &Self::Target {
        &self.conn
    }
}

impl std::ops::DerefMut for Writer {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.conn
    }
}

/// A write transaction from `Writer::begin`: use it as the connection (`&mut tx`, `&mut *tx`);
/// dropping it without `commit` rolls back.
pub struct WriterTx<'w> {
    tx: sqlx::Transaction<'w, sqlx::Sqlite>,
    epoch: &'w WriteEpoch,
}

impl WriterTx<'_> {
    /// Commits, then bumps the epoch, as `WriteTx::commit`.
    pub async fn commit(self) -> sqlx::Result<()> {
        let committed = self.tx.commit().await;
        self.epoch.bump();
        committed
    }
}

impl std::ops::Deref for WriterTx<'_> {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriterTx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// A write transaction from `begin_write`: use it as the connection (`&mut tx`, `&mut *tx`);
/// dropping it without `commit` rolls back.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    epoch: Arc<WriteEpoch>,
    /// Released after the commit or rollback (fields drop in order: the transaction first).
    _gate: tokio::sync::OwnedMutexGuard<()>,
}

impl WriteTx {
    /// Commits, then bumps the epoch (even when the commit reports an error: it may still
    /// have landed). Why after and not before, see `WriteEpoch`.
    pub async fn commit(self) -> sqlx::Result<()> {
        let committed = self.tx.commit().await;
        self.epoch.bump();
        committed
    }

    /// Rolls back (nothing changed, so the epoch stays).
    pub async fn rollback(self) -> sqlx::Result<()> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::SqliteConnection;

    fn deref(&self) -> &Self::Target {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.tx
    }
}

/// Every change to one database this process knows of (`AppState::write_epoch`): each
/// `WriteTx::commit`, each autocommit write of the tables the auth rules read (they call `bump`
/// themselves), and each change another connection or process made (`other_writers::watch_other_writers`, which polls
/// `PRAGMA data_version`). `services::auth_cache` answers an entry only when it was read under
/// the current value.
///
/// Why bumping after the commit returns is sound: a reader takes the epoch (E) before it reads
/// the database. If it took E before the bump, it read either the old rows or the new ones, and
/// either way its entry is tagged E, which the bump makes stale before the writer's response is
/// sent; if it took E+1, it started after the commit had returned, so it can only read the new
/// rows. So once a change's response is sent, no entry holding the rows from before it is ever
/// answered again.
///
/// It also holds the write gate: every write of this process waits for it first, in arrival
/// order (tokio's mutex is fair), so at most one of this process's connections asks SQLite
/// for the write lock at a time. Without it, writers that find the lock taken retry through
/// SQLite's busy handler, which sleeps 1, 2, 5, 10 … up to 100 ms between tries whatever the
/// holder does: a refresh waited up to 90 ms behind a few others (p99 under `scripts/bench`).
/// Other processes (the CLI, a second server) still meet the busy timeout.
pub struct WriteEpoch {
    epoch: AtomicU64,
    gate: Arc<tokio::sync::Mutex<()>>,
}

/// The longest a write waits for the gate, as SQLite's busy timeout (`connect_pool`): past it
/// the write fails with `sqlx::Error::PoolTimedOut` instead of waiting for ever.
pub const WRITE_GATE_TIMEOUT: Duration = Duration::from_secs(10);

impl WriteEpoch {
    pub fn new() -> Self {
        WriteEpoch {
            epoch: AtomicU64::new(0),
            gate: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The current value; take it before reading what will be cached.
    pub fn current(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Makes every entry read before now stale.
    pub fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Waits for this process's turn to write (see above). Never call it while holding a
    /// `WriteTx` or `Writer` of the same epoch: that waits for itself until the timeout.
    pub async fn enter(&self) -> sqlx::Result<tokio::sync::OwnedMutexGuard<()>> {
        tokio::time::timeout(WRITE_GATE_TIMEOUT, self.gate.clone().lock_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)
    }
}

impl Default for WriteEpoch {
    fn default() -> Self {
        Self::new()
    }
}
