//! Noticing the commits of other processes (the command line, a sqlite3 shell), so that
//! `services::auth_cache` never answers rows they changed.

use std::sync::Arc;

use sqlx::{Connection, SqliteConnection, SqlitePool};

use super::WriteEpoch;
use crate::store::OTHER_WRITERS_POLL;

/// Bumps `epoch` whenever another connection (another process: `chipflap sessions end`, a
/// sqlite3 shell) has committed to the database, asking `PRAGMA data_version` on one dedicated
/// connection every `OTHER_WRITERS_POLL`. Runs until aborted; a failing connection is reopened
/// (and the epoch bumped, since changes may have been missed).
pub async fn watch_other_writers(pool: SqlitePool, epoch: Arc<WriteEpoch>) {
    let options = pool.connect_options();
    let mut ticks = tokio::time::interval(OTHER_WRITERS_POLL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<SqliteConnection> = None;
    let mut seen: Option<i64> = None;
    loop {
        ticks.tick().await;
        if conn.is_none() {
            match SqliteConnection::connect_with(&options).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the connection that watches for other writers");
                    epoch.bump();
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        match sqlx::query_scalar::<_, i64>("pragma data_version")
            .fetch_one(&mut *c)
            .await
        {
            Ok(version) => {
                // The first reading too: changes made before it may not have been seen.
                if seen != Some(version) {
                    epoch.bump();
                    seen = Some(version);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "asking the database for other writers failed");
                epoch.bump();
                conn = None;
                seen = None;
            }
        }
    }
}
