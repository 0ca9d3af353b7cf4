//! The record of issued Ably tokens, one audit entry per user and format per period: tokens are counted in memory and the audit queue's writer commits the counts.
//!
//! The Ably endpoint is the hottest path: a row per token (tens of thousands per second) would
//! spend as much CPU in SQLite as the endpoint itself, and every commit would invalidate the
//! auth cache. Issue 10 allows "one row per user per period, updated in batches": each request
//! adds one to its (user, format) count under a short lock, and the audit writer
//! (`services::audit_queue`) turns the counts into `ably_token_issued` entries every
//! `TALLY_PERIOD`, on every `flush` and on a clean shutdown.
//!
//! An entry's traits: `user_id`, `format` (`jwt` | `token_request`), `count` (tokens in the
//! entry, at least 1), `first_issued_at` and `last_issued_at` (RFC 3339, whole seconds) and
//! `expires_at` (the latest expiry among them). Its `created_at` is `first_issued_at`.
//!
//! Memory is bounded: at most `TALLY_KEYS_MAX` (user, format) pairs are counted per period.
//! Once full, a token of a pair not yet counted is queued as its own entry (`count` 1), which
//! the queue bounds in turn.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;
use crate::store::AuditEntry;

/// How often the writer turns the counts into audit entries: the most a `kill -9` loses.
pub const TALLY_PERIOD: Duration = Duration::from_secs(1);

/// The most (user, format) pairs counted in one period (about 150 bytes each: ~0.6 MiB).
pub const TALLY_KEYS_MAX: usize = 4096;

/// The Ably token formats (`services::ably_token::AblyFormat`), as the `format` trait names them.
pub type FormatName = &'static str;

#[derive(Debug)]
struct Count {
    actor_email: String,
    count: u64,
    first_issued_at: Timestamp,
    last_issued_at: Timestamp,
    expires_at: Timestamp,
}

#[derive(Debug, Default)]
struct Counts {
    by_key: HashMap<(UserId, FormatName), Count>,
    /// Set by the writer's last `take` on shutdown: later tokens are written one by one.
    closed: bool,
}

/// One issued token, as the tally records it.
#[derive(Debug, Clone, Copy)]
pub struct Issued<'a> {
    pub user_id: UserId,
    pub email: &'a str,
    pub format: FormatName,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
}

/// What `AblyIssuanceTally::add` did with a token.
#[derive(Debug)]
pub enum Added {
    /// Counted; the writer will commit it.
    Counted,
    /// Not counted (the tally is full or closed): the caller must queue or write this entry.
    Entry(AuditEntry),
}

/// The counts of the current period (shared by the requests and the audit writer).
#[derive(Debug, Default)]
pub struct AblyIssuanceTally {
    counts: Mutex<Counts>,
}

impl AblyIssuanceTally {
    /// Counts one token. Never waits on I/O: the lock is held for one map update.
    pub fn add(&self, token: Issued<'_>) -> Added {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if counts.closed {
            return Added::Entry(single_entry(&token));
        }
        let full = counts.by_key.len() >= TALLY_KEYS_MAX;
        match counts.by_key.entry((token.user_id, token.format)) {
            Entry::Occupied(mut slot) => {
                let count = slot.get_mut();
                count.count += 1;
                count.last_issued_at = count.last_issued_at.max(token.issued_at);
                count.expires_at = count.expires_at.max(token.expires_at);
                if count.actor_email != token.email {
                    // The address changed within the period: the entry names the latest.
                    token.email.clone_into(&mut count.actor_email);
                }
                Added::Counted
            }
            Entry::Vacant(_) if full => Added::Entry(single_entry(&token)),
            Entry::Vacant(slot) => {
                slot.insert(Count {
                    actor_email: token.email.to_owned(),
                    count: 1,
                    first_issued_at: token.issued_at,
                    last_issued_at: token.issued_at,
                    expires_at: token.expires_at,
                });
                Added::Counted
            }
        }
    }

    /// How many (user, format) pairs are counted and not yet taken.
    pub fn pending(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .len()
    }

    /// Empties the tally into one audit entry per (user, format), oldest first. With `close`,
    /// later tokens are no longer counted (`add` answers `Added::Entry`).
    pub fn take(&self, close: bool) -> Vec<AuditEntry> {
        let by_key = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            counts.closed |= close;
            std::mem::take(&mut counts.by_key)
        };
        let mut entries: Vec<AuditEntry> = by_key
            .into_iter()
            .map(|((user_id, format), count)| {
                entry(
                    user_id,
                    &count.actor_email,
                    format,
                    count.count,
                    count.first_issued_at,
                    count.last_issued_at,
                    count.expires_at,
                )
            })
            .collect();
        entries.sort_by_key(|e| e.created_at);
        entries
    }
}

fn single_entry(token: &Issued<'_>) -> AuditEntry {
    entry(
        token.user_id,
        token.email,
        token.format,
        1,
        token.issued_at,
        token.issued_at,
        token.expires_at,
    )
}

fn entry(
    user_id: UserId,
    email: &str,
    format: FormatName,
    count: u64,
    first_issued_at: Timestamp,
    last_issued_at: Timestamp,
    expires_at: Timestamp,
) -> AuditEntry {
    let actor = Actor {
        id: user_id.to_string(),
        email: email.to_owned(),
    };
    audit::entry(
        &actor,
        Action::AblyTokenIssued,
        json!({
            "user_id": actor.id,
            "format": format,
            "count": count,
            "first_issued_at": first_issued_at.to_rfc3339(),
            "last_issued_at": last_issued_at.to_rfc3339(),
            "expires_at": expires_at.to_rfc3339(),
        }),
        first_issued_at,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    fn issued(user_id: UserId, format: FormatName, at: i64) -> Issued<'static> {
        Issued {
            user_id,
            email: "u@example.org",
            format,
            issued_at: Timestamp::from_unix(at),
            expires_at: Timestamp::from_unix(at + 3600),
        }
    }

    #[test]
    fn tokens_of_one_user_and_format_make_one_entry_that_counts_them_all() {
        let tally = AblyIssuanceTally::default();
        let (a, b) = (UserId::new_random(), UserId::new_random());
        for at in [100, 101, 105] {
            assert!(matches!(tally.add(issued(a, "jwt", at)), Added::Counted));
        }
        assert!(matches!(
            tally.add(issued(a, "token_request", 103)),
            Added::Counted
        ));
        assert!(matches!(tally.add(issued(b, "jwt", 99)), Added::Counted));
        let entries = tally.take(false);
        assert_eq!(entries.len(), 3);
        // Oldest first.
        assert_eq!(entries[0].actor_id, b.to_string());
        let a_jwt = entries
            .iter()
            .find(|e| e.actor_id == a.to_string() && e.traits["format"] == "jwt")
            .unwrap();
        assert_eq!(a_jwt.traits["count"], 3);
        assert_eq!(a_jwt.created_at, Timestamp::from_unix(100));
        assert_eq!(
            a_jwt.traits["last_issued_at"],
            Timestamp::from_unix(105).to_rfc3339()
        );
        assert_eq!(
            a_jwt.traits["expires_at"],
            Timestamp::from_unix(105 + 3600).to_rfc3339()
        );
        assert_eq!(a_jwt.action, "ably_token_issued");
        assert!(tally.take(false).is_empty());
    }

    #[test]
    fn a_full_or_closed_tally_hands_each_token_back_as_its_own_entry() {
        let tally = AblyIssuanceTally::default();
        for _ in 0..TALLY_KEYS_MAX {
            assert!(matches!(
                tally.add(issued(UserId::new_random(), "jwt", 1)),
                Added::Counted
            ));
        }
        let Added::Entry(entry) = tally.add(issued(UserId::new_random(), "jwt", 2)) else {
            panic!("a full tally counted a new pair");
        };
        assert_eq!(entry.traits["count"], 1);
        assert_eq!(tally.take(true).len(), TALLY_KEYS_MAX);
        assert!(matches!(
            tally.add(issued(UserId::new_random(), "jwt", 3)),
            Added::Entry(_)
        ));
        assert!(tally.take(false).is_empty());
    }
}
