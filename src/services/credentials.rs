//! Checking an email and password: the one path `/token` and the console login share.

use std::time::Duration;

use anyhow::Context;

use super::throttle::{self, Limit, ThrottleError};
use crate::db::users;
use crate::domain::password::Password;
use crate::domain::user::User;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// Too many password checks for this email lately (known or not): retry after this long.
    #[error("too many password attempts; retry after {0:?}")]
    RateLimited(Duration),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
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
/// Each check is first counted against the email's password throttle, whether or not an
/// account has it, and a throttled check runs no argon2 at all. A right password gives its
/// count back, so the owner never throttles themselves.
pub async fn check_password(
    state: &AppState,
    aud: &str,
    email: &str,
    password: &str,
) -> Result<Option<User>, CredentialsError> {
    throttle::check(state, Limit::Password, email).await?;
    let user = users::find_user_by_email(&state.db, aud, email.trim())
        .await
        .context("looking up the user")?;
    // Over-long input is refused before hashing, so a huge body cannot buy a long hash.
    let Some(password) = Password::for_login(password) else {
        return Ok(None);
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.as_ref());
    let matched = state
        .hasher
        .verify(&password, hash)
        .await
        .context("verifying a password")?;
    if matched {
        throttle::refund(state, Limit::Password, email).await?;
    }
    Ok(user.filter(|_| matched))
}

impl From<CredentialsError> for super::token::TokenError {
    fn from(e: CredentialsError) -> Self {
        match e {
            CredentialsError::RateLimited(wait) => super::token::TokenError::RateLimited(wait),
            CredentialsError::Unexpected(e) => super::token::TokenError::Unexpected(e),
        }
    }
}

impl From<CredentialsError> for super::console_session::ConsoleLoginError {
    fn from(e: CredentialsError) -> Self {
        use super::console_session::ConsoleLoginError;
        match e {
            CredentialsError::RateLimited(wait) => ConsoleLoginError::RateLimited(wait),
            CredentialsError::Unexpected(e) => ConsoleLoginError::Unexpected(e),
        }
    }
}
