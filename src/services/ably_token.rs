//! The Ably token endpoint's use case: only confirmed, unbanned users get a token (DESIGN §6).

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action};
use crate::auth::ably::{self, AblyJwt, Capability, TokenRequest};
use crate::db::users;
use crate::domain::user::User;
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
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Issues an Ably token for the user and records it (user, time, expiry; not the token).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn issue_ably_token(
    state: &AppState,
    user_id: Uuid,
    format: AblyFormat,
) -> Result<AblyGrant, AblyTokenError> {
    let settings = &state.settings.ably;
    let key = settings.key.as_ref().ok_or(AblyTokenError::NotConfigured)?;
    let now = state.clock.now();
    let user = users::find_user_by_id(&state.db, user_id)
        .await
        .context("loading the user")?
        .ok_or(AblyTokenError::UnknownUser)?;
    if user.is_banned(now) {
        return Err(AblyTokenError::Banned);
    }
    if !user.is_confirmed() {
        return Err(AblyTokenError::Unconfirmed);
    }
    let client_id = user.id.to_string();
    let capability = capability_for(state, &user).for_client(&client_id);
    let (grant, expires_at) = match format {
        AblyFormat::Jwt => {
            let jwt = ably::issue_jwt(key, &capability, &client_id, now, settings.ttl_seconds);
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
    audit::record(
        &state.db,
        &Actor::user(&user),
        Action::AblyTokenIssued,
        json!({"user_id": client_id, "format": format_name, "expires_at": expires_at.to_rfc3339()}),
        now,
    )
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
