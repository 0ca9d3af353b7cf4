//! Throttles (README "Throttles"): GCRA counters in the store, per client IP, per account and
//! per mail recipient, so that several nodes can share them.
//!
//! governor, the well-kept Rust GCRA crate, keeps its state behind a synchronous
//! `StateStore::measure_and_replace` closure meant for in-process atomics; a store shared
//! across nodes needs the step done inside the database, so the same algorithm is one
//! `insert … on conflict do update … where` here (`db::throttles::take_throttle`).

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use crate::config::Rate;
use crate::domain::email_address::mailbox_key;
use crate::state::AppState;
use crate::store::Conn;
use crate::store::prelude::*;

/// Expired rows deleted by one sweep (see `SweepSchedule`).
const SWEEP_BATCH: i64 = 256;
/// A sweep runs at least once per this many keys starting afresh: `SWEEP_BATCH /
/// SWEEP_EVERY` = 16 expired rows can go per new row, so rows are deleted at least as fast as
/// they are created.
const SWEEP_EVERY: u64 = 16;
/// … and at the first key starting afresh after this long (ms) without a sweep, so a quiet
/// server still clears its expired rows.
const SWEEP_PERIOD_MS: i64 = 1000;

/// When `check` sweeps expired throttle rows: with a key that starts afresh (it may be a new
/// row), once per `SWEEP_EVERY` such keys or after `SWEEP_PERIOD_MS` of the server's clock.
/// Sweeping with every fresh key cost two extra statements per login (its IP's key and its
/// account's key are usually fresh); this keeps the same bound on the table with 1/16 of them.
#[derive(Debug, Default)]
pub struct SweepSchedule {
    fresh_starts: AtomicU64,
    last_sweep_ms: AtomicI64,
}

impl SweepSchedule {
    /// Counts a key starting afresh at `now_ms`; true when this one should sweep.
    fn due(&self, now_ms: i64) -> bool {
        let n = self.fresh_starts.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        if n.is_multiple_of(SWEEP_EVERY) || now_ms - last >= SWEEP_PERIOD_MS {
            self.last_sweep_ms.store(now_ms, Ordering::Relaxed);
            return true;
        }
        false
    }
}
/// Subjects longer than this (no email or IP is) are cut, so a huge body cannot make huge keys.
const MAX_SUBJECT_CHARS: usize = 320;

/// One kind of throttle: its key scope and its rate setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Password checks per account (`/token` password grant and console login together).
    Password,
    /// `/token`, both grants, per client IP.
    Token,
    /// `/verify` per client IP.
    Verify,
    /// `/signup` per client IP.
    Signup,
    /// `/recover` per client IP.
    Recover,
    /// `/invite` per client IP.
    Invite,
    /// `PUT /user` with `email`, per client IP.
    EmailChange,
    /// Console login posts per client IP.
    ConsoleLogin,
    /// Mails per recipient address.
    MailSent,
    /// TOTP code checks per user (API verify and the console's second step together).
    MfaVerify,
    /// MFA challenge and verify requests per client IP.
    MfaChallengeAndVerify,
}

impl Limit {
    pub const ALL: [Limit; 11] = [
        Limit::Password,
        Limit::MailSent,
        Limit::Token,
        Limit::Verify,
        Limit::Signup,
        Limit::Recover,
        Limit::Invite,
        Limit::EmailChange,
        Limit::ConsoleLogin,
        Limit::MfaVerify,
        Limit::MfaChallengeAndVerify,
    ];

    /// The key prefix in the `throttles` table.
    pub fn scope(self) -> &'static str {
        match self {
            Limit::Password => "password",
            Limit::Token => "ip.token",
            Limit::Verify => "ip.verify",
            Limit::Signup => "ip.signup",
            Limit::Recover => "ip.recover",
            Limit::Invite => "ip.invite",
            Limit::EmailChange => "ip.email_change",
            Limit::ConsoleLogin => "ip.console_login",
            Limit::MailSent => "mail",
            Limit::MfaVerify => "mfa_verify",
            Limit::MfaChallengeAndVerify => "ip.mfa",
        }
    }

    /// What the console calls it.
    pub fn label(self) -> &'static str {
        match self {
            Limit::Password => "Password attempts for an account",
            Limit::Token => "Client IP on /token",
            Limit::Verify => "Client IP on /verify",
            Limit::Signup => "Client IP on /signup",
            Limit::Recover => "Client IP on /recover",
            Limit::Invite => "Client IP on /invite",
            Limit::EmailChange => "Client IP changing an email",
            Limit::ConsoleLogin => "Client IP on the console login",
            Limit::MailSent => "Mails to an address",
            Limit::MfaVerify => "MFA codes for an account",
            Limit::MfaChallengeAndVerify => "Client IP on MFA challenge and verify",
        }
    }

    pub fn rate(self, state: &AppState) -> Rate {
        let limits = &state.settings.rate_limits;
        match self {
            Limit::Password => limits.password,
            Limit::Token => limits.token,
            Limit::Verify => limits.verify,
            Limit::Signup | Limit::Recover | Limit::Invite | Limit::EmailChange => limits.otp,
            Limit::ConsoleLogin => limits.console_login,
            Limit::MailSent => limits.email_sent,
            Limit::MfaVerify => state.settings.mfa.verify_per_user,
            Limit::MfaChallengeAndVerify => state.settings.mfa.challenge_and_verify,
        }
    }

    fn key(self, subject: &str) -> String {
        let subject: String = match self {
            Limit::Password | Limit::MailSent => mailbox_key(subject),
            _ => subject.trim().to_owned(),
        };
        let subject: String = subject.chars().take(MAX_SUBJECT_CHARS).collect();
        format!("{}:{subject}", self.scope())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// Over the limit: come back after this long (whole seconds, at least 1).
    #[error("rate limit exceeded; retry after {0:?}")]
    Limited(Duration),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

fn now_ms(state: &AppState) -> i64 {
    state.clock.now_millis()
}

/// Counts one request for `subject` under `limit`; `Limited` when it is over. A refused request
/// is not counted, so the wait never grows past one interval once the requests stop.
pub async fn check(state: &AppState, limit: Limit, subject: &str) -> Result<(), ThrottleError> {
    // Throttles are never cached: their writes leave the auth cache's epoch alone.
    let mut conn = state.store.writer().await.context("waiting to write")?;
    check_in(&mut conn.conn(), state, limit, subject).await
}

/// `check` on the caller's connection: inside its transaction, the count stands or falls with
/// the caller's writes.
pub async fn check_in(
    conn: &mut Conn<'_>,
    state: &AppState,
    limit: Limit,
    subject: &str,
) -> Result<(), ThrottleError> {
    let rate = limit.rate(state);
    let key = limit.key(subject);
    let now = now_ms(state);
    let emission = millis(rate.interval);
    let window = millis(rate.window());
    if let Some(tat) = conn
        .take_throttle(&key, now, emission, window)
        .await
        .context("counting a throttled request")?
    {
        // A key starting afresh may be a new row: now and then it sweeps a batch of expired
        // ones (`SweepSchedule`), so the table stays bounded by the keys active within one
        // window. Busy keys skip the extra write.
        if tat == now + emission && state.throttle_sweeps.due(now) {
            conn.delete_expired_throttles(now, SWEEP_BATCH)
                .await
                .context("sweeping expired throttles")?;
        }
        return Ok(());
    }
    let tat = conn
        .find_throttle(&key)
        .await
        .context("reading a throttle")?
        .unwrap_or(now);
    // The next request conforms once tat + emission - t <= window.
    let wait_ms = (tat + emission - window - now).max(1);
    let seconds = u64::try_from((wait_ms + 999) / 1000).unwrap_or(1).max(1);
    Err(ThrottleError::Limited(Duration::from_secs(seconds)))
}

/// Gives back the request counted for `subject` (a password that turned out right), so an
/// owner logging in often never throttles themselves.
pub async fn refund(state: &AppState, limit: Limit, subject: &str) -> anyhow::Result<()> {
    let emission = millis(limit.rate(state).interval);
    let mut conn = state.store.writer().await.context("waiting to write")?;
    conn.refund_throttle(&limit.key(subject), emission)
        .await
        .context("refunding a throttled request")
}

/// Whether one more mail may go to `address` now (`GOTRUE_RATE_LIMIT_EMAIL_SENT`); counts it
/// when it may. Callers skip the mail silently otherwise, and answer as usual: the limit
/// depends on the address, never on whether it has an account.
pub async fn mail_allowed(state: &AppState, address: &str) -> anyhow::Result<bool> {
    let mut conn = state.store.writer().await.context("waiting to write")?;
    mail_allowed_in(&mut conn.conn(), state, address).await
}

/// `mail_allowed` inside the caller's transaction (a new account and its first mail's count are
/// stored together, or neither is).
pub async fn mail_allowed_in(
    conn: &mut Conn<'_>,
    state: &AppState,
    address: &str,
) -> anyhow::Result<bool> {
    match check_in(conn, state, Limit::MailSent, address).await {
        Ok(()) => Ok(true),
        Err(ThrottleError::Limited(_)) => {
            tracing::info!("a mail was not sent: its address is over the mail limit");
            Ok(false)
        }
        Err(ThrottleError::Unexpected(e)) => Err(e),
    }
}

/// A key the console shows: currently limited (its next request would be refused).
#[derive(Debug, Clone)]
pub struct LimitedKey {
    pub limit: Limit,
    /// The normalized email or the client IP.
    pub subject: String,
    /// The full store key, which the console posts back to clear it.
    pub key: String,
    /// When the next request will be accepted again.
    pub free_in: Duration,
}

/// Every currently limited key, accounts first, at most `max` per kind.
pub async fn list_limited(state: &AppState, max: i64) -> anyhow::Result<Vec<LimitedKey>> {
    let now = now_ms(state);
    let mut out = Vec::new();
    for limit in Limit::ALL {
        let rate = limit.rate(state);
        let emission = millis(rate.interval);
        let threshold = now + millis(rate.window()) - emission;
        let prefix = format!("{}:", limit.scope());
        let rows = state
            .store
            .pool()
            .list_limited_throttles(&prefix, threshold, max)
            .await
            .context("listing throttled keys")?;
        out.extend(rows.into_iter().map(|row| {
            let wait_ms = (row.tat_ms - threshold).max(0);
            LimitedKey {
                limit,
                subject: row.key[prefix.len()..].to_owned(),
                free_in: Duration::from_secs(u64::try_from((wait_ms + 999) / 1000).unwrap_or(0)),
                key: row.key,
            }
        }));
    }
    Ok(out)
}

/// Forgets a key's counter (console "clear"), audited. Answers whether it existed; only keys of
/// a known scope are accepted.
pub async fn clear(state: &AppState, actor: &Actor, key: &str) -> anyhow::Result<bool> {
    let Some(limit) = Limit::ALL.into_iter().find(|l| {
        key.strip_prefix(l.scope())
            .is_some_and(|rest| rest.starts_with(':'))
    }) else {
        return Ok(false);
    };
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let existed = tx
        .delete_throttle(key)
        .await
        .context("clearing a throttle")?;
    if existed {
        audit::record(
            &mut tx.conn(),
            actor,
            Action::ThrottleCleared,
            json!({"throttle": limit.scope(), "subject": &key[limit.scope().len() + 1..]}),
            now,
        )
        .await
        .context("auditing the cleared throttle")?;
    }
    tx.commit()
        .await
        .context("committing the cleared throttle")?;
    Ok(existed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_come_once_per_sixteen_fresh_keys_and_after_a_quiet_second() {
        let schedule = SweepSchedule::default();
        let t = 1_800_000_000_000;
        // The first fresh key on a new server sweeps (nothing swept for over a second).
        assert!(schedule.due(t));
        let due: Vec<bool> = (0..SWEEP_EVERY * 2).map(|_| schedule.due(t)).collect();
        let swept = due.iter().filter(|d| **d).count();
        assert_eq!(swept, 2, "{due:?}");
        assert!(!schedule.due(t + SWEEP_PERIOD_MS - 1));
        assert!(schedule.due(t + SWEEP_PERIOD_MS));
    }
}
