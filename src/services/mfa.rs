//! TOTP multi-factor authentication, as supabase/auth does it: enroll a factor, challenge it,
//! verify a code (the session rises to aal2), unenroll; the aal2 rule for paths where access
//! matters; and the console's second login step and enrollment.

use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use uuid::Uuid;

use super::Actor;
use super::audit::{self, Action};
use super::sessions::{SessionError, session_user};
use super::throttle::{self, Limit, ThrottleError};
use super::token::{TokenResponse, token_response};
use crate::auth::totp::{self, TotpKey};
use crate::domain::mfa::{Aal, Factor, FactorStatus, InsufficientAal, TOTP, check_assurance};
use crate::domain::one_time_token::SecretToken;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};
use crate::state::AppState;
use crate::store::Conn;
use crate::store::prelude::*;

/// An enrollment not verified this long is dropped at the user's next enrollment (supabase/auth's
/// `GOTRUE_MFA_FACTOR_EXPIRY_DURATION` default).
pub const FACTOR_EXPIRY: Duration = Duration::from_secs(300);

/// How long the console waits for the code after a right password.
pub const CONSOLE_SECOND_STEP_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum MfaError {
    /// The session is not live, the user is gone or banned (answered as `/user` answers).
    #[error(transparent)]
    Session(#[from] SessionError),
    /// The admin API named no existing user (404).
    #[error("user not found")]
    UserNotFound,
    /// No such factor for this user (404, as supabase/auth's `loadFactor`).
    #[error("factor not found")]
    FactorNotFound,
    /// 422 `too_many_enrolled_mfa_factors`.
    #[error("too many factors")]
    TooManyFactors,
    /// 422 `mfa_factor_name_conflict`.
    #[error("friendly name already used")]
    FriendlyNameTaken,
    /// `insufficient_aal`: the user has a verified factor and this session has not used it.
    #[error("{0}")]
    InsufficientAal(&'static str),
    /// 422 `mfa_factor_not_found`: the challenge is unknown, another factor's, or answered.
    #[error("challenge not found")]
    ChallengeNotFound,
    /// 422 `mfa_challenge_expired`.
    #[error("challenge expired")]
    ChallengeExpired(Uuid),
    /// 422 `mfa_ip_address_mismatch`.
    #[error("challenge and verify IP addresses differ")]
    IpMismatch,
    /// 422 `mfa_verification_failed`: wrong, expired or already used code.
    #[error("invalid code")]
    InvalidCode,
    /// 400 `validation_failed`.
    #[error("{0}")]
    Invalid(&'static str),
    #[error("rate limited; retry after {0:?}")]
    RateLimited(Duration),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<ThrottleError> for MfaError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Limited(wait) => MfaError::RateLimited(wait),
            ThrottleError::Unexpected(e) => MfaError::Unexpected(e),
        }
    }
}

/// A factor just enrolled: the only time its secret is shown.
#[derive(Debug)]
pub struct Enrollment {
    pub factor: Factor,
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://totp/...`.
    pub uri: String,
    /// The URI as an SVG `data:` URI.
    pub qr_code: Option<String>,
}

/// A user's factors (the `factors` list of the user object; no secrets).
pub async fn list_factors(state: &AppState, user_id: UserId) -> anyhow::Result<Vec<Factor>> {
    state
        .store
        .pool()
        .list_factors(user_id)
        .await
        .context("listing factors")
}

/// The session's level; aal1 for an unknown session.
async fn session_aal(conn: &mut Conn<'_>, session_id: Option<Uuid>) -> anyhow::Result<Aal> {
    let Some(id) = session_id else {
        return Ok(Aal::Aal1);
    };
    Ok(conn
        .session_assurance(id)
        .await
        .context("loading the session's assurance")?
        .map_or(Aal::Aal1, |a| a.aal))
}

/// The aal2 rule (`domain::mfa::check_assurance`) for a user and what they present: the
/// session's level, and the access token's `aal` claim when a token is presented (`token_aal`;
/// `None` for the seed page's session cookie). The lower counts, so a token minted before its
/// session stepped up stays aal1: the client must use the pair `verify` answered.
/// With `CHIPFLAP_MFA_REQUIRED`, every user needs aal2 there, factor or not.
pub async fn require_assurance(
    state: &AppState,
    conn: &mut Conn<'_>,
    user_id: UserId,
    session_id: Option<Uuid>,
    token_aal: Option<Aal>,
) -> Result<(), RequireAssuranceError> {
    let needs_aal2 = state.settings.mfa.required
        || conn
            .has_verified_factor(user_id)
            .await
            .context("looking for verified factors")?;
    if !needs_aal2 {
        return Ok(());
    }
    let session = session_aal(conn, session_id).await?;
    assurance_rule(state.settings.mfa.required, needs_aal2, session, token_aal)?;
    Ok(())
}

/// The rule `require_assurance` applies to what it read: aal2 is needed with
/// `CHIPFLAP_MFA_REQUIRED` (`mfa_required`) or a verified factor; the level presented is the
/// session's, lowered to the token's claim when there is one (`domain::mfa::check_assurance`).
pub fn assurance_rule(
    mfa_required: bool,
    has_verified_factor: bool,
    session_aal: Aal,
    token_aal: Option<Aal>,
) -> Result<(), InsufficientAal> {
    let aal = token_aal.map_or(session_aal, |t| t.min(session_aal));
    check_assurance(aal, mfa_required || has_verified_factor)
}

/// `require_assurance` on a pooled connection.
pub async fn require_assurance_of(
    state: &AppState,
    user_id: UserId,
    session_id: Option<Uuid>,
    token_aal: Option<Aal>,
) -> Result<(), RequireAssuranceError> {
    let mut conn = state.store.read().await.context("connecting")?;
    require_assurance(state, &mut conn.conn(), user_id, session_id, token_aal).await
}

#[derive(Debug, thiserror::Error)]
pub enum RequireAssuranceError {
    #[error(transparent)]
    Insufficient(#[from] InsufficientAal),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The issuer shown in authenticator apps: the caller's, or the site's host (supabase/auth).
fn issuer(state: &AppState, requested: Option<&str>) -> String {
    requested
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(100).collect())
        .or_else(|| state.settings.http.site_url.host_str().map(str::to_owned))
        .unwrap_or_else(|| "chipflap".to_owned())
}

/// Creates an unverified TOTP factor and answers its secret once. With a verified factor
/// already, the session must be aal2 (supabase/auth: "AAL2 required to enroll a new factor").
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn enroll(
    state: &AppState,
    user_id: UserId,
    session_id: Option<Uuid>,
    friendly_name: Option<String>,
    requested_issuer: Option<&str>,
) -> Result<Enrollment, MfaError> {
    let now = state.clock.now();
    let friendly_name = friendly_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if friendly_name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 100)
    {
        return Err(MfaError::Invalid(
            "friendly_name is longer than 100 characters",
        ));
    }
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let user = session_user(
        &mut tx.conn(),
        user_id,
        session_id,
        now,
        &state.settings.sessions,
    )
    .await?;
    tx.delete_expired_factors(user.id, now.minus(FACTOR_EXPIRY))
        .await
        .context("dropping expired enrollments")?;
    let existing = tx.list_factors(user.id).await.context("listing factors")?;
    if friendly_name.is_some() && existing.iter().any(|f| f.friendly_name == friendly_name) {
        return Err(MfaError::FriendlyNameTaken);
    }
    if existing.len() >= state.settings.mfa.max_enrolled_factors as usize {
        return Err(MfaError::TooManyFactors);
    }
    let verified = existing.iter().any(Factor::is_verified);
    if check_assurance(session_aal(&mut tx.conn(), session_id).await?, verified).is_err() {
        return Err(MfaError::InsufficientAal(
            "AAL2 required to enroll a new factor",
        ));
    }
    let enrollment = create_factor(
        state,
        &mut tx.conn(),
        &user,
        friendly_name,
        requested_issuer,
        now,
    )
    .await?;
    tx.commit().await.context("committing the enrollment")?;
    Ok(enrollment)
}

async fn create_factor(
    state: &AppState,
    conn: &mut Conn<'_>,
    user: &User,
    friendly_name: Option<String>,
    requested_issuer: Option<&str>,
    now: Timestamp,
) -> Result<Enrollment, MfaError> {
    let key = TotpKey::generate();
    let factor = Factor {
        id: Uuid::new_v4(),
        user_id: user.id,
        friendly_name,
        factor_type: TOTP.to_owned(),
        status: FactorStatus::Unverified,
        last_used_step: None,
        created_at: now,
        updated_at: now,
    };
    let issuer = issuer(state, requested_issuer);
    let uri = key
        .uri(&issuer, &user.email)
        .context("building the otpauth URI")?;
    let secret = key.base32().context("encoding the secret")?;
    let sealed = state.factor_secret.seal(factor.id, key.as_bytes())?;
    conn.insert_factor(&factor, &sealed)
        .await
        .context("storing the factor")?;
    audit::record(
        &mut *conn,
        &Actor::user(user),
        Action::FactorInProgress,
        json!({"factor_id": factor.id}),
        now,
    )
    .await
    .context("auditing the enrollment")?;
    Ok(Enrollment {
        qr_code: totp::qr_code_svg(&uri),
        factor,
        secret,
        uri,
    })
}

/// The caller, through the one session rule, and one of their own factors (another user's
/// factor is not found), read inside the caller's write transaction.
async fn caller_and_factor(
    state: &AppState,
    tx: &mut Conn<'_>,
    user_id: UserId,
    session_id: Option<Uuid>,
    factor_id: Uuid,
) -> Result<(User, Factor), MfaError> {
    let now = state.clock.now();
    let user = session_user(&mut *tx, user_id, session_id, now, &state.settings.sessions).await?;
    let (factor, _) = tx
        .find_factor(user.id, factor_id)
        .await
        .context("loading the factor")?
        .ok_or(MfaError::FactorNotFound)?;
    Ok((user, factor))
}

/// Creates a challenge for one of the user's factors; answers its id and expiry.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn challenge(
    state: &AppState,
    user_id: UserId,
    session_id: Option<Uuid>,
    factor_id: Uuid,
    ip: &str,
) -> Result<(Uuid, Timestamp), MfaError> {
    throttle::check(state, Limit::MfaChallengeAndVerify, ip).await?;
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let (user, factor) =
        caller_and_factor(state, &mut tx.conn(), user_id, session_id, factor_id).await?;
    let expiry = state.settings.mfa.challenge_expiry;
    let challenge = crate::store::Challenge {
        id: Uuid::new_v4(),
        factor_id: factor.id,
        ip_address: ip.to_owned(),
        created_at: now,
        verified_at: None,
    };
    tx.insert_challenge(&challenge, now.minus(expiry))
        .await
        .context("storing the challenge")?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&user),
        Action::ChallengeCreated,
        json!({"factor_id": factor.id, "factor_status": factor.status.as_str()}),
        now,
    )
    .await
    .context("auditing the challenge")?;
    tx.commit().await.context("committing the challenge")?;
    Ok((challenge.id, now.plus(expiry)))
}

/// Checks `code` against the factor's key at `now` and marks its time step used, in the
/// caller's transaction: a code is accepted once (ASVS V6.5.1), and codes are throttled per
/// user before any is checked (V6.6.3). Answers the factor as it was.
async fn accept_code(
    state: &AppState,
    conn: &mut Conn<'_>,
    user_id: UserId,
    factor_id: Uuid,
    code: &str,
    now: Timestamp,
) -> Result<Factor, MfaError> {
    let (factor, sealed) = conn
        .find_factor(user_id, factor_id)
        .await
        .context("loading the factor")?
        .ok_or(MfaError::FactorNotFound)?;
    let key = state
        .factor_secret
        .open(factor.id, &sealed)
        .map(TotpKey::from_bytes)
        .ok_or_else(|| anyhow::anyhow!("a factor secret does not open (JWT secret changed?)"))?;
    let code = code.trim();
    // Logged (never the code) so an operator sees guessing; the throttle bounds it.
    let refused = |why: &'static str| {
        tracing::warn!(user_id = %user_id, factor_id = %factor.id, why, "a TOTP code was refused");
        MfaError::InvalidCode
    };
    if code.len() != totp::DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(refused("not six digits"));
    }
    let step = key
        .matching_step(code, now.unix())
        .context("checking the code")?
        .ok_or_else(|| refused("wrong or outside its window"))?;
    if !conn
        .use_factor_step(factor.id, step, now)
        .await
        .context("recording the code's use")?
    {
        return Err(refused("already used"));
    }
    Ok(factor)
}

/// Verifies a code for a challenge: the factor becomes verified, the session rises to aal2,
/// and a new token pair for the same session is answered (supabase/auth's `verify`).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn verify(
    state: &AppState,
    user_id: UserId,
    session_id: Option<Uuid>,
    factor_id: Uuid,
    challenge_id: Uuid,
    code: &str,
    ip: &str,
) -> Result<TokenResponse, MfaError> {
    throttle::check(state, Limit::MfaChallengeAndVerify, ip).await?;
    throttle::check(state, Limit::MfaVerify, &user_id.to_string()).await?;
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let user = session_user(
        &mut tx.conn(),
        user_id,
        session_id,
        now,
        &state.settings.sessions,
    )
    .await?;
    let session_id = session_id.ok_or_else(|| anyhow::anyhow!("a live session has an id"))?;
    let challenge = tx
        .find_challenge(challenge_id)
        .await
        .context("loading the challenge")?
        .filter(|c| c.factor_id == factor_id && c.verified_at.is_none())
        .ok_or(MfaError::ChallengeNotFound)?;
    if challenge.ip_address != ip {
        return Err(MfaError::IpMismatch);
    }
    if challenge
        .created_at
        .plus(state.settings.mfa.challenge_expiry)
        <= now
    {
        return Err(MfaError::ChallengeExpired(challenge.id));
    }
    let factor = accept_code(state, &mut tx.conn(), user.id, factor_id, code, now).await?;
    if !tx
        .verify_challenge(challenge.id, now)
        .await
        .context("answering the challenge")?
    {
        return Err(MfaError::ChallengeNotFound);
    }
    tx.raise_session_to_aal2(session_id, factor.id, now)
        .await
        .context("raising the session to aal2")?;
    tx.delete_unverified_factors(user.id)
        .await
        .context("dropping abandoned enrollments")?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&user),
        Action::VerificationAttempted,
        json!({"factor_id": factor.id, "challenge_id": challenge.id, "factor_type": TOTP}),
        now,
    )
    .await
    .context("auditing the verification")?;
    let refresh =
        super::token::first_refresh_token(&mut tx.conn(), user.id, session_id, now).await?;
    let assurance = tx
        .session_assurance(session_id)
        .await
        .context("reloading the session")?
        .ok_or_else(|| anyhow::anyhow!("the session vanished"))?;
    let response = token_response(state, &user, session_id, &assurance, &refresh, now)?;
    tx.commit().await.context("committing the verification")?;
    Ok(response)
}

/// Removes a factor. With a verified factor, the session must be aal2; sessions the factor
/// raised fall back to aal1 (supabase/auth's `DowngradeSessionsToAAL1`).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn unenroll(
    state: &AppState,
    user_id: UserId,
    session_id: Option<Uuid>,
    factor_id: Uuid,
) -> Result<Uuid, MfaError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let (user, factor) =
        caller_and_factor(state, &mut tx.conn(), user_id, session_id, factor_id).await?;
    let verified = tx
        .has_verified_factor(user.id)
        .await
        .context("looking for verified factors")?;
    if check_assurance(session_aal(&mut tx.conn(), session_id).await?, verified).is_err() {
        return Err(MfaError::InsufficientAal(
            "AAL2 required to unenroll verified factor",
        ));
    }
    remove_factor(&mut tx.conn(), &Actor::user(&user), &factor, now).await?;
    tx.commit().await.context("committing the unenrollment")?;
    Ok(factor.id)
}

async fn remove_factor(
    conn: &mut Conn<'_>,
    actor: &Actor,
    factor: &Factor,
    now: Timestamp,
) -> anyhow::Result<()> {
    conn.downgrade_sessions_of_factor(factor.id, now)
        .await
        .context("downgrading sessions")?;
    conn.delete_factor(factor.id)
        .await
        .context("deleting the factor")?;
    audit::record(
        &mut *conn,
        actor,
        Action::FactorUnenrolled,
        json!({"factor_id": factor.id, "factor_status": factor.status.as_str()}),
        now,
    )
    .await
    .context("auditing the unenrollment")?;
    Ok(())
}

// ---- Admins ----

/// supabase/auth's `GET /admin/users/{id}/factors`.
pub async fn admin_list_factors(
    state: &AppState,
    user_id: UserId,
) -> Result<Vec<Factor>, MfaError> {
    state
        .store
        .pool()
        .find_user_by_id(user_id)
        .await
        .context("loading the user")?
        .ok_or(MfaError::UserNotFound)?;
    Ok(list_factors(state, user_id).await?)
}

/// supabase/auth's `DELETE /admin/users/{id}/factors/{factor_id}`: how an admin helps a user
/// who lost their authenticator (the user's sessions it raised fall back to aal1).
pub async fn admin_delete_factor(
    state: &AppState,
    actor: &Actor,
    user_id: UserId,
    factor_id: Uuid,
) -> Result<Factor, MfaError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    tx.find_user_by_id(user_id)
        .await
        .context("loading the user")?
        .ok_or(MfaError::UserNotFound)?;
    let (factor, _) = tx
        .find_factor(user_id, factor_id)
        .await
        .context("loading the factor")?
        .ok_or(MfaError::FactorNotFound)?;
    remove_factor(&mut tx.conn(), actor, &factor, now).await?;
    tx.commit().await.context("committing the removal")?;
    Ok(factor)
}

/// Removes every factor of a user (the console's "Remove two-step login"); answers how many.
pub async fn admin_reset_factors(
    state: &AppState,
    actor: &Actor,
    user_id: UserId,
) -> Result<usize, MfaError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let all = tx.list_factors(user_id).await.context("listing factors")?;
    for factor in &all {
        remove_factor(&mut tx.conn(), actor, factor, now).await?;
    }
    tx.commit().await.context("committing the removal")?;
    Ok(all.len())
}

// ---- The console ----

/// Whether the console must ask this admin for a code (they have a verified factor).
pub async fn has_verified_factor(state: &AppState, user_id: UserId) -> anyhow::Result<bool> {
    state
        .store
        .pool()
        .has_verified_factor(user_id)
        .await
        .context("looking for verified factors")
}

/// After a right password: a pending login whose cookie value is answered; the console
/// session starts only when `console_second_step` accepts a code.
pub async fn console_first_step(state: &AppState, admin: &User) -> anyhow::Result<SecretToken> {
    let token = SecretToken::generate();
    state
        .store
        .pool()
        .insert_console_mfa_login(token.digest().as_bytes(), admin.id, state.clock.now())
        .await
        .context("storing the pending console login")?;
    Ok(token)
}

/// The admin of a pending console login that has not expired.
pub async fn console_pending_admin(
    state: &AppState,
    pending: &SecretToken,
) -> anyhow::Result<Option<UserId>> {
    let now = state.clock.now();
    state
        .store
        .pool()
        .find_console_mfa_login(
            pending.digest().as_bytes(),
            now.minus(CONSOLE_SECOND_STEP_TIMEOUT),
        )
        .await
        .context("loading the pending console login")
}

/// The console's second step: a code from any of the admin's verified factors starts the
/// console session (its cookie value is answered). Throttled per user with the API's verify.
pub async fn console_second_step(
    state: &AppState,
    pending: &SecretToken,
    code: &str,
    origin: &super::audit::Origin,
) -> Result<SecretToken, MfaError> {
    let admin_id = console_pending_admin(state, pending)
        .await?
        .ok_or(MfaError::ChallengeNotFound)?;
    throttle::check(state, Limit::MfaVerify, &admin_id.to_string()).await?;
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let admin = tx
        .find_user_by_id(admin_id)
        .await
        .context("loading the admin")?
        .filter(|u| {
            u.is_confirmed() && !u.is_banned(now) && u.is_admin(&state.settings.jwt.admin_group)
        })
        .ok_or(MfaError::ChallengeNotFound)?;
    let verified: Vec<Factor> = tx
        .list_factors(admin.id)
        .await
        .context("listing factors")?
        .into_iter()
        .filter(Factor::is_verified)
        .collect();
    let mut accepted = None;
    for factor in &verified {
        match accept_code(state, &mut tx.conn(), admin.id, factor.id, code, now).await {
            Ok(f) => {
                accepted = Some(f);
                break;
            }
            Err(MfaError::InvalidCode) => {}
            Err(e) => return Err(e),
        }
    }
    let factor = accepted.ok_or(MfaError::InvalidCode)?;
    tx.delete_console_mfa_login(
        pending.digest().as_bytes(),
        now.minus(CONSOLE_SECOND_STEP_TIMEOUT),
    )
    .await
    .context("ending the pending login")?;
    let token = SecretToken::generate();
    tx.insert_console_session(&token.digest(), admin.id, now)
        .await
        .context("storing the console session")?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(&admin),
        Action::Login,
        origin.with(
            json!({"provider": "console", "factor_id": factor.id, "amr": ["password", TOTP]}),
        ),
        now,
    )
    .await
    .context("auditing the console login")?;
    tx.commit().await.context("committing the console login")?;
    Ok(token)
}

/// Console enrollment, step one: a new unverified factor for the logged-in admin (the console
/// session already proves every factor the admin has).
pub async fn console_enroll(state: &AppState, admin: &User) -> Result<Enrollment, MfaError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    tx.delete_expired_factors(admin.id, now.minus(FACTOR_EXPIRY))
        .await
        .context("dropping expired enrollments")?;
    let existing = tx.list_factors(admin.id).await.context("listing factors")?;
    if existing.len() >= state.settings.mfa.max_enrolled_factors as usize {
        return Err(MfaError::TooManyFactors);
    }
    let enrollment = create_factor(
        state,
        &mut tx.conn(),
        admin,
        Some(format!("console {}", existing.len() + 1)),
        None,
        now,
    )
    .await?;
    tx.commit().await.context("committing the enrollment")?;
    Ok(enrollment)
}

/// Console enrollment, step two: a code from the new factor verifies it.
pub async fn console_confirm(
    state: &AppState,
    admin: &User,
    factor_id: Uuid,
    code: &str,
) -> Result<(), MfaError> {
    throttle::check(state, Limit::MfaVerify, &admin.id.to_string()).await?;
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let factor = accept_code(state, &mut tx.conn(), admin.id, factor_id, code, now).await?;
    tx.delete_unverified_factors(admin.id)
        .await
        .context("dropping abandoned enrollments")?;
    audit::record(
        &mut tx.conn(),
        &Actor::user(admin),
        Action::VerificationAttempted,
        json!({"factor_id": factor.id, "factor_type": TOTP, "provider": "console"}),
        now,
    )
    .await
    .context("auditing the verification")?;
    tx.commit().await.context("committing the verification")?;
    Ok(())
}

/// Console: removes one of the admin's own factors.
pub async fn console_unenroll(
    state: &AppState,
    admin: &User,
    factor_id: Uuid,
) -> Result<(), MfaError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let (factor, _) = tx
        .find_factor(admin.id, factor_id)
        .await
        .context("loading the factor")?
        .ok_or(MfaError::FactorNotFound)?;
    remove_factor(&mut tx.conn(), &Actor::user(admin), &factor, now).await?;
    tx.commit().await.context("committing the unenrollment")?;
    Ok(())
}
