//! `/token` (password and refresh grants), `/logout`, and issuing a session for any flow.

use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action, Origin};
use super::credentials::{LoginFailure, record_failed_login};
use super::sessions::SessionError;
use super::throttle::{self, Limit, ThrottleError};
use crate::auth::jwt::AccessClaims;
use crate::domain::metadata::Metadata;
use crate::domain::mfa::Assurance;
use crate::domain::one_time_token::SecretToken;
use crate::domain::session::{EndReason, SessionRefusal, check_session};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::prelude::*;

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
    /// The session both tokens belong to (the seed page's session cookie names it); not sent.
    #[serde(skip)]
    pub session_id: Uuid,
    /// What the `nf_jwt` cookie carries: `access_token`, or a slimmer token of the same
    /// session when that would not fit in a cookie (`cookie_access_token`); not sent.
    #[serde(skip)]
    pub cookie_token: String,
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
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

pub const BAD_CREDENTIALS: &str = "No user found with that email, or password invalid.";
pub const INVALID_REFRESH_TOKEN: &str = "Invalid Refresh Token";
pub const BANNED: &str = "User is banned";

/// Starts a new session for `user`: a `sessions` row, its first refresh token, and an access
/// token naming it.
pub async fn start_session(
    state: &AppState,
    conn: &mut Conn<'_>,
    user: &User,
    now: Timestamp,
) -> anyhow::Result<TokenResponse> {
    start_session_by(state, conn, user, "password", now).await
}

/// `start_session` for a first factor other than a password (`method` is the `amr` entry:
/// supabase/auth's `email/signup`, `invite`, `recovery`, `email_change`).
pub async fn start_session_by(
    state: &AppState,
    conn: &mut Conn<'_>,
    user: &User,
    method: &str,
    now: Timestamp,
) -> anyhow::Result<TokenResponse> {
    let session_id = Uuid::new_v4();
    conn.insert_session(session_id, user.id, now)
        .await
        .context("storing the session")?;
    if method != "password" {
        conn.set_sign_in_method(session_id, method)
            .await
            .context("recording how the session started")?;
    }
    let refresh = first_refresh_token(conn, user.id, session_id, now).await?;
    let assurance = Assurance::first_factor(method, now);
    token_response(state, user, session_id, &assurance, &refresh, now)
}

/// A fresh refresh token opening a chain in `session_id` (a login, or a second factor raising
/// the session): stored as a digest, answered once.
pub(super) async fn first_refresh_token(
    conn: &mut Conn<'_>,
    user_id: UserId,
    session_id: Uuid,
    now: Timestamp,
) -> anyhow::Result<SecretToken> {
    let refresh = SecretToken::generate();
    conn.insert_refresh_token(&refresh.digest(), user_id, session_id, None, now)
        .await
        .context("storing a refresh token")?;
    Ok(refresh)
}

/// Mints the access token for a session. The `session_id` claim makes it distinct from every
/// other session's token, so minting needs no look-up and cannot fail for a busy user.
/// `assurance` is what the session has proved (its `aal` and `amr` claims).
pub(crate) fn token_response(
    state: &AppState,
    user: &User,
    session_id: Uuid,
    assurance: &Assurance,
    refresh: &SecretToken,
    now: Timestamp,
) -> anyhow::Result<TokenResponse> {
    let lifetime = state.settings.jwt.exp;
    let exp = now.plus(lifetime).unix();
    let minted = Minted {
        user,
        session_id,
        assurance,
        exp,
    };
    let access_token = mint_access_token(state, &minted, Slimming::Full)?;
    let cookie_token = cookie_access_token(state, &minted, &access_token)?;
    Ok(TokenResponse {
        access_token,
        token_type: "bearer",
        expires_in: lifetime.as_secs(),
        refresh_token: refresh.expose().to_owned(),
        session_id,
        cookie_token,
    })
}

/// The most an `nf_jwt` value may take, so that the whole cookie (name, value and attributes,
/// about 100 bytes) stays under the 4096 bytes browsers keep; a larger cookie is dropped
/// silently.
pub const NF_JWT_MAX_VALUE: usize = 3800;

/// How much of the user's metadata a token carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slimming {
    /// GoTrue's claims as they are.
    Full,
    /// `user_metadata` empty: what the CDN and functions read (roles) stays.
    NoUserMetadata,
    /// Also only `provider` and `roles` of `app_metadata`.
    RolesOnly,
    /// Both metadata objects empty: `aud`, `exp`, `sub`, `email`, `session_id`.
    Bare,
}

/// The token for the `nf_jwt` cookie: the full access token when it fits in
/// `NF_JWT_MAX_VALUE`, else the first of the slimmer forms that does (same session, same `exp`:
/// a real access token that the API accepts like the full one).
fn cookie_access_token(
    state: &AppState,
    minted: &Minted<'_>,
    full: &str,
) -> anyhow::Result<String> {
    if full.len() <= NF_JWT_MAX_VALUE {
        return Ok(full.to_owned());
    }
    let mut token = String::new();
    for slimming in [
        Slimming::NoUserMetadata,
        Slimming::RolesOnly,
        Slimming::Bare,
    ] {
        token = mint_access_token(state, minted, slimming)?;
        if token.len() <= NF_JWT_MAX_VALUE {
            break;
        }
    }
    Ok(token)
}

/// What every access token of one response shares.
struct Minted<'a> {
    user: &'a User,
    session_id: Uuid,
    assurance: &'a Assurance,
    exp: i64,
}

fn mint_access_token(
    state: &AppState,
    minted: &Minted<'_>,
    slimming: Slimming,
) -> anyhow::Result<String> {
    let user = minted.user;
    let amr = minted.assurance.amr();
    let empty = Metadata::new();
    let roles_only: Metadata = user
        .app_metadata
        .iter()
        .filter(|(key, _)| *key == "provider" || *key == "roles")
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let (app_metadata, user_metadata) = match slimming {
        Slimming::Full => (&user.app_metadata, &user.user_metadata),
        Slimming::NoUserMetadata => (&user.app_metadata, &empty),
        Slimming::RolesOnly => (&roles_only, &empty),
        Slimming::Bare => (&empty, &empty),
    };
    let claims = AccessClaims {
        aud: &user.aud,
        exp: minted.exp,
        sub: user.id,
        email: &user.email,
        app_metadata,
        user_metadata,
        session_id: minted.session_id,
        aal: minted.assurance.aal.as_str(),
        amr: &amr,
    };
    state.jwt.issue(&claims).context("signing an access token")
}

/// The password grant. The password is checked first, always with the same argon2 work, so
/// "unknown", "unconfirmed" and "wrong password" cannot be told apart without the password
/// (DESIGN §4.4).
///
/// A refused login whose password check ran is logged and audited (`login_failed`); the
/// answer does not change.
#[tracing::instrument(skip_all)]
pub async fn password_grant(
    state: &AppState,
    slot: crate::auth::password_hasher::HashSlot,
    aud: &str,
    email: &str,
    password: &str,
    origin: &Origin,
) -> Result<TokenResponse, TokenError> {
    let checked =
        super::credentials::check_password(state, slot, aud, email, password, origin, "email")
            .await?;
    let Some(user) = checked else {
        return Err(TokenError::InvalidGrant(BAD_CREDENTIALS));
    };
    let refuse = |user, failure, answer| refuse_login(state, origin, email, user, failure, answer);
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    // Decide on the row as it is now: a ban or a password change may have landed while the
    // password was being hashed, and that must win.
    let Some(user) = tx
        .find_user_by_id(user.id)
        .await
        .context("reloading the user")?
        .filter(|fresh| fresh.password_hash == user.password_hash)
    else {
        drop(tx);
        return refuse(
            Some(&user),
            LoginFailure::InvalidCredentials,
            TokenError::InvalidGrant(BAD_CREDENTIALS),
        )
        .await;
    };
    let now = state.clock.now();
    if !user.is_confirmed() {
        drop(tx);
        return refuse(
            Some(&user),
            LoginFailure::EmailNotConfirmed,
            TokenError::InvalidGrant("Email not confirmed"),
        )
        .await;
    }
    if user.is_banned(now) {
        drop(tx);
        return refuse(
            Some(&user),
            LoginFailure::Banned,
            TokenError::InvalidGrant(BANNED),
        )
        .await;
    }
    tx.record_sign_in(user.id, now)
        .await
        .context("recording the sign-in")?;
    let response = start_session(state, &mut tx.conn(), &user, now).await?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&user),
        Action::Login,
        origin.with(json!({"provider": "email"})),
        now,
    )
    .await
    .context("auditing the login")?;
    tx.commit().await.context("committing the login")?;
    Ok(response)
}

/// Records a refused password login, then answers `answer`.
async fn refuse_login(
    state: &AppState,
    origin: &Origin,
    email: &str,
    user: Option<&User>,
    failure: LoginFailure,
    answer: TokenError,
) -> Result<TokenResponse, TokenError> {
    record_failed_login(state, origin, "email", email, user, failure).await?;
    Err(answer)
}

/// The refresh grant with rotation and reuse detection (DESIGN §4.3). The request counts
/// against the `/token` throttle of `client` (`GOTRUE_RATE_LIMIT_TOKEN_REFRESH`) whatever the
/// answer, and a limited client learns nothing about the token (429).
///
/// The token, its session and its user are read first outside the write gate (a WAL reader
/// waits for no writer), so a refusal (unknown, revoked, expired, ended) costs one throttle
/// write and never waits for the gate. Once the gate is held, the request is counted (a
/// throttled one writes nothing else), and the rows read are decided on again at that moment;
/// a token they still let refresh is rotated in one round trip, provided neither its user nor
/// its session row moved since the read (`refresh_tokens::rotate_in_own_transaction` checks
/// their versions). Anything else (a ban, a logout, a removed factor, changed roles or another
/// tab's refresh committed meanwhile, or a token already rotated) is decided again inside a
/// transaction on the rows as they are then, so the new access token never carries what the
/// first read saw of a row that has changed.
///
/// Why the first path: every statement sent while the gate is held is a round trip to the
/// connection's thread, and under a login flood each one waits for a core while every other
/// writer waits for the gate (BENCHMARKS.md: refresh p99 under the flood).
#[tracing::instrument(skip_all)]
pub async fn refresh_grant(
    state: &AppState,
    presented: &str,
    client: &str,
) -> Result<TokenResponse, TokenError> {
    if presented.is_empty() {
        count_token_request(state, client).await?;
        return Err(TokenError::InvalidRequest("refresh_token required"));
    }
    let presented = SecretToken::presented(presented);
    let found = {
        let mut conn = state
            .store
            .read()
            .await
            .context("reading a refresh token")?;
        conn.find_refresh_token_with_owner(&presented.digest())
            .await
            .context("looking up a refresh token")?
    };
    let may_rotate = match decide_refresh(state, found.clone(), state.clock.now()) {
        RefreshState::Refused(refusal) => {
            count_token_request(state, client).await?;
            return Err(refusal);
        }
        RefreshState::Live(_) => true,
        RefreshState::Rotated(_) => false,
    };
    let mut writer = state.store.writer().await.context("waiting to write")?;
    throttle::check_in(&mut writer.conn(), state, Limit::Token, client)
        .await
        .map_err(throttled)?;
    // The time the gate was taken: a session that timed out while this waited is over.
    let now = state.clock.now();
    if may_rotate
        && let Some((live, successor)) =
            rotate_as_read(state, &mut writer, &presented, found, now).await?
    {
        // The gate goes before the access token is signed: no other writer waits for that.
        drop(writer);
        return Ok(token_response(
            state,
            &live.user,
            live.record.session_id,
            &live.assurance,
            &successor,
            now,
        )?);
    }
    let mut tx = writer.begin().await.context("starting a transaction")?;
    let result = refresh_in(state, &mut tx.conn(), &presented, now).await;
    // A refusal still commits: a reuse's revocation stands.
    match result {
        Err(TokenError::Unexpected(e)) => Err(TokenError::Unexpected(e)),
        result => {
            tx.commit().await.context("committing the refresh")?;
            result
        }
    }
}

/// The usual refresh: `found` (read before the gate) decided on again at `now`, and rotated
/// in one round trip if its user and session rows are still as read; answers what the token
/// response is made of (the rows read and the successor). `None`, having written nothing, when
/// the rows no longer let it refresh or either one moved: the caller decides again on the rows
/// as they are.
async fn rotate_as_read(
    state: &AppState,
    writer: &mut crate::store::Writer,
    presented: &SecretToken,
    found: Option<crate::store::RefreshTokenWithOwner>,
    now: Timestamp,
) -> Result<Option<(LiveRefresh, SecretToken)>, TokenError> {
    let Some(seen) = found.as_ref().and_then(|found| found.versions) else {
        return Ok(None);
    };
    let RefreshState::Live(live) = decide_refresh(state, found, now) else {
        return Ok(None);
    };
    let successor = state.rotation.successor_of(presented);
    let audit = audit::entry(
        &Actor::user(&live.user),
        Action::TokenRefreshed,
        json!({}),
        now,
    );
    let rotated = writer
        .rotate_if_unchanged(
            live.record.id,
            &successor.digest(),
            live.user.id,
            live.record.session_id,
            seen,
            &audit,
            now,
        )
        .await;
    // Whatever the outcome, it may have committed: cached auth rules must read again.
    state.write_epoch.bump();
    if !rotated.context("rotating a refresh token")? {
        return Ok(None);
    }
    Ok(Some((live, successor)))
}

/// A presented refresh token as the store has it at one moment.
enum RefreshState {
    /// Live and never rotated: rotate it (only on rows the caller knows are current: the
    /// token response is made from this user and assurance).
    Live(LiveRefresh),
    /// Already rotated: the grace window or reuse detection decides (`refresh_in`).
    Rotated(LiveRefresh),
    /// Refused with this answer.
    Refused(TokenError),
}

/// A presented token whose session and user may refresh.
struct LiveRefresh {
    record: crate::store::RefreshTokenRecord,
    user: User,
    assurance: Assurance,
}

/// Reads the presented token, its session, the session's assurance and its user (one
/// statement), and decides what they allow at `now`.
async fn refresh_state(
    state: &AppState,
    conn: &mut Conn<'_>,
    presented: &SecretToken,
    now: Timestamp,
) -> anyhow::Result<RefreshState> {
    let found = conn
        .find_refresh_token_with_owner(&presented.digest())
        .await
        .context("looking up a refresh token")?;
    Ok(decide_refresh(state, found, now))
}

/// What the rows of a presented token allow at `now` (`None`: no such token).
fn decide_refresh(
    state: &AppState,
    found: Option<crate::store::RefreshTokenWithOwner>,
    now: Timestamp,
) -> RefreshState {
    let refused = |reason| RefreshState::Refused(TokenError::InvalidGrant(reason));
    let Some(found) = found else {
        return refused(INVALID_REFRESH_TOKEN);
    };
    let record = found.token;
    if record.revoked_at.is_some() {
        return refused(INVALID_REFRESH_TOKEN);
    }
    // Each refresh creates a new row, so this is an inactivity timeout (spec §3.2).
    if record
        .created_at
        .plus(state.settings.jwt.refresh_token_lifetime)
        <= now
    {
        return refused("Refresh token expired");
    }
    // The session decides: ended (logout, password change, ban, an admin, reuse) or its user
    // gone means the token is dead; a ban says so.
    let user = found.user;
    let (session, assurance) = found.session.unzip();
    match check_session(
        user.as_ref(),
        session.as_ref(),
        now,
        &state.settings.sessions,
    ) {
        Ok(()) => {}
        Err(SessionRefusal::Banned) => return refused(BANNED),
        Err(SessionRefusal::UnknownUser | SessionRefusal::Ended) => {
            return refused(INVALID_REFRESH_TOKEN);
        }
    }
    let Some(user) = user else {
        return refused(INVALID_REFRESH_TOKEN);
    };
    let assurance =
        assurance.unwrap_or_else(|| Assurance::first_factor("password", record.created_at));
    let live = LiveRefresh {
        record,
        user,
        assurance,
    };
    if live.record.rotated_at.is_none() {
        RefreshState::Live(live)
    } else {
        RefreshState::Rotated(live)
    }
}

/// Rotates a live token into its successor and answers with it; `None`, having written
/// nothing, when another request rotated or revoked it first.
async fn rotate(
    state: &AppState,
    conn: &mut Conn<'_>,
    presented: &SecretToken,
    live: &LiveRefresh,
    now: Timestamp,
) -> Result<Option<TokenResponse>, TokenError> {
    let LiveRefresh {
        record,
        user,
        assurance,
    } = live;
    let successor = state.rotation.successor_of(presented);
    let audit = audit::entry(&Actor::user(user), Action::TokenRefreshed, json!({}), now);
    let rotated = conn
        .rotate_refresh_token(
            record.id,
            &successor.digest(),
            user.id,
            record.session_id,
            &audit,
            now,
        )
        .await
        .context("rotating a refresh token")?;
    if !rotated {
        return Ok(None);
    }
    Ok(Some(token_response(
        state,
        user,
        record.session_id,
        assurance,
        &successor,
        now,
    )?))
}

/// The refresh grant decided inside the write transaction `tx`, on the rows as they are.
async fn refresh_in(
    state: &AppState,
    tx: &mut Conn<'_>,
    presented: &SecretToken,
    now: Timestamp,
) -> Result<TokenResponse, TokenError> {
    let live = match refresh_state(state, tx, presented, now).await? {
        RefreshState::Refused(refusal) => return Err(refusal),
        // The write lock is held, so nothing can rotate it between the read and the rotation.
        RefreshState::Live(live) => {
            return rotate(state, tx, presented, &live, now)
                .await?
                .ok_or(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN));
        }
        RefreshState::Rotated(live) => live,
    };
    let LiveRefresh {
        record,
        user,
        assurance,
    } = live;
    // Already rotated: inside the grace window answer with the session's live head, found by
    // deriving successors along the chain; later, it is reuse.
    let rotated_at = record.rotated_at.unwrap_or(now);
    let head = if rotated_at.plus(REUSE_GRACE) >= now {
        live_head(
            state,
            &mut *tx,
            state.rotation.possible_successors_of(presented),
        )
        .await?
    } else {
        None
    };
    if let Some(head) = head {
        // Nothing was written: the same session's head, with a fresh access token.
        return Ok(token_response(
            state,
            &user,
            record.session_id,
            &assurance,
            &head,
            now,
        )?);
    }
    tx.end_session(record.session_id, EndReason::RefreshTokenReuse, now)
        .await
        .context("ending a session whose refresh token was reused")?;
    audit::record(
        &mut *tx,
        &Actor::user(&user),
        Action::TokenRevoked,
        json!({"reason": "refresh token reused"}),
        now,
    )
    .await
    .context("auditing the revocation")?;
    tracing::warn!(user_id = %user.id, "a rotated refresh token was reused: session revoked");
    Err(TokenError::InvalidGrant(INVALID_REFRESH_TOKEN))
}

/// Counts one `/token` request of `client` on its own (a refusal decided before the write).
async fn count_token_request(state: &AppState, client: &str) -> Result<(), TokenError> {
    throttle::check(state, Limit::Token, client)
        .await
        .map_err(throttled)
}

fn throttled(e: ThrottleError) -> TokenError {
    match e {
        ThrottleError::Limited(wait) => TokenError::RateLimited(wait),
        ThrottleError::Unexpected(e) => TokenError::Unexpected(e),
    }
}

/// Follows derived successors from `first` (the presented token's possible successors) to
/// the live, unrotated token at the end of the chain (two tabs may each have refreshed more than once inside the window).
async fn live_head(
    state: &AppState,
    conn: &mut Conn<'_>,
    first: Vec<SecretToken>,
) -> anyhow::Result<Option<SecretToken>> {
    let mut candidates = first;
    for _ in 0..16 {
        // Links made before a JWT secret rotation were derived with a previous secret.
        let mut found = None;
        for candidate in candidates {
            if let Some(record) = conn
                .find_refresh_token(&candidate.digest())
                .await
                .context("following the rotation chain")?
            {
                found = Some((candidate, record));
                break;
            }
        }
        let Some((candidate, record)) = found else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        if record.rotated_at.is_none() {
            return Ok(Some(candidate));
        }
        candidates = state.rotation.possible_successors_of(&candidate);
    }
    Ok(None)
}

#[derive(Debug, thiserror::Error)]
pub enum LogoutError {
    /// The token's user is gone, or its session has already ended.
    #[error(transparent)]
    Refused(SessionRefusal),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// Ends every session of the user, as GoTrue's logout does (spec §1.7): their access tokens
/// are refused from now on. A token of an ended session cannot log out (401).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn logout(
    state: &AppState,
    user_id: UserId,
    session_id: Option<Uuid>,
) -> Result<(), LogoutError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let user = match super::sessions::session_user(
        &mut tx.conn(),
        user_id,
        session_id,
        now,
        &state.settings.sessions,
    )
    .await
    {
        Ok(user) => user,
        // A banned user's sessions ended with the ban; nothing is left to end.
        Err(SessionError::Refused(refusal)) => return Err(LogoutError::Refused(refusal)),
        Err(SessionError::Unexpected(e)) => return Err(e.into()),
    };
    tx.end_user_sessions(user.id, None, EndReason::Logout, now)
        .await
        .context("ending the sessions")?;
    audit::record(
        &mut tx.conn(),
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
