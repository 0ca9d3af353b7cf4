//! The one place that reads wall time, so tests can move time by hand (kanidm's time-as-parameter).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::domain::timestamp::Timestamp;

/// Where "now" comes from. `Manual` is shared: every clone sees the same instant, kept in
/// unix milliseconds.
#[derive(Clone, Debug)]
pub enum Clock {
    System,
    Manual(Arc<AtomicI64>),
}

impl Clock {
    /// A manual clock starting at `start` (unix seconds).
    pub fn manual(start: i64) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(start.saturating_mul(1000))))
    }

    /// Now, in whole unix seconds (what tokens and stored rows carry).
    pub fn now(&self) -> Timestamp {
        Timestamp::from_unix(self.now_millis().div_euclid(1000))
    }

    /// Now, in unix milliseconds: for rules whose intervals are shorter than a second (the
    /// throttles' emission intervals), which whole seconds would round to bursts.
    pub fn now_millis(&self) -> i64 {
        match self {
            Clock::System => system_now_millis(),
            Clock::Manual(millis) => millis.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward (to the millisecond); a no-op on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Clock::Manual(millis) = self {
            let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
            millis.fetch_add(by, Ordering::SeqCst);
        }
    }
}

#[expect(clippy::disallowed_methods, reason = "the one wall-clock read")]
fn system_now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
