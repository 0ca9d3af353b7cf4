//! Checking an email and password: the one path `/token` and the console login share.

use std::time::Duration;

use anyhow::Context;

use serde_json::json;

use super::Actor;
use super::audit::{Action, Origin};
use super::throttle::{self, Limit, ThrottleError};
use crate::auth::password_hasher::{HashError, HashSlot};
use crate::domain::email_address::mailbox_key;
use crate::domain::password::{Password, PasswordHash};
use crate::domain::user::User;
use crate::state::AppState;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Too many password checks for this email lately (known or not): retry after this long.
    #[error("too many password attempts; retry after {0:?}")]
    RateLimited(Duration),
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<HashError> for CredentialsError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy => CredentialsError::Busy,
            e => CredentialsError::Unexpected(anyhow::Error::new(e).context("hashing a password")),
        }
    }
}

impl From<ThrottleError> for CredentialsError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Limited(wait) => CredentialsError::RateLimited(wait),
            ThrottleError::Unexpected(e) => CredentialsError::Unexpected(e),
        }
    }
}

/// The user whose password this is, or `None`. Unknown addresses, accounts without a password
/// and wrong passwords cost the same argon2 work and give the same answer (DESIGN §4.4).
///
/// The caller reserves the check's place in the hashing engine first (`reserve`), before any
/// write of its own, so a busy server answers `Busy` having counted and written nothing. Each
/// check is then counted against the email's password throttle, whether or not an
/// account has it, and a throttled check runs no argon2 at all (it is logged, not audited). A
/// right password gives its count back, so the owner never throttles themselves, and a hash
/// made with a lower cost than configured is replaced by one with the configured cost (the
/// answered user carries the hash now stored). A wrong password (or none) is logged and
/// audited here (`record_failed_login`, as `provider`); refusals after a right password are
/// the caller's to record.
pub async fn check_password(
    state: &AppState,
    slot: HashSlot,
    aud: &str,
    email: &str,
    password: &str,
    origin: &Origin,
    provider: &'static str,
) -> Result<Option<User>, CredentialsError> {
    if let Err(e) = throttle::check(state, Limit::Password, email).await {
        if matches!(e, ThrottleError::Limited(_)) {
            tracing::info!(
                identifier = ?identifier(email),
                ip_address = ?origin.ip_address,
                user_agent = ?origin.user_agent,
                "login refused before any password check: too many attempts for this account"
            );
        }
        return Err(e.into());
    }
    let user = state
        .store
        .pool()
        .find_user_by_email(aud, email.trim())
        .await
        .context("looking up the user")?;
    // Over-long input is refused before hashing, so a huge body cannot buy a long hash.
    let Some(password) = Password::for_login(password) else {
        let failure = LoginFailure::InvalidCredentials;
        record_failed_login(state, origin, provider, email, user.as_ref(), failure).await?;
        return Ok(None);
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.as_ref());
    let verification = slot.verify_and_upgrade(&password, hash).await?;
    if !verification.matched {
        let failure = LoginFailure::InvalidCredentials;
        record_failed_login(state, origin, provider, email, user.as_ref(), failure).await?;
        return Ok(None);
    }
    throttle::refund(state, Limit::Password, email).await?;
    let mut user = user;
    if let (Some(user), Some(stronger)) = (user.as_mut(), verification.upgraded) {
        upgrade_hash(state, user, stronger).await?;
    }
    Ok(user)
}

/// A place in the hashing engine for one `check_password`, or `Busy` at once when every
/// hashing thread is busy and `CHIPFLAP_HASH_QUEUE` checks already wait.
pub fn reserve(state: &AppState) -> Result<HashSlot, CredentialsError> {
    Ok(state.hasher.reserve()?)
}

/// Stores `stronger` in place of the user's weaker hash, unless the password changed meanwhile.
async fn upgrade_hash(
    state: &AppState,
    user: &mut User,
    stronger: PasswordHash,
) -> anyhow::Result<()> {
    let Some(old) = user.password_hash.as_ref() else {
        return Ok(());
    };
    let upgraded = state
        .writer()
        .await
        .context("waiting to write")?
        .upgrade_password_hash(user.id, old, &stronger)
        .await
        .context("upgrading a password hash")?;
    // An autocommit write to `users`: cached auth snapshots must not outlive it.
    state.write_epoch.bump();
    if upgraded {
        tracing::info!(user_id = %user.id, "password hash upgraded to the configured cost");
        user.set_password(Some(stronger));
    }
    Ok(())
}

/// Why a login that ran its password check was refused; only admins see it (audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown account, no password, or a wrong one: the client cannot tell which.
    InvalidCredentials,
    EmailNotConfirmed,
    Banned,
    /// The console only admits confirmed admins.
    NotAdmin,
}

impl LoginFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginFailure::InvalidCredentials => "invalid_credentials",
            LoginFailure::EmailNotConfirmed => "email_not_confirmed",
            LoginFailure::Banned => "banned",
            LoginFailure::NotAdmin => "not_admin",
        }
    }
}

/// The most of a claimed identifier a log line or audit entry keeps, in characters.
const IDENTIFIER_MAX_CHARS: usize = 256;

/// The normalized account identifier (`mailbox_key`), cut to a bounded length.
fn identifier(email: &str) -> String {
    mailbox_key(email)
        .chars()
        .take(IDENTIFIER_MAX_CHARS)
        .collect()
}

/// Logs (one warn line) and audits (`login_failed`) a refused login whose password check ran,
/// so at most as many rows as the password throttles allow checks. The row names the claimed
/// identifier, the client IP and user agent, the reason, and the account's `user_id` when there
/// is one; never the password. The audit log is for admins only, so an unknown address shows
/// nowhere else, and the client's answer does not depend on this.
pub async fn record_failed_login(
    state: &AppState,
    origin: &Origin,
    provider: &'static str,
    email: &str,
    user: Option<&User>,
    failure: LoginFailure,
) -> anyhow::Result<()> {
    let identifier = identifier(email);
    tracing::warn!(
        provider,
        identifier = ?identifier,
        ip_address = ?origin.ip_address,
        user_agent = ?origin.user_agent,
        reason = failure.as_str(),
        "login failed"
    );
    let mut traits = json!({
        "provider": provider,
        "identifier": identifier,
        "reason": failure.as_str(),
    });
    if let Some(user) = user {
        traits["user_id"] = json!(user.id);
        traits["user_email"] = json!(user.email);
    }
    // Queued (no change to describe, and a guessing flood must not queue on the write lock).
    state
        .audit
        .record(
            &Actor::anonymous(),
            Action::LoginFailed,
            origin.with(traits),
            state.clock.now(),
        )
        .await
        .context("auditing a failed login")
}

impl From<CredentialsError> for super::token::TokenError {
    fn from(e: CredentialsError) -> Self {
        match e {
            CredentialsError::RateLimited(wait) => super::token::TokenError::RateLimited(wait),
            CredentialsError::Busy => super::token::TokenError::Busy,
            CredentialsError::Unexpected(e) => super::token::TokenError::Unexpected(e),
        }
    }
}

impl From<CredentialsError> for super::console_session::ConsoleLoginError {
    fn from(e: CredentialsError) -> Self {
        use super::console_session::ConsoleLoginError;
        match e {
            CredentialsError::RateLimited(wait) => ConsoleLoginError::RateLimited(wait),
            CredentialsError::Busy => ConsoleLoginError::Busy,
            CredentialsError::Unexpected(e) => ConsoleLoginError::Unexpected(e),
        }
    }
}
