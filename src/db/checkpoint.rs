//! WAL checkpoints off the write path.
//!
//! SQLite checkpoints by default inside the `commit` that takes the WAL past 1,000 pages
//! (`wal_autocheckpoint`): that commit writes the pages back to the database file and syncs
//! the WAL and the file twice (4–5 ms on the build machine, measured with strace), all while
//! its caller still holds the process's write gate (`db::begin_write`), so every writer queued
//! behind it waits as long. Under a steady stream of refreshes that happened every few dozen
//! commits and set the refresh grant's p99 (BENCHMARKS.md). Here one dedicated connection
//! checkpoints instead, `PASSIVE` (it never waits for a writer or a reader, and a writer never
//! waits for it: WAL appends go on while it copies), every `CHECKPOINT_EVERY`.
//!
//! Durability is unchanged: with `synchronous = NORMAL` a commit was never synced by itself;
//! the checkpoint's syncs are what they were, only on another thread. A server that stops
//! leaves nothing behind: the last connection to close checkpoints and removes the WAL.

use std::time::Duration;

use sqlx::{Connection, SqliteConnection, SqlitePool};

/// How often the background connection checkpoints (milliseconds between passes). At the
/// highest write rate measured (~2,000 refreshes/s, ~15 pages each) the WAL then holds at most
/// a few thousand frames, so readers' WAL look-ups stay short.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// `wal_autocheckpoint` of every pool connection, in pages (4 KiB each): a safety net that
/// lets a commit checkpoint only when the background connection has fallen this far behind
/// (stuck, or a command-line process running without it). SQLite's default is 1,000.
pub const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Checkpoints the pool's database every `CHECKPOINT_EVERY` on a connection of its own (a
/// pool connection would hold a slot a request needs). Runs until aborted; a failing
/// connection is reopened at the next pass, and a failed pass is retried at the next one
/// (meanwhile `WAL_AUTOCHECKPOINT_PAGES` bounds the WAL).
pub async fn checkpoint_in_background(pool: SqlitePool) {
    let options = pool.connect_options();
    let mut ticks = tokio::time::interval(CHECKPOINT_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<SqliteConnection> = None;
    // A failure is logged when it starts and when it ends, not ten times a second.
    let mut failing = false;
    loop {
        ticks.tick().await;
        let passed = match conn.as_mut() {
            Some(c) => pass(c).await,
            None => match SqliteConnection::connect_with(&options).await {
                Ok(c) => pass(conn.insert(c)).await,
                Err(e) => Err(e),
            },
        };
        match passed {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("checkpointing the WAL works again");
            }
            Ok(()) => {}
            Err(e) => {
                if !failing {
                    failing = true;
                    tracing::warn!(error = %e, "checkpointing the WAL failed; retrying every pass on a new connection (commits checkpoint past WAL_AUTOCHECKPOINT_PAGES meanwhile)");
                }
                if let Some(c) = conn.take() {
                    let _ = c.close().await;
                }
            }
        }
    }
}

/// One `PASSIVE` checkpoint. It answers (busy, frames in the WAL, frames checkpointed); a pass
/// with nothing new to copy does no I/O.
async fn pass(conn: &mut SqliteConnection) -> sqlx::Result<()> {
    sqlx::query("pragma wal_checkpoint(passive)")
        .fetch_one(conn)
        .await
        .map(|_| ())
}
