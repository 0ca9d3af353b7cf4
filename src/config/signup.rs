//! Sign-up settings: who may sign up, confirmation, and the password policy.

use url::Url;

use crate::domain::password::PasswordPolicy;

use super::{ConfigError, Source, invalid};

/// Sign-up and password rules.
#[derive(Debug, Clone)]
pub struct SignupSettings {
    /// `GOTRUE_DISABLE_SIGNUP` (default false): invite-only when true.
    pub disabled: bool,
    /// `GOTRUE_MAILER_AUTOCONFIRM` (default false): new users are confirmed without mail.
    pub autoconfirm: bool,
    /// `CHIPFLAP_PASSWORD_MIN_LENGTH` (characters, 1 to 1024, default 8; at least 8 in
    /// production).
    pub password_min_length: usize,
    /// What every new password must meet: `password_min_length` and the context-specific
    /// words (built in, the site's host labels, `CHIPFLAP_PASSWORD_CONTEXT_WORDS`).
    pub password_policy: PasswordPolicy,
    /// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION` (supabase/auth; default
    /// false): `PUT /user` changing the password or email needs the right `current_password`
    /// or a session created within the last 24 hours.
    pub update_requires_reauthentication: bool,
}

/// `GOTRUE_DISABLE_SIGNUP`, `GOTRUE_MAILER_AUTOCONFIRM`, `CHIPFLAP_PASSWORD_MIN_LENGTH`,
/// `CHIPFLAP_PASSWORD_CONTEXT_WORDS` (comma-separated, beside `site_url`'s host labels) and
/// `GOTRUE_SECURITY_UPDATE_PASSWORD_REQUIRE_REAUTHENTICATION`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
    site_url: &Url,
) -> Result<SignupSettings, ConfigError> {
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
    Ok(SignupSettings {
        disabled: env.flag("GOTRUE_DISABLE_SIGNUP")?,
        autoconfirm: env.flag("GOTRUE_MAILER_AUTOCONFIRM")?,
        password_min_length,
        password_policy: PasswordPolicy::new(
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
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error_names, production_with, settings};

    #[test]
    fn production_refuses_short_passwords() {
        assert!(
            production_with(&[("CHIPFLAP_PASSWORD_MIN_LENGTH", "7")])
                .unwrap_err()
                .to_string()
                .contains("CHIPFLAP_PASSWORD_MIN_LENGTH")
        );
        assert!(production_with(&[("CHIPFLAP_PASSWORD_MIN_LENGTH", "12")]).is_ok());
        assert!(settings(&[("CHIPFLAP_PASSWORD_MIN_LENGTH", "4")]).is_ok());
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
}
