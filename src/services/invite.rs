//! `POST /invite`: creates a user without a password and mails an invite link.

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use super::mail_links::{self, human_duration, store_link_token};
use super::signup::provider_email;
use crate::domain::ValidationError;
use crate::domain::email_address::EmailAddress;
use crate::domain::metadata::{self, Metadata};
use crate::domain::one_time_token::TokenPurpose;
use crate::domain::user::{User, UserId};
use crate::mail::InviteEmail;
use crate::state::AppState;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("email address already registered by another user")]
    EmailTaken,
    /// The invite mail failed; the invited user was removed again.
    #[error("the invite mail could not be sent")]
    Mail(#[source] crate::mail::MailError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The invite link expires `GOTRUE_MAILER_INVITE_MAX_AGE` after `invited_at` (GoTrue's never did).
#[tracing::instrument(skip_all)]
pub async fn invite(
    state: &AppState,
    actor: &Actor,
    aud: &str,
    email: &str,
    data: Option<Metadata>,
) -> Result<User, InviteError> {
    let email = EmailAddress::parse(email)?;
    let data = data.unwrap_or_default();
    metadata::check_size("data", &data)?;
    let now = state.clock.now();
    let max_age = state.settings.mailer.invite_max_age;
    let user = User {
        id: UserId::new_random(),
        aud: aud.to_owned(),
        role: state.settings.jwt.default_group.clone(),
        email: email.into_string(),
        password_hash: None,
        confirmed_at: None,
        invited_at: Some(now),
        confirmation_sent_at: None,
        recovery_sent_at: None,
        new_email: None,
        email_change_sent_at: None,
        last_sign_in_at: None,
        banned_until: None,
        app_metadata: provider_email(),
        user_metadata: data,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    tx.insert_user(&user)
        .await
        .on_conflict(|| InviteError::EmailTaken)
        .context("inserting the user")??;
    let token = store_link_token(
        &mut tx.conn(),
        user.id,
        TokenPurpose::Invite,
        None,
        now,
        max_age,
    )
    .await
    .context("storing the invite token")?;
    audit::record(
        &mut tx.conn(),
        actor,
        Action::UserInvited,
        json!({"user_id": user.id, "user_email": user.email}),
        now,
    )
    .await
    .context("auditing the invite")?;
    tx.commit().await.context("committing the invite")?;

    let mail = InviteEmail {
        site_url: mail_links::site_url(state),
        action_url: mail_links::link(state, "invite_token", &token),
        email: user.email.clone(),
        valid_for: human_duration(max_age),
    };
    if let Err(e) = state.mailer.send(&user.email, &mail).await {
        state
            .writer()
            .await
            .context("waiting to write")?
            .delete_user(user.id)
            .await
            .context("undoing an invite whose mail failed")?;
        // An autocommit write to `users`: cached auth snapshots must not outlive it.
        state.write_epoch.bump();
        return Err(InviteError::Mail(e));
    }
    mail_links::record_mailed(state, user.id, TokenPurpose::Invite).await?;
    Ok(user)
}
