//! A login session (supabase/auth's `sessions`) and the one rule that says whether it is live.

use std::time::Duration;

use uuid::Uuid;

use super::timestamp::Timestamp;
use super::user::{User, UserId};

/// Why a session ended; stored in `sessions.ended_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// `POST /logout` (it ends every session of the user, as GoTrue does).
    Logout,
    /// The password changed: the user's other sessions end (DESIGN §4.7).
    PasswordChange,
    /// The user was banned (DESIGN §5).
    Ban,
    /// An admin ended it (console "end sessions").
    Admin,
    /// A rotated refresh token was presented after the grace window (DESIGN §4.3).
    RefreshTokenReuse,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::PasswordChange => "password_change",
            EndReason::Ban => "ban",
            EndReason::Admin => "admin",
            EndReason::RefreshTokenReuse => "refresh_token_reuse",
        }
    }

    /// The stored name back; unknown names read as `Admin` (the backfill's label).
    pub fn parse(name: &str) -> Self {
        match name {
            "logout" => EndReason::Logout,
            "password_change" => EndReason::PasswordChange,
            "ban" => EndReason::Ban,
            "refresh_token_reuse" => EndReason::RefreshTokenReuse,
            _ => EndReason::Admin,
        }
    }
}

/// How long a session may live, from supabase/auth's `GOTRUE_SESSIONS_*` settings; `None` is no
/// limit (their default).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLimits {
    /// `GOTRUE_SESSIONS_TIMEBOX`: the session ends this long after the login, however often
    /// it is refreshed.
    pub timebox: Option<Duration>,
    /// `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT`: the session ends when it has not been refreshed
    /// (a refresh-token grant) for this long. Using an access token is not activity, as in
    /// supabase/auth: a tab left open would otherwise keep it alive for ever.
    pub inactivity_timeout: Option<Duration>,
}

/// One row of `sessions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: Uuid,
    pub user_id: UserId,
    pub created_at: Timestamp,
    /// The last refresh-token rotation (the start, until the first refresh).
    pub refreshed_at: Timestamp,
    /// When and why it ended; `None` while it has not been ended explicitly.
    pub ended: Option<(Timestamp, EndReason)>,
}

impl Session {
    /// Whether the session still grants access at `now`. This is the only place that decides
    /// it: a session lives until it is ended, until `limits.timebox` after `created_at`, and
    /// until `limits.inactivity_timeout` after `refreshed_at` (supabase/auth's
    /// `Session.CheckValidity`: past the instant is dead, the instant itself still lives).
    pub fn is_live(&self, now: Timestamp, limits: &SessionLimits) -> bool {
        let within = |start: Timestamp, limit: Option<Duration>| {
            limit.is_none_or(|limit| now.unix() <= start.plus(limit).unix())
        };
        self.ended.is_none()
            && within(self.created_at, limits.timebox)
            && within(self.refreshed_at, limits.inactivity_timeout)
    }
}

/// Why a request presenting a session is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionRefusal {
    /// The user no longer exists (deleted).
    #[error("user not found")]
    UnknownUser,
    /// The user is banned (answered 403, before anything about the session).
    #[error("user is banned")]
    Banned,
    /// The token names no session, an unknown one, another user's, or one that has ended:
    /// answered as an invalid token (401).
    #[error("the session has ended")]
    Ended,
}

/// The rule every path that authenticates a user through a session applies, in this order:
/// the user exists, is not banned, and the session named by the token is theirs and live.
/// A ban answers 403 although it also ends every session, so a banned user learns why.
pub fn check_session(
    user: Option<&User>,
    session: Option<&Session>,
    now: Timestamp,
    limits: &SessionLimits,
) -> Result<(), SessionRefusal> {
    let user = user.ok_or(SessionRefusal::UnknownUser)?;
    if user.is_banned(now) {
        return Err(SessionRefusal::Banned);
    }
    match session {
        Some(session) if session.user_id == user.id && session.is_live(now, limits) => Ok(()),
        _ => Err(SessionRefusal::Ended),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: SessionLimits = SessionLimits {
        timebox: None,
        inactivity_timeout: None,
    };

    fn user(id: UserId) -> User {
        crate::user::tests::sample_user(id)
    }

    fn session(user_id: UserId, ended: Option<EndReason>) -> Session {
        Session {
            id: Uuid::new_v4(),
            user_id,
            created_at: Timestamp::from_unix(1),
            refreshed_at: Timestamp::from_unix(1),
            ended: ended.map(|r| (Timestamp::from_unix(2), r)),
        }
    }

    #[test]
    fn only_the_users_own_live_session_passes() {
        let now = Timestamp::from_unix(10);
        let id = UserId::new_random();
        let u = user(id);
        assert_eq!(
            check_session(Some(&u), Some(&session(id, None)), now, &NONE),
            Ok(())
        );
        assert_eq!(
            check_session(Some(&u), None, now, &NONE),
            Err(SessionRefusal::Ended)
        );
        assert_eq!(
            check_session(
                Some(&u),
                Some(&session(UserId::new_random(), None)),
                now,
                &NONE
            ),
            Err(SessionRefusal::Ended),
            "another user's session"
        );
        for reason in [
            EndReason::Logout,
            EndReason::PasswordChange,
            EndReason::Ban,
            EndReason::Admin,
            EndReason::RefreshTokenReuse,
        ] {
            assert_eq!(EndReason::parse(reason.as_str()), reason);
            assert_eq!(
                check_session(Some(&u), Some(&session(id, Some(reason))), now, &NONE),
                Err(SessionRefusal::Ended)
            );
        }
        assert_eq!(
            check_session(None, Some(&session(id, None)), now, &NONE),
            Err(SessionRefusal::UnknownUser)
        );
    }

    #[test]
    fn a_ban_is_told_before_the_ended_session() {
        let now = Timestamp::from_unix(10);
        let id = UserId::new_random();
        let mut u = user(id);
        u.banned_until = Some(Timestamp::from_unix(100));
        assert_eq!(
            check_session(
                Some(&u),
                Some(&session(id, Some(EndReason::Ban))),
                now,
                &NONE
            ),
            Err(SessionRefusal::Banned)
        );
    }

    #[test]
    fn the_timebox_counts_from_the_login_and_inactivity_from_the_last_refresh() {
        let limits = SessionLimits {
            timebox: Some(Duration::from_secs(100)),
            inactivity_timeout: Some(Duration::from_secs(30)),
        };
        let mut s = session(UserId::new_random(), None);
        s.created_at = Timestamp::from_unix(1_000);
        s.refreshed_at = Timestamp::from_unix(1_000);
        assert!(s.is_live(Timestamp::from_unix(1_030), &limits));
        assert!(!s.is_live(Timestamp::from_unix(1_031), &limits), "idle");
        s.refreshed_at = Timestamp::from_unix(1_090);
        assert!(s.is_live(Timestamp::from_unix(1_100), &limits));
        assert!(!s.is_live(Timestamp::from_unix(1_101), &limits), "timebox");
        assert!(
            s.is_live(Timestamp::from_unix(1_000_000), &NONE),
            "no limits"
        );
    }
}
