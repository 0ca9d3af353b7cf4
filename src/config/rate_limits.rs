//! Rate limit settings: the token-bucket [`Rate`], its two spellings, and what is throttled.

use std::time::Duration;

use crate::domain::duration::parse_duration;

use super::{ConfigError, Source, invalid};

/// A token bucket, run as GCRA: up to `burst` requests at once, then one more every `interval`.
/// A quiet key is full again after `burst × interval`, so any window of that length admits at
/// most `2 × burst` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests admitted at once from a full bucket (1 to 1,000,000).
    pub burst: u32,
    /// Time to earn back one request (1 ms to a year).
    pub interval: Duration,
}

impl Rate {
    /// supabase/auth's per-IP limiters: `requests` per 5 minutes, refilled evenly, burst 30
    /// (tollbooth's `SetBurst(30)` in `internal/api/apilimiter`).
    fn per_five_minutes(requests: f64) -> Rate {
        Rate {
            burst: 30,
            interval: Duration::from_secs_f64(300.0 / requests),
        }
    }

    /// Time from a full bucket being emptied to it being full again.
    pub fn window(&self) -> Duration {
        self.interval.saturating_mul(self.burst)
    }
}

/// What is throttled, and how much (README "Throttles"). The counters live in the store.
/// Per-IP values are requests per 5 minutes (0.01 to 1,000,000), burst 30; the others use
/// supabase/auth's rate syntax (`N` per hour, or `N/<duration>`).
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// `GOTRUE_RATE_LIMIT_HEADER`: when set, the client IP is the first value of this request
    /// header (a trusted proxy's `X-Forwarded-For`, say); otherwise the peer address.
    pub header: Option<String>,
    /// `GOTRUE_RATE_LIMIT_TOKEN_REFRESH` (default 150 per 5 minutes): `/token`, both grants,
    /// per client IP.
    pub token: Rate,
    /// `GOTRUE_RATE_LIMIT_VERIFY` (default 30 per 5 minutes): `/verify`, per client IP.
    pub verify: Rate,
    /// `GOTRUE_RATE_LIMIT_OTP` (default 30 per 5 minutes): `/signup`, `/recover`, `/invite`
    /// and email changes (`PUT /user` with `email`), each its own bucket per client IP, as
    /// supabase/auth's OTP limiters.
    pub otp: Rate,
    /// `CHIPFLAP_RATE_LIMIT_CONSOLE_LOGIN` (default 30 per 5 minutes): console login posts,
    /// per client IP.
    pub console_login: Rate,
    /// `CHIPFLAP_RATE_LIMIT_PASSWORD` (default `5/1m`): password checks per account (the
    /// normalized email, whether or not an account has it), on `/token` and the console login
    /// together.
    pub password: Rate,
    /// `GOTRUE_RATE_LIMIT_EMAIL_SENT` (default `10`, per hour): mails per recipient address
    /// (every kind sent on behalf of an anonymous caller or a user; admin-requested mails are
    /// not limited).
    pub email_sent: Rate,
}

/// `GOTRUE_RATE_LIMIT_*` and `CHIPFLAP_RATE_LIMIT_{CONSOLE_LOGIN,PASSWORD}`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<RateLimitSettings, ConfigError> {
    let per_five_minutes = |name: &'static str, default: f64| -> Result<Rate, ConfigError> {
        let requests: f64 = env.parsed(name, default, "a number of requests per 5 minutes")?;
        if !(requests.is_finite() && (0.01..=1e6).contains(&requests)) {
            return Err(invalid(
                name,
                format!(
                    "expected a number of requests per 5 minutes from 0.01 to 1000000, got {requests}"
                ),
            ));
        }
        Ok(Rate::per_five_minutes(requests))
    };
    Ok(RateLimitSettings {
        header: env
            .get("GOTRUE_RATE_LIMIT_HEADER")
            .map(|h| h.trim().to_owned()),
        token: per_five_minutes("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", 150.0)?,
        verify: per_five_minutes("GOTRUE_RATE_LIMIT_VERIFY", 30.0)?,
        otp: per_five_minutes("GOTRUE_RATE_LIMIT_OTP", 30.0)?,
        console_login: per_five_minutes("CHIPFLAP_RATE_LIMIT_CONSOLE_LOGIN", 30.0)?,
        password: rate_syntax(env, "CHIPFLAP_RATE_LIMIT_PASSWORD", "5/1m")?,
        email_sent: rate_syntax(env, "GOTRUE_RATE_LIMIT_EMAIL_SENT", "10")?,
    })
}

/// supabase/auth's `conf.Rate` syntax: `N` is N per hour (burst N, refilled evenly over the
/// hour); `N/<duration>` is a burst of N, then one more every `<duration>` (its BurstLimiter).
pub(super) fn rate_syntax<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    name: &'static str,
    default: &str,
) -> Result<Rate, ConfigError> {
    let text = env.string(name, default);
    parse_rate(text.trim()).map_err(|reason| {
        invalid(
            name,
            format!("expected N (per hour) or N/<duration> such as 5/1m, got {text:?}: {reason}"),
        )
    })
}

/// `N` or `N/<duration>` (see [`rate_syntax`]); the error says what is wrong, without the name.
fn parse_rate(text: &str) -> Result<Rate, String> {
    let (count, every) = match text.split_once('/') {
        Some((count, every)) => (count, Some(every)),
        None => (text, None),
    };
    let burst: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{count:?} is not a whole number"))?;
    if burst == 0 || burst > 1_000_000 {
        return Err("the count must be from 1 to 1000000".into());
    }
    let interval = match every {
        Some(every) => parse_duration(every.trim())?,
        None => Duration::from_secs(3600) / burst,
    };
    if interval.is_zero() || interval > Duration::from_secs(366 * 86_400) {
        return Err("the duration must be from 1ms to a year".into());
    }
    Ok(Rate { burst, interval })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::settings;
    use super::*;

    #[test]
    fn rate_limits_default_close_to_supabase_auth() {
        let s = settings(&[("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
        let r = &s.rate_limits;
        assert_eq!(r.header, None);
        let per_5m = |n: u64| Rate {
            burst: 30,
            interval: Duration::from_secs(300) / u32::try_from(n).unwrap(),
        };
        assert_eq!(r.token, per_5m(150));
        assert_eq!(r.verify, per_5m(30));
        assert_eq!(r.otp, per_5m(30));
        assert_eq!(r.console_login, per_5m(30));
        let password = Rate {
            burst: 5,
            interval: Duration::from_secs(60),
        };
        assert_eq!(r.password, password);
        assert_eq!(r.password.window(), Duration::from_secs(300));
        assert_eq!(
            r.email_sent,
            Rate {
                burst: 10,
                interval: Duration::from_secs(360)
            }
        );
        let s = settings(&[
            ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("GOTRUE_RATE_LIMIT_HEADER", "X-Forwarded-For"),
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "3/20m"),
        ])
        .unwrap();
        assert_eq!(s.rate_limits.header.as_deref(), Some("X-Forwarded-For"));
        assert_eq!(
            s.rate_limits.email_sent,
            Rate {
                burst: 3,
                interval: Duration::from_secs(1200)
            }
        );
    }
}
