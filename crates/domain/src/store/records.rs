//! The rows the store answers beyond the domain's own types: what a query reads or is given,
//! shaped for the services, the same for every backend.

use serde_json::Value;
use uuid::Uuid;

use crate::mfa::Assurance;
use crate::one_time_token::TokenPurpose;
use crate::password::PasswordHash;
use crate::session::Session;
use crate::timestamp::Timestamp;
use crate::user::{User, UserId};

#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub id: Uuid,
    pub actor_id: String,
    pub actor_email: String,
    pub action: String,
    pub log_type: String,
    pub traits: Value,
    pub created_at: Timestamp,
}

/// What `GET /admin/audit?query=<scope>:<text>` filters on.
#[derive(Debug, Clone)]
pub enum AuditFilter {
    All,
    /// Part of the actor's email (GoTrue's `author` scope).
    Author(String),
    Action(String),
    LogType(String),
    /// Entries about one user: as actor or as the target named in the traits.
    User(UserId),
    /// Part of the actor's email and an action, both optional (the console's filters).
    Combined {
        author: Option<String>,
        action: Option<String>,
        user: Option<UserId>,
    },
}

#[derive(Debug, Clone)]
pub struct ConsoleSessionRecord {
    pub user_id: UserId,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

/// One row of `mfa_challenges`.
#[derive(Debug, Clone)]
pub struct Challenge {
    pub id: Uuid,
    pub factor_id: Uuid,
    pub ip_address: String,
    pub created_at: Timestamp,
    pub verified_at: Option<Timestamp>,
}

#[derive(Debug, Clone)]
pub struct ConsumedToken {
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    pub new_email: Option<String>,
    pub expires_at: Timestamp,
    /// The signup's password bound to a confirmation link; `None` for other links.
    pub password_hash: Option<PasswordHash>,
}

#[derive(Debug, Clone)]
pub struct RefreshTokenRecord {
    pub id: i64,
    pub user_id: UserId,
    pub session_id: Uuid,
    pub rotated_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// The versions of a refresh token's user and session rows as one read saw them (migration
/// 20261201000050_row_versions: every update of either row adds one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnerVersions {
    pub user: i64,
    pub session: i64,
}

/// A refresh token with its session, the session's assurance and the token's user: all the
/// refresh grant decides on, read in one statement (each statement is a round trip to the
/// connection's thread, and the grant reads it twice, once holding the write gate).
#[derive(Clone)]
pub struct RefreshTokenWithOwner {
    pub token: RefreshTokenRecord,
    /// `None` when the session row is gone.
    pub session: Option<(Session, Assurance)>,
    /// `None` when the user row is gone.
    pub user: Option<User>,
    /// The versions of the user and session rows as read (migration
    /// 20261201000050_row_versions); `None` when either row is gone.
    pub versions: Option<OwnerVersions>,
}

/// Which users a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserStatus {
    All,
    Unconfirmed,
    /// Banned now: `banned_until` in the future or a `^banned` role
    /// (`domain::user::User::is_banned`; the role half is the `has_banned_role` column, which
    /// migration 20261201000030's triggers keep from `app_metadata`).
    Banned,
    /// `role` equals the admin group.
    Admins,
}

/// One user's place in list order (`created_at`, then `id`): where a keyset page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListPosition {
    pub created_at: Timestamp,
    pub id: UserId,
}

impl ListPosition {
    /// The position of `user` in the list.
    pub fn of(user: &User) -> Self {
        ListPosition {
            created_at: user.created_at,
            id: user.id,
        }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageStart {
    /// After this many users of the list (page numbers: the admin API, a typed `?page=N`).
    /// Costs one index step per skipped user.
    Offset(i64),
    /// The users that follow this position in list order (keyset pagination: an index seek,
    /// whatever the depth).
    After(ListPosition),
    /// The users that precede this position, the nearest last (the page before a keyset page).
    Before(ListPosition),
}

/// A page of users in one audience; shared by the admin API and the console.
#[derive(Debug, Clone)]
pub struct UserListQuery<'a> {
    pub aud: &'a str,
    /// Part of the email (compared by mailbox key, so any spelling finds it) or of
    /// `user_metadata.full_name` (ASCII case-insensitively).
    pub search: Option<&'a str>,
    pub status: UserStatus,
    pub admin_group: &'a str,
    pub now: Timestamp,
    /// Newest first unless set.
    pub ascending: bool,
    /// Users per page.
    pub limit: i64,
    pub start: PageStart,
}

/// One page of a list and the list's size.
#[derive(Debug)]
pub struct UserListPage {
    /// In list order.
    pub users: Vec<User>,
    /// Whether more users lie beyond the page in the direction it was read: after it, or before
    /// it for [`PageStart::Before`].
    pub more: bool,
    /// How many users the whole list holds (start and limit ignored), counted no further than
    /// the cap: `cap + 1` means "more than `cap`".
    pub total: i64,
}

/// Accounts that would share a mailbox key once keyed: one audience, one key, two or more rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailboxCollision {
    pub aud: String,
    pub email_key: String,
    /// `(id, email as stored)`, oldest account first.
    pub accounts: Vec<(String, String)>,
}

/// A key that is currently limited: its next request would be refused.
#[derive(Debug, Clone)]
pub struct LimitedKey {
    pub key: String,
    pub tat_ms: i64,
}
