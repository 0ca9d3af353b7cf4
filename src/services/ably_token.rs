//! The Ably token endpoint's use case: only confirmed, unbanned users get a token (DESIGN §6).

use std::sync::Arc;

use anyhow::Context;
use uuid::Uuid;

use super::ably_issuance_tally::Issued;
use super::auth_cache::SnapshotKey;
use super::sessions::{SessionError, cached_session_user};
use crate::auth::ably::{self, AblyJwt, Capability, TokenRequest};
use crate::domain::session::SessionRefusal;
use crate::domain::user::{User, UserId};
use crate::state::AppState;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AblyFormat {
    Jwt,
    TokenRequest,
}

pub enum AblyGrant {
    Jwt(AblyJwt),
    TokenRequest(TokenRequest),
}

#[derive(Debug, thiserror::Error)]
pub enum AblyTokenError {
    #[error("no Ably key is configured")]
    NotConfigured,
    #[error("unknown or deleted user")]
    UnknownUser,
    #[error("user is banned")]
    Banned,
    #[error("email not confirmed")]
    Unconfirmed,
    /// The caller's session has ended (answered as an invalid token, so ably-js keeps trying).
    #[error("the session has ended")]
    SessionEnded,
    /// The user has a verified MFA factor and this session is still aal1.
    #[error("AAL2 required")]
    InsufficientAal,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Who asks for an Ably token: an access token's subject and session, or the seed page's
/// session cookie (a session known only by its id).
#[derive(Debug, Clone, Copy)]
pub enum AblyCaller {
    Token {
        user_id: UserId,
        session_id: Option<Uuid>,
        /// The token's `aal` claim (services::mfa::require_assurance).
        aal: crate::domain::mfa::Aal,
    },
    SessionCookie(Uuid),
}

impl From<SessionError> for AblyTokenError {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::Refused(SessionRefusal::UnknownUser) => AblyTokenError::UnknownUser,
            SessionError::Refused(SessionRefusal::Banned) => AblyTokenError::Banned,
            SessionError::Refused(SessionRefusal::Ended) => AblyTokenError::SessionEnded,
            SessionError::Unexpected(e) => AblyTokenError::Unexpected(e),
        }
    }
}

/// The user an Ably token may be issued to: their session is live, they are not banned, their
/// session meets the aal2 rule and their address is confirmed. The rows come from the auth
/// cache (`services::auth_cache`): no database round trip while nothing has been written.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn ably_user(state: &AppState, caller: AblyCaller) -> Result<Arc<User>, AblyTokenError> {
    let (key, token_aal) = match caller {
        AblyCaller::Token {
            user_id,
            session_id,
            aal,
        } => (
            SnapshotKey::Token {
                user_id,
                session_id,
            },
            Some(aal),
        ),
        AblyCaller::SessionCookie(session_id) => (SnapshotKey::SessionCookie(session_id), None),
    };
    let checked = cached_session_user(state, key).await?;
    if checked.require_assurance(state, token_aal).is_err() {
        return Err(AblyTokenError::InsufficientAal);
    }
    if !checked.user.is_confirmed() {
        return Err(AblyTokenError::Unconfirmed);
    }
    Ok(checked.user)
}

/// Issues an Ably token for a user `ably_user` answered, and records it (user, time, expiry;
/// not the token).
#[tracing::instrument(skip_all, fields(user_id = %user.id))]
pub async fn issue_ably_token(
    state: &AppState,
    user: &User,
    format: AblyFormat,
) -> Result<AblyGrant, AblyTokenError> {
    let settings = &state.settings.ably;
    let key = settings.key.as_ref().ok_or(AblyTokenError::NotConfigured)?;
    let now = state.clock.now();
    let client_id = user.id.to_string();
    let capability = capability_for(state, user).for_client(&client_id);
    let (grant, expires_at) = match format {
        AblyFormat::Jwt => {
            let jwt = ably::issue_jwt(key, &capability, &client_id, now, settings.ttl_seconds)
                .context("signing the Ably JWT")?;
            let expires_at = jwt.expires_at;
            (AblyGrant::Jwt(jwt), expires_at)
        }
        AblyFormat::TokenRequest => {
            let request = ably::sign_token_request(
                key,
                &capability,
                &client_id,
                settings.ttl_seconds * 1000,
                now.unix() * 1000,
                ably::new_nonce(),
            );
            let expires_at = now.plus(std::time::Duration::from_secs(settings.ttl_seconds));
            (AblyGrant::TokenRequest(request), expires_at)
        }
    };
    let format_name = match format {
        AblyFormat::Jwt => "jwt",
        AblyFormat::TokenRequest => "token_request",
    };
    // Counted, not written here: the audit writer commits one entry per user and format per
    // period (services::ably_issuance_tally).
    state
        .audit
        .record_ably_token(Issued {
            user_id: user.id,
            email: &user.email,
            format: format_name,
            issued_at: now,
            expires_at,
        })
        .await
        .context("auditing the Ably token")?;
    Ok(grant)
}

/// `ABLY_CAPABILITY` plus the capability of each of the user's roles: the same answer for the
/// same roles, in Ably's canonical order.
fn capability_for(state: &AppState, user: &User) -> Capability {
    let settings = &state.settings.ably;
    let mut capability = settings.capability.clone();
    for role in user.roles() {
        if let Some(extra) = settings.role_capabilities.get(&role) {
            capability.union(extra);
        }
    }
    capability
}
