//! `GET /user` and `PUT /user`: the signed-in user's own account.

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action};
use super::mail_links::{self, human_duration, store_link_token};
use crate::db::{UniqueViolationExt, one_time_tokens, refresh_tokens, users};
use crate::domain::ValidationError;
use crate::domain::email_address::EmailAddress;
use crate::domain::metadata::{self, Metadata};
use crate::domain::one_time_token::{SecretToken, TokenPurpose};
use crate::domain::password::Password;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::User;
use crate::mail::EmailChangeEmail;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("user is banned")]
    Banned,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("updating app_metadata requires admin privileges")]
    AppMetadataNotAllowed,
    #[error("email change token did not match")]
    EmailChangeTokenMismatch,
    #[error("email change token expired")]
    EmailChangeTokenExpired,
    #[error("email address already registered by another user")]
    EmailTaken,
    #[error("the email change mail could not be sent")]
    Mail(#[source] crate::mail::MailError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The user behind a verified access token; banned users are refused (DESIGN §5).
pub async fn get_user(state: &AppState, id: Uuid) -> Result<User, UserError> {
    let user = users::find_user_by_id(&state.db, id)
        .await
        .context("loading the user")?
        .ok_or(UserError::NotFound)?;
    if user.is_banned(state.clock.now()) {
        return Err(UserError::Banned);
    }
    Ok(user)
}

#[derive(Debug, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub password: Option<String>,
    pub email_change_token: Option<String>,
    pub data: Option<Metadata>,
    pub app_metadata: Option<Metadata>,
}

/// Applies the update in GoTrue's order (spec §1.9), in one transaction. `session_issued_at` is
/// when the caller's access token was minted: its session survives a password change, the
/// user's other sessions end (DESIGN §4.7).
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_user(
    state: &AppState,
    id: Uuid,
    session_issued_at: Timestamp,
    update: UserUpdate,
) -> Result<User, UserError> {
    let settings = &state.settings;
    let password = match update.password.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(Password::parse(p, settings.signup.password_min_length)?),
        None => None,
    };
    if let Some(data) = &update.data {
        metadata::check_size("data", data)?;
    }
    if let Some(app) = &update.app_metadata {
        metadata::check_size("app_metadata", app)?;
    }
    let new_email = match update
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(e) => Some(EmailAddress::parse(e)?),
        None => None,
    };
    let hash = match &password {
        Some(p) => Some(state.hasher.hash(p).await.context("hashing a password")?),
        None => None,
    };
    let now = state.clock.now();

    let mut tx = crate::db::begin_write(&state.db)
        .await
        .context("starting a transaction")?;
    let mut user = users::find_user_by_id(&mut *tx, id)
        .await
        .context("loading the user")?
        .ok_or(UserError::NotFound)?;
    if user.is_banned(now) {
        return Err(UserError::Banned);
    }
    if let Some(hash) = hash {
        user.password_hash = Some(hash);
        let keep = refresh_tokens::find_family_issued_at(&mut *tx, id, session_issued_at)
            .await
            .context("finding the caller's session")?;
        refresh_tokens::revoke_user_refresh_tokens(&mut *tx, id, keep.as_deref(), now)
            .await
            .context("ending other sessions")?;
    }
    if let Some(data) = update.data {
        metadata::merge(&mut user.user_metadata, data);
    }
    if let Some(app) = update.app_metadata {
        if !user.is_admin(&settings.jwt.admin_group) {
            return Err(UserError::AppMetadataNotAllowed);
        }
        metadata::merge(&mut user.app_metadata, app);
    }

    let mut change_mail = None;
    if let Some(token) = update
        .email_change_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        let digest = SecretToken::presented(token).digest();
        let consumed = one_time_tokens::consume_token(
            &mut *tx,
            &digest,
            (TokenPurpose::EmailChange, TokenPurpose::EmailChange),
            Some(id),
            now,
        )
        .await
        .context("consuming the email change token")?
        .ok_or(UserError::EmailChangeTokenMismatch)?;
        if consumed.expires_at <= now {
            return Err(UserError::EmailChangeTokenExpired);
        }
        let target = consumed
            .new_email
            .ok_or_else(|| anyhow::anyhow!("email change token without an address"))?;
        user.email = target;
        user.new_email = None;
        user.email_change_sent_at = None;
    } else if let Some(new_email) = new_email.filter(|e| e.as_str() != user.email) {
        let holder = users::find_user_by_email(&mut *tx, &user.aud, new_email.as_str())
            .await
            .context("checking the new address")?;
        if holder.is_some_and(|other| other.id != user.id) {
            return Err(UserError::EmailTaken);
        }
        let token = store_link_token(
            &mut tx,
            id,
            TokenPurpose::EmailChange,
            Some(new_email.as_str()),
            now,
            settings.mailer.confirmation_max_age,
        )
        .await
        .context("storing the email change token")?;
        user.new_email = Some(new_email.as_str().to_owned());
        user.email_change_sent_at = Some(now);
        change_mail = Some(EmailChangeEmail {
            site_url: mail_links::site_url(state),
            action_url: mail_links::link(state, "email_change_token", &token),
            email: user.email.clone(),
            new_email: new_email.into_string(),
            valid_for: human_duration(settings.mailer.confirmation_max_age),
        });
    }

    user.updated_at = now;
    users::update_user(&mut *tx, &user)
        .await
        .on_unique_violation(|| UserError::EmailTaken)
        .context("saving the user")??;
    audit::record(
        &mut *tx,
        &Actor::user(&user),
        Action::UserModified,
        json!({}),
        now,
    )
    .await
    .context("auditing the update")?;
    tx.commit().await.context("committing the update")?;

    if let Some(mail) = change_mail {
        // The mail goes to the new address only (spec §5.4).
        if let Err(e) = state.mailer.send(&mail.new_email, &mail).await {
            let mut tx = crate::db::begin_write(&state.db)
                .await
                .context("starting a transaction")?;
            one_time_tokens::delete_user_tokens(&mut *tx, id, TokenPurpose::EmailChange)
                .await
                .context("dropping the unsent token")?;
            user.new_email = None;
            user.email_change_sent_at = None;
            users::update_user(&mut *tx, &user)
                .await
                .context("undoing the pending change")?;
            tx.commit().await.context("committing the undo")?;
            return Err(UserError::Mail(e));
        }
    }
    Ok(user)
}
