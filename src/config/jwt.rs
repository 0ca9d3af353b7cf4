//! JWT settings: signing secrets (current and previous), lifetimes, audiences, groups, the operator token.

use std::path::Path;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, Source, invalid};

/// How access and refresh tokens are made and checked (GoTrue's `GOTRUE_JWT_*`).
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// `GOTRUE_JWT_SECRET` (at least 32 bytes in production): the HS256 key of new tokens.
    /// Unset in development: a random secret kept in `jwt_secret` in the data directory.
    pub secret: SecretString,
    /// `GOTRUE_JWT_EXP` (seconds, default 3600, at least 1): access token lifetime.
    pub exp: Duration,
    /// `GOTRUE_JWT_AUD`: the audience of requests that name none (and of the console and CLI).
    pub aud: String,
    /// `GOTRUE_JWT_ALLOWED_AUDIENCES`: further audiences `X-JWT-AUD` may name (comma-separated);
    /// any other is refused (issue 8).
    pub extra_audiences: Vec<String>,
    /// `GOTRUE_JWT_ADMIN_GROUP_NAME` (default `admin`): users with this role are admins.
    pub admin_group: String,
    /// `GOTRUE_JWT_DEFAULT_GROUP_NAME` (default empty): the role of new users.
    pub default_group: String,
    /// `GOTRUE_JWT_REFRESH_TOKEN_LIFETIME` (seconds, default 2592000 = 30 days; values <= 0
    /// mean the default, as GoTrue): how long an unused refresh token lives.
    pub refresh_token_lifetime: Duration,
    /// `GOTRUE_OPERATOR_TOKEN` (at least 32 bytes in production): a bearer token equal to it
    /// is an admin (server-to-server); unset disables it.
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

    /// The bytes of `GOTRUE_JWT_SECRET`, the HS256 key.
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

/// `GOTRUE_JWT_*`, `GOTRUE_OPERATOR_TOKEN` and `CHIPFLAP_JWT_PREVIOUS_SECRETS`. Without a
/// secret in development, loads or creates one in `data_dir` (with a warning).
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
    data_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<JwtSettings, ConfigError> {
    let secret = secret(env, production, data_dir, warnings)?;
    let operator_token = match env.get("GOTRUE_OPERATOR_TOKEN") {
        Some(t) if production && t.len() < 32 => {
            return Err(invalid(
                "GOTRUE_OPERATOR_TOKEN",
                "must be at least 32 bytes when CHIPFLAP_ENV=production",
            ));
        }
        other => other.map(SecretString::from),
    };
    let previous_secrets = previous_secrets(env, production)?;
    let exp_seconds: u64 = env.parsed("GOTRUE_JWT_EXP", 3600, "a number of seconds")?;
    if exp_seconds == 0 {
        return Err(invalid("GOTRUE_JWT_EXP", "must be at least 1 second"));
    }
    let refresh_seconds: i64 = env.parsed(
        "GOTRUE_JWT_REFRESH_TOKEN_LIFETIME",
        2_592_000,
        "a number of seconds",
    )?;
    Ok(JwtSettings {
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
    })
}

/// `GOTRUE_JWT_SECRET`: required and at least 32 bytes in production. In development a
/// shorter one is a warning, and none loads or creates `jwt_secret` in `data_dir` (a warning).
fn secret<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
    data_dir: &Path,
    warnings: &mut Vec<String>,
) -> Result<SecretString, ConfigError> {
    match env.get("GOTRUE_JWT_SECRET") {
        Some(s) if s.len() >= 32 => Ok(SecretString::from(s)),
        Some(_) if production => Err(invalid(
            "GOTRUE_JWT_SECRET",
            "must be at least 32 bytes when CHIPFLAP_ENV=production",
        )),
        Some(s) => {
            warnings.push("GOTRUE_JWT_SECRET is shorter than 32 bytes".into());
            Ok(SecretString::from(s))
        }
        None if production => Err(invalid(
            "GOTRUE_JWT_SECRET",
            "is required when CHIPFLAP_ENV=production (at least 32 random bytes, e.g. `openssl rand -base64 48`)",
        )),
        None => {
            let path = data_dir.join("jwt_secret");
            warnings.push(format!(
                "GOTRUE_JWT_SECRET is not set: using the development secret in {}",
                path.display()
            ));
            load_or_create_dev_secret(&path)
        }
    }
}

/// `CHIPFLAP_JWT_PREVIOUS_SECRETS`: comma-separated, blanks skipped; each at least 32 bytes
/// in production.
fn previous_secrets<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
) -> Result<Vec<SecretString>, ConfigError> {
    env.get("CHIPFLAP_JWT_PREVIOUS_SECRETS")
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
        .collect()
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

#[cfg(test)]
mod tests {
    use super::super::testing::{error_names, settings};

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
}
