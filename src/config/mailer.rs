//! Mailer settings: SMTP (host, credentials, TLS) or the outbox directory, sender, link lifetimes, notifications.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use super::{ConfigError, Source, invalid};

/// The SMTP server mail goes to (`GOTRUE_SMTP_*`).
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `GOTRUE_SMTP_HOST` (required in production); unset sends mail to the outbox instead.
    pub host: String,
    /// `GOTRUE_SMTP_PORT` (default 587, STARTTLS; 465 speaks TLS first).
    pub port: u16,
    /// `GOTRUE_SMTP_USER`; unset logs in as no one.
    pub user: Option<String>,
    /// `GOTRUE_SMTP_PASS`.
    pub pass: Option<SecretString>,
    /// `CHIPFLAP_SMTP_TLS`.
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

/// What mail is sent, how, and how long its links live.
#[derive(Debug, Clone)]
pub struct MailerSettings {
    /// `GOTRUE_SMTP_*`; `None` (development only) writes mail to `mail_dir`.
    pub smtp: Option<SmtpSettings>,
    /// `From:` of every mail (`GOTRUE_SMTP_ADMIN_EMAIL`, default `noreply@<site host>`).
    pub admin_email: String,
    /// `CHIPFLAP_MAIL_DIR` (default `outbox` in the data directory): outbox directory used
    /// when no SMTP host is set.
    pub mail_dir: PathBuf,
    /// `GOTRUE_SMTP_MAX_FREQUENCY` (seconds or a Go duration, default 15m): at most one
    /// confirmation or recovery mail per user per this interval.
    pub max_frequency: Duration,
    /// `GOTRUE_MAILER_CONFIRMATION_MAX_AGE` (default 24h): lifetime of confirmation links.
    pub confirmation_max_age: Duration,
    /// `GOTRUE_MAILER_RECOVERY_MAX_AGE` (default 10m): lifetime of recovery links.
    pub recovery_max_age: Duration,
    /// `GOTRUE_MAILER_INVITE_MAX_AGE` (default 168h): lifetime of invite links.
    pub invite_max_age: Duration,
    /// How long one SMTP send may take (30 s); not read from the environment.
    pub send_timeout: Duration,
    /// `GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED` (supabase/auth; our default true):
    /// mail the account's address when its password changes.
    pub notify_password_changed: bool,
    /// `GOTRUE_MAILER_NOTIFICATIONS_EMAIL_CHANGED_ENABLED` (supabase/auth; our default true):
    /// mail the old address when an email change is requested and when it is applied.
    pub notify_email_changed: bool,
}

/// `GOTRUE_SMTP_*`, `CHIPFLAP_SMTP_TLS`, `CHIPFLAP_MAIL_DIR` (default `data_dir/outbox`) and
/// `GOTRUE_MAILER_*`. The sender defaults to `noreply@` the host of `site_url`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
    site_url: &Url,
    data_dir: &Path,
) -> Result<MailerSettings, ConfigError> {
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
            tls: smtp_tls(env, production)?,
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
    Ok(MailerSettings {
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
    })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::{production_with, settings};
    use super::*;

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
}
