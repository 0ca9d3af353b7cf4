//! `POST /verify`: confirmation and invite links (`type: signup`) and recovery links.

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action, Origin};
use super::token::{TokenResponse, start_session_by};
use crate::domain::ValidationError;
use crate::domain::one_time_token::{SecretToken, TokenPurpose};
use crate::domain::password::Password;
use crate::domain::session::EndReason;
use crate::state::AppState;
use crate::store::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyType {
    Signup,
    Recovery,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No live token like that (unknown, used, or replaced by a newer link): 404 "User not found".
    #[error("no such token")]
    NotFound,
    #[error("token expired")]
    Expired(VerifyType),
    #[error("invited users must specify a password")]
    PasswordRequired,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("user is banned")]
    Banned,
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<crate::auth::password_hasher::HashError> for VerifyError {
    fn from(e: crate::auth::password_hasher::HashError) -> Self {
        match e {
            crate::auth::password_hasher::HashError::Busy => VerifyError::Busy,
            e => VerifyError::Unexpected(anyhow::Error::new(e).context("hashing a password")),
        }
    }
}

/// Consumes the token (single use) and starts a session. An invite accepted here sets the
/// password; a recovery link confirms an unconfirmed address but does not change the password
/// (the client then sends `PUT /user {password}`).
#[tracing::instrument(skip_all)]
pub async fn verify(
    state: &AppState,
    kind: VerifyType,
    token: &str,
    password: Option<&str>,
    origin: &Origin,
) -> Result<TokenResponse, VerifyError> {
    let purposes = match kind {
        VerifyType::Signup => (TokenPurpose::Confirmation, TokenPurpose::Invite),
        VerifyType::Recovery => (TokenPurpose::Recovery, TokenPurpose::Recovery),
    };
    let digest = SecretToken::presented(token.trim()).digest();
    // An invite sets a password: check it against the invited account's address and hash it
    // before the write transaction (argon2 must not hold the store's write lock). Whose link
    // it is is read without consuming it; the consume below decides.
    let hash = match password.filter(|p| !p.is_empty()) {
        Some(p) if kind == VerifyType::Signup => {
            let owner = match state
                .store
                .pool()
                .find_token_user(&digest, purposes)
                .await
                .context("looking up the token")?
            {
                Some(id) => state
                    .store
                    .pool()
                    .find_user_by_id(id)
                    .await
                    .context("loading the user")?,
                None => None,
            };
            let email = owner.as_ref().map_or("", |u| u.email.as_str());
            let password = Password::parse(p, &state.settings.signup.password_policy, email)?;
            Some(state.hasher.hash(&password).await?)
        }
        _ => None,
    };
    let now = state.clock.now();

    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let consumed = tx
        .consume_token(&digest, purposes, None, now)
        .await
        .context("consuming the token")?
        .ok_or(VerifyError::NotFound)?;
    // Returning drops the transaction, which rolls back: a refused token stays unused.
    if consumed.expires_at <= now {
        return Err(VerifyError::Expired(kind));
    }
    let mut user = tx
        .find_user_by_id(consumed.user_id)
        .await
        .context("loading the user")?
        .ok_or(VerifyError::NotFound)?;
    if user.is_banned(now) {
        return Err(VerifyError::Banned);
    }
    let action = match consumed.purpose {
        TokenPurpose::Invite => {
            // An invite is for an account nobody has set up yet; once it has a password (set
            // through recovery or by an admin) the link is stale, not a password reset.
            if user.password_hash.is_some() || user.is_confirmed() {
                return Err(VerifyError::NotFound);
            }
            user.set_password(Some(hash.ok_or(VerifyError::PasswordRequired)?));
            super::mail_links::forget_password_links(&mut tx.conn(), user.id)
                .await
                .context("dropping stale links")?;
            Action::InviteAccepted
        }
        TokenPurpose::Confirmation => Action::UserSignedUp,
        TokenPurpose::Recovery | TokenPurpose::EmailChange => Action::Login,
    };
    if !user.is_confirmed() {
        // The mailbox owner decides the password (issue 9): the one bound to the clicked
        // confirmation link, or none at all when a recovery link (or an admin's unbound
        // confirmation link) confirms: whoever typed the earlier one never showed they could
        // read this mailbox. Every other signup's link dies, and so does every other session.
        match consumed.purpose {
            TokenPurpose::Confirmation => user.set_password(consumed.password_hash.clone()),
            TokenPurpose::Recovery => user.set_password(None),
            TokenPurpose::Invite | TokenPurpose::EmailChange => {}
        }
        tx.delete_user_tokens(user.id, TokenPurpose::Confirmation)
            .await
            .context("dropping the other confirmation links")?;
        tx.end_user_sessions(user.id, None, EndReason::PasswordChange, now)
            .await
            .context("ending other sessions")?;
        tx.delete_user_console_sessions(user.id)
            .await
            .context("ending console sessions")?;
    }
    user.confirm(now);
    user.last_sign_in_at = Some(now);
    user.updated_at = now;
    tx.update_user(&user).await.context("confirming the user")?;
    // The `amr` method, in supabase/auth's names.
    let method = match consumed.purpose {
        TokenPurpose::Confirmation => "email/signup",
        TokenPurpose::Invite => "invite",
        TokenPurpose::Recovery => "recovery",
        TokenPurpose::EmailChange => "email_change",
    };
    let response = start_session_by(state, &mut tx.conn(), &user, method, now).await?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&user),
        action,
        origin.with(json!({"provider": "email", "via": consumed.purpose.as_str()})),
        now,
    )
    .await
    .context("auditing the verification")?;
    tx.commit().await.context("committing the verification")?;
    Ok(response)
}
