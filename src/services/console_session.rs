//! Admin console sessions: login with email and password through the same argon2 path as
//! `/token`, server-side sessions with idle and absolute expiry, and their CSRF tokens.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use subtle::ConstantTimeEq;

use super::Actor;
use super::audit::{self, Action, Origin};
use super::credentials::{LoginFailure, record_failed_login};
use crate::domain::one_time_token::SecretToken;
use crate::domain::user::User;
use crate::state::AppState;
use crate::store::prelude::*;

/// A session unused this long ends.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// A session ends this long after login, used or not.
pub const ABSOLUTE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// `last_seen_at` is written at most this often, so reading pages does not mean writing rows.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum ConsoleLoginError {
    /// Unknown email, wrong password, or an account that may not use the console: one message
    /// for all, and the same argon2 work.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many password checks for this email (README "Throttles").
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The first step of `login`: the confirmed, unbanned admin whose password this is (refusals
/// audited as `login`'s). The console asks admins with a verified MFA factor for a code before
/// `start` (services::mfa).
pub async fn authenticate(
    state: &AppState,
    slot: crate::auth::password_hasher::HashSlot,
    email: &str,
    password: &str,
    origin: &Origin,
) -> Result<User, ConsoleLoginError> {
    let aud = &state.settings.jwt.aud;
    let Some(user) =
        super::credentials::check_password(state, slot, aud, email, password, origin, "console")
            .await?
    else {
        return Err(ConsoleLoginError::InvalidCredentials);
    };
    let now = state.clock.now();
    let failure = match &user {
        u if !u.is_confirmed() => Some(LoginFailure::EmailNotConfirmed),
        u if u.is_banned(now) => Some(LoginFailure::Banned),
        u if !u.is_admin(&state.settings.jwt.admin_group) => Some(LoginFailure::NotAdmin),
        _ => None,
    };
    if let Some(failure) = failure {
        record_failed_login(state, origin, "console", email, Some(&user), failure).await?;
        return Err(ConsoleLoginError::InvalidCredentials);
    }
    Ok(user)
}

/// The second step of `login`: a new console session for `user`; answers its cookie value.
pub async fn start(state: &AppState, user: &User, origin: &Origin) -> anyhow::Result<SecretToken> {
    let now = state.clock.now();
    let token = SecretToken::generate();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    tx.insert_console_session(&token.digest(), user.id, now)
        .await
        .context("storing the console session")?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(user),
        Action::Login,
        origin.with(json!({"provider": "console"})),
        now,
    )
    .await
    .context("auditing the console login")?;
    tx.commit().await.context("committing the console login")?;
    Ok(token)
}

/// The admin behind a session cookie, or `None` when the session is unknown, expired, or its
/// user is no longer a confirmed, unbanned admin.
pub async fn session_admin(state: &AppState, token: &SecretToken) -> anyhow::Result<Option<User>> {
    let digest = token.digest();
    let Some(session) = state
        .store
        .pool()
        .find_console_session(&digest)
        .await
        .context("looking up the console session")?
    else {
        return Ok(None);
    };
    let now = state.clock.now();
    let expired = session.last_seen_at.plus(IDLE_TIMEOUT) <= now
        || session.created_at.plus(ABSOLUTE_TIMEOUT) <= now;
    let user = state
        .store
        .pool()
        .find_user_by_id(session.user_id)
        .await
        .context("loading the admin")?
        .filter(|u| {
            u.is_confirmed() && !u.is_banned(now) && u.is_admin(&state.settings.jwt.admin_group)
        });
    if expired || user.is_none() {
        state
            .writer()
            .await
            .context("waiting to write")?
            .delete_console_session(&digest)
            .await
            .context("ending a dead console session")?;
        return Ok(None);
    }
    if session.last_seen_at.plus(TOUCH_EVERY) <= now {
        state
            .writer()
            .await
            .context("waiting to write")?
            .touch_console_session(&digest, now)
            .await
            .context("recording console activity")?;
    }
    Ok(user)
}

pub async fn logout(state: &AppState, token: &SecretToken) -> anyhow::Result<()> {
    state
        .writer()
        .await
        .context("waiting to write")?
        .delete_console_session(&token.digest())
        .await
        .context("ending the console session")
}

/// The CSRF token of a session: an HMAC of the session cookie, so it needs no storage and
/// dies with the session.
pub fn csrf_token(state: &AppState, session: &SecretToken) -> String {
    SecretToken::from_bytes(&csrf_mac(state, session.expose())[..16])
        .expose()
        .to_owned()
}

pub fn csrf_matches(state: &AppState, session: &SecretToken, presented: &str) -> bool {
    bool::from(
        csrf_token(state, session)
            .as_bytes()
            .ct_eq(presented.as_bytes()),
    )
}

fn csrf_mac(state: &AppState, value: &str) -> [u8; 32] {
    crate::auth::hmac_sha256::hmac_sha256(
        state.settings.jwt.secret_bytes(),
        &[b"chipflap console csrf v1\0", value.as_bytes()],
    )
}
