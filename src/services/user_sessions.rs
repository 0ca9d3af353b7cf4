//! A user's own sessions (ASVS 5.0 V7.5.2): list them, and end one. Ending another device's
//! session needs the current password again (re-authentication with one factor); ending the
//! caller's own session is a logout of this device and needs nothing more.

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action, Origin};
use super::credentials::{self, CredentialsError};
use super::sessions::{SessionError, session_user};
use crate::domain::session::{EndReason, Session, SessionRefusal};
use crate::domain::user::UserId;
use crate::state::AppState;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum UserSessionsError {
    /// The caller's own session is not live (or the user is gone or banned).
    #[error(transparent)]
    Refused(#[from] SessionRefusal),
    /// No live session of this user has that id.
    #[error("no such session")]
    NotFound,
    /// Ending another session needs `current_password`.
    #[error("re-authentication required")]
    PasswordRequired,
    /// `current_password` was wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    #[error("too many password attempts; retry after {0:?}")]
    RateLimited(std::time::Duration),
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<SessionError> for UserSessionsError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused(r) => UserSessionsError::Refused(r),
            SessionError::Unexpected(e) => UserSessionsError::Unexpected(e),
        }
    }
}

/// One session as its owner sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    pub id: Uuid,
    /// RFC 3339, as GoTrue prints times.
    pub created_at: String,
    pub refreshed_at: String,
    /// The session of the token that asked.
    pub current: bool,
}

/// The caller's live sessions (under `GOTRUE_SESSIONS_*` limits), newest activity first.
pub async fn list_sessions(
    state: &AppState,
    user_id: UserId,
    current: Option<Uuid>,
) -> Result<Vec<SessionView>, UserSessionsError> {
    let now = state.clock.now();
    let limits = &state.settings.sessions;
    let mut conn = state.store.read().await.context("connecting")?;
    session_user(&mut conn.conn(), user_id, current, now, limits).await?;
    let live = conn
        .list_live_sessions(user_id)
        .await
        .context("listing sessions")?;
    Ok(live
        .into_iter()
        .filter(|s| s.is_live(now, limits))
        .map(|s| view(&s, current))
        .collect())
}

fn view(session: &Session, current: Option<Uuid>) -> SessionView {
    SessionView {
        id: session.id,
        created_at: session.created_at.to_rfc3339(),
        refreshed_at: session.refreshed_at.to_rfc3339(),
        current: Some(session.id) == current,
    }
}

/// Ends the caller's session `target`. Another session than the caller's own needs the
/// account's current password, checked through the per-account password throttle.
pub async fn end_session(
    state: &AppState,
    user_id: UserId,
    current: Option<Uuid>,
    target: Uuid,
    current_password: Option<&str>,
    origin: &Origin,
) -> Result<(), UserSessionsError> {
    let now = state.clock.now();
    let limits = &state.settings.sessions;
    let user = {
        let mut conn = state.store.read().await.context("connecting")?;
        session_user(&mut conn.conn(), user_id, current, now, limits).await?
    };
    if Some(target) != current {
        let password = current_password
            .filter(|p| !p.is_empty())
            .ok_or(UserSessionsError::PasswordRequired)?;
        let checked = async {
            let slot = credentials::reserve(state)?;
            credentials::check_password(
                state,
                slot,
                &user.aud,
                &user.email,
                password,
                origin,
                "email",
            )
            .await
        };
        let checked = checked.await.map_err(|e| match e {
            CredentialsError::RateLimited(wait) => UserSessionsError::RateLimited(wait),
            CredentialsError::Busy => UserSessionsError::Busy,
            CredentialsError::Unexpected(e) => UserSessionsError::Unexpected(e),
        })?;
        if checked.is_none_or(|u| u.id != user.id) {
            return Err(UserSessionsError::WrongPassword);
        }
    }
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let owned = tx
        .find_session(target)
        .await
        .context("loading the session")?
        .filter(|s| s.user_id == user.id && s.is_live(now, limits));
    if owned.is_none() {
        return Err(UserSessionsError::NotFound);
    }
    tx.end_session(target, EndReason::Logout, now)
        .await
        .context("ending the session")?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&user),
        Action::Logout,
        origin.with(json!({"session_id": target.to_string(), "scope": "one"})),
        now,
    )
    .await
    .context("auditing the session's end")?;
    tx.commit().await.context("committing")?;
    Ok(())
}
