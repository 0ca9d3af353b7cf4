//! The user as the rest of the code sees it, and the rules that read only the user (bans, admin).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use super::ValidationError;
use super::metadata::{self, Metadata};
use super::password::PasswordHash;
use super::timestamp::Timestamp;

/// A user's id: a UUID, written hyphenated and lower-case (as stored, as GoTrue prints it in
/// the JWT `sub`, and as the Ably `clientId`). Parsed once where it arrives from outside (path,
/// JWT, form, database row); everything past that edge carries this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Uuid);

impl UserId {
    /// A fresh random (version 4) id, for a new account.
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }

    /// Parses a UUID in any of the `uuid` crate's accepted forms (hyphenated, simple, braced,
    /// URN); anything else is refused with a `ValidationError` on the field `user_id`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Uuid::parse_str(s)
            .map(Self)
            .map_err(|_| ValidationError::new("user_id", "user_id must be an UUID"))
    }

    /// The UUID itself (for checks such as the nil id of the system user).
    pub fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

/// Any UUID is a well-formed user id (whether such a user exists is the store's to say).
impl From<Uuid> for UserId {
    fn from(id: Uuid) -> Self {
        Self(id)
    }
}

impl fmt::Display for UserId {
    /// Hyphenated, lower-case: `7d0e…-…`, 36 characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl FromStr for UserId {
    type Err = ValidationError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub aud: String,
    pub role: String,
    pub email: String,
    pub password_hash: Option<PasswordHash>,
    pub confirmed_at: Option<Timestamp>,
    pub invited_at: Option<Timestamp>,
    pub confirmation_sent_at: Option<Timestamp>,
    pub recovery_sent_at: Option<Timestamp>,
    pub new_email: Option<String>,
    pub email_change_sent_at: Option<Timestamp>,
    pub last_sign_in_at: Option<Timestamp>,
    pub banned_until: Option<Timestamp>,
    pub app_metadata: Metadata,
    pub user_metadata: Metadata,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl User {
    /// The names of the account's fields that differ in `after`, for audit entries that must
    /// say what changed but never the values (ASVS 5.0 V16.2): `email`, `new_email` (a pending
    /// change), `password`, `role`, `confirmed_at`, `banned_until`, `app_metadata`,
    /// `user_metadata`, in that order.
    pub fn changed_fields(&self, after: &User) -> Vec<&'static str> {
        [
            ("email", self.email != after.email),
            ("new_email", self.new_email != after.new_email),
            ("password", self.password_hash != after.password_hash),
            ("role", self.role != after.role),
            ("confirmed_at", self.confirmed_at != after.confirmed_at),
            ("banned_until", self.banned_until != after.banned_until),
            ("app_metadata", self.app_metadata != after.app_metadata),
            ("user_metadata", self.user_metadata != after.user_metadata),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// Confirms the address at `now`, unless it already is; answers whether this confirmed it.
    /// (A confirmation's side effects, such as dropping the other signups' links, are the
    /// caller's, in the same transaction.)
    pub fn confirm(&mut self, now: Timestamp) -> bool {
        if self.confirmed_at.is_some() {
            return false;
        }
        self.confirmed_at = Some(now);
        true
    }

    /// The password becomes `hash`; `None` leaves the account without one, so only a mailed
    /// link can sign it in (a recovery link that confirms, DESIGN §4.1).
    pub fn set_password(&mut self, hash: Option<PasswordHash>) {
        self.password_hash = hash;
    }

    /// Applies a ban change as of `now` (DESIGN §5), to the account as read inside the caller's
    /// transaction: roles granted meanwhile stay, and nothing read earlier is written back.
    pub fn apply_ban(&mut self, change: BanChange, now: Timestamp) {
        match change {
            BanChange::Lift => self.banned_until = None,
            BanChange::For(duration) => self.banned_until = Some(now.plus(duration)),
            BanChange::UntilUnbanned => add_banned_role(&mut self.app_metadata),
            BanChange::LiftAll => {
                self.banned_until = None;
                remove_banned_roles(&mut self.app_metadata);
            }
        }
    }

    pub fn is_confirmed(&self) -> bool {
        self.confirmed_at.is_some()
    }

    /// DESIGN §5: a role matching `^banned` (any case), or `banned_until` in the future.
    pub fn is_banned(&self, now: Timestamp) -> bool {
        self.banned_until.is_some_and(|until| until > now) || has_banned_role(&self.app_metadata)
    }

    /// DESIGN §3: only the `role` column makes an admin, never `app_metadata.roles`.
    pub fn is_admin(&self, admin_group: &str) -> bool {
        !admin_group.is_empty() && self.role == admin_group
    }

    /// `app_metadata.roles` as strings (non-strings are ignored).
    pub fn roles(&self) -> Vec<String> {
        roles_of(&self.app_metadata)
    }
}

pub fn roles_of(app_metadata: &Metadata) -> Vec<String> {
    match app_metadata.get("roles") {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Issue 8: whenever a write sets `app_metadata.roles`, it is a list of strings (or `null`, which
/// removes it), since bans and Ably capabilities read only string entries of a list: a plain
/// string such as `"banned"` would be stored and then ban nobody.
pub fn check_roles(app_metadata_patch: &Metadata) -> Result<(), ValidationError> {
    match app_metadata_patch.get("roles") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(ValidationError::new(
            "app_metadata",
            r#"app_metadata.roles must be a list of strings, such as ["banned"]"#,
        )),
    }
}

/// The one way every path (admin API, `PUT /user`, console, command line) writes
/// `app_metadata`: checks the roles rule, merges GoTrue's way, and checks the size.
pub fn merge_app_metadata(target: &mut Metadata, patch: Metadata) -> Result<(), ValidationError> {
    check_roles(&patch)?;
    metadata::merge(target, patch);
    metadata::check_size("app_metadata", target)
}

pub fn has_banned_role(app_metadata: &Metadata) -> bool {
    roles_of(app_metadata)
        .iter()
        .any(|role| is_banned_role(role))
}

/// `^banned`, case-insensitively (the seed's convention).
/// How a change affects a ban (`ban_duration` in the admin API, DESIGN §5); applied by
/// `User::apply_ban`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BanChange {
    /// `"none"`: lift a `banned_until` ban.
    Lift,
    /// Banned until now + this long.
    For(std::time::Duration),
    /// Banned until an admin unbans: the role `banned` joins the roles the account has when
    /// the change is applied, inside its transaction (console and CLI "ban").
    UntilUnbanned,
    /// Every kind of ban lifted: `banned_until` cleared and every banned role dropped from the
    /// roles the account has inside the transaction (console and CLI "unban").
    LiftAll,
}

impl BanChange {
    /// `"none"` or a Go duration such as `"24h"` (`"0"` also lifts); at most 100 years.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("none") {
            return Ok(BanChange::Lift);
        }
        match super::duration::parse_duration(t) {
            Ok(d) if d.is_zero() => Ok(BanChange::Lift),
            Ok(d) if d.as_secs() > 100 * 365 * 86_400 => Err(ValidationError::new(
                "ban_duration",
                "ban_duration must be at most 100 years",
            )),
            Ok(d) => Ok(BanChange::For(d)),
            Err(e) => Err(ValidationError::new(
                "ban_duration",
                format!("ban_duration must be \"none\" or a duration such as \"24h\": {e}"),
            )),
        }
    }
}

/// Adds the role `banned` (the seed's convention) to `app_metadata.roles`, unless a banned role
/// is there already. The other roles stay as they are.
fn add_banned_role(app_metadata: &mut Metadata) {
    let mut roles = roles_of(app_metadata);
    if !roles.iter().any(|r| is_banned_role(r)) {
        roles.push("banned".to_owned());
        app_metadata.insert("roles".into(), Value::from(roles));
    }
}

/// Drops every banned role (`banned…`, any case) from `app_metadata.roles`; the other roles stay.
fn remove_banned_roles(app_metadata: &mut Metadata) {
    let roles = roles_of(app_metadata);
    if roles.iter().any(|r| is_banned_role(r)) {
        let kept: Vec<String> = roles.into_iter().filter(|r| !is_banned_role(r)).collect();
        app_metadata.insert("roles".into(), Value::from(kept));
    }
}

pub fn is_banned_role(role: &str) -> bool {
    role.get(..6)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("banned"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A confirmed user with no password, roles or metadata, made at 1 s: the domain tests'
    /// starting point (`session` uses it too).
    pub(crate) fn sample_user(id: UserId) -> User {
        User {
            id,
            aud: String::new(),
            role: String::new(),
            email: "a@example.org".into(),
            password_hash: None,
            confirmed_at: Some(Timestamp::from_unix(1)),
            invited_at: None,
            confirmation_sent_at: None,
            recovery_sent_at: None,
            new_email: None,
            email_change_sent_at: None,
            last_sign_in_at: None,
            banned_until: None,
            app_metadata: Metadata::new(),
            user_metadata: Metadata::new(),
            created_at: Timestamp::from_unix(1),
            updated_at: Timestamp::from_unix(1),
        }
    }

    fn user_with(app_metadata: &Value, banned_until: Option<i64>) -> User {
        User {
            confirmed_at: None,
            banned_until: banned_until.map(Timestamp::from_unix),
            app_metadata: app_metadata.as_object().cloned().unwrap_or_default(),
            ..sample_user(UserId::new_random())
        }
    }

    #[test]
    fn user_id_round_trips_hyphenated_lower_case_and_refuses_non_uuids() {
        let id: UserId = "7D0E4B5A-1C2D-4E3F-8A9B-0C1D2E3F4A5B".parse().unwrap();
        assert_eq!(id.to_string(), "7d0e4b5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b");
        assert_eq!(UserId::parse(&id.to_string()), Ok(id));
        assert_eq!(serde_json::to_value(id).unwrap(), json!(id.to_string()));
        assert_eq!(
            serde_json::from_value::<UserId>(json!(id.to_string())).unwrap(),
            id
        );
        for bad in [
            "",
            "not-a-uuid",
            "7d0e4b5a-1c2d-4e3f-8a9b",
            " 7d0e4b5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
        ] {
            assert_eq!(UserId::parse(bad).unwrap_err().field, "user_id", "{bad:?}");
            assert!(serde_json::from_value::<UserId>(json!(bad)).is_err());
        }
        assert!(serde_json::from_value::<UserId>(json!(1)).is_err());
        let random = UserId::new_random();
        assert_eq!(random.as_uuid().get_version_num(), 4);
        assert_ne!(random, UserId::new_random());
    }

    #[test]
    fn banned_role_matches_prefix_case_insensitively() {
        let now = Timestamp::from_unix(100);
        assert!(user_with(&json!({"roles": ["editor", "Banned"]}), None).is_banned(now));
        assert!(user_with(&json!({"roles": ["BANNED-spam"]}), None).is_banned(now));
        assert!(!user_with(&json!({"roles": ["unbanned", "ban"]}), None).is_banned(now));
        assert!(!user_with(&json!({"roles": "banned"}), None).is_banned(now));
    }

    #[test]
    fn roles_must_be_a_list_of_strings() {
        let patch = |v: Value| v.as_object().cloned().unwrap();
        for bad in [
            json!({"roles": "banned"}),
            json!({"roles": {"0": "banned"}}),
            json!({"roles": ["banned", 1]}),
            json!({"roles": [["banned"]]}),
            json!({"roles": true}),
        ] {
            let err = check_roles(&patch(bad.clone())).unwrap_err();
            assert!(err.reason.contains("list of strings"), "{bad}");
            let mut target = Metadata::new();
            assert!(merge_app_metadata(&mut target, patch(bad)).is_err());
            assert!(target.is_empty(), "nothing is merged when refused");
        }
        for good in [
            json!({"roles": ["banned"]}),
            json!({"roles": []}),
            json!({"roles": null}),
            json!({"plan": "pro"}),
        ] {
            assert!(check_roles(&patch(good.clone())).is_ok(), "{good}");
        }
    }

    #[test]
    fn banned_until_counts_only_in_the_future() {
        let now = Timestamp::from_unix(100);
        assert!(user_with(&json!({}), Some(101)).is_banned(now));
        assert!(!user_with(&json!({}), Some(100)).is_banned(now));
    }

    #[test]
    fn only_the_role_column_makes_an_admin() {
        let mut u = user_with(&json!({"roles": ["admin"]}), None);
        assert!(!u.is_admin("admin"));
        u.role = "admin".into();
        assert!(u.is_admin("admin"));
        assert!(!u.is_admin(""));
    }

    #[test]
    fn ban_durations_parse() {
        assert_eq!(BanChange::parse("none").unwrap(), BanChange::Lift);
        assert_eq!(BanChange::parse("0").unwrap(), BanChange::Lift);
        assert_eq!(
            BanChange::parse("24h").unwrap(),
            BanChange::For(std::time::Duration::from_secs(86_400))
        );
        assert!(BanChange::parse("forever").is_err());
        assert!(BanChange::parse("1000000h").is_err());
    }

    #[test]
    fn bans_apply_to_the_account_as_it_is() {
        let now = Timestamp::from_unix(1_000);
        let mut user = user_with(&json!({"roles": ["editor"]}), None);
        user.apply_ban(BanChange::For(std::time::Duration::from_secs(60)), now);
        assert_eq!(user.banned_until, Some(Timestamp::from_unix(1_060)));
        assert!(user.is_banned(now));
        user.apply_ban(BanChange::UntilUnbanned, now);
        assert_eq!(user.roles(), ["editor", "banned"]);
        user.apply_ban(BanChange::Lift, now);
        assert!(user.is_banned(now), "lifting the timed ban leaves the role");
        user.apply_ban(BanChange::LiftAll, now);
        assert!(!user.is_banned(now));
        assert_eq!(user.roles(), ["editor"]);
    }

    #[test]
    fn confirming_twice_keeps_the_first_time() {
        let mut user = user_with(&json!({}), None);
        assert!(user.confirm(Timestamp::from_unix(5)));
        assert!(!user.confirm(Timestamp::from_unix(9)));
        assert_eq!(user.confirmed_at, Some(Timestamp::from_unix(5)));
    }
}
