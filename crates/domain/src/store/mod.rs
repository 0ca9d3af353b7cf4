//! The store interface: what the services ask of the database, in domain types only.
//!
//! Each backend (SQLite in the app crate, PostgreSQL in `chipflap-store-postgres`) answers
//! these shapes with the same semantics (`docs/store.md`, "Semantics both backends keep").

mod records;

pub use records::*;

use std::future::Future;

use uuid::Uuid;

use crate::mfa::{Assurance, Factor};
use crate::one_time_token::{TokenDigest, TokenPurpose};
use crate::password::PasswordHash;
use crate::session::{EndReason, Session};
use crate::timestamp::Timestamp;
use crate::user::{User, UserId};

// The traits below are implemented by the app's connection handles (`chipflap::store`), which
// send each call to the backend the `DATABASE_URL` chose. Every method's future is `Send`, so a
// service can run store work on any runtime thread. Errors: `StoreError` (a unique violation is
// `Conflict`, a lock or connection not had in time is `Busy`).

/// The most entries `AuditLog::append_audit_entries` takes in one call (one statement per
/// batch on every backend; SQLite's bound-variable limit is what caps it).
pub const MAX_AUDIT_ENTRIES_PER_INSERT: usize = 1024;

/// Why a store call failed, whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `constraint` names it when the driver says which
    /// (PostgreSQL does; SQLite gives the columns, e.g. `users.aud, users.email_key`).
    #[error("unique constraint violated: {constraint}")]
    Conflict { constraint: String },
    /// The write lock or a connection was not had in time (SQLite's write gate or busy
    /// timeout, PostgreSQL's lock timeout, the pool's acquire timeout): answered 503.
    #[error("the store is busy")]
    Busy,
    /// Anything else the driver reported, kept as the source.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Whether a unique constraint refused the write.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}

/// The `users` table: accounts, their credentials and metadata.
pub trait Users: Send {
    /// Inserts a new user; a second account for the same mailbox key and audience is a unique
    /// violation for the caller to map.
    fn insert_user(&mut self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Writes every mutable column of `user` (services load, change the domain value, save).
    /// A changed email whose mailbox key collides is a unique violation for the caller to map.
    fn update_user(&mut self, user: &User) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Only `last_sign_in_at`: a login must not write back anything else it read earlier.
    fn record_sign_in(
        &mut self,
        id: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the password hash with a stronger hash of the same password, only while the row
    /// still holds `old` (a password change that landed meanwhile wins). True when replaced.
    fn upgrade_password_hash(
        &mut self,
        id: UserId,
        old: &PasswordHash,
        new: &PasswordHash,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Only `confirmation_sent_at` (the mail throttle's stamp).
    fn set_confirmation_sent_at(
        &mut self,
        id: UserId,
        at: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Only `recovery_sent_at` (the mail throttle's stamp).
    fn set_recovery_sent_at(
        &mut self,
        id: UserId,
        at: Option<Timestamp>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn find_user_by_id(
        &mut self,
        id: UserId,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    /// The account of `email`'s mailbox in the audience: any spelling of the address finds it
    /// (its [`crate::email_address::mailbox_key`]; spec §0 "Email match", widened from ASCII to Unicode by issue 8).
    fn find_user_by_email(
        &mut self,
        aud: &str,
        email: &str,
    ) -> impl Future<Output = Result<Option<User>, StoreError>> + Send;

    fn delete_user(&mut self, id: UserId) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// A page of users and the size of its list (counted up to `count_cap` when given).
    ///
    /// Every list is read from an index in list order (`created_at`, then `id`) whatever its
    /// filters and its depth: a keyset start ([`PageStart::After`], `Before`) seeks its
    /// position; an offset walks the index. Each backend says which indexes serve which list
    /// (`docs/store.md`).
    fn list_users(
        &mut self,
        q: &UserListQuery<'_>,
        count_cap: Option<i64>,
    ) -> impl Future<Output = Result<UserListPage, StoreError>> + Send;

    /// How many accounts each audience holds (a walk of `users_aud_created_at`).
    fn count_by_audience(
        &mut self,
    ) -> impl Future<Output = Result<Vec<(String, i64)>, StoreError>> + Send;
}

/// The `sessions` table (one row per login, with its assurance) and the `refresh_tokens` that
/// belong to each session (digests only).
pub trait Sessions: Send {
    fn insert_session(
        &mut self,
        id: Uuid,
        user_id: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn find_session(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Ends one session and revokes its refresh tokens; false when it had already ended.
    fn end_session(
        &mut self,
        id: Uuid,
        reason: EndReason,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Ends every live session of a user except `keep` (the caller's own, on a password change),
    /// and revokes their refresh tokens. Answers how many sessions ended.
    fn end_user_sessions(
        &mut self,
        user_id: UserId,
        keep: Option<Uuid>,
        reason: EndReason,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// A user's sessions that have not been ended, newest refresh first (the console lists them).
    fn list_live_sessions(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Ends every session of every user and revokes every refresh token (after a breach). Answers
    /// how many sessions ended. It touches every live row, so it scans: a rare operator action.
    fn end_every_session(
        &mut self,
        reason: EndReason,
        now: Timestamp,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// How many sessions have not been ended (some may be past a configured limit).
    fn count_unended_sessions(&mut self) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// The refresh token stored under `digest`, joined with its session and its user (see
    /// `RefreshTokenWithOwner`); `None` for an unknown digest.
    fn find_refresh_token_with_owner(
        &mut self,
        digest: &crate::one_time_token::TokenDigest,
    ) -> impl Future<Output = Result<Option<RefreshTokenWithOwner>, StoreError>> + Send;

    fn insert_refresh_token(
        &mut self,
        digest: &TokenDigest,
        user_id: UserId,
        session_id: Uuid,
        parent_id: Option<i64>,
        now: Timestamp,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    fn find_refresh_token(
        &mut self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<RefreshTokenRecord>, StoreError>> + Send;

    /// Rotates the live token `id` (of `session_id`, owned by `user_id`) into its successor: marks
    /// it rotated, then stores `successor`, records the refresh on the session and appends `audit`.
    /// Answers false, having written nothing, when another request rotated or revoked it first
    /// (a session that ended, a ban or a deleted user all revoke or delete its tokens).
    ///
    /// One round trip to the connection's thread: the four writes go as one statement list, each
    /// one applying only when the one before it changed exactly one row (SQLite's `changes()` is
    /// the count of the last statement that completed). Under load each round trip waits for a
    /// core while the caller holds the write gate, so the refresh grant's share of the gate is
    /// counted in round trips. Errors: the driver's, and `sqlx::Error::Protocol` when only part of
    /// the list applied (a missing session row): the caller's transaction must then roll back.
    fn rotate_refresh_token(
        &mut self,
        id: i64,
        successor: &TokenDigest,
        user_id: UserId,
        session_id: Uuid,
        audit: &AuditEntry,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// The `one_time_tokens` table: digests of mailed links (confirmation, recovery, invite, email
/// change).
pub trait OneTimeTokens: Send {
    /// Stores one more confirmation link for the user, bound to the password `hash` of the signup
    /// that asked for it, beside the links already mailed; only the newest `keep` links stay (the
    /// oldest are dropped), so repeated signups cannot grow the table. `mail_pending` until
    /// [`OneTimeTokens::mark_token_mailed`].
    fn add_confirmation_token(
        &mut self,
        user_id: UserId,
        digest: &TokenDigest,
        hash: Option<&PasswordHash>,
        now: Timestamp,
        expires_at: Timestamp,
        keep: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that the mail carrying this one link was handed to the transport.
    fn mark_token_mailed(
        &mut self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many links of `purpose` the user has (used or not).
    fn count_user_tokens(
        &mut self,
        user_id: UserId,
        purpose: TokenPurpose,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;

    /// Forgets one link (its mail could not be sent).
    fn delete_token(
        &mut self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user an unused link of one of `purposes` belongs to, without consuming it: lets a
    /// service learn whose link it is (for the password policy) before its write transaction.
    fn find_token_user(
        &mut self,
        digest: &TokenDigest,
        purposes: (TokenPurpose, TokenPurpose),
    ) -> impl Future<Output = Result<Option<UserId>, StoreError>> + Send;

    /// Stores a new token of `purpose` for the user, dropping any earlier one (only the newest link
    /// works). The row starts as `mail_pending` until [`OneTimeTokens::mark_mailed`] records that its mail went out.
    fn replace_token(
        &mut self,
        user_id: UserId,
        purpose: TokenPurpose,
        digest: &TokenDigest,
        new_email: Option<&str>,
        now: Timestamp,
        expires_at: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records that the mail carrying the user's current `purpose` link was handed to the transport.
    fn mark_mailed(
        &mut self,
        user_id: UserId,
        purpose: TokenPurpose,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// At start, before serving: forgets every link whose mail an earlier process stored but never
    /// handed to the transport (it died in between), and clears the throttle stamp that link set, so
    /// the user can be mailed again at once. Returns how many links were forgotten.
    fn forget_links_never_mailed(&mut self)
    -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Marks an unused token of one of `purposes` used and returns it; single use is atomic because
    /// the check and the write are one statement. Expiry is the caller's to judge (an expired token
    /// gets its own error message), and the caller rolls back if it refuses the token.
    fn consume_token(
        &mut self,
        digest: &TokenDigest,
        purposes: (TokenPurpose, TokenPurpose),
        user_id: Option<UserId>,
        now: Timestamp,
    ) -> impl Future<Output = Result<Option<ConsumedToken>, StoreError>> + Send;

    fn delete_user_tokens(
        &mut self,
        user_id: UserId,
        purpose: TokenPurpose,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// `mfa_factors`, `mfa_challenges`, the sessions' assurance columns and pending console second
/// steps (`console_mfa_logins`).
pub trait Factors: Send {
    /// Stores a new factor with its sealed secret.
    fn insert_factor(
        &mut self,
        factor: &Factor,
        sealed_secret: &[u8],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A user's factors, oldest first.
    fn list_factors(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<Vec<Factor>, StoreError>> + Send;

    /// One of the user's factors and its sealed secret; `None` for another user's or an unknown id.
    fn find_factor(
        &mut self,
        user_id: UserId,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<(Factor, Vec<u8>)>, StoreError>> + Send;

    /// Whether the user has a verified factor (the condition for requiring aal2).
    fn has_verified_factor(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that a code for `step` was accepted: true only when `step` is later than every step
    /// accepted before, so each code is single-use (and older codes die with it). Also marks the
    /// factor verified.
    fn use_factor_step(
        &mut self,
        id: Uuid,
        step: i64,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    fn delete_factor(&mut self, id: Uuid) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Drops the user's unverified factors (once one is verified, abandoned enrollments go, as
    /// supabase/auth does).
    fn delete_unverified_factors(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Drops the user's unverified factors created before `before` (abandoned enrollments expire,
    /// as supabase/auth's `DeleteExpiredFactors`).
    fn delete_expired_factors(
        &mut self,
        user_id: UserId,
        before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Stores a challenge, and sweeps the factor's challenges older than `expired_before` so the
    /// table stays bounded.
    fn insert_challenge(
        &mut self,
        challenge: &Challenge,
        expired_before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn find_challenge(
        &mut self,
        id: Uuid,
    ) -> impl Future<Output = Result<Option<Challenge>, StoreError>> + Send;

    /// Marks a challenge answered; false when it already was.
    fn verify_challenge(
        &mut self,
        id: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// What a session has proved; `None` for an unknown session.
    fn session_assurance(
        &mut self,
        session_id: Uuid,
    ) -> impl Future<Output = Result<Option<Assurance>, StoreError>> + Send;

    /// Records the first factor of a new session (`password` is the column's default).
    fn set_sign_in_method(
        &mut self,
        session_id: Uuid,
        method: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Raises a session to aal2 through `factor_id`.
    fn raise_session_to_aal2(
        &mut self,
        session_id: Uuid,
        factor_id: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Lowers the sessions a removed factor had raised back to aal1 (supabase/auth's
    /// `DowngradeSessionsToAAL1`). Run before the factor row is deleted.
    fn downgrade_sessions_of_factor(
        &mut self,
        factor_id: Uuid,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A console login waiting for its code.
    fn insert_console_mfa_login(
        &mut self,
        digest: &[u8],
        user_id: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The user of a pending console login started after `not_before`.
    fn find_console_mfa_login(
        &mut self,
        digest: &[u8],
        not_before: Timestamp,
    ) -> impl Future<Output = Result<Option<UserId>, StoreError>> + Send;

    /// Ends a pending console login, and sweeps every expired one.
    fn delete_console_mfa_login(
        &mut self,
        digest: &[u8],
        expired_before: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// The `audit_log_entries` table.
pub trait AuditLog: Send {
    fn append_audit_entry(
        &mut self,
        entry: &AuditEntry,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Appends `entries` in their order (their rowids follow it, so entries of the same second
    /// list in queue order) with ONE multi-row insert: one statement, so one transaction and one
    /// WAL commit for the lot. Each keeps its own `created_at`. At most `MAX_ENTRIES_PER_INSERT`.
    fn append_audit_entries(
        &mut self,
        entries: &[AuditEntry],
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn list_audit_entries(
        &mut self,
        filter: &AuditFilter,
        limit: i64,
        offset: i64,
    ) -> impl Future<Output = Result<Vec<AuditEntry>, StoreError>> + Send;

    fn count_audit_entries(
        &mut self,
        filter: &AuditFilter,
    ) -> impl Future<Output = Result<i64, StoreError>> + Send;
}

/// The `throttles` table: one GCRA theoretical arrival time (ms) per key.
pub trait Throttles: Send {
    /// One GCRA step for `key`, atomic in one statement: with `tat = max(stored, now)`, the request
    /// conforms when `tat + emission - now <= limit` (`limit` = burst × emission, all in ms); then
    /// `tat + emission` is stored. Answers the new TAT when allowed, `None` when refused (nothing
    /// is written then, so refused requests never extend the wait).
    fn take_throttle(
        &mut self,
        key: &str,
        now_ms: i64,
        emission_ms: i64,
        limit_ms: i64,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// The stored TAT of `key`, if any (to tell a refused caller when to come back).
    fn find_throttle(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<Option<i64>, StoreError>> + Send;

    /// Gives back one emission interval (a request that turned out legitimate). A TAT that falls
    /// into the past is the same as no state at all.
    fn refund_throttle(
        &mut self,
        key: &str,
        emission_ms: i64,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets `key` entirely (an admin cleared it). Answers whether there was a row.
    fn delete_throttle(
        &mut self,
        key: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes up to `batch` rows whose TAT has passed (they hold no state).
    fn delete_expired_throttles(
        &mut self,
        now_ms: i64,
        batch: i64,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Keys starting with `prefix` whose TAT is beyond `threshold_ms` (= now + limit − emission:
    /// one more request would not conform), soonest-free last, at most `max` of them.
    fn list_limited_throttles(
        &mut self,
        prefix: &str,
        threshold_ms: i64,
        max: i64,
    ) -> impl Future<Output = Result<Vec<LimitedKey>, StoreError>> + Send;
}

/// The `console_sessions` table (digests of the console's session cookies).
pub trait ConsoleSessions: Send {
    fn insert_console_session(
        &mut self,
        digest: &TokenDigest,
        user_id: UserId,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn find_console_session(
        &mut self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<Option<ConsoleSessionRecord>, StoreError>> + Send;

    fn touch_console_session(
        &mut self,
        digest: &TokenDigest,
        now: Timestamp,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    fn delete_console_session(
        &mut self,
        digest: &TokenDigest,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends every console session of a user (banned or demoted admins).
    fn delete_user_console_sessions(
        &mut self,
        user_id: UserId,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Ends every console session but `keep` (the admin who ends them all stays logged in).
    fn delete_console_sessions_except(
        &mut self,
        keep: Option<&TokenDigest>,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Every store trait, for `use …::store::prelude::*` in code that calls the store (as
/// `std::io::prelude` brings `Read` and `Write`).
pub mod prelude {
    pub use super::{
        AuditLog, ConsoleSessions, Factors, OnConflict, OneTimeTokens, Sessions, Throttles, Users,
    };
}

/// Turns a unique violation into a typed outcome (rw's `on_constraint`): `Ok(Err(f()))` on
/// `StoreError::Conflict`, other errors unchanged.
pub trait OnConflict<T> {
    fn on_conflict<E>(self, f: impl FnOnce() -> E) -> Result<Result<T, E>, StoreError>;
}

impl<T> OnConflict<T> for Result<T, StoreError> {
    fn on_conflict<E>(self, f: impl FnOnce() -> E) -> Result<Result<T, E>, StoreError> {
        match self {
            Ok(v) => Ok(Ok(v)),
            Err(StoreError::Conflict { .. }) => Ok(Err(f())),
            Err(e) => Err(e),
        }
    }
}
