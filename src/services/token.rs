//! `/token` (password and refresh grants), `/logout`, and issuing a session for any flow.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use sqlx::SqliteConnection;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action};
use crate::auth::jwt::AccessClaims;
use crate::db::{refresh_tokens, users};
use crate::domain::one_time_token::{SecretToken, TokenDigest};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::User;
use crate::state::AppState;

/// DESIGN §4.3: a rotated refresh token presented again this soon answers with its successor
/// (two tabs refreshing at once both survive); later, the whole family is revoked.
pub const REUSE_GRACE: Duration = Duration::from_secs(10);

/// The token response (spec §3.3).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// `invalid_grant` with this description.
    #[error("invalid grant: {0}")]
    InvalidGrant(&'static str),
    /// `invalid_request` with this description.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A throttle refused the request before any password was checked (README "Throttles").
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub const BAD_CREDENTIALS: &str = "No user found with that email, or password invalid.";
pub const INVALID_REFRESH_TOKEN: &str = "Invalid Refresh Token";
pub const BANNED: &str = "User is banned";

/// Mints an access token for `user` and starts a new session family with a random refresh token.
pub async fn start_session(
    state: &AppState,
    conn: &mut SqliteConnection,
    user: &User,
    now: Timestamp,
) -> anyhow::Result<TokenResponse> {
    let refresh = SecretToken::generate();
    let family = Uuid::new_v4().to_string();
    let access = mint_unique_access_token(state, conn, user, now).await?;
    refresh_tokens::insert_refresh_token(
        &mut *conn,
        &refresh.digest(),
        &access.digest,
        user.id,
        &family,
        None,
        now,
    )
    .await
    .context("storing a refresh token")?;
    Ok(token_response(access, &refresh))
}

/// GoTrue's claims carry no nonce, so two sessions of one user issued in the same second would
/// get byte-identical access tokens, and a password change could not tell the caller's session
/// from another. The store keeps each session's access-token digest; on a collision `exp` is
/// moved a second earlier until the token is unique (callers hold the write transaction, so
/// two issuances cannot race).
async fn mint_unique_access_token(
    state: &AppState,
    conn: &mut SqliteConnection,
    user: &User,
    now: Timestamp,
) -> anyhow::Result<MintedAccessToken> {
    let lifetime = state.settings.jwt.exp;
    for earlier in 0..=60 {
        let exp = now
            .plus(lifetime)
            .minus(std::time::Duration::from_secs(earlier));
        let token = mint_access_token(state, user, exp)?;
        let digest = digest_of(&token);
        if !refresh_tokens::access_digest_exists(&mut *conn, &digest)
            .await
            .context("checking the access token is unique")?
        {
            return Ok(MintedAccessToken {
                token,
                digest,
                expires_in: lifetime.as_secs().saturating_sub(earlier),
            });
        }
    }
    anyhow::bail!("could not mint a unique access token")
}

struct MintedAccessToken {
    token: String,
    digest: TokenDigest,
    /// Seconds until `exp`: the configured lifetime, less any nudge for uniqueness.
    expires_in: u64,
}

fn mint_access_token(state: &AppState, user: &User, exp: Timestamp) -> anyhow::Result<String> {
    let claims = AccessClaims {
        aud: &user.aud,
        exp: exp.unix(),
        sub: user.id.to_string(),
        email: &user.email,
        app_metadata: &user.app_metadata,
        user_metadata: &user.user_metadata,
    };
    state.jwt.issue(&claims).context("signing an access token")
}

/// What the store keeps of an access token: enough to find its session, nothing to replay.
fn digest_of(access_token: &str) -> TokenDigest {
    SecretToken::presented(access_token).digest()
}

fn token_response(access: MintedAccessToken, refresh: &SecretToken) -> TokenResponse {
    TokenResponse {
        access_token: access.token,
        token_type: "bearer",
        expires_in: access.expires_in,
        refresh_token: refresh.expose().to_owned(),
    }
}

/// The password grant. The password is checked first, always with the same argon2 work, so
/// "unknown", "unconfirmed" and "wrong password" cannot be told apart without the password
/// (DESIGN §4.4).
#[tracing::instrument(skip_all)]
pub async fn password_grant(
    state: &AppState,
    aud: &str,
    email: &str,
    password: &str,
) -> Result<TokenResponse, TokenError> {
    let user = super::credentials::check_password(state, aud, email, password)
        .await?
        .ok_or(TokenError::InvalidGrant(BAD_CREDENTIALS))?;
    let mut tx = crate::db::begin_write(&state.db)
        .await
        .context("starting a transaction")?;
    // Decide on the row as it is now: a ban or a password change may have landed while the
    // password was being hashed, and that must win.
    let Some(user) = users::find_user_by_id(&mut *tx, user.id)
        .await
        .context("reloading the user")?
        .filter(|fresh| fresh.password_hash == user.password_hash)
    else {
        return Err(TokenError::InvalidGrant(BAD_CREDENTIALS));
    };
    let now = state.clock.now();
    if !user.is_confirmed() {
        return Err(TokenError::InvalidGrant("Email not confirmed"));
    }
    if user.is_banned(now) {
        return Err(TokenError::InvalidGrant(BANNED));
    }
    users::record_sign_in(&mut *tx, user.id, now)
        .await
        .context("recording the sign-in")?;
    let response = start_session(state, &mut tx, &user, now).await?;
    audit::record(
        &mut *tx,
        &Actor::user(&user),
        Action::Login,
        json!({"provider": "email"}),
        now,
    )
    .await
    .context("auditing the login")?;
    tx.commit().await.context("committing the login")?;
    Ok(response)
}

/// The refresh grant with rotation and reuse detection (DESIGN §4.3).
#[tracing::instrument(skip_all)]
pub async fn refresh_grant(state: &AppState, presented: &str) -> Result<TokenResponse, TokenError> {
    if presented.is_empty() {
        return Err(TokenError::InvalidRequest("refresh_token required"));
    }
    let presented = SecretToken::presented(presented);
    let now = state.clock.now();
    let mut tx = crate::db::begin_write(&state.db)
        .await
        .context("starting a transaction")?;
    let Some(record) = refresh_tokens::find_refresh_token(&mut *tx, &presented.digest())
        .await
        .context("looking up a refresh token")?
    else {
        return Err(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN));
    };
    if record.revoked_at.is_some() {
        return Err(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN));
    }
    // Each refresh creates a new row, so this is an inactivity timeout (spec §3.2).
    if record
        .created_at
        .plus(state.settings.jwt.refresh_token_lifetime)
        <= now
    {
        return Err(TokenError::InvalidGrant("Refresh token expired"));
    }
    let Some(user) = users::find_user_by_id(&mut *tx, record.user_id)
        .await
        .context("loading the token's user")?
    else {
        return Err(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN));
    };
    if user.is_banned(now) {
        return Err(TokenError::InvalidGrant(BANNED));
    }

    let successor = state.rotation.successor_of(&presented);
    let rotated_now = record.rotated_at.is_none()
        && refresh_tokens::mark_rotated(&mut *tx, record.id, now)
            .await
            .context("rotating a refresh token")?;
    if rotated_now {
        let access = mint_unique_access_token(state, &mut tx, &user, now).await?;
        refresh_tokens::insert_refresh_token(
            &mut *tx,
            &successor.digest(),
            &access.digest,
            user.id,
            &record.family_id,
            Some(record.id),
            now,
        )
        .await
        .context("storing the successor token")?;
        audit::record(
            &mut *tx,
            &Actor::user(&user),
            Action::TokenRefreshed,
            json!({}),
            now,
        )
        .await
        .context("auditing the refresh")?;
        tx.commit().await.context("committing the refresh")?;
        return Ok(token_response(access, &successor));
    }

    // Already rotated: inside the grace window answer with the family's live head, found by
    // deriving successors along the chain; later, it is reuse.
    let rotated_at = record.rotated_at.unwrap_or(now);
    let head = if rotated_at.plus(REUSE_GRACE) >= now {
        live_head(state, &mut tx, successor).await?
    } else {
        None
    };
    if let Some((head, head_id)) = head {
        let access = mint_unique_access_token(state, &mut tx, &user, now).await?;
        refresh_tokens::set_access_digest(&mut *tx, head_id, &access.digest)
            .await
            .context("recording the reissued access token")?;
        tx.commit().await.context("committing the reissue")?;
        return Ok(token_response(access, &head));
    }
    refresh_tokens::revoke_family(&mut *tx, &record.family_id, now)
        .await
        .context("revoking a reused family")?;
    audit::record(
        &mut *tx,
        &Actor::user(&user),
        Action::TokenRevoked,
        json!({"reason": "refresh token reused"}),
        now,
    )
    .await
    .context("auditing the revocation")?;
    tx.commit().await.context("committing the revocation")?;
    tracing::warn!(user_id = %user.id, "a rotated refresh token was reused: session revoked");
    Err(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN))
}

/// Follows derived successors from `first` to the live, unrotated token at the end of the
/// chain (two tabs may each have refreshed more than once inside the window).
async fn live_head(
    state: &AppState,
    conn: &mut SqliteConnection,
    first: SecretToken,
) -> anyhow::Result<Option<(SecretToken, i64)>> {
    let mut candidate = first;
    for _ in 0..16 {
        let Some(record) = refresh_tokens::find_refresh_token(&mut *conn, &candidate.digest())
            .await
            .context("following the rotation chain")?
        else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        if record.rotated_at.is_none() {
            return Ok(Some((candidate, record.id)));
        }
        candidate = state.rotation.successor_of(&candidate);
    }
    Ok(None)
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    #[error("the token's user does not exist")]
    UnknownUser,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Ends every session of the user (spec §1.7); access tokens live until they expire.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn logout(state: &AppState, user_id: Uuid) -> Result<(), LogoutError> {
    let now = state.clock.now();
    let mut tx = crate::db::begin_write(&state.db)
        .await
        .context("starting a transaction")?;
    let user = users::find_user_by_id(&mut *tx, user_id)
        .await
        .context("loading the user")?
        .ok_or(LogoutError::UnknownUser)?;
    refresh_tokens::revoke_user_refresh_tokens(&mut *tx, user.id, None, now)
        .await
        .context("revoking refresh tokens")?;
    audit::record(
        &mut *tx,
        &Actor::user(&user),
        Action::Logout,
        json!({}),
        now,
    )
    .await
    .context("auditing the logout")?;
    tx.commit().await.context("committing the logout")?;
    Ok(())
}
