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

/// DESIGN §4.8: at most 1024 bytes, so hashing cost stays bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that met the length policy.
pub struct Password(SecretString);

impl Password {
    /// A new password (signup, change, reset, invite, admin, import). `min_chars` is
    /// `CHIPFLAP_PASSWORD_MIN_LENGTH`; counted in characters, capped in bytes. A password on
    /// the common-passwords list is refused with [`COMMON_PASSWORD_MESSAGE`].
    pub fn parse(input: &str, min_chars: usize) -> Result<Self, ValidationError> {
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

    #[test]
    fn enforces_length_policy_in_characters_and_bytes() {
        assert!(Password::parse("", 8).is_err());
        assert!(Password::parse("short", 8).is_err());
        assert!(Password::parse("ääääääää", 8).is_ok());
        assert!(Password::parse(&"x".repeat(1025), 8).is_err());
        assert!(Password::parse(&"x".repeat(1024), 8).is_ok());
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
            let err = Password::parse(weak, 8).map(|_| ()).unwrap_err();
            assert_eq!(err.reason, COMMON_PASSWORD_MESSAGE, "{weak}");
        }
        assert!(Password::parse("correct horse battery staple", 8).is_ok());
    }

    #[test]
    fn the_list_holds_the_100000_most_common() {
        assert_eq!(COMMON_PASSWORDS.len(), 100_000);
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let p = Password::parse("correct horse", 8).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        let h = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("secret"));
    }
}
