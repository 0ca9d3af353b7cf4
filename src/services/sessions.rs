//! The user behind a session, for every path that authenticates one: the access token's
//! `session_id` claim, or the seed page's session cookie. The rule itself is
//! `domain::session::check_session`; this only loads what it reads.

use std::sync::Arc;

use anyhow::Context;
use uuid::Uuid;

use super::auth_cache::{self, AuthSnapshot, SnapshotKey};
use crate::domain::mfa::{Aal, InsufficientAal};
use crate::domain::session::{SessionLimits, SessionRefusal, check_session};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::prelude::*;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Refused(#[from] SessionRefusal),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The user `user_id`, if the token's session (`session_id`, `None` when the token names none)
/// is theirs and live under `limits` (`settings.sessions`) and they are not banned. Pass the
/// caller's transaction when the answer must hold for the writes that follow.
pub async fn session_user(
    conn: &mut Conn<'_>,
    user_id: UserId,
    session_id: Option<Uuid>,
    now: Timestamp,
    limits: &SessionLimits,
) -> Result<User, SessionError> {
    let user = conn
        .find_user_by_id(user_id)
        .await
        .context("loading the user")?;
    let session = match session_id {
        Some(id) => conn.find_session(id).await.context("loading the session")?,
        None => None,
    };
    check_session(user.as_ref(), session.as_ref(), now, limits)?;
    user.ok_or_else(|| anyhow::anyhow!("checked user vanished").into())
}

/// A user whose session passed `check_session`, with the rows it was checked on (for the aal2
/// rule that may follow).
pub struct CheckedSession {
    pub user: Arc<User>,
    snapshot: Arc<AuthSnapshot>,
}

impl CheckedSession {
    /// `services::mfa::require_assurance` on the same rows: the session's level, lowered to
    /// the token's `aal` claim when a token is presented (`None` for the session cookie).
    pub fn require_assurance(
        &self,
        state: &AppState,
        token_aal: Option<Aal>,
    ) -> Result<(), InsufficientAal> {
        super::mfa::assurance_rule(
            state.settings.mfa.required,
            self.snapshot.has_verified_factor,
            self.snapshot.session_aal,
            token_aal,
        )
    }
}

/// `session_user` (a `Token` key), or the same rule for a session known only by its id (a
/// `SessionCookie` key: the seed page's session cookie), on rows from
/// `state.auth_cache` when no write has committed since they were read: the same rule, run now,
/// and no database round trip on a hit. Only for answers that no write of the caller's relies
/// on; a use case that writes reads inside its own transaction instead.
pub async fn cached_session_user(
    state: &AppState,
    key: SnapshotKey,
) -> Result<CheckedSession, SessionError> {
    let snapshot = auth_cache::snapshot(&state.auth_cache, &state.store, key).await?;
    if matches!(key, SnapshotKey::SessionCookie(_)) && snapshot.session.is_none() {
        return Err(SessionRefusal::Ended.into());
    }
    check_session(
        snapshot.user.as_deref(),
        snapshot.session.as_ref(),
        state.clock.now(),
        &state.settings.sessions,
    )?;
    let user = snapshot
        .user
        .clone()
        .ok_or_else(|| anyhow::anyhow!("checked user vanished"))?;
    Ok(CheckedSession { user, snapshot })
}
