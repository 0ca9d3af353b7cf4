//! Multi-factor authentication settings: challenge expiry, factor count, throttles, requirements.

use std::time::Duration;

use super::rate_limits::{Rate, rate_syntax};
use super::{ConfigError, Source, invalid};

/// Multi-factor authentication (README "Multi-factor authentication"; supabase/auth's
/// `GOTRUE_MFA_*` names where it has the setting).
#[derive(Debug, Clone)]
pub struct MfaSettings {
    /// `GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION` (seconds, default 300): how long a challenge
    /// can be answered.
    pub challenge_expiry: Duration,
    /// `GOTRUE_MFA_MAX_ENROLLED_FACTORS` (default 10): factors per user, verified or not.
    pub max_enrolled_factors: u32,
    /// `GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY` (default 15 per minute): challenge and
    /// verify requests per client IP.
    pub challenge_and_verify: Rate,
    /// `CHIPFLAP_RATE_LIMIT_MFA_VERIFY` (supabase/auth's rate syntax, default `5/1m`): code
    /// checks per user, on the API and the console together, so codes cannot be guessed.
    pub verify_per_user: Rate,
    /// `CHIPFLAP_CONSOLE_REQUIRE_MFA`: the console serves admins without a verified factor
    /// nothing but the enrollment page.
    pub console_require_mfa: bool,
    /// `CHIPFLAP_MFA_REQUIRED`: every user needs an aal2 session for Ably tokens, the admin API
    /// and password or email changes, factor or not (users without one enroll at aal1 first).
    pub required: bool,
}

/// `GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION` (30 to 86400 seconds),
/// `GOTRUE_MFA_MAX_ENROLLED_FACTORS` (1 to 100), `GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY`
/// (0.01 to 1000000 per minute, burst 15), `CHIPFLAP_RATE_LIMIT_MFA_VERIFY`,
/// `CHIPFLAP_CONSOLE_REQUIRE_MFA` and `CHIPFLAP_MFA_REQUIRED`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<MfaSettings, ConfigError> {
    let expiry: u64 = env.parsed(
        "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION",
        300,
        "a number of seconds",
    )?;
    if !(30..=86_400).contains(&expiry) {
        return Err(invalid(
            "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION",
            "expected 30 to 86400 seconds",
        ));
    }
    let max_enrolled_factors: u32 =
        env.parsed("GOTRUE_MFA_MAX_ENROLLED_FACTORS", 10, "a number of factors")?;
    if !(1..=100).contains(&max_enrolled_factors) {
        return Err(invalid(
            "GOTRUE_MFA_MAX_ENROLLED_FACTORS",
            "expected 1 to 100 factors",
        ));
    }
    let per_minute: f64 = env.parsed(
        "GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY",
        15.0,
        "a number of requests per minute",
    )?;
    if !(per_minute.is_finite() && (0.01..=1e6).contains(&per_minute)) {
        return Err(invalid(
            "GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY",
            "expected a number of requests per minute from 0.01 to 1000000",
        ));
    }
    Ok(MfaSettings {
        challenge_expiry: Duration::from_secs(expiry),
        max_enrolled_factors,
        challenge_and_verify: Rate {
            burst: 15,
            interval: Duration::from_secs_f64(60.0 / per_minute),
        },
        verify_per_user: rate_syntax(env, "CHIPFLAP_RATE_LIMIT_MFA_VERIFY", "5/1m")?,
        console_require_mfa: env.flag("CHIPFLAP_CONSOLE_REQUIRE_MFA")?,
        required: env.flag("CHIPFLAP_MFA_REQUIRED")?,
    })
}
