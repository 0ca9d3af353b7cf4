//! Passwords and their hashes; neither ever appears in Debug output or logs.

use secrecy::{ExposeSecret, SecretString};

use super::ValidationError;

/// DESIGN §4.8: at most 1024 bytes, so hashing cost stays bounded.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A password that met the length policy.
pub struct Password(SecretString);

impl Password {
    /// `min_chars` is `CHIPFLAP_PASSWORD_MIN_LENGTH`; counted in characters, capped in bytes.
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
    fn debug_never_prints_the_secret() {
        let p = Password::parse("correct horse", 8).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        let h = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("secret"));
    }
}
