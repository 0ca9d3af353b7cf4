//! Session limits: `GOTRUE_SESSIONS_TIMEBOX` and `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT` (supabase/auth).

use std::time::Duration;

use crate::domain::session::SessionLimits;

use super::{ConfigError, Source, invalid};

/// [`SessionLimits`]: `GOTRUE_SESSIONS_TIMEBOX` (a session's whole life from login) and
/// `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT` (time since its last refresh), each seconds or a Go
/// duration of at least 1s; unset means no limit.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<SessionLimits, ConfigError> {
    Ok(SessionLimits {
        timebox: session_limit(env, "GOTRUE_SESSIONS_TIMEBOX")?,
        inactivity_timeout: session_limit(env, "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT")?,
    })
}

/// supabase/auth: unset means no limit; a set value must be positive.
fn session_limit<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    name: &'static str,
) -> Result<Option<Duration>, ConfigError> {
    match env.get(name) {
        None => Ok(None),
        Some(_) => match env.duration(name, Duration::ZERO)? {
            d if d < Duration::from_secs(1) => Err(invalid(
                name,
                "must be at least 1s when set (unset for no limit)",
            )),
            d => Ok(Some(d)),
        },
    }
}
