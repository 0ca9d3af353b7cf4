//! `POST /recover`: mails a recovery link. Always answers the same way (DESIGN §4.4), and the
//! mail goes out after the answer, so response time does not reveal whether the account exists.

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::audit::{self, Action};
use super::mail_links::{self, human_duration, store_link_token, throttled};
use crate::db::{one_time_tokens, users};
use crate::domain::one_time_token::TokenPurpose;
use crate::mail::RecoveryEmail;
use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum RecoverError {
    #[error("an email is required")]
    EmailRequired,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

#[tracing::instrument(skip_all)]
pub async fn recover(state: &AppState, aud: &str, email: &str) -> Result<(), RecoverError> {
    let email = email.trim();
    if email.is_empty() {
        return Err(RecoverError::EmailRequired);
    }
    let now = state.clock.now();
    let Some(mut user) = users::find_user_by_email(&state.db, aud, email)
        .await
        .context("looking up the user")?
    else {
        return Ok(());
    };
    if throttled(state, user.recovery_sent_at, now) {
        return Ok(());
    }
    let max_age = state.settings.mailer.recovery_max_age;
    let mut tx = crate::db::begin_write(&state.db)
        .await
        .context("starting a transaction")?;
    let token = store_link_token(&mut tx, user.id, TokenPurpose::Recovery, None, now, max_age)
        .await
        .context("storing the recovery token")?;
    let previous_sent_at = user.recovery_sent_at;
    user.recovery_sent_at = Some(now);
    users::update_user(&mut *tx, &user)
        .await
        .context("recording the recovery mail")?;
    audit::record(
        &mut *tx,
        &Actor::user(&user),
        Action::UserRecoveryRequested,
        json!({}),
        now,
    )
    .await
    .context("auditing the recovery request")?;
    tx.commit()
        .await
        .context("committing the recovery request")?;

    let mail = RecoveryEmail {
        site_url: mail_links::site_url(state),
        action_url: mail_links::link(state, "recovery_token", &token),
        email: user.email.clone(),
        valid_for: human_duration(max_age),
    };
    let state = state.clone();
    state.clone().background.spawn(async move {
        if let Err(e) = state.mailer.send(&user.email, &mail).await {
            tracing::error!(user_id = %user.id, error = ?e, "recovery mail failed");
            // Forget the unsent link so the user may ask again at once.
            let undo = async {
                let mut tx = crate::db::begin_write(&state.db).await?;
                one_time_tokens::delete_user_tokens(&mut *tx, user.id, TokenPurpose::Recovery)
                    .await?;
                if let Some(mut fresh) = users::find_user_by_id(&mut *tx, user.id).await? {
                    fresh.recovery_sent_at = previous_sent_at;
                    users::update_user(&mut *tx, &fresh).await?;
                }
                tx.commit().await
            };
            if let Err(e) = undo.await {
                tracing::error!(user_id = %user.id, error = ?e, "could not undo a failed recovery mail");
            }
        }
    });
    Ok(())
}
