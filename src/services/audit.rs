//! Appends audit entries; every service that changes an account calls `record` in its transaction.

use serde_json::Value;
use uuid::Uuid;

use super::Actor;
use crate::domain::timestamp::Timestamp;
use crate::store::AuditEntry;
use crate::store::Conn;
use crate::store::StoreError;
use crate::store::prelude::*;

/// GoTrue's actions, plus chipflap's ban actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Login,
    Logout,
    InviteAccepted,
    UserSignedUp,
    UserInvited,
    UserDeleted,
    UserModified,
    UserRecoveryRequested,
    TokenRevoked,
    TokenRefreshed,
    UserBanned,
    UserUnbanned,
    AblyTokenIssued,
    AblyTokensRevoked,
    AblyRevocationFailed,
    ConfirmationSent,
    /// An admin cleared a throttle (console).
    ThrottleCleared,
    /// supabase/auth's MFA actions: a TOTP factor was enrolled (not yet verified), a challenge
    /// created, a code accepted, a factor removed.
    FactorInProgress,
    ChallengeCreated,
    VerificationAttempted,
    FactorUnenrolled,
    /// A password login that ran its password check and was refused (chipflap's own:
    /// supabase/auth audits no failures).
    LoginFailed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Login => "login",
            Action::Logout => "logout",
            Action::InviteAccepted => "invite_accepted",
            Action::UserSignedUp => "user_signedup",
            Action::UserInvited => "user_invited",
            Action::UserDeleted => "user_deleted",
            Action::UserModified => "user_modified",
            Action::UserRecoveryRequested => "user_recovery_requested",
            Action::TokenRevoked => "token_revoked",
            Action::TokenRefreshed => "token_refreshed",
            Action::UserBanned => "user_banned",
            Action::UserUnbanned => "user_unbanned",
            Action::AblyTokenIssued => "ably_token_issued",
            Action::AblyTokensRevoked => "ably_tokens_revoked",
            Action::AblyRevocationFailed => "ably_revocation_failed",
            Action::ConfirmationSent => "user_confirmation_requested",
            Action::ThrottleCleared => "throttle_cleared",
            Action::FactorInProgress => "factor_in_progress",
            Action::ChallengeCreated => "challenge_created",
            Action::VerificationAttempted => "verification_attempted",
            Action::FactorUnenrolled => "factor_unenrolled",
            Action::LoginFailed => "login_failed",
        }
    }

    /// GoTrue's log types: account, team, token, user.
    pub fn log_type(self) -> &'static str {
        match self {
            Action::Login
            | Action::LoginFailed
            | Action::Logout
            | Action::TokenRevoked
            | Action::TokenRefreshed
            | Action::AblyTokenIssued
            | Action::AblyTokensRevoked
            | Action::AblyRevocationFailed
            | Action::ChallengeCreated
            | Action::VerificationAttempted => "token",
            Action::UserSignedUp
            | Action::InviteAccepted
            | Action::UserRecoveryRequested
            | Action::ConfirmationSent
            | Action::FactorInProgress
            | Action::FactorUnenrolled => "account",
            Action::UserInvited
            | Action::UserDeleted
            | Action::UserBanned
            | Action::UserUnbanned
            | Action::ThrottleCleared => "team",
            Action::UserModified => "user",
        }
    }
}

/// Where a request came from, as audit entries and log lines record it (ASVS 5.0 V16.2.1):
/// the client IP (`GOTRUE_RATE_LIMIT_HEADER` or the peer) and the `User-Agent`, cut to
/// `USER_AGENT_MAX_CHARS` so a row stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub ip_address: String,
    pub user_agent: String,
}

/// The most of a `User-Agent` an audit entry keeps, in characters.
pub const USER_AGENT_MAX_CHARS: usize = 256;

impl Origin {
    pub fn new(ip_address: String, user_agent: &str) -> Self {
        Origin {
            ip_address,
            user_agent: user_agent.chars().take(USER_AGENT_MAX_CHARS).collect(),
        }
    }

    /// `traits` (an object) with `ip_address` and `user_agent` added.
    pub fn with(&self, mut traits: Value) -> Value {
        if let Some(map) = traits.as_object_mut() {
            map.insert("ip_address".into(), Value::from(self.ip_address.clone()));
            map.insert("user_agent".into(), Value::from(self.user_agent.clone()));
        }
        traits
    }
}

/// Writes an entry now, on `executor`: inside the transaction of the change it describes.
/// Entries that describe no change and sit on hot paths go through `AppState::audit` (the
/// group-commit queue, `audit_queue`) instead.
/// `traits` should name the target (`user_id`, `user_email`) when the actor is someone else.
pub async fn record(
    conn: &mut Conn<'_>,
    actor: &Actor,
    action: Action,
    traits: Value,
    now: Timestamp,
) -> Result<(), StoreError> {
    conn.append_audit_entry(&entry(actor, action, traits, now))
        .await
}

/// A new entry (fresh id) made at `now`.
pub fn entry(actor: &Actor, action: Action, traits: Value, now: Timestamp) -> AuditEntry {
    AuditEntry {
        id: Uuid::new_v4(),
        actor_id: actor.id.clone(),
        actor_email: actor.email.clone(),
        action: action.as_str().to_owned(),
        log_type: action.log_type().to_owned(),
        traits,
        created_at: now,
    }
}

pub struct AuditPage {
    pub entries: Vec<crate::store::AuditEntry>,
    pub total: i64,
}

/// One page of the audit log, newest first. Entries queued before the call are committed
/// first, so a reader sees every token issued before they asked.
pub async fn list(
    state: &crate::state::AppState,
    filter: &crate::store::AuditFilter,
    page: u32,
    per_page: u32,
) -> anyhow::Result<AuditPage> {
    use anyhow::Context;
    let limit = i64::from(per_page);
    let offset = i64::from(page.saturating_sub(1)) * limit;
    state.audit.flush().await;
    let entries = state
        .store
        .pool()
        .list_audit_entries(filter, limit, offset)
        .await
        .context("listing audit entries")?;
    let total = state
        .store
        .pool()
        .count_audit_entries(filter)
        .await
        .context("counting audit entries")?;
    Ok(AuditPage { entries, total })
}
