//! Admin use cases on users, shared by the JSON admin API, the console and the command line.

use anyhow::Context;
use serde_json::json;

use super::Actor;
use super::ably_revocation;
use super::audit::{self, Action};
use super::signup::provider_email;
use crate::domain::ValidationError;
use crate::domain::email_address::EmailAddress;
use crate::domain::metadata::{self, Metadata};
use crate::domain::password::Password;
use crate::domain::session::{EndReason, Session};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};
use crate::state::AppState;
use crate::store::UserListQuery;
use crate::store::prelude::*;
pub use crate::store::{ListPosition, PageStart, UserStatus};

/// How an update changes a ban; defined with the user's other transitions.
pub use crate::domain::user::BanChange;

#[derive(Debug, thiserror::Error)]
pub enum AdminUserError {
    #[error("user not found")]
    NotFound,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("email address already registered by another user")]
    EmailTaken,
    /// Every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs wait: nothing was
    /// checked or hashed; the client may retry in a second (503).
    #[error("{}", crate::auth::password_hasher::BUSY)]
    Busy,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<crate::auth::password_hasher::HashError> for AdminUserError {
    fn from(e: crate::auth::password_hasher::HashError) -> Self {
        match e {
            crate::auth::password_hasher::HashError::Busy => AdminUserError::Busy,
            e => AdminUserError::Unexpected(anyhow::Error::new(e).context("hashing a password")),
        }
    }
}

/// Newest first unless `ascending`; `filter` matches part of the email or full name.
#[derive(Debug, Clone)]
pub struct UserQuery {
    pub aud: String,
    pub filter: Option<String>,
    pub status: UserStatus,
    pub ascending: bool,
    /// 1-based; where the page starts unless `from` is given.
    pub page: u32,
    pub per_page: u32,
    /// A keyset start (the console's next and previous links): the page begins next to this
    /// user's position, an index seek at any depth, and `page` only numbers it.
    pub from: Option<Cursor>,
    /// Count the matches no further than this (the console: a common search at 1,000,000 users
    /// would read every match to count them); `None` counts them all (the admin API's
    /// `X-Total-Count`).
    pub count_cap: Option<u32>,
}

/// A keyset page start: the users after (or before) one position in list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    After(ListPosition),
    Before(ListPosition),
}

/// How many users a list holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserTotal {
    Exact(i64),
    /// More than this many (the query's `count_cap`).
    MoreThan(i64),
}

impl UserTotal {
    /// The count, or the cap it passed.
    pub fn count(self) -> i64 {
        match self {
            UserTotal::Exact(n) | UserTotal::MoreThan(n) => n,
        }
    }
}

pub struct UserPage {
    /// In list order.
    pub users: Vec<User>,
    pub total: UserTotal,
    /// Whether a page follows this one.
    pub more: bool,
    /// Whether a page precedes this one.
    pub earlier: bool,
}

pub async fn list_users(state: &AppState, query: &UserQuery) -> Result<UserPage, AdminUserError> {
    let limit = i64::from(query.per_page);
    let start = match query.from {
        None => PageStart::Offset(i64::from(query.page.saturating_sub(1)) * limit),
        Some(Cursor::After(p)) => PageStart::After(p),
        Some(Cursor::Before(p)) => PageStart::Before(p),
    };
    let q = UserListQuery {
        aud: &query.aud,
        search: query
            .filter
            .as_deref()
            .map(str::trim)
            .filter(|f| !f.is_empty()),
        status: query.status,
        admin_group: &state.settings.jwt.admin_group,
        now: state.clock.now(),
        ascending: query.ascending,
        limit,
        start,
    };
    let cap = query.count_cap.map(i64::from);
    let mut conn = state.store.read().await.context("listing users")?;
    let page = conn.list_users(&q, cap).await.context("listing users")?;
    let total = match cap {
        Some(cap) if page.total > cap => UserTotal::MoreThan(cap),
        _ => UserTotal::Exact(page.total),
    };
    let (more, earlier) = match start {
        PageStart::Offset(offset) => (page.more, offset > 0),
        // The position itself lies on the other side.
        PageStart::After(_) => (page.more, true),
        PageStart::Before(_) => (true, page.more),
    };
    Ok(UserPage {
        users: page.users,
        total,
        more,
        earlier,
    })
}

pub async fn get_user(state: &AppState, id: UserId) -> Result<User, AdminUserError> {
    state
        .store
        .pool()
        .find_user_by_id(id)
        .await
        .context("loading the user")?
        .ok_or(AdminUserError::NotFound)
}

#[derive(Debug, Default)]
pub struct NewUser {
    pub aud: String,
    pub email: String,
    pub password: Option<String>,
    pub confirm: bool,
    pub role: Option<String>,
    pub user_metadata: Option<Metadata>,
    pub app_metadata: Option<Metadata>,
}

/// `POST /admin/users`. Without a password the user cannot log in until they set one through
/// an invite or recovery link (DESIGN §4.6; GoTrue stored the hash of "").
#[tracing::instrument(skip_all)]
pub async fn create_user(
    state: &AppState,
    actor: &Actor,
    new: NewUser,
) -> Result<User, AdminUserError> {
    // `aud` in the body may name another audience (spec §1.11), but only a configured one.
    if !state.settings.jwt.serves_audience(&new.aud) {
        return Err(AdminUserError::Invalid(ValidationError::new(
            "aud",
            "aud names an audience this server does not serve (the audiences are GOTRUE_JWT_AUD and GOTRUE_JWT_ALLOWED_AUDIENCES)",
        )));
    }
    let email = EmailAddress::parse(&new.email)?;
    let password = match new.password.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(Password::parse(
            p,
            &state.settings.signup.password_policy,
            email.as_str(),
        )?),
        None => None,
    };
    let user_metadata = new.user_metadata.unwrap_or_default();
    metadata::check_size("user_metadata", &user_metadata)?;
    // GoTrue ignores app_metadata here; honouring it over {"provider":"email"} is a superset.
    let mut app_metadata = provider_email();
    if let Some(app) = new.app_metadata {
        crate::domain::user::merge_app_metadata(&mut app_metadata, app)?;
    }
    let password_hash = match &password {
        Some(p) => Some(state.hasher.hash(p).await?),
        None => None,
    };
    let now = state.clock.now();
    let user = User {
        id: UserId::new_random(),
        aud: new.aud,
        role: new
            .role
            .map(|r| r.trim().to_owned())
            .unwrap_or_else(|| state.settings.jwt.default_group.clone()),
        email: email.into_string(),
        password_hash,
        confirmed_at: new.confirm.then_some(now),
        invited_at: None,
        confirmation_sent_at: None,
        recovery_sent_at: None,
        new_email: None,
        email_change_sent_at: None,
        last_sign_in_at: None,
        banned_until: None,
        app_metadata,
        user_metadata,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    tx.insert_user(&user)
        .await
        .on_conflict(|| AdminUserError::EmailTaken)
        .context("inserting the user")??;
    audit::record(
        &mut tx.conn(),
        actor,
        Action::UserSignedUp,
        target(&user),
        now,
    )
    .await
    .context("auditing the creation")?;
    tx.commit().await.context("committing the creation")?;
    Ok(user)
}

#[derive(Debug, Default)]
pub struct UserChanges {
    pub role: Option<String>,
    pub confirm: bool,
    pub password: Option<String>,
    pub email: Option<String>,
    pub app_metadata: Option<Metadata>,
    pub user_metadata: Option<Metadata>,
    pub ban: Option<BanChange>,
    /// Why the admin banned or unbanned, for the audit log.
    pub reason: Option<String>,
}

/// `PUT /admin/users/{id}`, applied in GoTrue's order (spec §1.11). Unlike GoTrue, a new email
/// is validated and checked for uniqueness (DESIGN §4.10), a new password ends every session,
/// and a ban (by role or `ban_duration`) ends every session at once (DESIGN §5).
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn update_user(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    changes: UserChanges,
) -> Result<User, AdminUserError> {
    let email = match changes
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        Some(e) => Some(EmailAddress::parse(e)?),
        None => None,
    };
    let password = match changes.password.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            // Checked against the account's address as stored and as it will be.
            let stored = state
                .store
                .pool()
                .find_user_by_id(id)
                .await
                .context("loading the user")?
                .ok_or(AdminUserError::NotFound)?;
            let policy = &state.settings.signup.password_policy;
            if let Some(new_email) = &email {
                Password::parse(p, policy, new_email.as_str())?;
            }
            Some(Password::parse(p, policy, &stored.email)?)
        }
        None => None,
    };
    for (field, m) in [
        ("app_metadata", &changes.app_metadata),
        ("user_metadata", &changes.user_metadata),
    ] {
        if let Some(m) = m {
            metadata::check_size(field, m)?;
        }
    }
    if let Some(app) = &changes.app_metadata {
        crate::domain::user::check_roles(app)?;
    }
    let hash = match &password {
        Some(p) => Some(state.hasher.hash(p).await?),
        None => None,
    };
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let mut user = tx
        .find_user_by_id(id)
        .await
        .context("loading the user")?
        .ok_or(AdminUserError::NotFound)?;
    let before = user.clone();
    let was_banned = user.is_banned(now);
    let old_role = user.role.clone();
    let old_email = user.email.clone();
    if let Some(role) = changes.role {
        user.role = role.trim().to_owned();
    }
    if changes.confirm && user.confirm(now) {
        // The admin vouches for the account as it stands: its password stays, and the
        // signups' pending confirmation links (each bound to a password) die.
        tx.delete_user_tokens(
            id,
            crate::domain::one_time_token::TokenPurpose::Confirmation,
        )
        .await
        .context("dropping the confirmation links")?;
    }
    let password_changed = hash.is_some();
    if let Some(hash) = hash {
        user.set_password(Some(hash));
        super::mail_links::forget_password_links(&mut tx.conn(), id)
            .await
            .context("dropping stale links")?;
    }
    if let Some(email) = email.filter(|e| e.as_str() != user.email) {
        // Links mailed to the old address, and a pending change, must not outlive it.
        user.email = email.into_string();
        user.new_email = None;
        user.email_change_sent_at = None;
        super::mail_links::forget_password_links(&mut tx.conn(), id)
            .await
            .context("dropping stale links")?;
        tx.delete_user_tokens(id, crate::domain::one_time_token::TokenPurpose::EmailChange)
            .await
            .context("dropping the pending email change")?;
    }
    if let Some(app) = changes.app_metadata {
        crate::domain::user::merge_app_metadata(&mut user.app_metadata, app)?;
    }
    if let Some(data) = changes.user_metadata {
        metadata::merge(&mut user.user_metadata, data);
        metadata::check_size("user_metadata", &user.user_metadata)?;
    }
    if let Some(change) = changes.ban {
        // Applied to the row read in this transaction: a role or metadata change committed
        // meanwhile is kept, and cannot undo the ban.
        user.apply_ban(change, now);
    }
    user.updated_at = now;
    tx.update_user(&user)
        .await
        .on_conflict(|| AdminUserError::EmailTaken)
        .context("saving the user")??;

    let banned = user.is_banned(now);
    let ban_changed = banned != was_banned || (banned && changes.ban.is_some());
    if banned && ban_changed {
        tx.end_user_sessions(id, None, EndReason::Ban, now)
            .await
            .context("ending the user's sessions")?;
    } else if password_changed {
        tx.end_user_sessions(id, None, EndReason::PasswordChange, now)
            .await
            .context("ending the user's sessions")?;
    }
    // A console session must not outlive the password, the role or the standing it began with.
    if password_changed || (banned && ban_changed) || user.role != old_role {
        tx.delete_user_console_sessions(id)
            .await
            .context("ending the user's console sessions")?;
    }
    let mut traits = target(&user);
    traits["fields"] = json!(before.changed_fields(&user));
    if let Some(reason) = changes
        .reason
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty())
    {
        traits["reason"] = json!(reason);
    }
    audit::record(
        &mut tx.conn(),
        actor,
        Action::UserModified,
        traits.clone(),
        now,
    )
    .await
    .context("auditing the update")?;
    if ban_changed {
        if let Some(until) = user.banned_until.filter(|_| banned) {
            traits["banned_until"] = json!(until.to_rfc3339());
        }
        let action = if banned {
            Action::UserBanned
        } else {
            Action::UserUnbanned
        };
        audit::record(&mut tx.conn(), actor, action, traits, now)
            .await
            .context("auditing the ban")?;
    }
    tx.commit().await.context("committing the update")?;
    if banned && ban_changed {
        ably_revocation::revoke_in_background(state, actor, &user);
    }
    // Admin changes are announced to the address the account had (issue 9).
    use super::notifications::{Change, ChangedBy, announce};
    if password_changed {
        announce(state, &old_email, Change::Password, ChangedBy::Admin);
    }
    if user.email != old_email {
        let new_email = user.email.clone();
        announce(
            state,
            &old_email,
            Change::EmailChanged { new_email },
            ChangedBy::Admin,
        );
    }
    Ok(user)
}

/// `DELETE /admin/users/{id}`: the user's sessions and links go with the row (foreign keys).
#[tracing::instrument(skip_all, fields(user_id = %id))]
pub async fn delete_user(
    state: &AppState,
    actor: &Actor,
    id: UserId,
) -> Result<(), AdminUserError> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let user = tx
        .find_user_by_id(id)
        .await
        .context("loading the user")?
        .ok_or(AdminUserError::NotFound)?;
    tx.delete_user(id).await.context("deleting the user")?;
    audit::record(
        &mut tx.conn(),
        actor,
        Action::UserDeleted,
        target(&user),
        now,
    )
    .await
    .context("auditing the deletion")?;
    tx.commit().await.context("committing the deletion")?;
    // A deleted user's live Ably connections end too, as a banned user's do.
    ably_revocation::revoke_in_background(state, actor, &user);
    Ok(())
}

/// Finds a user by email in the default audience (for the command line).
pub async fn find_by_email(state: &AppState, email: &str) -> Result<User, AdminUserError> {
    state
        .store
        .pool()
        .find_user_by_email(&state.settings.jwt.aud, email)
        .await
        .context("looking up the user")?
        .ok_or(AdminUserError::NotFound)
}

fn target(user: &User) -> serde_json::Value {
    json!({"user_id": user.id, "user_email": user.email})
}

/// Ends every session of a user now (console "end all sessions").
pub async fn end_sessions(
    state: &AppState,
    actor: &Actor,
    id: UserId,
) -> Result<u64, AdminUserError> {
    let now: Timestamp = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let user = tx
        .find_user_by_id(id)
        .await
        .context("loading the user")?
        .ok_or(AdminUserError::NotFound)?;
    let ended = tx
        .end_user_sessions(id, None, EndReason::Admin, now)
        .await
        .context("ending sessions")?;
    tx.delete_user_console_sessions(id)
        .await
        .context("ending console sessions")?;
    audit::record(
        &mut tx.conn(),
        actor,
        Action::TokenRevoked,
        target(&user),
        now,
    )
    .await
    .context("auditing the revocation")?;
    tx.commit().await.context("committing")?;
    Ok(ended)
}

/// What ending every session did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EveryoneLoggedOut {
    /// Login sessions ended (their refresh and access tokens are dead).
    pub sessions: u64,
    /// Console sessions ended.
    pub console_sessions: u64,
}

/// Ends every session of every user at once, after a breach: every refresh token is revoked
/// and every access token is refused by its session (`chipflap sessions end --all`, the
/// console's "end every session"). Console sessions end too, except `keep_console` (the admin
/// acting from the console). Audited as `token_revoked` with `{"scope": "all", ...}`.
pub async fn end_every_session(
    state: &AppState,
    actor: &Actor,
    keep_console: Option<&crate::domain::one_time_token::TokenDigest>,
) -> anyhow::Result<EveryoneLoggedOut> {
    let now = state.clock.now();
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let ended = EveryoneLoggedOut {
        sessions: tx
            .end_every_session(EndReason::Admin, now)
            .await
            .context("ending every session")?,
        console_sessions: tx
            .delete_console_sessions_except(keep_console)
            .await
            .context("ending console sessions")?,
    };
    audit::record(
        &mut tx.conn(),
        actor,
        Action::TokenRevoked,
        json!({
            "scope": "all",
            "sessions_ended": ended.sessions,
            "console_sessions_ended": ended.console_sessions,
        }),
        now,
    )
    .await
    .context("auditing the revocation")?;
    tx.commit().await.context("committing")?;
    tracing::warn!(
        sessions = ended.sessions,
        console_sessions = ended.console_sessions,
        "every session was ended"
    );
    Ok(ended)
}

/// How many sessions have not been ended (the console's "end every session" page).
pub async fn count_unended_sessions(state: &AppState) -> anyhow::Result<i64> {
    state
        .store
        .pool()
        .count_unended_sessions()
        .await
        .context("counting sessions")
}

/// What the console shows beside a user: live sessions, recent audit entries, and how the
/// Ably revocation of the latest ban went.
pub struct UserDetails {
    pub sessions: Vec<Session>,
    pub recent_activity: Vec<crate::store::AuditEntry>,
    pub ably_revocation: AblyRevocation,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AblyRevocation {
    /// Never banned, or revocation is off and nothing was recorded.
    NotApplicable,
    /// Banned; the background revocation has not reported yet.
    Pending,
    Revoked(Timestamp),
    /// When, and Ably's (or the network's) answer.
    Failed(Timestamp, String),
}

pub async fn user_details(state: &AppState, id: UserId) -> Result<UserDetails, AdminUserError> {
    use crate::store::AuditFilter;
    let now = state.clock.now();
    let mut sessions = state
        .store
        .pool()
        .list_live_sessions(id)
        .await
        .context("listing sessions")?;
    // Past the timebox or the inactivity timeout a session is dead although never ended.
    sessions.retain(|s| s.is_live(now, &state.settings.sessions));
    let filter = AuditFilter::User(id);
    // Entries still queued (tokens just issued, refused logins) are committed first.
    state.audit.flush().await;
    let recent_activity = state
        .store
        .pool()
        .list_audit_entries(&filter, 20, 0)
        .await
        .context("listing recent activity")?;
    // Only a revocation recorded since the latest ban speaks for the current one.
    let latest = |action: Action| {
        let filter = AuditFilter::Combined {
            author: None,
            action: Some(action.as_str().to_owned()),
            user: Some(id),
        };
        async move {
            state
                .store
                .pool()
                .list_audit_entries(&filter, 1, 0)
                .await
                .map(|entries| entries.into_iter().next())
        }
    };
    let banned_at = latest(Action::UserBanned)
        .await
        .context("finding the latest ban")?
        .map(|e| e.created_at);
    let mut ably_revocation = AblyRevocation::NotApplicable;
    if let Some(banned_at) = banned_at {
        if state.settings.ably.key.is_some() && state.settings.ably.revoke_on_ban {
            ably_revocation = AblyRevocation::Pending;
        }
        let revoked = latest(Action::AblyTokensRevoked)
            .await
            .context("finding revocations")?;
        let failed = latest(Action::AblyRevocationFailed)
            .await
            .context("finding revocations")?;
        let newest = [revoked, failed]
            .into_iter()
            .flatten()
            .filter(|e| e.created_at >= banned_at)
            .max_by_key(|e| e.created_at);
        if let Some(entry) = newest {
            ably_revocation = if entry.action == Action::AblyTokensRevoked.as_str() {
                AblyRevocation::Revoked(entry.created_at)
            } else {
                AblyRevocation::Failed(
                    entry.created_at,
                    entry.traits["error"].as_str().unwrap_or("").to_owned(),
                )
            };
        }
    }
    Ok(UserDetails {
        sessions,
        recent_activity,
        ably_revocation,
    })
}

/// Mails an unconfirmed user a new confirmation link (console "resend confirmation"); no throttle,
/// an admin asked for it. A failed mail forgets the link.
///
/// The link is bound to no password (README "The mailbox owner decides the password"): it
/// joins the signups' own links, and confirming with it confirms the address, signs the clicker
/// in and removes the password typed before confirmation, since nobody showed that its author
/// can read the mailbox; the owner then chooses one (`PUT /user` or recovery).
pub async fn resend_confirmation(
    state: &AppState,
    actor: &Actor,
    id: UserId,
) -> Result<(), AdminUserError> {
    let user = get_user(state, id).await?;
    if user.is_confirmed() {
        return Err(AdminUserError::Invalid(ValidationError::new(
            "user",
            "The user is already confirmed",
        )));
    }
    let now = state.clock.now();
    let max_age = state.settings.mailer.confirmation_max_age;
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let token = crate::domain::one_time_token::SecretToken::generate();
    tx.add_confirmation_token(
        id,
        &token.digest(),
        None,
        now,
        now.plus(max_age),
        super::signup::MAX_CONFIRMATION_LINKS,
    )
    .await
    .context("storing the confirmation token")?;
    tx.set_confirmation_sent_at(id, Some(now))
        .await
        .context("recording the mail")?;
    audit::record(
        &mut tx.conn(),
        actor,
        Action::ConfirmationSent,
        target(&user),
        now,
    )
    .await
    .context("auditing the resend")?;
    tx.commit().await.context("committing the resend")?;
    let mail = crate::mail::ConfirmationEmail {
        site_url: super::mail_links::site_url(state),
        action_url: super::mail_links::link(state, "confirmation_token", &token),
        email: user.email.clone(),
        valid_for: super::mail_links::human_duration(max_age),
    };
    if let Err(e) = state.mailer.send(&user.email, &mail).await {
        state
            .writer()
            .await
            .context("waiting to write")?
            .delete_token(&token.digest())
            .await
            .context("forgetting an unsent confirmation link")?;
        super::mail_links::forget_unsent_mail(
            state,
            id,
            None,
            super::mail_links::SentStamp::Confirmation,
            user.confirmation_sent_at,
        )
        .await
        .context("undoing an unsent confirmation mail")?;
        return Err(AdminUserError::Unexpected(
            anyhow::Error::new(e).context("sending the confirmation mail"),
        ));
    }
    state
        .writer()
        .await
        .context("waiting to write")?
        .mark_token_mailed(&token.digest())
        .await
        .context("recording a sent mail")?;
    Ok(())
}

/// Lifts every kind of ban: clears `banned_until` and drops `^banned` roles (console and CLI
/// "unban"), on the account as it is inside the update's transaction. Sessions ended by the
/// ban stay ended.
pub async fn unban(state: &AppState, actor: &Actor, id: UserId) -> Result<User, AdminUserError> {
    let changes = UserChanges {
        ban: Some(BanChange::LiftAll),
        ..UserChanges::default()
    };
    update_user(state, actor, id, changes).await
}

/// Bans until an admin unbans (role `banned`, the seed's convention) or, with `duration`, for
/// that long (`banned_until`); decided on the account as it is inside the update's transaction.
pub async fn ban(
    state: &AppState,
    actor: &Actor,
    id: UserId,
    duration: Option<std::time::Duration>,
    reason: Option<String>,
) -> Result<User, AdminUserError> {
    let changes = UserChanges {
        ban: Some(duration.map_or(BanChange::UntilUnbanned, BanChange::For)),
        reason,
        ..UserChanges::default()
    };
    update_user(state, actor, id, changes).await
}
