//! `GET /user` and `PUT /user`: the signed-in user's own account.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action};
use super::auth_cache::SnapshotKey;
use super::mail_links::{self, human_duration};
use super::sessions::{SessionError, cached_session_user, session_user};
use crate::domain::ValidationError;
use crate::domain::email_address::EmailAddress;
use crate::domain::metadata::{self, Metadata};
use crate::domain::one_time_token::{SecretToken, TokenPurpose};
use crate::domain::password::Password;
use crate::domain::session::{EndReason, SessionRefusal};
use crate::domain::user::{User, UserId};
use crate::mail::{AddressInUseEmail, EmailChangeEmail};
use crate::state::AppState;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user not found")]
    NotFound,
    #[error("user is banned")]
    Banned,
    /// The access token's session has ended (answered as an invalid token).
    #[error("the session has ended")]
    SessionEnded,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("updating app_metadata requires admin privileges")]
    AppMetadataNotAllowed,
    #[error("email change token did not match")]
    EmailChangeTokenMismatch,
    #[error("email change token expired")]
    EmailChangeTokenExpired,
    /// Only when a change is applied: starting one never tells (rule "no enumeration").
    #[error("email address already registered by another user")]
    EmailTaken,
    /// An email change mail went out less than `GOTRUE_SMTP_MAX_FREQUENCY` ago.
    #[error("email change requested too often; retry after {0:?}")]
    RateLimited(std::time::Duration),
    #[error("the email change mail could not be sent")]
    Mail(#[source] crate::mail::MailError),
    /// `current_password` was sent and is not the account's password: 400.
    #[error("the current password is wrong")]
    WrongCurrentPassword,
    /// Too many `current_password` checks for this account lately (the per-account password
    /// throttle, shared with `/token`): 429 after this long.
    #[error("too many password attempts; retry after {0:?}")]
    PasswordRateLimited(std::time::Duration),
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION` is on and neither the right
    /// `current_password` nor a recent login came with a password change: 400.
    #[error("password update requires reauthentication")]
    PasswordReauthenticationNeeded,
    /// The same for an email change.
    #[error("email update requires reauthentication")]
    EmailReauthenticationNeeded,
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<crate::auth::password_hasher::HashError> for UserError {
    fn from(e: crate::auth::password_hasher::HashError) -> Self {
        match e {
            crate::auth::password_hasher::HashError::Busy => UserError::Busy,
            e => UserError::Unexpected(anyhow::Error::new(e).context("hashing a password")),
        }
    }
}

impl From<SessionError> for UserError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused(SessionRefusal::UnknownUser) => UserError::NotFound,
            SessionError::Refused(SessionRefusal::Banned) => UserError::Banned,
            SessionError::Refused(SessionRefusal::Ended) => UserError::SessionEnded,
            SessionError::Unexpected(e) => UserError::Unexpected(e),
        }
    }
}

/// The user behind a verified access token whose session (`session_id` claim) is live;
/// banned users are refused (DESIGN §5).
pub async fn get_user(
    state: &AppState,
    id: UserId,
    session: Option<Uuid>,
) -> Result<Arc<User>, UserError> {
    let key = SnapshotKey::Token {
        user_id: id,
        session_id: session,
    };
    Ok(cached_session_user(state, key).await?.user)
}

/// `get_user` read from the database now (for a use case about to write).
async fn read_user(state: &AppState, id: UserId, session: Option<Uuid>) -> Result<User, UserError> {
    let mut conn = state.store.read().await.context("connecting")?;
    Ok(session_user(
        &mut conn.conn(),
        id,
        session,
        state.clock.now(),
        &state.settings.sessions,
    )
    .await?)
}

#[derive(Debug, Default)]
pub struct UserUpdate {
    pub email: Option<String>,
    pub password: Option<String>,
    pub email_change_token: Option<String>,
    pub data: Option<Metadata>,
    pub app_metadata: Option<Metadata>,
    /// supabase/auth's `current_password`: checked whenever it is sent (issue 9).
    pub current_password: Option<String>,
    /// Where the request came from, for the audit of a wrong `current_password`.
    pub origin: super::audit::Origin,
}

/// The 400 text for a wrong `current_password`.
pub const WRONG_CURRENT_PASSWORD: &str = "Current password is incorrect";

/// supabase/auth's rule: a session created this recently counts as a recent login (a
/// recovery or confirmation link starts a new session, so it counts too).
pub const RECENT_LOGIN: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Applies the update in GoTrue's order (spec §1.9), in one transaction. `session` is the
/// access token's `session_id`: it must be live, and it survives a password change while the
/// user's other sessions end (DESIGN §4.7). An email change mails the new address *before* anything
/// is stored, so a failed mail leaves nothing half-done (at worst a link that never works).
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_user(
    state: &AppState,
    id: UserId,
    session: Option<Uuid>,
    update: UserUpdate,
) -> Result<User, UserError> {
    let settings = &state.settings;
    let current = read_user(state, id, session).await?;
    let new_email = match update
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(e) => Some(EmailAddress::parse(e)?),
        None => None,
    };
    let change_token = update
        .email_change_token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let password = match update.password.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(Password::parse(
            p,
            &settings.signup.password_policy,
            &current.email,
        )?),
        None => None,
    };
    let starts_email_change = change_token.is_none()
        && new_email
            .as_ref()
            .is_some_and(|e| e.as_str() != current.email);
    check_reauthentication(
        state,
        &current,
        session,
        update.current_password.as_deref(),
        &update.origin,
        password.is_some(),
        starts_email_change,
    )
    .await?;
    let hash = match &password {
        Some(p) => Some(state.hasher.hash(p).await?),
        None => None,
    };

    // An email change (without a token to apply) is checked and mailed first.
    let pending_change = match new_email {
        Some(new_email) if change_token.is_none() => {
            if new_email.as_str() == current.email {
                None
            } else {
                check_email_change_frequency(state, &current)?;
                Some(mail_email_change(state, &current, new_email).await?)
            }
        }
        _ => None,
    };

    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let mut user = session_user(&mut tx.conn(), id, session, now, &state.settings.sessions).await?;
    let before = user.clone();
    let old_email = user.email.clone();
    let password_changed = hash.is_some();
    if let Some(hash) = hash {
        user.set_password(Some(hash));
        tx.end_user_sessions(id, session, EndReason::PasswordChange, now)
            .await
            .context("ending other sessions")?;
        tx.delete_user_console_sessions(id)
            .await
            .context("ending console sessions")?;
        mail_links::forget_password_links(&mut tx.conn(), id)
            .await
            .context("dropping stale links")?;
    }
    if let Some(data) = update.data {
        metadata::merge(&mut user.user_metadata, data);
        metadata::check_size("data", &user.user_metadata)?;
    }
    if let Some(app) = update.app_metadata {
        if !user.is_admin(&settings.jwt.admin_group) {
            return Err(UserError::AppMetadataNotAllowed);
        }
        crate::domain::user::merge_app_metadata(&mut user.app_metadata, app)?;
    }

    if let Some(token) = change_token {
        let digest = SecretToken::presented(token).digest();
        let consumed = tx
            .consume_token(
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
        user.email = consumed
            .new_email
            .ok_or_else(|| anyhow::anyhow!("email change token without an address"))?;
        user.new_email = None;
        user.email_change_sent_at = None;
        mail_links::forget_password_links(&mut tx.conn(), id)
            .await
            .context("dropping stale links")?;
    } else if let Some((token, new_email)) = &pending_change {
        tx.replace_token(
            id,
            TokenPurpose::EmailChange,
            &token.digest(),
            Some(new_email),
            now,
            now.plus(settings.mailer.confirmation_max_age),
        )
        .await
        .context("storing the email change token")?;
        // Mailed before it was stored (DESIGN: an email change mails first).
        tx.mark_mailed(id, TokenPurpose::EmailChange)
            .await
            .context("recording the email change mail")?;
        user.new_email = Some(new_email.clone());
        user.email_change_sent_at = Some(now);
    }

    user.updated_at = now;
    tx.update_user(&user)
        .await
        .on_conflict(|| UserError::EmailTaken)
        .context("saving the user")??;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&user),
        Action::UserModified,
        json!({"fields": before.changed_fields(&user)}),
        now,
    )
    .await
    .context("auditing the update")?;
    tx.commit().await.context("committing the update")?;

    // Announced to the address the account had when the request came (issue 9).
    use super::notifications::{Change, ChangedBy, announce};
    if password_changed {
        announce(state, &old_email, Change::Password, ChangedBy::User);
    }
    if user.email != old_email {
        let new_email = user.email.clone();
        announce(
            state,
            &old_email,
            Change::EmailChanged { new_email },
            ChangedBy::User,
        );
    } else if let Some((_, new_email)) = pending_change {
        announce(
            state,
            &old_email,
            Change::EmailChangeRequested { new_email },
            ChangedBy::User,
        );
    }
    Ok(user)
}

/// `current_password`, when sent, must be the account's password (checked through the
/// per-account password throttle). With `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`
/// a password or email change also needs it, or a session created within [`RECENT_LOGIN`]
/// (supabase/auth's rule; its texts).
async fn check_reauthentication(
    state: &AppState,
    user: &User,
    session: Option<Uuid>,
    current_password: Option<&str>,
    origin: &super::audit::Origin,
    changes_password: bool,
    changes_email: bool,
) -> Result<(), UserError> {
    use super::credentials::{CredentialsError, check_password};
    if let Some(current_password) = current_password.filter(|p| !p.is_empty()) {
        let checked = async {
            let slot = super::credentials::reserve(state)?;
            check_password(
                state,
                slot,
                &user.aud,
                &user.email,
                current_password,
                origin,
                "email",
            )
            .await
        };
        return match checked.await {
            Ok(Some(owner)) if owner.id == user.id => Ok(()),
            Ok(_) => Err(UserError::WrongCurrentPassword),
            Err(CredentialsError::RateLimited(wait)) => Err(UserError::PasswordRateLimited(wait)),
            Err(CredentialsError::Busy) => Err(UserError::Busy),
            Err(CredentialsError::Unexpected(e)) => Err(UserError::Unexpected(e)),
        };
    }
    if !state.settings.signup.update_requires_reauthentication
        || !(changes_password || changes_email)
    {
        return Ok(());
    }
    let created = match session {
        Some(id) => state
            .store
            .pool()
            .find_session(id)
            .await
            .context("loading the session")?
            .map(|s| s.created_at),
        None => None,
    };
    let now = state.clock.now();
    if created.is_some_and(|created| created.plus(RECENT_LOGIN) > now) {
        return Ok(());
    }
    Err(if changes_password {
        UserError::PasswordReauthenticationNeeded
    } else {
        UserError::EmailReauthenticationNeeded
    })
}

/// `GOTRUE_SMTP_MAX_FREQUENCY` for email changes too: one mail per user per interval. It
/// depends only on the caller's own history, never on the address asked for.
fn check_email_change_frequency(state: &AppState, user: &User) -> Result<(), UserError> {
    let now = state.clock.now();
    match user.email_change_sent_at {
        Some(sent) if mail_links::throttled(state, Some(sent), now) => {
            let free_at = sent.plus(state.settings.mailer.max_frequency);
            let wait = u64::try_from(free_at.unix() - now.unix())
                .unwrap_or(1)
                .max(1);
            Err(UserError::RateLimited(std::time::Duration::from_secs(wait)))
        }
        _ => Ok(()),
    }
}

/// Mails the new address a link (spec §5.4: the new address only) and answers the token to
/// store once the rest of the update commits. An address that already has an account is
/// answered exactly the same (no enumeration): its owner gets a notice instead of a link, and
/// the stored change can never be applied, since applying it checks again. Both mails count
/// against the address's mail limit, which skips them silently.
async fn mail_email_change(
    state: &AppState,
    user: &User,
    new_email: EmailAddress,
) -> Result<(SecretToken, String), UserError> {
    let holder = state
        .store
        .pool()
        .find_user_by_email(&user.aud, new_email.as_str())
        .await
        .context("checking the new address")?
        .filter(|other| other.id != user.id);
    let token = SecretToken::generate();
    if !super::throttle::mail_allowed(state, new_email.as_str()).await? {
        return Ok((token, new_email.into_string()));
    }
    if let Some(owner) = holder {
        let notice = AddressInUseEmail {
            site_url: mail_links::site_url(state),
            action_url: mail_links::site_url(state),
            email: owner.email.clone(),
        };
        state
            .mailer
            .send(&owner.email, &notice)
            .await
            .map_err(UserError::Mail)?;
        return Ok((token, new_email.into_string()));
    }
    let max_age = state.settings.mailer.confirmation_max_age;
    let mail = EmailChangeEmail {
        site_url: mail_links::site_url(state),
        action_url: mail_links::link(state, "email_change_token", &token),
        email: user.email.clone(),
        new_email: new_email.as_str().to_owned(),
        valid_for: human_duration(max_age),
    };
    state
        .mailer
        .send(new_email.as_str(), &mail)
        .await
        .map_err(UserError::Mail)?;
    Ok((token, new_email.into_string()))
}
