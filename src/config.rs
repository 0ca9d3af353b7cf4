//! Settings read once from the environment (GoTrue's names, DESIGN §2), validated eagerly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::ably::{AblyKey, Capability};
use crate::domain::duration::parse_duration;
use crate::domain::session::SessionLimits;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
    Test,
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub jwt: JwtSettings,
    pub signup: SignupSettings,
    pub mailer: MailerSettings,
    pub hashing: PasswordHashingSettings,
    pub ably: AblySettings,
    pub rate_limits: RateLimitSettings,
    /// `GOTRUE_SESSIONS_TIMEBOX` and `GOTRUE_SESSIONS_INACTIVITY_TIMEOUT` (supabase/auth).
    pub sessions: SessionLimits,
    pub mfa: MfaSettings,
    /// Things worth a warning at start (development conveniences in use); logged by `main`.
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// Base of every link in mail; never taken from the request's Host.
    pub site_url: Url,
    /// Origins allowed to call the API cross-origin (exact `scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// `CHIPFLAP_SITE_DIR`, canonical: the static site served at `/`.
    pub site_dir: Option<PathBuf>,
    /// `CHIPFLAP_DEMO_VENDOR_DIR`: where the demo page loads the widget and ably-js from,
    /// instead of their public CDNs (offline use and tests).
    pub demo_vendor_dir: Option<PathBuf>,
    /// `CHIPFLAP_SITE_FRAME_ANCESTORS`: the CSP `frame-ancestors` sources for files from the
    /// site directory (e.g. `'none'` or `'self'`); unset sends none (framing is the site's call).
    pub site_frame_ancestors: Option<String>,
    /// actix workers; `None` means one per core.
    pub workers: Option<usize>,
    /// `CHIPFLAP_MAX_CONNECTIONS`: client connections served at once, across all workers
    /// (default [`DEFAULT_MAX_CONNECTIONS_PER_CORE`] per core). Each worker takes its share;
    /// further connections wait in the listen backlog until one closes (not refused), so a
    /// connection flood cannot grow the workers' buffers without bound (nginx's
    /// `worker_connections`).
    pub max_connections: usize,
}

/// Connections per core served at once when `CHIPFLAP_MAX_CONNECTIONS` is unset. Chosen by
/// measurement (release build, 2 cores, `CHIPFLAP_HASH_CONCURRENCY=2`, a wrong-password flood
/// of 1,024 keep-alive connections): peak RSS 67 MiB at 64 per core, 74 at 128, 83-86 at 256,
/// 105 unbounded, against a bound of 30 + 2 × 19 = 68 MiB. Each connection served costs about
/// 50 KiB at peak. A refused answer (429, 503) closes its connection (`shed_connections`), so a
/// flood cannot hold the places: a `/health` client beside a 256-connection flood got 0 req/s
/// without that and 40k req/s (p99 4.8 ms) with it.
pub const DEFAULT_MAX_CONNECTIONS_PER_CORE: usize = 64;

#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// Path of the SQLite file (created with its directory if missing).
    pub path: PathBuf,
    /// `CHIPFLAP_AUTH_CACHE_BYTES` (default 8 MiB; 0 disables it): the approximate bytes the
    /// in-memory copy of the rows the auth rules read may hold (`services::auth_cache`).
    pub auth_cache_bytes: u64,
}

#[derive(Debug, Clone)]
pub struct JwtSettings {
    pub secret: SecretString,
    pub exp: Duration,
    /// `GOTRUE_JWT_AUD`: the audience of requests that name none (and of the console and CLI).
    pub aud: String,
    /// `GOTRUE_JWT_ALLOWED_AUDIENCES`: further audiences `X-JWT-AUD` may name (comma-separated);
    /// any other is refused (issue 8).
    pub extra_audiences: Vec<String>,
    pub admin_group: String,
    pub default_group: String,
    pub refresh_token_lifetime: Duration,
    pub operator_token: Option<SecretString>,
    /// `CHIPFLAP_JWT_PREVIOUS_SECRETS` (comma-separated): tokens, refresh-token chains and
    /// session cookies made with these keep working after a rotation; nothing new uses them.
    pub previous_secrets: Vec<SecretString>,
    /// `GOTRUE_JWT_KEY_ID` (supabase/auth): the `kid` of new tokens; unset derives one from
    /// the secret.
    pub key_id: Option<String>,
    /// `GOTRUE_JWT_ISSUER` (supabase/auth): `iss` of new tokens, and required of every token;
    /// unset puts none in and checks none, as GoTrue.
    pub issuer: Option<String>,
}

impl JwtSettings {
    /// Every audience this server serves: `GOTRUE_JWT_AUD` first, then the allow-list.
    pub fn audiences(&self) -> Vec<String> {
        let mut all = vec![self.aud.clone()];
        all.extend(self.extra_audiences.iter().cloned());
        all
    }

    /// Whether `X-JWT-AUD` (or a token's `aud`) may name `aud`.
    pub fn serves_audience(&self, aud: &str) -> bool {
        aud == self.aud || self.extra_audiences.iter().any(|a| a == aud)
    }
}

#[derive(Debug, Clone)]
pub struct SignupSettings {
    pub disabled: bool,
    pub autoconfirm: bool,
    pub password_min_length: usize,
    /// What every new password must meet: `password_min_length` and the context-specific
    /// words (built in, the site's host labels, `CHIPFLAP_PASSWORD_CONTEXT_WORDS`).
    pub password_policy: crate::domain::password::PasswordPolicy,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION` (supabase/auth; default
    /// false): `PUT /user` changing the password or email needs the right `current_password`
    /// or a session created within the last 24 hours.
    pub update_requires_reauthentication: bool,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<SecretString>,
    pub tls: SmtpTls,
}

/// How SMTP connections use TLS (`CHIPFLAP_SMTP_TLS`). Port 465 always speaks TLS first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS must succeed, else nothing is sent: credentials and links never travel in
    /// clear text (ASVS 5.0 V12.3.1). The default in production.
    Required,
    /// STARTTLS when the server offers it, clear text otherwise (local mail catchers). The
    /// default in development; in production only when set explicitly.
    Opportunistic,
}

/// `CHIPFLAP_SMTP_TLS`: `required` or `opportunistic`.
fn smtp_tls<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
) -> Result<SmtpTls, ConfigError> {
    match env.get("CHIPFLAP_SMTP_TLS").as_deref().map(str::trim) {
        None if production => Ok(SmtpTls::Required),
        None => Ok(SmtpTls::Opportunistic),
        Some("required") => Ok(SmtpTls::Required),
        Some("opportunistic") => Ok(SmtpTls::Opportunistic),
        Some(other) => Err(invalid(
            "CHIPFLAP_SMTP_TLS",
            format!("expected required or opportunistic, got {other:?}"),
        )),
    }
}

#[derive(Debug, Clone)]
pub struct MailerSettings {
    pub smtp: Option<SmtpSettings>,
    /// `From:` of every mail (`GOTRUE_SMTP_ADMIN_EMAIL`).
    pub admin_email: String,
    /// Outbox directory used when no SMTP host is set.
    pub mail_dir: PathBuf,
    pub max_frequency: Duration,
    pub confirmation_max_age: Duration,
    pub recovery_max_age: Duration,
    pub invite_max_age: Duration,
    pub send_timeout: Duration,
    /// `GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED` (supabase/auth; our default true):
    /// mail the account's address when its password changes.
    pub notify_password_changed: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED` (supabase/auth; our default true):
    /// mail the old address when an email change is requested and when it is applied.
    pub notify_email_changed: bool,
}

#[derive(Debug, Clone)]
pub struct PasswordHashingSettings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashing threads (`CHIPFLAP_HASH_CONCURRENCY`): password hashes running at once, each
    /// holding its argon2 memory (`memory_kib`) for the life of the process (DESIGN §9).
    pub concurrency: usize,
    /// Jobs that may wait for a hashing thread (`CHIPFLAP_HASH_QUEUE`); one more is refused
    /// at once with 503 and `Retry-After: 1`, so a flood cannot queue without bound.
    pub queue: usize,
}

#[derive(Debug, Clone)]
pub struct AblySettings {
    /// `ABLY_APIKEY`; without it the token endpoint answers 503 and the rest runs.
    pub key: Option<AblyKey>,
    /// Granted to every user.
    pub capability: Capability,
    /// Added per role in `app_metadata.roles`.
    pub role_capabilities: std::collections::BTreeMap<String, Capability>,
    pub ttl_seconds: u64,
    /// Base of Ably's REST API, where revocations go.
    pub rest_url: Url,
    /// Revoke a user's live Ably tokens when they are banned or deleted.
    pub revoke_on_ban: bool,
}

/// A token bucket, run as GCRA: up to `burst` requests at once, then one more every `interval`.
/// A quiet key is full again after `burst × interval`, so any window of that length admits at
/// most `2 × burst` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
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

/// What is throttled, and how much (README "Throttles"). The counters live in the store.
#[derive(Debug, Clone)]
pub struct RateLimitSettings {
    /// `GOTRUE_RATE_LIMIT_HEADER`: when set, the client IP is the first value of this request
    /// header (a trusted proxy's `X-Forwarded-For`, say); otherwise the peer address.
    pub header: Option<String>,
    /// `GOTRUE_RATE_LIMIT_TOKEN_REFRESH`: `/token`, both grants, per client IP.
    pub token: Rate,
    /// `GOTRUE_RATE_LIMIT_VERIFY`: `/verify`, per client IP.
    pub verify: Rate,
    /// `GOTRUE_RATE_LIMIT_OTP`: `/signup`, `/recover`, `/invite` and email changes (`PUT /user`
    /// with `email`), each its own bucket per client IP, as supabase/auth's OTP limiters.
    pub otp: Rate,
    /// `CHIPFLAP_RATE_LIMIT_CONSOLE_LOGIN`: console login posts, per client IP.
    pub console_login: Rate,
    /// `CHIPFLAP_RATE_LIMIT_PASSWORD`: password checks per account (the normalized email,
    /// whether or not an account has it), on `/token` and the console login together.
    pub password: Rate,
    /// `GOTRUE_RATE_LIMIT_EMAIL_SENT`: mails per recipient address (every kind sent on behalf
    /// of an anonymous caller or a user; admin-requested mails are not limited).
    pub email_sent: Rate,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
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

/// `CHIPFLAP_SITE_FRAME_ANCESTORS`: CSP source expressions, which must fit in a header value.
fn frame_ancestors<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<Option<String>, ConfigError> {
    const NAME: &str = "CHIPFLAP_SITE_FRAME_ANCESTORS";
    match env
        .get(NAME)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        Some(v)
            if v.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !v.contains([';', ',']) =>
        {
            Ok(Some(v))
        }
        Some(_) => Err(invalid(
            NAME,
            "expected CSP frame-ancestors sources such as 'none' or 'self' https://example.org",
        )),
        None => Ok(None),
    }
}

impl Settings {
    pub fn from_env() -> Result<Settings, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = Source(lookup);
        let mut warnings = Vec::new();

        let environment = match env.string("CHIPFLAP_ENV", "development").as_str() {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            other => {
                return Err(invalid(
                    "CHIPFLAP_ENV",
                    format!("expected development or production, got {other:?}"),
                ));
            }
        };
        let production = environment == Environment::Production;

        let host = env.string("GOTRUE_API_HOST", "127.0.0.1");
        let port: u16 = match env.get("PORT") {
            Some(_) => env.parsed("PORT", 9999, "a TCP port number")?,
            None => env.parsed("GOTRUE_API_PORT", 9999, "a TCP port number")?,
        };
        let site_url_text = env.string("GOTRUE_SITE_URL", &format!("http://localhost:{port}"));
        let site_url = Url::parse(&site_url_text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                invalid(
                    "GOTRUE_SITE_URL",
                    format!("expected an absolute http(s) URL, got {site_url_text:?}"),
                )
            })?;
        if site_url.scheme() != "https" {
            if production {
                return Err(invalid(
                    "GOTRUE_SITE_URL",
                    "must be an https URL when CHIPFLAP_ENV=production",
                ));
            }
            warnings.push(format!(
                "GOTRUE_SITE_URL is {site_url} (plain http): fine for development, cookies are not Secure"
            ));
        }
        let cors_origins = match env.get("CHIPFLAP_CORS_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    Url::parse(s)
                        .ok()
                        .filter(|u| u.host().is_some())
                        .map(|u| u.origin().ascii_serialization())
                        .ok_or_else(|| {
                            invalid(
                                "CHIPFLAP_CORS_ORIGINS",
                                format!("expected comma-separated origins such as https://example.org, got {s:?}"),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => vec![site_url.origin().ascii_serialization()],
        };

        let database_url = env.string("DATABASE_URL", "sqlite://data/chipflap.db");
        let db_path = sqlite_path(&database_url).ok_or_else(|| {
            invalid(
                "DATABASE_URL",
                format!("expected sqlite://<path to a file>, got {database_url:?}"),
            )
        })?;
        let data_dir = db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf);

        let secret = match env.get("GOTRUE_JWT_SECRET") {
            Some(s) if s.len() >= 32 => SecretString::from(s),
            Some(_) if production => {
                return Err(invalid(
                    "GOTRUE_JWT_SECRET",
                    "must be at least 32 bytes when CHIPFLAP_ENV=production",
                ));
            }
            Some(s) => {
                warnings.push("GOTRUE_JWT_SECRET is shorter than 32 bytes".into());
                SecretString::from(s)
            }
            None if production => {
                return Err(invalid(
                    "GOTRUE_JWT_SECRET",
                    "is required when CHIPFLAP_ENV=production (at least 32 random bytes, e.g. `openssl rand -base64 48`)",
                ));
            }
            None => {
                let path = data_dir.join("jwt_secret");
                warnings.push(format!(
                    "GOTRUE_JWT_SECRET is not set: using the development secret in {}",
                    path.display()
                ));
                load_or_create_dev_secret(&path)?
            }
        };
        let operator_token = match env.get("GOTRUE_OPERATOR_TOKEN") {
            Some(t) if production && t.len() < 32 => {
                return Err(invalid(
                    "GOTRUE_OPERATOR_TOKEN",
                    "must be at least 32 bytes when CHIPFLAP_ENV=production",
                ));
            }
            other => other.map(SecretString::from),
        };
        let previous_secrets = env
            .get("CHIPFLAP_JWT_PREVIOUS_SECRETS")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                if production && s.len() < 32 {
                    Err(invalid(
                        "CHIPFLAP_JWT_PREVIOUS_SECRETS",
                        "each secret must be at least 32 bytes when CHIPFLAP_ENV=production",
                    ))
                } else {
                    Ok(SecretString::from(s.to_owned()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let exp_seconds: u64 = env.parsed("GOTRUE_JWT_EXP", 3600, "a number of seconds")?;
        if exp_seconds == 0 {
            return Err(invalid("GOTRUE_JWT_EXP", "must be at least 1 second"));
        }
        let refresh_seconds: i64 = env.parsed(
            "GOTRUE_JWT_REFRESH_TOKEN_LIFETIME",
            2_592_000,
            "a number of seconds",
        )?;
        let jwt = JwtSettings {
            secret,
            exp: Duration::from_secs(exp_seconds),
            aud: env.string("GOTRUE_JWT_AUD", ""),
            extra_audiences: env
                .get("GOTRUE_JWT_ALLOWED_AUDIENCES")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
            admin_group: env.string("GOTRUE_JWT_ADMIN_GROUP_NAME", "admin"),
            default_group: env.string("GOTRUE_JWT_DEFAULT_GROUP_NAME", ""),
            // GoTrue resets values <= 0 to the default (spec §7).
            refresh_token_lifetime: Duration::from_secs(if refresh_seconds > 0 {
                refresh_seconds.unsigned_abs()
            } else {
                2_592_000
            }),
            operator_token,
            previous_secrets,
            key_id: env.get("GOTRUE_JWT_KEY_ID").map(|k| k.trim().to_owned()),
            issuer: env.get("GOTRUE_JWT_ISSUER").map(|i| i.trim().to_owned()),
        };

        // supabase/auth: unset means no limit; a set value must be positive.
        let session_limit = |name: &'static str| -> Result<Option<Duration>, ConfigError> {
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
        };
        let sessions = SessionLimits {
            timebox: session_limit("GOTRUE_SESSIONS_TIMEBOX")?,
            inactivity_timeout: session_limit("GOTRUE_SESSIONS_INACTIVITY_TIMEOUT")?,
        };

        let password_min_length: usize =
            env.parsed("CHIPFLAP_PASSWORD_MIN_LENGTH", 8, "a number of characters")?;
        if password_min_length == 0 || password_min_length > 1024 {
            return Err(invalid(
                "CHIPFLAP_PASSWORD_MIN_LENGTH",
                "expected 1 to 1024",
            ));
        }
        // ASVS 5.0 V6.2.1: at least 8 characters; shorter only for local experiments.
        if production && password_min_length < 8 {
            return Err(invalid(
                "CHIPFLAP_PASSWORD_MIN_LENGTH",
                "must be at least 8 when CHIPFLAP_ENV=production",
            ));
        }
        let signup = SignupSettings {
            disabled: env.flag("GOTRUE_DISABLE_SIGNUP")?,
            autoconfirm: env.flag("GOTRUE_MAILER_AUTOCONFIRM")?,
            password_min_length,
            password_policy: crate::domain::password::PasswordPolicy::new(
                password_min_length,
                site_url.host_str(),
                &env.get("CHIPFLAP_PASSWORD_CONTEXT_WORDS")
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            ),
            update_requires_reauthentication: env
                .flag("GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION")?,
        };

        let smtp = match env.get("GOTRUE_SMTP_HOST") {
            // The outbox keeps mails (and their links) on disk and in the log: development only.
            None if production => {
                return Err(invalid(
                    "GOTRUE_SMTP_HOST",
                    "is required when CHIPFLAP_ENV=production (mail cannot go to the outbox folder)",
                ));
            }
            None => None,
            Some(host) => Some(SmtpSettings {
                host: host.trim().to_owned(),
                port: env.parsed("GOTRUE_SMTP_PORT", 587, "a TCP port number")?,
                user: env.get("GOTRUE_SMTP_USER"),
                pass: env.get("GOTRUE_SMTP_PASS").map(SecretString::from),
                tls: smtp_tls(&env, production)?,
            }),
        };
        let default_from = format!(
            "noreply@{}",
            site_url
                .host_str()
                .filter(|h| h.contains('.'))
                .unwrap_or("localhost.localdomain")
        );
        let admin_email = env.string("GOTRUE_SMTP_ADMIN_EMAIL", &default_from);
        if !admin_email.contains('@') {
            return Err(invalid(
                "GOTRUE_SMTP_ADMIN_EMAIL",
                format!("expected an email address, got {admin_email:?}"),
            ));
        }
        let mailer = MailerSettings {
            mail_dir: env
                .get("CHIPFLAP_MAIL_DIR")
                .map_or_else(|| data_dir.join("outbox"), PathBuf::from),
            smtp,
            admin_email,
            max_frequency: env.duration("GOTRUE_SMTP_MAX_FREQUENCY", Duration::from_secs(900))?,
            confirmation_max_age: env.duration(
                "GOTRUE_MAILER_CONFIRMATION_MAX_AGE",
                Duration::from_secs(24 * 3600),
            )?,
            recovery_max_age: env
                // ASVS 5.0 V6.5.5: a mailed link that logs the user in lives at most 10 minutes.
                .duration("GOTRUE_MAILER_RECOVERY_MAX_AGE", Duration::from_secs(600))?,
            invite_max_age: env.duration(
                "GOTRUE_MAILER_INVITE_MAX_AGE",
                Duration::from_secs(168 * 3600),
            )?,
            send_timeout: Duration::from_secs(30),
            notify_password_changed: env
                .optional_flag("GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED")?
                .unwrap_or(true),
            notify_email_changed: env
                .optional_flag("GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED")?
                .unwrap_or(true),
        };

        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let concurrency = env.parsed("CHIPFLAP_HASH_CONCURRENCY", cores, "a count (at least 1)")?;
        let hashing = PasswordHashingSettings {
            memory_kib: env.parsed("CHIPFLAP_ARGON2_MEMORY_KIB", 19_456, "KiB (at least 8)")?,
            iterations: env.parsed("CHIPFLAP_ARGON2_ITERATIONS", 2, "a count (at least 1)")?,
            parallelism: env.parsed("CHIPFLAP_ARGON2_PARALLELISM", 1, "a count (at least 1)")?,
            concurrency,
            // 16 waiting jobs per thread: at the default cost a hash takes 10-20 ms, so the
            // last job admitted waits a fraction of a second, a burst of honest logins fits,
            // and a flood gets its 503 at once instead of a wait that ends in a client timeout.
            queue: env.parsed(
                "CHIPFLAP_HASH_QUEUE",
                concurrency.saturating_mul(16),
                "a count (at least 1)",
            )?,
        };
        if hashing.memory_kib < 8 * hashing.parallelism.max(1) {
            return Err(invalid(
                "CHIPFLAP_ARGON2_MEMORY_KIB",
                "must be at least 8 × parallelism",
            ));
        }
        if hashing.iterations == 0 {
            return Err(invalid("CHIPFLAP_ARGON2_ITERATIONS", "must be at least 1"));
        }
        if hashing.parallelism == 0 {
            return Err(invalid("CHIPFLAP_ARGON2_PARALLELISM", "must be at least 1"));
        }
        if hashing.concurrency == 0 {
            return Err(invalid("CHIPFLAP_HASH_CONCURRENCY", "must be at least 1"));
        }
        if hashing.queue == 0 {
            return Err(invalid("CHIPFLAP_HASH_QUEUE", "must be at least 1"));
        }
        // OWASP's argon2id floor (Password Storage Cheat Sheet): 19 MiB and 2 passes.
        if production && hashing.memory_kib < 19_456 {
            return Err(invalid(
                "CHIPFLAP_ARGON2_MEMORY_KIB",
                "must be at least 19456 (OWASP's minimum) when CHIPFLAP_ENV=production",
            ));
        }
        if production && hashing.iterations < 2 {
            return Err(invalid(
                "CHIPFLAP_ARGON2_ITERATIONS",
                "must be at least 2 (OWASP's minimum) when CHIPFLAP_ENV=production",
            ));
        }

        let ably = ably_settings(&env, production)?;
        let rate_limits = rate_limit_settings(&env)?;

        let http = HttpSettings {
            host,
            port,
            site_url,
            cors_origins,
            site_dir: existing_dir(&env, "CHIPFLAP_SITE_DIR")?,
            demo_vendor_dir: existing_dir(&env, "CHIPFLAP_DEMO_VENDOR_DIR")?,
            site_frame_ancestors: frame_ancestors(&env)?,
            workers: None,
            max_connections: env.parsed(
                "CHIPFLAP_MAX_CONNECTIONS",
                cores.saturating_mul(DEFAULT_MAX_CONNECTIONS_PER_CORE),
                "a count (at least 1)",
            )?,
        };
        if http.max_connections == 0 {
            return Err(invalid("CHIPFLAP_MAX_CONNECTIONS", "must be at least 1"));
        }

        let mfa = mfa_settings(&env)?;
        Ok(Settings {
            environment,
            http,
            database: DatabaseSettings {
                path: db_path,
                auth_cache_bytes: env.parsed(
                    "CHIPFLAP_AUTH_CACHE_BYTES",
                    8 * 1024 * 1024,
                    "a number of bytes (0 disables the cache)",
                )?,
            },
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
    /// The caller sets `database.path` and `mailer.mail_dir` inside its temporary directory.
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

/// A directory that must exist, made canonical so path checks compare like with like.
fn existing_dir<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    name: &'static str,
) -> Result<Option<PathBuf>, ConfigError> {
    env.get(name)
        .map(|dir| {
            std::fs::canonicalize(dir.trim())
                .ok()
                .filter(|p| p.is_dir())
                .ok_or_else(|| {
                    invalid(name, format!("expected an existing directory, got {dir:?}"))
                })
        })
        .transpose()
}

/// `localhost` or a loopback IP: traffic that never leaves the machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn ably_settings<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
) -> Result<AblySettings, ConfigError> {
    let key = env
        .get("ABLY_APIKEY")
        .map(|k| AblyKey::parse(&k).map_err(|e| invalid("ABLY_APIKEY", e)))
        .transpose()?;
    let capability = Capability::parse(&env.string("ABLY_CAPABILITY", r#"{"*":["subscribe"]}"#))
        .map_err(|e| {
            invalid(
                "ABLY_CAPABILITY",
                format!("expected a JSON object of operation arrays such as {{\"*\":[\"subscribe\"]}}: {e}"),
            )
        })?;
    let mut role_capabilities = std::collections::BTreeMap::new();
    if let Some(text) = env.get("CHIPFLAP_ABLY_ROLE_CAPABILITIES") {
        let expected = "expected a JSON object from role to capability, such as {\"editor\":{\"chat:*\":[\"publish\"]}}";
        let map: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).map_err(|e| {
                invalid(
                    "CHIPFLAP_ABLY_ROLE_CAPABILITIES",
                    format!("{expected}: {e}"),
                )
            })?;
        for (role, cap) in map {
            let cap = Capability::parse(&cap.to_string()).map_err(|e| {
                invalid(
                    "CHIPFLAP_ABLY_ROLE_CAPABILITIES",
                    format!("role {role:?}: {e}"),
                )
            })?;
            role_capabilities.insert(role, cap);
        }
    }
    let ttl_seconds: u64 = env.parsed("ABLY_TTLSECONDS", 3600, "seconds from 1 to 86400")?;
    if !(1..=86_400).contains(&ttl_seconds) {
        return Err(invalid(
            "ABLY_TTLSECONDS",
            "expected seconds from 1 to 86400",
        ));
    }
    let rest_text = env.string("CHIPFLAP_ABLY_REST_URL", "https://main.realtime.ably.net");
    // The key goes there in a Basic header: https only. Plain http is allowed to a loopback
    // address outside production (a local TLS-terminating proxy, the tests' stand-in).
    let rest_url = Url::parse(&rest_text)
        .ok()
        .filter(|u| {
            u.scheme() == "https" || (u.scheme() == "http" && !production && is_loopback(u))
        })
        .ok_or_else(|| {
            invalid(
                "CHIPFLAP_ABLY_REST_URL",
                format!("expected an https URL (the Ably key is sent there), got {rest_text:?}"),
            )
        })?;
    let revoke_on_ban = env
        .optional_flag("CHIPFLAP_ABLY_REVOKE_ON_BAN")?
        .unwrap_or(key.is_some());
    // Ably refuses tokens longer than an hour from keys with revocable tokens (spec §1).
    if key.is_some() && revoke_on_ban && ttl_seconds > 3600 {
        return Err(invalid(
            "ABLY_TTLSECONDS",
            "must be at most 3600 while CHIPFLAP_ABLY_REVOKE_ON_BAN is on (Ably's limit for revocable keys)",
        ));
    }
    Ok(AblySettings {
        key,
        capability,
        role_capabilities,
        ttl_seconds,
        rest_url,
        revoke_on_ban,
    })
}

fn mfa_settings<F: Fn(&str) -> Option<String>>(
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

fn rate_limit_settings<F: Fn(&str) -> Option<String>>(
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
fn rate_syntax<F: Fn(&str) -> Option<String>>(
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

/// `sqlite://data/x.db`, `sqlite:data/x.db` and `sqlite:///abs/x.db` all name a file.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}

/// Development only: a random secret kept in the data directory, so tokens survive restarts.
fn load_or_create_dev_secret(path: &Path) -> Result<SecretString, ConfigError> {
    let wrap = |source| ConfigError::DevSecret {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().len() >= 32 => return Ok(SecretString::from(s.trim().to_owned())),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(wrap(e)),
    }
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(wrap)?;
    }
    let secret = crate::domain::one_time_token::SecretToken::generate()
        .expose()
        .to_owned()
        + crate::domain::one_time_token::SecretToken::generate().expose();
    write_private(path, &secret).map_err(wrap)?;
    Ok(SecretString::from(secret))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

impl JwtSettings {
    pub fn secret_bytes(&self) -> &[u8] {
        self.secret.expose_secret().as_bytes()
    }

    /// The previous secrets' bytes, in the order configured.
    pub fn previous_secret_bytes(&self) -> impl Iterator<Item = &[u8]> {
        self.previous_secrets
            .iter()
            .map(|s| s.expose_secret().as_bytes())
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A production configuration that passes, to vary one variable at a time.
    const PRODUCTION: [(&str, &str); 4] = [
        ("CHIPFLAP_ENV", "production"),
        ("GOTRUE_SITE_URL", "https://example.org"),
        ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ("GOTRUE_SMTP_HOST", "smtp.example.org"),
    ];

    fn production_with(extra: &[(&'static str, &'static str)]) -> Result<Settings, ConfigError> {
        let mut vars = PRODUCTION.to_vec();
        vars.extend_from_slice(extra);
        settings(&vars)
    }

    #[test]
    fn production_requires_smtp_tls_unless_clear_text_is_chosen_explicitly() {
        let s = production_with(&[]).unwrap();
        assert_eq!(s.mailer.smtp.unwrap().tls, SmtpTls::Required);
        let s = production_with(&[("CHIPFLAP_SMTP_TLS", "opportunistic")]).unwrap();
        assert_eq!(s.mailer.smtp.unwrap().tls, SmtpTls::Opportunistic);
        let s = settings(&[("GOTRUE_SMTP_HOST", "localhost")]).unwrap();
        assert_eq!(s.mailer.smtp.unwrap().tls, SmtpTls::Opportunistic);
        assert!(
            production_with(&[("CHIPFLAP_SMTP_TLS", "sometimes")])
                .unwrap_err()
                .to_string()
                .contains("CHIPFLAP_SMTP_TLS")
        );
    }

    #[test]
    fn the_ably_rest_url_must_be_https_where_the_key_could_leave_the_machine() {
        let refused = |vars: &[(&'static str, &'static str)], prod: bool| {
            let result = if prod {
                production_with(vars)
            } else {
                settings(vars)
            };
            result
                .unwrap_err()
                .to_string()
                .contains("CHIPFLAP_ABLY_REST_URL")
        };
        assert!(refused(
            &[("CHIPFLAP_ABLY_REST_URL", "http://rest.ably.io")],
            true
        ));
        assert!(refused(
            &[("CHIPFLAP_ABLY_REST_URL", "http://127.0.0.1:8080")],
            true
        ));
        assert!(refused(
            &[("CHIPFLAP_ABLY_REST_URL", "http://rest.ably.io")],
            false
        ));
        assert!(settings(&[("CHIPFLAP_ABLY_REST_URL", "http://127.0.0.1:8080")]).is_ok());
        assert!(settings(&[("CHIPFLAP_ABLY_REST_URL", "http://[::1]:8080")]).is_ok());
        assert!(production_with(&[("CHIPFLAP_ABLY_REST_URL", "https://rest.example.org")]).is_ok());
    }

    #[test]
    fn production_refuses_short_passwords_and_argon2_below_the_owasp_floor() {
        let names = |extra: &[(&'static str, &'static str)]| {
            production_with(extra).unwrap_err().to_string()
        };
        assert!(
            names(&[("CHIPFLAP_PASSWORD_MIN_LENGTH", "7")])
                .contains("CHIPFLAP_PASSWORD_MIN_LENGTH")
        );
        assert!(
            names(&[("CHIPFLAP_ARGON2_MEMORY_KIB", "19455")])
                .contains("CHIPFLAP_ARGON2_MEMORY_KIB")
        );
        assert!(
            names(&[("CHIPFLAP_ARGON2_ITERATIONS", "1")]).contains("CHIPFLAP_ARGON2_ITERATIONS")
        );
        assert!(production_with(&[("CHIPFLAP_PASSWORD_MIN_LENGTH", "12")]).is_ok());
        assert!(settings(&[("CHIPFLAP_PASSWORD_MIN_LENGTH", "4")]).is_ok());
    }

    #[test]
    fn hashing_threads_and_queue_come_from_the_environment() {
        let s = settings(&[
            ("CHIPFLAP_HASH_CONCURRENCY", "3"),
            ("CHIPFLAP_HASH_QUEUE", "7"),
        ])
        .unwrap();
        assert_eq!((s.hashing.concurrency, s.hashing.queue), (3, 7));
        // The queue defaults to 16 jobs per thread.
        let s = settings(&[("CHIPFLAP_HASH_CONCURRENCY", "3")]).unwrap();
        assert_eq!(s.hashing.queue, 48);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.hashing.concurrency, s.hashing.queue),
            (cores, 16 * cores)
        );
        for (name, value) in [
            ("CHIPFLAP_HASH_QUEUE", "0"),
            ("CHIPFLAP_HASH_QUEUE", "many"),
            ("CHIPFLAP_HASH_CONCURRENCY", "0"),
        ] {
            assert!(
                error_names(&[(name, value)]).contains(name),
                "{name}={value}"
            );
        }
    }

    #[test]
    fn the_connection_bound_comes_from_the_environment() {
        let s = settings(&[("CHIPFLAP_MAX_CONNECTIONS", " 300 ")]).unwrap();
        assert_eq!(s.http.max_connections, 300);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(
            settings(&[]).unwrap().http.max_connections,
            cores * DEFAULT_MAX_CONNECTIONS_PER_CORE
        );
        for value in ["0", "-1", "many"] {
            assert!(
                error_names(&[("CHIPFLAP_MAX_CONNECTIONS", value)])
                    .contains("CHIPFLAP_MAX_CONNECTIONS"),
                "{value:?}"
            );
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(move |name| map.get(name).cloned())
    }

    fn error_names(vars: &[(&str, &str)]) -> String {
        settings(vars).unwrap_err().to_string()
    }

    #[test]
    fn ownership_settings_default_to_gotrue_compatible_and_announced() {
        let s = settings(&[("GOTRUE_SITE_URL", "https://www.cats.example")]).unwrap();
        assert!(!s.signup.update_requires_reauthentication);
        assert!(s.mailer.notify_password_changed && s.mailer.notify_email_changed);
        let words = s
            .signup
            .password_policy
            .context_words_for("ada@example.org");
        for w in [
            "chipflap",
            "netlify",
            "gotrue",
            "identity",
            "cats",
            "www.cats.example",
            "ada",
        ] {
            assert!(words.contains(&w.to_owned()), "{w}: {words:?}");
        }
        let s = settings(&[
            (
                "GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION",
                "true",
            ),
            (
                "GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED",
                "false",
            ),
            ("GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED", "0"),
            ("CHIPFLAP_PASSWORD_CONTEXT_WORDS", " Tabby , ,Whiskers"),
        ])
        .unwrap();
        assert!(s.signup.update_requires_reauthentication);
        assert!(!s.mailer.notify_password_changed && !s.mailer.notify_email_changed);
        let words = s.signup.password_policy.context_words_for("x@y.z");
        assert!(words.contains(&"tabby".to_owned()) && words.contains(&"whiskers".to_owned()));
        assert!(
            error_names(&[("GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED", "maybe")])
                .contains("GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED")
        );
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
    fn previous_secrets_key_id_and_issuer_are_read_and_checked() {
        let secret = ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let s = settings(&[
            secret,
            (
                "CHIPFLAP_JWT_PREVIOUS_SECRETS",
                " old-one-old-one-old-one-old-one-1 , ,short ",
            ),
            ("GOTRUE_JWT_KEY_ID", "2026-11"),
            ("GOTRUE_JWT_ISSUER", "https://id.example.org"),
        ])
        .unwrap();
        let previous: Vec<&[u8]> = s.jwt.previous_secret_bytes().collect();
        assert_eq!(
            previous,
            [
                b"old-one-old-one-old-one-old-one-1".as_slice(),
                b"short".as_slice()
            ]
        );
        assert_eq!(s.jwt.key_id.as_deref(), Some("2026-11"));
        assert_eq!(s.jwt.issuer.as_deref(), Some("https://id.example.org"));
        let s = settings(&[secret]).unwrap();
        assert!(s.jwt.previous_secrets.is_empty() && s.jwt.issuer.is_none());
        assert!(
            error_names(&[
                ("CHIPFLAP_ENV", "production"),
                ("GOTRUE_SITE_URL", "https://example.org"),
                secret,
                ("CHIPFLAP_JWT_PREVIOUS_SECRETS", "short"),
            ])
            .contains("CHIPFLAP_JWT_PREVIOUS_SECRETS")
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
            ("DATABASE_URL", "postgres://x"),
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
    fn ably_settings_default_and_guard_revocable_ttls() {
        let secret = ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let s = settings(&[secret]).unwrap();
        assert!(s.ably.key.is_none());
        assert!(!s.ably.revoke_on_ban);
        assert_eq!(s.ably.capability.canonical_json(), r#"{"*":["subscribe"]}"#);
        let key = ("ABLY_APIKEY", "app.key:secret");
        let s = settings(&[secret, key]).unwrap();
        assert!(s.ably.revoke_on_ban, "on by default once a key is set");
        assert_eq!(s.ably.rest_url.as_str(), "https://main.realtime.ably.net/");
        let message = error_names(&[secret, key, ("ABLY_TTLSECONDS", "7200")]);
        assert!(message.starts_with("ABLY_TTLSECONDS"), "{message}");
        let s = settings(&[
            secret,
            key,
            ("ABLY_TTLSECONDS", "7200"),
            ("CHIPFLAP_ABLY_REVOKE_ON_BAN", "false"),
        ])
        .unwrap();
        assert_eq!(s.ably.ttl_seconds, 7200);
    }

    #[test]
    fn allowed_audiences_are_a_comma_separated_list_beside_the_default() {
        let secret = ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let s = settings(&[
            secret,
            ("GOTRUE_JWT_AUD", "site"),
            ("GOTRUE_JWT_ALLOWED_AUDIENCES", " shop, ,blog "),
        ])
        .unwrap();
        assert_eq!(s.jwt.audiences(), vec!["site", "shop", "blog"]);
        assert!(s.jwt.serves_audience("shop"));
        assert!(!s.jwt.serves_audience(""));
        assert!(!s.jwt.serves_audience("Shop"));
        let s = settings(&[secret]).unwrap();
        assert_eq!(s.jwt.audiences(), vec![""]);
    }

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

    #[test]
    fn go_durations_are_accepted() {
        let s = settings(&[
            ("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("GOTRUE_SMTP_MAX_FREQUENCY", "1m"),
            ("GOTRUE_MAILER_INVITE_MAX_AGE", "48h"),
        ])
        .unwrap();
        assert_eq!(s.mailer.max_frequency, Duration::from_secs(60));
        assert_eq!(s.mailer.invite_max_age, Duration::from_secs(48 * 3600));
    }

    #[test]
    fn env_example_lists_only_known_variables() {
        let known = KNOWN_VARIABLES;
        let example = include_str!("../.env.example");
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
