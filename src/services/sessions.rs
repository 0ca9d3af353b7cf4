//! The user behind a session, for every path that authenticates one: the access token's
//! `session_id` claim, or the seed page's session cookie. The rule itself is
//! `domain::session::check_session`; this only loads what it reads.

use anyhow::Context;
use sqlx::SqliteConnection;
use uuid::Uuid;

use crate::db::{sessions, users};
use crate::domain::session::{SessionLimits, SessionRefusal, check_session};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::User;

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
    conn: &mut SqliteConnection,
    user_id: Uuid,
    session_id: Option<Uuid>,
    now: Timestamp,
    limits: &SessionLimits,
) -> Result<User, SessionError> {
    let user = users::find_user_by_id(&mut *conn, user_id)
        .await
        .context("loading the user")?;
    let session = match session_id {
        Some(id) => sessions::find_session(&mut *conn, id)
            .await
            .context("loading the session")?,
        None => None,
    };
    check_session(user.as_ref(), session.as_ref(), now, limits)?;
    user.ok_or_else(|| anyhow::anyhow!("checked user vanished").into())
}

/// The same for a session known only by its id (the seed page's session cookie).
pub async fn user_of_session(
    conn: &mut SqliteConnection,
    session_id: Uuid,
    now: Timestamp,
    limits: &SessionLimits,
) -> Result<User, SessionError> {
    let session = sessions::find_session(&mut *conn, session_id)
        .await
        .context("loading the session")?
        .ok_or(SessionRefusal::Ended)?;
    let user = users::find_user_by_id(&mut *conn, session.user_id)
        .await
        .context("loading the user")?;
    check_session(user.as_ref(), Some(&session), now, limits)?;
    user.ok_or_else(|| anyhow::anyhow!("checked user vanished").into())
}
