//! Passwords and their hashes; neither ever appears in Debug output or logs.

use secrecy::{ExposeSecret, SecretString};

use super::ValidationError;

/// The 100,000 most common passwords, lowercased (`assets/README.md` names the source), sorted
/// bytewise one per line by `build.rs`: searched in place, so they take no heap and only the
/// pages a search touches.
const COMMON_PASSWORDS: &str =
    include_str!(concat!(env!("OUT_DIR"), "/common-passwords.sorted.txt"));

/// supabase/auth's text for a password found in a breach corpus (`weak_password`).
pub const COMMON_PASSWORD_MESSAGE: &str =
    "Password is known to be weak and easy to guess, please choose a different one.";

/// True when the password, ignoring case, is one of the 100,000 most common (ASVS 5.0 V6.2.4).
pub fn is_common(input: &str) -> bool {
    sorted_lines_contain(COMMON_PASSWORDS, input.to_lowercase().as_bytes())
}

/// Binary search for the line `key` in `sorted`: newline-terminated lines in bytewise order.
/// Each step bisects the byte range and widens to the line around the midpoint, so it needs
/// no index; about 17 steps of one line each for 100,000 lines.
fn sorted_lines_contain(sorted: &str, key: &[u8]) -> bool {
    let text = sorted.as_bytes();
    // `lo` and `hi` are always line starts (or the end): the lines still in question.
    let (mut lo, mut hi) = (0, text.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let start = text
            .get(lo..mid)
            .and_then(|before| before.iter().rposition(|&b| b == b'\n'))
            .map_or(lo, |i| lo + i + 1);
        let end = text
            .get(start..hi)
            .and_then(|rest| rest.iter().position(|&b| b == b'\n'))
            .map_or(hi, |i| start + i);
        match text.get(start..end).map(|line| line.cmp(key)) {
            Some(std::cmp::Ordering::Equal) => return true,
            Some(std::cmp::Ordering::Less) => lo = (end + 1).min(hi),
            Some(std::cmp::Ordering::Greater) => hi = start,
            None => return false,
        }
    }
    false
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

    /// The list as shipped (frequency order), the reference the sorted copy must answer like.
    const SHIPPED: &str = include_str!("../assets/common-passwords.txt");

    #[test]
    fn the_common_password_lookup_answers_exactly_like_a_set_of_the_shipped_list() {
        let set: std::collections::HashSet<&str> = SHIPPED.lines().collect();
        assert_eq!(set.len(), 100_000);
        for word in SHIPPED.lines() {
            assert!(is_common(word), "{word:?}");
            assert!(is_common(&word.to_uppercase()), "{word:?} in capitals");
        }
        // Non-members: neighbours of members in byte order, prefixes, extensions, edge bytes.
        let mut probes: Vec<String> = vec![
            String::new(),
            "\n".to_owned(),
            "password\n".to_owned(),
            "\u{0}".to_owned(),
            "\u{10FFFF}".to_owned(),
            "~~~~~~~~~~".to_owned(),
            "correct horse battery staple".to_owned(),
            "zzzzzzzzzzzzzzzzzzzzzz".to_owned(),
            "éàü".to_owned(),
        ];
        for word in SHIPPED.lines().step_by(97) {
            probes.push(format!("{word}\u{0}"));
            probes.push(format!("{word}~"));
            probes.push(format!("!{word}"));
            probes.push(word.chars().skip(1).collect());
            probes.push(word.chars().rev().collect());
        }
        for probe in &probes {
            assert_eq!(
                is_common(probe),
                set.contains(probe.to_lowercase().as_str()),
                "{probe:?}"
            );
        }
        assert!(
            probes.iter().any(|p| !is_common(p)),
            "non-members were probed"
        );
    }

    #[test]
    fn the_embedded_common_password_list_is_sorted_and_complete() {
        let lines: Vec<&str> = COMMON_PASSWORDS.lines().collect();
        assert!(lines.windows(2).all(|w| w[0] < w[1]), "strictly ascending");
        assert_eq!(lines.len(), 100_000);
        assert!(COMMON_PASSWORDS.ends_with('\n'));
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
        assert_eq!(COMMON_PASSWORDS.lines().count(), 100_000);
        assert!(COMMON_PASSWORDS.lines().all(|p| p == p.to_lowercase()));
    }

    #[test]
    fn debug_never_prints_the_secret() {
        let p = parse("correct horse", 8).unwrap();
        assert!(!format!("{p:?}").contains("horse"));
        let h = PasswordHash::from_phc("$argon2id$secret".into());
        assert!(!format!("{h:?}").contains("secret"));
    }
}
