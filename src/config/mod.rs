//! Settings read once from the environment (GoTrue's names, DESIGN §2), validated eagerly.

// One file per concern: its settings struct, the function that reads it from a `Source`, and
// its unit tests. `Settings::from_lookup` calls them in a fixed order (see there).

use std::path::PathBuf;
use std::time::Duration;

use crate::domain::duration::parse_duration;
use crate::domain::session::SessionLimits;

mod ably;
mod database;
mod hashing;
mod http;
mod jwt;
mod mailer;
mod mfa;
mod rate_limits;
mod sessions;
mod signup;

pub use ably::AblySettings;
pub use database::{DatabaseBackend, DatabaseSettings};
pub use hashing::PasswordHashingSettings;
pub use http::{DEFAULT_MAX_CONNECTIONS_PER_CORE, HttpSettings};
pub use jwt::JwtSettings;
pub use mailer::{MailerSettings, SmtpSettings, SmtpTls};
pub use mfa::MfaSettings;
pub use rate_limits::{Rate, RateLimitSettings};
pub use signup::SignupSettings;

/// `CHIPFLAP_ENV`: `development` (or `dev`, the default) or `production` (or `prod`).
/// Production refuses development conveniences (generated secrets, plain http, the outbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    /// Conveniences allowed, each announced in [`Settings::warnings`].
    Development,
    /// Every setting must be fit for real users.
    Production,
    /// An in-process test server ([`Settings::for_tests`]); never read from the environment.
    Test,
}

/// Every setting of the server, one section per concern; built by [`Settings::from_env`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// `CHIPFLAP_ENV`.
    pub environment: Environment,
    /// Listen address, site URL, CORS, static site and connection bound.
    pub http: HttpSettings,
    /// `DATABASE_URL` and the auth cache.
    pub database: DatabaseSettings,
    /// `GOTRUE_JWT_*` and the operator token.
    pub jwt: JwtSettings,
    /// Sign-up and password policy.
    pub signup: SignupSettings,
    /// `GOTRUE_SMTP_*` and `GOTRUE_MAILER_*`.
    pub mailer: MailerSettings,
    /// `CHIPFLAP_ARGON2_*` and the hashing threads.
    pub hashing: PasswordHashingSettings,
    /// `ABLY_*` and `CHIPFLAP_ABLY_*`.
    pub ably: AblySettings,
    /// `GOTRUE_RATE_LIMIT_*` and `CHIPFLAP_RATE_LIMIT_*`.
    pub rate_limits: RateLimitSettings,
    /// `GOTRUE_SESSIONS_TIMEBOX` and `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT` (supabase/auth).
    pub sessions: SessionLimits,
    /// `GOTRUE_MFA_*` and the MFA switches.
    pub mfa: MfaSettings,
    /// Things worth a warning at start (development conveniences in use); logged by `main`.
    pub warnings: Vec<String>,
}

/// Why the settings could not be built; the server does not start.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable's value is malformed or not allowed (in production, say); the message
    /// starts with the variable's name.
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
    /// The development JWT secret file could not be read or written.
    #[error("could not prepare the development JWT secret in {path}: {source}")]
    DevSecret {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(name: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        message: message.into(),
    }
}

/// Reads variables through `lookup`, so tests can hand in a map instead of the process env.
struct Source<F: Fn(&str) -> Option<String>>(F);

impl<F: Fn(&str) -> Option<String>> Source<F> {
    /// Unset and empty are the same: an empty `GOTRUE_SMTP_HOST=` in `.env` means "no SMTP".
    fn get(&self, name: &str) -> Option<String> {
        (self.0)(name).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.get(name).unwrap_or_else(|| default.to_owned())
    }

    fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        default: T,
        expected: &str,
    ) -> Result<T, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| invalid(name, format!("expected {expected}, got {v:?}"))),
        }
    }

    fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.get(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(invalid(name, format!("expected true or false, got {v:?}"))),
        }
    }

    /// `None` when unset, so a default can depend on other settings.
    fn optional_flag(&self, name: &'static str) -> Result<Option<bool>, ConfigError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.flag(name).map(Some),
        }
    }

    fn duration(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => parse_duration(&v).map_err(|e| {
                invalid(
                    name,
                    format!("expected seconds or a Go duration such as \"15m\": {e}"),
                )
            }),
        }
    }
}

/// `CHIPFLAP_ENV`: see [`Environment`].
fn environment<F: Fn(&str) -> Option<String>>(env: &Source<F>) -> Result<Environment, ConfigError> {
    match env.string("CHIPFLAP_ENV", "development").as_str() {
        "development" | "dev" => Ok(Environment::Development),
        "production" | "prod" => Ok(Environment::Production),
        other => Err(invalid(
            "CHIPFLAP_ENV",
            format!("expected development or production, got {other:?}"),
        )),
    }
}

impl Settings {
    /// Reads [`KNOWN_VARIABLES`] from the process environment; see [`Settings::from_lookup`].
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads and validates every setting through `lookup` (a variable's name to its value;
    /// unset and blank are the same). The first bad value is the error, named after its
    /// variable. In development without `GOTRUE_JWT_SECRET`, creates the secret file in the
    /// database's directory.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = Source(lookup);
        let mut warnings = Vec::new();
        // Keep this order: it decides which of several bad values is reported, and later
        // sections take their defaults from earlier ones (site URL, data directory).
        let environment = environment(&env)?;
        let production = environment == Environment::Production;
        let site = http::site(&env, production, &mut warnings)?;
        let backend = database::backend_from_source(&env)?;
        let data_dir = database::data_dir(&backend);
        let jwt = jwt::from_source(&env, production, &data_dir, &mut warnings)?;
        let sessions = sessions::from_source(&env)?;
        let signup = signup::from_source(&env, production, &site.site_url)?;
        let mailer = mailer::from_source(&env, production, &site.site_url, &data_dir)?;
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let hashing = hashing::from_source(&env, production, cores)?;
        let ably = ably::from_source(&env, production)?;
        let rate_limits = rate_limits::from_source(&env)?;
        let http = http::from_source(&env, site, cores)?;
        let mfa = mfa::from_source(&env)?;
        let database = database::from_source(&env, backend)?;
        Ok(Settings {
            environment,
            http,
            database,
            jwt,
            signup,
            mailer,
            hashing,
            ably,
            rate_limits,
            sessions,
            mfa,
            warnings,
        })
    }

    /// Settings for an in-process test server: port 0, cheapest argon2, one worker, fixed secret.
    /// The caller sets `database.backend` and `mailer.mail_dir` inside its temporary directory.
    pub fn for_tests() -> Settings {
        let mut settings = Settings::from_lookup(|name| match name {
            "PORT" => Some("0".into()),
            "GOTRUE_SITE_URL" => Some("http://site.test".into()),
            "GOTRUE_JWT_SECRET" => Some("test-secret-test-secret-test-secret!".into()),
            "GOTRUE_OPERATOR_TOKEN" => Some("test-operator-token".into()),
            "CHIPFLAP_ARGON2_MEMORY_KIB" => Some("8".into()),
            "CHIPFLAP_ARGON2_ITERATIONS" => Some("1".into()),
            "CHIPFLAP_HASH_CONCURRENCY" => Some("2".into()),
            "DATABASE_URL" => Some("sqlite://unused-test.db".into()),
            _ => None,
        })
        .unwrap_or_else(|e| unreachable!("test settings are valid: {e}"));
        settings.environment = Environment::Test;
        settings.http.workers = Some(1);
        settings.warnings.clear();
        settings
    }

    /// Whether cookies we set carry `Secure` (DESIGN §6): only behind https.
    pub fn secure_cookies(&self) -> bool {
        self.http.site_url.scheme() == "https"
    }
}

/// Every variable `Settings` reads; `.env.example` must list exactly these.
pub const KNOWN_VARIABLES: &[&str] = &[
    "CHIPFLAP_ENV",
    "DATABASE_URL",
    "CHIPFLAP_AUTH_CACHE_BYTES",
    "GOTRUE_API_HOST",
    "PORT",
    "GOTRUE_SITE_URL",
    "CHIPFLAP_CORS_ORIGINS",
    "CHIPFLAP_SITE_DIR",
    "CHIPFLAP_SITE_FRAME_ANCESTORS",
    "CHIPFLAP_DEMO_VENDOR_DIR",
    "CHIPFLAP_MAX_CONNECTIONS",
    "GOTRUE_JWT_SECRET",
    "GOTRUE_JWT_EXP",
    "GOTRUE_JWT_AUD",
    "GOTRUE_JWT_ALLOWED_AUDIENCES",
    "GOTRUE_JWT_ADMIN_GROUP_NAME",
    "GOTRUE_JWT_DEFAULT_GROUP_NAME",
    "GOTRUE_JWT_REFRESH_TOKEN_LIFETIME",
    "GOTRUE_SESSIONS_TIMEBOX",
    "GOTRUE_SESSIONS_INACTIVITY_TIMEOUT",
    "CHIPFLAP_JWT_PREVIOUS_SECRETS",
    "GOTRUE_JWT_KEY_ID",
    "GOTRUE_JWT_ISSUER",
    "GOTRUE_OPERATOR_TOKEN",
    "GOTRUE_DISABLE_SIGNUP",
    "GOTRUE_MAILER_AUTOCONFIRM",
    "CHIPFLAP_PASSWORD_MIN_LENGTH",
    "CHIPFLAP_PASSWORD_CONTEXT_WORDS",
    "GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION",
    "GOTRUE_SMTP_HOST",
    "GOTRUE_SMTP_PORT",
    "GOTRUE_SMTP_USER",
    "GOTRUE_SMTP_PASS",
    "CHIPFLAP_SMTP_TLS",
    "GOTRUE_SMTP_ADMIN_EMAIL",
    "CHIPFLAP_MAIL_DIR",
    "GOTRUE_SMTP_MAX_FREQUENCY",
    "GOTRUE_MAILER_CONFIRMATION_MAX_AGE",
    "GOTRUE_MAILER_RECOVERY_MAX_AGE",
    "GOTRUE_MAILER_INVITE_MAX_AGE",
    "GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED",
    "GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED",
    "CHIPFLAP_ARGON2_MEMORY_KIB",
    "CHIPFLAP_ARGON2_ITERATIONS",
    "CHIPFLAP_ARGON2_PARALLELISM",
    "CHIPFLAP_HASH_CONCURRENCY",
    "CHIPFLAP_HASH_QUEUE",
    "ABLY_APIKEY",
    "ABLY_CAPABILITY",
    "ABLY_TTLSECONDS",
    "CHIPFLAP_ABLY_ROLE_CAPABILITIES",
    "CHIPFLAP_ABLY_REST_URL",
    "CHIPFLAP_ABLY_REVOKE_ON_BAN",
    "GOTRUE_RATE_LIMIT_HEADER",
    "GOTRUE_RATE_LIMIT_TOKEN_REFRESH",
    "GOTRUE_RATE_LIMIT_VERIFY",
    "GOTRUE_RATE_LIMIT_OTP",
    "GOTRUE_RATE_LIMIT_EMAIL_SENT",
    "CHIPFLAP_RATE_LIMIT_PASSWORD",
    "CHIPFLAP_RATE_LIMIT_CONSOLE_LOGIN",
    "GOTRUE_MFA_CHALLENGE_EXPIRY_DURATION",
    "GOTRUE_MFA_MAX_ENROLLED_FACTORS",
    "GOTRUE_MFA_RATE_LIMIT_CHALLENGE_AND_VERIFY",
    "CHIPFLAP_RATE_LIMIT_MFA_VERIFY",
    "CHIPFLAP_CONSOLE_REQUIRE_MFA",
    "CHIPFLAP_MFA_REQUIRED",
    "RUST_LOG",
];

/// Helpers for the unit tests of every section: settings from a list of variables.
#[cfg(test)]
mod testing {
    use std::collections::HashMap;

    use super::{ConfigError, Settings};

    /// A production configuration that passes, to vary one variable at a time.
    const PRODUCTION: [(&str, &str); 4] = [
        ("CHIPFLAP_ENV", "production"),
        ("GOTRUE_SITE_URL", "https://example.org"),
        ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("GOTRUE_SMTP_HOST", "smtp.example.org"),
    ];

    pub(super) fn production_with(
        extra: &[(&'static str, &'static str)],
    ) -> Result<Settings, ConfigError> {
        let mut vars = PRODUCTION.to_vec();
        vars.extend_from_slice(extra);
        settings(&vars)
    }

    pub(super) fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(move |name| map.get(name).cloned())
    }

    pub(super) fn error_names(vars: &[(&str, &str)]) -> String {
        settings(vars).unwrap_err().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{error_names, settings};
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn the_database_url_scheme_picks_the_store_and_its_password_is_never_echoed() {
        let s = settings(&[
            (
                "DATABASE_URL",
                "postgres://chipflap:hunter2@db.internal:6543/identity",
            ),
            ("GOTRUE_JWT_SECRET", "test-secret-test-secret-test-secret!"),
        ])
        .unwrap();
        let DatabaseBackend::Postgres(url) = &s.database.backend else {
            panic!(
                "a postgres:// URL picks PostgreSQL: {:?}",
                s.database.backend
            );
        };
        assert_eq!(
            url.expose_secret(),
            "postgres://chipflap:hunter2@db.internal:6543/identity"
        );
        assert_eq!(
            s.database.describe(),
            "PostgreSQL at db.internal:6543/identity"
        );
        assert!(!format!("{:?}", s.database).contains("hunter2"));
        assert!(s.database.sqlite_path().is_none());
        let refused = error_names(&[("DATABASE_URL", "postgres://chipflap:hunter2@/")]);
        assert!(refused.contains("DATABASE_URL"), "{refused}");
        assert!(!refused.contains("hunter2"), "{refused}");
        let refused = error_names(&[("DATABASE_URL", "mysql://chipflap@db/identity")]);
        assert!(refused.contains("expected sqlite://"), "{refused}");
    }

    #[test]
    fn defaults_follow_the_design() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/x.db", dir.path().display());
        let s = settings(&[("DATABASE_URL", &url)]).unwrap();
        assert_eq!(s.http.port, 9999);
        assert_eq!(s.http.site_url.as_str(), "http://localhost:9999/");
        assert_eq!(
            s.http.cors_origins,
            vec!["http://localhost:9999".to_owned()]
        );
        assert_eq!(s.jwt.exp, Duration::from_secs(3600));
        assert_eq!(s.mailer.max_frequency, Duration::from_secs(900));
        assert_eq!(s.mailer.recovery_max_age, Duration::from_secs(600));
        assert_eq!(s.mailer.mail_dir, dir.path().join("outbox"));
        assert_eq!(s.signup.password_min_length, 8);
        assert!(s.mailer.smtp.is_none());
        assert!(
            dir.path().join("jwt_secret").exists(),
            "dev secret generated"
        );
        let again = settings(&[("DATABASE_URL", &url)]).unwrap();
        assert_eq!(
            again.jwt.secret.expose_secret(),
            s.jwt.secret.expose_secret(),
            "generated once, then reused"
        );
    }

    #[test]
    fn production_refuses_generated_or_short_secrets_and_plain_http() {
        let https = ("GOTRUE_SITE_URL", "https://example.org");
        let good = ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        assert!(
            error_names(&[("CHIPFLAP_ENV", "production"), https]).contains("GOTRUE_JWT_SECRET")
        );
        assert!(
            error_names(&[
                ("CHIPFLAP_ENV", "production"),
                https,
                ("GOTRUE_JWT_SECRET", "short")
            ])
            .contains("GOTRUE_JWT_SECRET")
        );
        assert!(
            error_names(&[
                ("CHIPFLAP_ENV", "production"),
                good,
                ("GOTRUE_SMTP_HOST", "smtp.example.org")
            ])
            .contains("GOTRUE_SITE_URL")
        );
        let smtp = ("GOTRUE_SMTP_HOST", "smtp.example.org");
        assert!(
            error_names(&[("CHIPFLAP_ENV", "production"), https, good])
                .contains("GOTRUE_SMTP_HOST")
        );
        assert!(settings(&[("CHIPFLAP_ENV", "production"), https, good, smtp]).is_ok());
    }

    #[test]
    fn bad_values_name_the_variable() {
        let secret = ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        for (name, value) in [
            ("PORT", "http"),
            ("GOTRUE_SITE_URL", "not a url"),
            ("GOTRUE_JWT_EXP", "1h"),
            ("GOTRUE_SMTP_MAX_FREQUENCY", "often"),
            ("GOTRUE_DISABLE_SIGNUP", "maybe"),
            ("DATABASE_URL", "mysql://x"),
            ("CHIPFLAP_ARGON2_ITERATIONS", "0"),
            ("CHIPFLAP_CORS_ORIGINS", "nope"),
            ("CHIPFLAP_ENV", "staging"),
            ("ABLY_APIKEY", "no-colon"),
            ("ABLY_CAPABILITY", r#"{"*":["fly"]}"#),
            ("ABLY_CAPABILITY", "[]"),
            ("ABLY_TTLSECONDS", "0"),
            ("ABLY_TTLSECONDS", "86401"),
            ("CHIPFLAP_ABLY_ROLE_CAPABILITIES", r#"{"editor":{"x":[]}}"#),
            ("CHIPFLAP_ABLY_REST_URL", "ftp://x"),
            ("CHIPFLAP_ABLY_REVOKE_ON_BAN", "sometimes"),
            ("CHIPFLAP_SITE_DIR", "/no/such/directory"),
            ("CHIPFLAP_DEMO_VENDOR_DIR", "/no/such/directory"),
            ("GOTRUE_RATE_LIMIT_TOKEN_REFRESH", "0"),
            ("GOTRUE_RATE_LIMIT_VERIFY", "lots"),
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "0"),
            ("GOTRUE_RATE_LIMIT_EMAIL_SENT", "5/never"),
            ("CHIPFLAP_RATE_LIMIT_PASSWORD", "-1/1m"),
            ("CHIPFLAP_RATE_LIMIT_CONSOLE_LOGIN", "NaN"),
        ] {
            let message = error_names(&[secret, (name, value)]);
            assert!(message.starts_with(name), "{name}: {message}");
        }
    }

    #[test]
    fn env_example_lists_only_known_variables() {
        let known = KNOWN_VARIABLES;
        let example = include_str!("../../.env.example");
        for line in example.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name = line.split('=').next().unwrap().trim();
            assert!(
                known.contains(&name),
                ".env.example has unknown variable {name}"
            );
        }
        for name in known {
            assert!(
                example.contains(&format!("{name}=")),
                ".env.example misses {name}"
            );
        }
    }
}
