//! `POST /recover`: mails a recovery link. Always answers the same way, at once (DESIGN §4.4):
//! the lookup, the write and the mail all happen after the answer, so neither the body nor the
//! response time tells whether the address has an account.

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use super::mail_links::{
    self, SentStamp, forget_unsent_mail, human_duration, store_link_token, throttled,
};
use crate::domain::one_time_token::TokenPurpose;
use crate::domain::user::User;
use crate::mail::RecoveryEmail;
use crate::state::AppState;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("an email is required")]
    EmailRequired,
    /// Not an address the mailer could deliver to; says nothing about accounts.
    #[error(transparent)]
    Invalid(#[from] crate::domain::ValidationError),
}

#[tracing::instrument(skip_all)]
pub async fn recover(state: &AppState, aud: &str, email: &str) -> Result<(), RecoverError> {
    let email = email.trim().to_owned();
    if email.is_empty() {
        return Err(RecoverError::EmailRequired);
    }
    crate::domain::email_address::EmailAddress::parse(&email)?;
    let task_state = state.clone();
    let aud = aud.to_owned();
    state.background.spawn(async move {
        if let Err(e) = send_recovery(&task_state, &aud, &email).await {
            tracing::error!(error = ?e, "password recovery failed");
        }
    });
    Ok(())
}

async fn send_recovery(state: &AppState, aud: &str, email: &str) -> anyhow::Result<()> {
    let Some(user) = state
        .store
        .pool()
        .find_user_by_email(aud, email)
        .await
        .context("looking up the user")?
    else {
        return Ok(());
    };
    deliver_recovery(state, &Actor::user(&user), &user, Throttle::Apply).await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Throttle {
    /// At most one mail per `GOTRUE_SMTP_MAX_FREQUENCY` (users asking for themselves).
    Apply,
    /// An admin asked for it.
    Skip,
}

/// Stores a recovery link for `user` and mails it; a failed mail forgets the link again.
pub async fn deliver_recovery(
    state: &AppState,
    actor: &Actor,
    user: &User,
    throttle: Throttle,
) -> anyhow::Result<()> {
    let now = state.clock.now();
    let max_age = state.settings.mailer.recovery_max_age;
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    // Checked inside the write transaction, so concurrent requests cannot both pass.
    let Some(user) = tx
        .find_user_by_id(user.id)
        .await
        .context("reloading the user")?
    else {
        return Ok(());
    };
    if throttle == Throttle::Apply && throttled(state, user.recovery_sent_at, now) {
        return Ok(());
    }
    let token = store_link_token(
        &mut tx.conn(),
        user.id,
        TokenPurpose::Recovery,
        None,
        now,
        max_age,
    )
    .await
    .context("storing the recovery token")?;
    tx.set_recovery_sent_at(user.id, Some(now))
        .await
        .context("recording the recovery mail")?;
    audit::record(
        &mut tx.conn(),
        actor,
        Action::UserRecoveryRequested,
        json!({"user_id": user.id, "user_email": user.email}),
        now,
    )
    .await
    .context("auditing the recovery request")?;
    tx.commit()
        .await
        .context("committing the recovery request")?;

    if throttle == Throttle::Apply && !super::throttle::mail_allowed(state, &user.email).await? {
        forget_unsent_mail(
            state,
            user.id,
            Some(TokenPurpose::Recovery),
            SentStamp::Recovery,
            user.recovery_sent_at,
        )
        .await
        .context("undoing a recovery mail over the limit")?;
        return Ok(());
    }
    let mail = RecoveryEmail {
        site_url: mail_links::site_url(state),
        action_url: mail_links::link(state, "recovery_token", &token),
        email: user.email.clone(),
        valid_for: human_duration(max_age),
    };
    if let Err(e) = state.mailer.send(&user.email, &mail).await {
        // Forget the unsent link so the user may ask again at once.
        forget_unsent_mail(
            state,
            user.id,
            Some(TokenPurpose::Recovery),
            SentStamp::Recovery,
            user.recovery_sent_at,
        )
        .await
        .context("undoing a failed recovery mail")?;
        return Err(anyhow::Error::new(e).context("sending the recovery mail"));
    }
    mail_links::record_mailed(state, user.id, TokenPurpose::Recovery).await
}
