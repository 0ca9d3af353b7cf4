//! Passwords and their hashes; neither ever appears in Debug output or logs.

use std::collections::HashSet;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use super::ValidationError;

/// The 100,000 most common passwords, lowercased (`assets/README.md` names the source).
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("../../assets/common-passwords.txt")
        .lines()
        .collect()
});

/// supabase/auth's text for a password found in a breach corpus (`weak_password`).
pub const COMMON_PASSWORD_MESSAGE: &str =
    "Password is known to be weak and easy to guess, please choose a different one.";

/// True when the password, ignoring case, is one of the 100,000 most common (ASVS 5.0 V6.2.4).
pub fn is_common(input: &str) -> bool {
    COMMON_PASSWORDS.contains(input.to_lowercase().as_str())
}

/// Builds the common-password set now rather than on the first signup (about 30 ms).
pub fn preload_common_passwords() {
    LazyLock::force(&COMMON_PASSWORDS);
}

/// Words tied to this service that no new password may be (ASVS 5.0 V6.1.2, V6.2.11), besides the
/// labels of `GOTRUE_SITE_URL`'s host, the account's own address and the operator's
/// `CHIPFLAP_PASSWORD_CONTEXT_WORDS` (README "Passwords").
pub const BUILT_IN_CONTEXT_WORDS: [&str; 4] = ["chipflap", "netlify", "gotrue", "identity"];

/// The 422 text for a password that is a context word with digits or symbols around it.
pub const CONTEXT_WORD_MESSAGE: &str = "Password must not be the name of this site or service, or your own email address, with only digits or symbols added; please choose a different one.";

/// What every new password must meet: the length and the context-specific words (ASVS 5.0
/// V6.2.1, V6.2.11). Built once from the settings; the account's address is added per check.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// `CHIPFLAP_PASSWORD_MIN_LENGTH`, in characters.
    pub min_chars: usize,
    /// Normalized (see [`context_core`]) built-in, site and operator words.
    context_words: Vec<String>,
}

impl PasswordPolicy {
    /// `site_host` is `GOTRUE_SITE_URL`'s host (its full name and each dot-separated label
    /// count); `operator_words` is `CHIPFLAP_PASSWORD_CONTEXT_WORDS`.
    pub fn new(min_chars: usize, site_host: Option<&str>, operator_words: &[String]) -> Self {
        let mut words: Vec<String> = BUILT_IN_CONTEXT_WORDS
            .iter()
            .map(|w| (*w).to_owned())
            .collect();
        if let Some(host) = site_host {
            words.extend(name_and_labels(host));
        }
        words.extend(operator_words.iter().cloned());
        let mut context_words: Vec<String> = words
            .iter()
            .map(|w| context_core(w))
            .filter(|w| !w.is_empty())
            .collect();
        context_words.sort();
        context_words.dedup();
        PasswordPolicy {
            min_chars,
            context_words,
        }
    }

    /// The words refused for the account with this address: the site's plus the address's local
    /// part, its domain and the domain's labels.
    pub fn context_words_for(&self, email: &str) -> Vec<String> {
        let mut words = self.context_words.clone();
        if let Some((local, domain)) = email.trim().rsplit_once('@') {
            words.push(context_core(local));
            words.extend(name_and_labels(domain).iter().map(|w| context_core(w)));
        }
        words.retain(|w| !w.is_empty());
        words
    }
}

/// A host name and each of its dot-separated labels.
fn name_and_labels(host: &str) -> Vec<String> {
    let host = host.trim().trim_end_matches('.');
    let mut out = vec![host.to_owned()];
    out.extend(host.split('.').map(str::to_owned));
    out
}

/// Lowercased, with the digits and symbols at both ends removed: `Chipflap2024!` → `chipflap`,
/// `ada.lovelace1` → `ada.lovelace`.
pub fn context_core(input: &str) -> String {
    input
        .to_lowercase()
        .trim_matches(|c: char| !c.is_alphabetic())
        .to_owned()
}

/// DESIGN §4.8: at most 1024 bytes, so hashing cost stays bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that met the length policy.
pub struct Password(SecretString);

impl Password {
    /// A new password (signup, change, reset, invite, admin, import, CLI): the one place every
    /// new password is checked. `email` is the address of the account it is for. Lengths are
    /// counted in characters, capped in bytes; a password on the common-passwords list is
    /// refused with [`COMMON_PASSWORD_MESSAGE`], one that is a context word of the policy or of
    /// `email` (ignoring case and surrounding digits and symbols) with [`CONTEXT_WORD_MESSAGE`].
    pub fn parse(
        input: &str,
        policy: &PasswordPolicy,
        email: &str,
    ) -> Result<Self, ValidationError> {
        let password = Self::parse_length_and_list(input, policy.min_chars)?;
        let core = context_core(input);
        if !core.is_empty() && policy.context_words_for(email).contains(&core) {
            return Err(ValidationError::new("password", CONTEXT_WORD_MESSAGE));
        }
        Ok(password)
    }

    fn parse_length_and_list(input: &str, min_chars: usize) -> Result<Self, ValidationError> {
        if input.is_empty() {
            return Err(ValidationError::new(
                "password",
                "Signup requires a valid password",
            ));
        }
        if input.chars().count() < min_chars {
            return Err(ValidationError::new(
                "password",
                format!("Password must be at least {min_chars} characters long"),
            ));
        }
        if input.len() > MAX_PASSWORD_BYTES {
            return Err(ValidationError::new(
                "password",
                format!("Password must be at most {MAX_PASSWORD_BYTES} bytes long"),
            ));
        }
        if is_common(input) {
            return Err(ValidationError::new("password", COMMON_PASSWORD_MESSAGE));
        }
        Ok(Password(SecretString::from(input)))
    }

    /// A login attempt's password: not policy-checked (old passwords may predate the policy),
    /// only capped so a huge body cannot buy a long hash.
    pub fn for_login(input: &str) -> Option<Self> {
        (input.len() <= MAX_PASSWORD_BYTES).then(|| Password(SecretString::from(input)))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(***)")
    }
}

/// A PHC string (`$argon2id$v=19$…`) as stored in `users.password_hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    pub fn from_phc(phc: String) -> Self {
        PasswordHash(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> PasswordPolicy {
        PasswordPolicy::new(8, Some("www.catflap-club.example"), &["Tabby".to_owned()])
    }

    /// A policy of only the length, for the tests of the other rules.
    fn parse(input: &str, min_chars: usize) -> Result<Password, ValidationError> {
        Password::parse(input, &PasswordPolicy::new(min_chars, None, &[]), "x@y.z")
    }

    #[test]
    fn enforces_length_policy_in_characters_and_bytes() {
        assert!(parse("", 8).is_err());
        assert!(parse("short", 8).is_err());
        assert!(parse("ääääääää", 8).is_ok());
        assert!(parse(&"x".repeat(1025), 8).is_err());
        assert!(parse(&"x".repeat(1024), 8).is_ok());
    }

    #[test]
    fn context_words_are_refused_ignoring_case_and_surrounding_digits_and_symbols() {
        let email = "Ada.Lovelace@analytical-engine.org";
        for word in [
            "Chipflap2024!",
            "NETLIFY!!!1",
            "gotrue123",
            "#identity#",
            "catflap-club99",
            "www.catflap-club.example",
            "2024tabby!",
            "ada.lovelace1",
            "analytical-engine2",
            "analytical-engine.org",
        ] {
            let err = Password::parse(word, &policy(), email)
                .map(|_| ())
                .unwrap_err();
            assert_eq!(err.reason, CONTEXT_WORD_MESSAGE, "{word}");
        }
        // Words inside a longer passphrase are fine; only the word alone is refused.
        assert!(Password::parse("chipflap keeps cats out", &policy(), email).is_ok());
        assert!(Password::parse("ada.lovelace1", &policy(), "grace@hopper.net").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_in_any_case() {
        for weak in [
            "password",
            "12345678",
            "aaaaaaaa",
            "Password1",
            "PASSWORD",
            "qwertyuiop",
        ] {
            let err = parse(weak, 8).map(|_| ()).unwrap_err();
            assert_eq!(err.reason, COMMON_PASSWORD_MESSAGE, "{weak}");
        }
        assert!(parse("correct horse battery staple", 8).is_ok());
    }

    #[test]
    fn the_list_holds_the_100000_most_common() {
        assert_eq!(COMMON_PASSWORDS.len(), 100_000);
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let p = parse("correct horse", 8).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        let h = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("secret"));
    }
}
