//! The one place that reads wall time, so tests can move time by hand (kanidm's time-as-parameter).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::domain::timestamp::Timestamp;

/// Where "now" comes from. `Manual` is shared: every clone sees the same instant.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start` (unix seconds).
    pub fn manual(start: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start)))
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Clock::System => Timestamp::from_unix(system_now()),
            Clock::Manual(seconds) => Timestamp::from_unix(seconds.load(Ordering::SeqCst)),
        }
    }

    /// Moves a manual clock forward; a no-op on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(seconds) = self {
            let by = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
            seconds.fetch_add(by, Ordering::SeqCst);
        }
    }
}

#[expect(clippy::disallowed_methods, reason = "the one wall-clock read")]
fn system_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
