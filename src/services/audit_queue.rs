//! The audit queue: entries that describe no data change leave the request's critical path and are committed in groups by one writer task.
//!
//! An entry written with the change it describes (a ban, a password change) stays in that
//! change's transaction (`audit::record`). Entries that are the only write of a hot request
//! (`ably_token_issued`, `login_failed`) go through this queue instead: the request waits only
//! for a slot in a bounded channel, and one writer commits everything queued, up to
//! `AUDIT_BATCH_MAX` entries, with one multi-row insert (group commit).
//!
//! Issued Ably tokens are not queued one by one but counted per user and format
//! (`services::ably_issuance_tally`); the same writer commits the counts every `TALLY_PERIOD`.
//!
//! Durability: a clean shutdown (`close`) commits everything queued and counted before the
//! process exits. A `kill -9` (or a power cut) loses what is not yet committed: the entries
//! queued (at most `AUDIT_QUEUE_CAPACITY` + `AUDIT_BATCH_MAX`, in practice the last few
//! milliseconds) and the Ably tokens counted in the current period (at most `TALLY_PERIOD`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Actor;
use super::ably_issuance_tally::{AblyIssuanceTally, Added, Issued, TALLY_PERIOD};
use super::audit::{self, Action};
use crate::domain::timestamp::Timestamp;
use crate::store::AuditEntry;
use crate::store::StoreError;
use crate::store::prelude::*;

/// How many entries may wait for the writer. When it is full, `record` waits for a free slot
/// (backpressure): the queue never drops an entry and never grows. About 0.5 KiB per entry,
/// so at most ~2 MiB.
pub const AUDIT_QUEUE_CAPACITY: usize = 4096;

/// The most entries the writer commits in one transaction (one multi-row insert).
pub const AUDIT_BATCH_MAX: usize = 512;

/// Tries per batch before the writer gives it up (see `write_batch`).
const WRITE_ATTEMPTS: u32 = 5;

/// The wait before the first retry of a failed batch; doubled after each (0.1 + 0.2 + 0.4 +
/// 0.8 s: a batch is given up after about 1.5 s).
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);

const _: () = assert!(AUDIT_BATCH_MAX <= crate::store::MAX_AUDIT_ENTRIES_PER_INSERT);

enum Queued {
    Entry(AuditEntry),
    /// Answered once every entry queued before it is committed (or given up).
    Flush(oneshot::Sender<()>),
}

/// The sending side, cheap to clone (every clone feeds the same writer).
#[derive(Clone)]
pub struct AuditQueue {
    sender: mpsc::Sender<Queued>,
    /// Entries sent after `close` are written here directly.
    store: crate::store::Store,
    closing: CancellationToken,
    writer: TaskTracker,
    batches: Arc<AtomicU64>,
    tally: Arc<AblyIssuanceTally>,
    /// Entries the writer has taken and not yet committed (or given up).
    in_flight: Arc<AtomicU64>,
}

impl AuditQueue {
    /// Starts the writer on the current tokio runtime, with `AUDIT_QUEUE_CAPACITY` slots.
    /// Every write goes through `store`'s writer (on SQLite, past the write gate).
    pub fn start(store: crate::store::Store) -> Self {
        Self::start_with_capacity(store, AUDIT_QUEUE_CAPACITY)
    }

    /// As `start`, with `capacity` slots (at least 1).
    pub fn start_with_capacity(store: crate::store::Store, capacity: usize) -> Self {
        let (sender, receiver) = mpsc::channel(capacity.max(1));
        let queue = AuditQueue {
            sender,
            store: store.clone(),
            closing: CancellationToken::new(),
            writer: TaskTracker::new(),
            batches: Arc::new(AtomicU64::new(0)),
            tally: Arc::new(AblyIssuanceTally::default()),
            in_flight: Arc::new(AtomicU64::new(0)),
        };
        queue.writer.spawn(write_queued(
            Target {
                store,
                in_flight: queue.in_flight.clone(),
            },
            receiver,
            queue.closing.clone(),
            queue.batches.clone(),
            queue.tally.clone(),
        ));
        queue
    }

    /// Queues an entry made now (`now` is its `created_at`, not the time of the write). Waits
    /// only while the queue is full. After `close` the entry is written directly instead, so
    /// nothing is dropped; only that direct write can fail.
    pub async fn record(
        &self,
        actor: &Actor,
        action: Action,
        traits: Value,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.push(audit::entry(actor, action, traits, now)).await
    }

    /// Records one issued Ably token: counted in memory (`ably_issuance_tally`), committed with
    /// its user's other tokens of the period. Waits only when the tally is full and the queue
    /// too; after `close` the token's entry is written directly.
    pub async fn record_ably_token(&self, token: Issued<'_>) -> Result<(), StoreError> {
        match self.tally.add(token) {
            Added::Counted => Ok(()),
            Added::Entry(entry) => self.push(entry).await,
        }
    }

    /// Queues `entry` (see `record`).
    pub async fn push(&self, entry: AuditEntry) -> Result<(), StoreError> {
        match self.sender.send(Queued::Entry(entry)).await {
            Ok(()) => Ok(()),
            Err(mpsc::error::SendError(Queued::Entry(entry))) => {
                let mut conn = self.store.writer().await?;
                conn.append_audit_entry(&entry).await
            }
            Err(mpsc::error::SendError(Queued::Flush(_))) => Ok(()),
        }
    }

    /// Waits until every entry queued and every Ably token counted before this call is
    /// committed (or given up after retries), so a reader of the audit log sees them. Returns
    /// at once after `close`.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Queued::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Stops taking entries (later ones are written directly) and waits until the writer has
    /// committed everything queued. Call after the HTTP server has stopped; idempotent.
    pub async fn close(&self) {
        let queued = self.sender.max_capacity() - self.sender.capacity();
        let counted = self.tally.pending();
        let in_flight = self.in_flight.load(Ordering::Relaxed);
        if !self.closing.is_cancelled() && queued + counted + in_flight as usize > 0 {
            tracing::info!(
                queued,
                counted,
                in_flight,
                "committing the queued audit entries before exit"
            );
        }
        self.closing.cancel();
        self.writer.close();
        self.writer.wait().await;
    }

    /// How many transactions the writer has committed (each one batch of entries).
    pub fn batches_written(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
}

/// The writer: takes the first entry queued, then everything else already queued up to
/// `AUDIT_BATCH_MAX`, commits them together, and repeats until the queue is closed and empty.
/// Every `TALLY_PERIOD`, on each flush and at the end it also commits the Ably token counts.
async fn write_queued(
    db: Target,
    mut receiver: mpsc::Receiver<Queued>,
    closing: CancellationToken,
    batches: Arc<AtomicU64>,
    tally: Arc<AblyIssuanceTally>,
) {
    let mut taken = Vec::with_capacity(AUDIT_BATCH_MAX);
    let mut entries = Vec::with_capacity(AUDIT_BATCH_MAX);
    let mut flushes = Vec::new();
    let mut closed = false;
    let mut period = tokio::time::interval(TALLY_PERIOD);
    period.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let received = tokio::select! {
            received = receiver.recv_many(&mut taken, AUDIT_BATCH_MAX) => received,
            () = closing.cancelled(), if !closed => {
                // Senders now get an error (and write directly); what is queued still drains.
                receiver.close();
                closed = true;
                continue;
            }
            _ = period.tick() => {
                write_all(&db, &tally.take(false), &batches).await;
                continue;
            }
        };
        if received == 0 {
            // Closed (or every sender gone) and nothing left: the last counts, after which
            // tokens are written one by one.
            write_all(&db, &tally.take(true), &batches).await;
            return;
        }
        for queued in taken.drain(..) {
            match queued {
                Queued::Entry(entry) => entries.push(entry),
                Queued::Flush(done) => flushes.push(done),
            }
        }
        if !flushes.is_empty() {
            entries.extend(tally.take(false));
        }
        write_all(&db, &entries, &batches).await;
        entries.clear();
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Where the writer commits, and how much it holds.
struct Target {
    store: crate::store::Store,
    in_flight: Arc<AtomicU64>,
}

/// Commits `entries` in transactions of at most `AUDIT_BATCH_MAX`.
async fn write_all(db: &Target, entries: &[AuditEntry], batches: &AtomicU64) {
    for (n, batch) in entries.chunks(AUDIT_BATCH_MAX).enumerate() {
        let left = entries.len() - n * AUDIT_BATCH_MAX;
        db.in_flight
            .store(u64::try_from(left).unwrap_or(u64::MAX), Ordering::Relaxed);
        write_batch(db, batch).await;
        batches.fetch_add(1, Ordering::Relaxed);
    }
    db.in_flight.store(0, Ordering::Relaxed);
}

/// Commits one batch, retrying with backoff when the store refuses (disk full, I/O error,
/// locked past the busy timeout). The server keeps serving meanwhile; requests wait only if
/// the queue fills up. After `WRITE_ATTEMPTS` failures the batch is given up so the queue
/// cannot stall for good: each of its entries goes to the error log as JSON (no secrets:
/// audit traits never hold passwords or tokens), which is the only record left of them.
async fn write_batch(db: &Target, entries: &[AuditEntry]) {
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=WRITE_ATTEMPTS {
        let written = match db.store.writer().await {
            // One multi-row insert: one implicit transaction. The audit log is never cached,
            // so the epoch stays.
            Ok(mut conn) => conn.append_audit_entries(entries).await,
            Err(e) => Err(e),
        };
        match written {
            Ok(()) => return,
            Err(e) if attempt < WRITE_ATTEMPTS => {
                tracing::error!(
                    error = %e,
                    entries = entries.len(),
                    attempt,
                    "could not write queued audit entries; retrying"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(
                    error = %e,
                    entries = entries.len(),
                    "could not write queued audit entries after {WRITE_ATTEMPTS} attempts; \
                     they are lost from the audit log and logged below"
                );
                for entry in entries {
                    tracing::error!(entry = %lost_entry(entry), "audit entry not written");
                }
            }
        }
    }
}

fn lost_entry(entry: &AuditEntry) -> Value {
    json!({
        "id": entry.id,
        "actor_id": entry.actor_id,
        "actor_email": entry.actor_email,
        "action": entry.action,
        "log_type": entry.log_type,
        "traits": entry.traits,
        "created_at": entry.created_at.unix(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;
    use crate::config::DatabaseSettings;
    use crate::store::WriteEpoch;
    use crate::store::{AuditFilter, Store};

    async fn store(dir: &tempfile::TempDir) -> Store {
        let settings = DatabaseSettings {
            backend: crate::config::DatabaseBackend::Sqlite(dir.path().join("audit.db")),
            auth_cache_bytes: 0,
        };
        Store::open(&settings, Arc::new(WriteEpoch::new()))
            .await
            .unwrap()
    }

    fn entry(i: usize) -> AuditEntry {
        let actor = Actor {
            id: format!("user-{i}"),
            email: format!("u{i}@example.org"),
        };
        // Ten entries per second: several share a `created_at`, so the order within one
        // second must follow the queue.
        let at = Timestamp::from_unix(1_800_000_000 + i64::try_from(i / 10).unwrap());
        audit::entry(&actor, Action::AblyTokenIssued, json!({"n": i}), at)
    }

    #[tokio::test]
    async fn queued_entries_are_committed_in_few_transactions_in_queue_order() {
        let dir = tempfile::tempdir().unwrap();
        let db = store(&dir).await;
        let queue = AuditQueue::start(db.clone());
        // Another writer holds the write lock, so entries pile up behind the first batch.
        let lock = db.begin_write().await.unwrap();
        let n = 2000;
        let sent: Vec<AuditEntry> = (0..n).map(entry).collect();
        for e in &sent {
            queue.push(e.clone()).await.unwrap();
        }
        lock.commit().await.unwrap();
        queue.close().await;

        let batches = queue.batches_written();
        let most = 1 + (n - 1).div_ceil(AUDIT_BATCH_MAX);
        assert!(
            (2..=u64::try_from(most).unwrap()).contains(&batches),
            "{n} entries took {batches} transactions"
        );
        let listed = db
            .pool()
            .list_audit_entries(&AuditFilter::All, i64::try_from(n).unwrap() + 1, 0)
            .await
            .unwrap();
        // Newest first: the queue's order reversed, each with its own `created_at`.
        let listed: Vec<_> = listed
            .iter()
            .rev()
            .map(|e| (e.id, e.created_at, e.traits.clone()))
            .collect();
        let expected: Vec<_> = sent
            .iter()
            .map(|e| (e.id, e.created_at, e.traits.clone()))
            .collect();
        assert_eq!(listed, expected);
    }

    #[tokio::test]
    async fn a_full_queue_makes_senders_wait_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = store(&dir).await;
        let queue = AuditQueue::start_with_capacity(db.clone(), 4);
        let lock = db.begin_write().await.unwrap();
        let senders: Vec<_> = (0..8)
            .map(|task| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        queue.push(entry(task * 50 + i)).await.unwrap();
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The writer is stuck behind the lock: the senders wait instead of queueing more.
        assert!(senders.iter().all(|s| !s.is_finished()));
        lock.commit().await.unwrap();
        for s in senders {
            s.await.unwrap();
        }
        queue.flush().await;
        let count = db
            .pool()
            .count_audit_entries(&AuditFilter::All)
            .await
            .unwrap();
        assert_eq!(count, 400);
        queue.close().await;
        // After close an entry is written directly.
        queue.push(entry(9999)).await.unwrap();
        let count = db
            .pool()
            .count_audit_entries(&AuditFilter::All)
            .await
            .unwrap();
        assert_eq!(count, 401);
    }
}
