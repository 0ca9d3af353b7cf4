//! An in-memory copy of the rows the session and aal2 rules read, valid until the next write.

// It holds the rows themselves (the user, the session, whether the user has a verified factor,
// the session's aal), never a verdict: every answer re-runs `domain::session::check_session`
// and `services::mfa::assurance_rule` with the current time, so timeboxes, inactivity timeouts
// and ban expiries stay exact to the second. An entry is answered only while
// `AppState::write_epoch` has not moved since it was read (see `db::WriteEpoch` for why that is
// sound): this server's writes move it when they commit, other processes' within
// `OTHER_WRITERS_POLL`. A hit makes no database round trip.

use std::sync::Arc;

use anyhow::Context;
use quick_cache::Weighter;
use uuid::Uuid;

use crate::domain::mfa::Aal;
use crate::domain::session::Session;
use crate::domain::user::{User, UserId};
use crate::store::Conn;
use crate::store::WriteEpoch;
use crate::store::prelude::*;

pub use crate::store::OTHER_WRITERS_POLL;

/// What a request presents: an access token's subject and `session_id` claim, or the seed
/// page's session cookie (a session known only by its id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SnapshotKey {
    Token {
        user_id: UserId,
        session_id: Option<Uuid>,
    },
    SessionCookie(Uuid),
}

/// The rows the rules read for one `SnapshotKey`, as the database held them.
#[derive(Debug)]
pub struct AuthSnapshot {
    /// The token's subject, or the cookie session's owner; `None` when there is none.
    pub user: Option<Arc<User>>,
    /// The session named; `None` when none is named or it does not exist.
    pub session: Option<Session>,
    /// Whether the user has a verified MFA factor.
    pub has_verified_factor: bool,
    /// The session's level (aal1 for an unknown session, as `services::mfa` reads it).
    pub session_aal: Aal,
}

#[derive(Clone)]
struct Entry {
    snapshot: Arc<AuthSnapshot>,
    /// The write epoch taken before the rows were read.
    epoch: u64,
    /// `approximate_bytes`, computed once (the weigher must be cheap and constant).
    bytes: u64,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<SnapshotKey, Entry> for ByBytes {
    fn weight(&self, _: &SnapshotKey, entry: &Entry) -> u64 {
        entry.bytes
    }
}

/// A bounded map from `SnapshotKey` to `AuthSnapshot` (quick_cache: CLOCK-Pro eviction by
/// weight, here approximate bytes, so large metadata cannot grow it past its bound).
pub struct AuthSnapshotCache {
    /// `None` when `CHIPFLAP_AUTH_CACHE_BYTES` is 0.
    entries: Option<quick_cache::sync::Cache<SnapshotKey, Entry, ByBytes>>,
    epoch: Arc<WriteEpoch>,
}

impl AuthSnapshotCache {
    /// A cache of at most about `max_bytes` (0 disables it), valid while `epoch` stays.
    pub fn new(max_bytes: u64, epoch: Arc<WriteEpoch>) -> Self {
        let entries = (max_bytes > 0).then(|| {
            let items = usize::try_from(max_bytes / 2048)
                .unwrap_or(usize::MAX)
                .max(16);
            quick_cache::sync::Cache::with_weighter(items, max_bytes, ByBytes)
        });
        AuthSnapshotCache { entries, epoch }
    }

    /// The epoch to take before reading rows that will be `insert`ed.
    pub fn epoch(&self) -> u64 {
        self.epoch.current()
    }

    /// The snapshot for `key`, only when it was read under the current epoch.
    pub fn get(&self, key: &SnapshotKey) -> Option<Arc<AuthSnapshot>> {
        let entry = self.entries.as_ref()?.get(key)?;
        (entry.epoch == self.epoch.current()).then_some(entry.snapshot)
    }

    /// Keeps `snapshot`, read after taking `epoch`; one read under an older epoch is dropped
    /// (it could never be answered).
    pub fn insert(&self, key: SnapshotKey, snapshot: Arc<AuthSnapshot>, epoch: u64) {
        let Some(entries) = &self.entries else { return };
        if epoch != self.epoch.current() {
            return;
        }
        let bytes = approximate_bytes(&snapshot);
        entries.insert(
            key,
            Entry {
                snapshot,
                epoch,
                bytes,
            },
        );
    }

    /// The approximate bytes held (at most `CHIPFLAP_AUTH_CACHE_BYTES`).
    pub fn bytes(&self) -> u64 {
        self.entries.as_ref().map_or(0, |e| e.weight())
    }
}

/// The heap and inline bytes of one entry, roughly: fixed sizes plus every string and the
/// metadata trees (each JSON node counted with its allocation overhead).
fn approximate_bytes(snapshot: &AuthSnapshot) -> u64 {
    const NODE: usize = 48;
    fn value_bytes(value: &serde_json::Value) -> usize {
        NODE + match value {
            serde_json::Value::String(s) => s.len(),
            serde_json::Value::Array(items) => items.iter().map(value_bytes).sum(),
            serde_json::Value::Object(map) => {
                map.iter().map(|(k, v)| k.len() + value_bytes(v)).sum()
            }
            _ => 0,
        }
    }
    let mut bytes = size_of::<SnapshotKey>() + size_of::<Entry>() + size_of::<AuthSnapshot>() + 64;
    if let Some(user) = &snapshot.user {
        bytes += user.aud.len()
            + user.role.len()
            + user.email.len()
            + user.new_email.as_ref().map_or(0, String::len)
            + user.password_hash.as_ref().map_or(0, |h| h.as_str().len());
        for metadata in [&user.app_metadata, &user.user_metadata] {
            bytes += metadata
                .iter()
                .map(|(k, v)| k.len() + value_bytes(v))
                .sum::<usize>();
        }
    }
    bytes as u64
}

/// The rows for `key`: from `cache` when they were read under the current epoch, else from
/// the database (then kept). A hit makes no database round trip.
pub async fn snapshot(
    cache: &AuthSnapshotCache,
    store: &crate::store::Store,
    key: SnapshotKey,
) -> anyhow::Result<Arc<AuthSnapshot>> {
    if let Some(hit) = cache.get(&key) {
        return Ok(hit);
    }
    // Before reading: an entry is tagged with the epoch its rows are at least as new as.
    let epoch = cache.epoch();
    let mut conn = store.read().await.context("connecting")?;
    let read = Arc::new(read_snapshot(&mut conn.conn(), key).await?);
    cache.insert(key, read.clone(), epoch);
    Ok(read)
}

/// Reads what the rules need for `key` from the database (the reads `services::sessions` and
/// `services::mfa::require_assurance` make).
pub async fn read_snapshot(conn: &mut Conn<'_>, key: SnapshotKey) -> anyhow::Result<AuthSnapshot> {
    let (user_id, session_id) = match key {
        SnapshotKey::Token {
            user_id,
            session_id,
        } => (Some(user_id), session_id),
        SnapshotKey::SessionCookie(id) => (None, Some(id)),
    };
    let session = match session_id {
        Some(id) => conn.find_session(id).await.context("loading the session")?,
        None => None,
    };
    let Some(user_id) = user_id.or(session.as_ref().map(|s| s.user_id)) else {
        return Ok(AuthSnapshot {
            user: None,
            session,
            has_verified_factor: false,
            session_aal: Aal::Aal1,
        });
    };
    let user = conn
        .find_user_by_id(user_id)
        .await
        .context("loading the user")?;
    let has_verified_factor = conn
        .has_verified_factor(user_id)
        .await
        .context("looking for verified factors")?;
    let session_aal = match session_id {
        Some(id) => conn
            .session_assurance(id)
            .await
            .context("loading the session's assurance")?
            .map_or(Aal::Aal1, |a| a.aal),
        None => Aal::Aal1,
    };
    Ok(AuthSnapshot {
        user: user.map(Arc::new),
        session,
        has_verified_factor,
        session_aal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::metadata::Metadata;
    use crate::domain::timestamp::Timestamp;

    fn fresh_epoch() -> Arc<WriteEpoch> {
        Arc::new(WriteEpoch::new())
    }

    fn snapshot_with_metadata(bytes: usize) -> Arc<AuthSnapshot> {
        let mut user_metadata = Metadata::new();
        user_metadata.insert("bio".into(), "x".repeat(bytes).into());
        Arc::new(AuthSnapshot {
            user: Some(Arc::new(User {
                id: UserId::new_random(),
                aud: String::new(),
                role: String::new(),
                email: "a@example.org".into(),
                password_hash: None,
                confirmed_at: Some(Timestamp::from_unix(1)),
                invited_at: None,
                confirmation_sent_at: None,
                recovery_sent_at: None,
                new_email: None,
                email_change_sent_at: None,
                last_sign_in_at: None,
                banned_until: None,
                app_metadata: Metadata::new(),
                user_metadata,
                created_at: Timestamp::from_unix(1),
                updated_at: Timestamp::from_unix(1),
            })),
            session: None,
            has_verified_factor: false,
            session_aal: Aal::Aal1,
        })
    }

    fn key() -> SnapshotKey {
        SnapshotKey::Token {
            user_id: UserId::new_random(),
            session_id: Some(Uuid::new_v4()),
        }
    }

    #[test]
    fn an_entry_read_under_an_older_epoch_is_never_answered() {
        let epoch = fresh_epoch();
        let cache = AuthSnapshotCache::new(1 << 20, epoch.clone());
        let (k, s) = (key(), snapshot_with_metadata(10));
        let taken = cache.epoch();
        cache.insert(k, s.clone(), taken);
        assert!(
            cache.get(&k).is_some(),
            "read and kept under the current epoch"
        );
        epoch.bump();
        assert!(cache.get(&k).is_none(), "a write committed since");
        // A reader that took the epoch before a write and stores after it.
        let late = key();
        let before = cache.epoch();
        epoch.bump();
        cache.insert(late, s.clone(), before);
        assert!(cache.get(&late).is_none());
        // Read again under the new epoch: answered again.
        cache.insert(k, s, cache.epoch());
        assert!(cache.get(&k).is_some());
    }

    #[test]
    fn the_cache_holds_at_most_its_bytes_whatever_the_metadata() {
        let bound = 256 * 1024;
        let cache = AuthSnapshotCache::new(bound, fresh_epoch());
        let big = snapshot_with_metadata(16 * 1024);
        assert!(approximate_bytes(&big) > 16 * 1024);
        for _ in 0..1_000 {
            cache.insert(key(), big.clone(), cache.epoch());
            assert!(cache.bytes() <= bound, "{} > {bound}", cache.bytes());
        }
        assert!(cache.bytes() > bound / 4, "it does keep entries");
        // One entry larger than the whole bound is not kept.
        let huge = key();
        cache.insert(
            huge,
            snapshot_with_metadata(2 * bound as usize),
            cache.epoch(),
        );
        assert!(cache.get(&huge).is_none());
        assert!(cache.bytes() <= bound);
    }

    #[test]
    fn zero_bytes_disables_it() {
        let cache = AuthSnapshotCache::new(0, fresh_epoch());
        let k = key();
        cache.insert(k, snapshot_with_metadata(1), cache.epoch());
        assert!(cache.get(&k).is_none());
        assert_eq!(cache.bytes(), 0);
    }
}
