//! Email addresses: trimmed, checked for a plausible `local@domain` shape, compared case-insensitively.

use super::ValidationError;

/// RFC 5321 caps a path at 256 octets including the angle brackets.
const MAX_LEN: usize = 254;

#[derive(Debug, Clone)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// GoTrue's messages: empty gives "An email address is required", a malformed one
    /// "Unable to validate email address: …" (spec §1.3).
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(ValidationError::new(
                "email",
                "An email address is required",
            ));
        }
        if s.len() > MAX_LEN {
            return Err(invalid("the address is too long"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(invalid("missing '@' or angle-addr"));
        };
        if local.is_empty() || local.len() > 64 {
            return Err(invalid("invalid local part"));
        }
        if s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(
                    c,
                    '<' | '>' | ',' | ';' | '"' | '\\' | '(' | ')' | '[' | ']'
                )
        }) {
            return Err(invalid("invalid character"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(invalid("invalid local part"));
        }
        let labels_ok = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !labels_ok && domain != "localhost" {
            return Err(invalid("invalid domain"));
        }
        Ok(EmailAddress(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// The key that names one mailbox, for comparing and counting (throttles key on it whether or
/// not an account has the address). Placeholder: helper "mailbox" replaces this body with full
/// Unicode case folding and normalization at merge; this one only trims and lowercases.
pub fn mailbox_key(input: &str) -> String {
    input.trim().to_lowercase()
}

fn invalid(reason: &str) -> ValidationError {
    ValidationError::new(
        "email",
        format!("Unable to validate email address: {reason}"),
    )
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for EmailAddress {}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_keeps_their_case() {
        let e = EmailAddress::parse("  Ada.Lovelace+tag@Example.org ").unwrap();
        assert_eq!(e.as_str(), "Ada.Lovelace+tag@Example.org");
        assert_eq!(
            e,
            EmailAddress::parse("ada.lovelace+TAG@example.org").unwrap()
        );
    }

    #[test]
    fn empty_is_required_message() {
        assert_eq!(
            EmailAddress::parse("  ").unwrap_err().reason,
            "An email address is required"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "plain",
            "@example.org",
            "a@",
            "a@b",
            "a b@example.org",
            "a@exa mple.org",
            "a..b@example.org",
            "a@-example.org",
            "<a@example.org>",
            "a@example..org",
        ] {
            let err = EmailAddress::parse(bad).unwrap_err();
            assert!(
                err.reason.starts_with("Unable to validate email address"),
                "{bad}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn generated_addresses_parse(local in "[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            proptest::prop_assume!(!local.contains(".."));
            let input = format!("{local}@{domain}");
            let parsed = EmailAddress::parse(&input).unwrap();
            proptest::prop_assert_eq!(parsed.as_str(), input.as_str());
        }
    }
}
