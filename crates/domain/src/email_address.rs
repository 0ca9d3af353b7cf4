//! Email addresses: exactly what the mailer (lettre) can deliver, compared by mailbox key.

use std::borrow::Cow;
use std::hash::{Hash, Hasher};

use icu_casemap::CaseMapper;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};

use super::ValidationError;

/// RFC 5321 caps a path at 256 octets including the angle brackets.
const MAX_LEN: usize = 254;
/// RFC 5321 §4.5.3.1.1: at most 64 octets before the `@`.
const MAX_LOCAL_LEN: usize = 64;

/// An address as the user typed it (trimmed), checked by lettre's own parser, so every
/// accepted address can be mailed. Equality and hashing use [`mailbox_key`]: two spellings of
/// one mailbox are the same address, while [`EmailAddress::as_str`] keeps the user's spelling.
#[derive(Debug, Clone)]
pub struct EmailAddress {
    display: String,
    key: String,
}

impl EmailAddress {
    /// GoTrue's messages: empty gives "An email address is required", anything lettre refuses
    /// (or longer than 254 octets, or a local part over 64) "Unable to validate email address: …"
    /// (spec §1.3), so no address that passes here can make the mailer fail later.
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
        let address: lettre::Address = s.parse().map_err(|e| {
            invalid(match e {
                lettre::address::AddressError::MissingParts => "missing '@' or angle-addr",
                lettre::address::AddressError::InvalidUser => "invalid local part",
                lettre::address::AddressError::InvalidDomain => "invalid domain",
                _ => "invalid format",
            })
        })?;
        if address.user().len() > MAX_LOCAL_LEN {
            return Err(invalid("the local part is too long"));
        }
        if !survives_the_to_header(address) {
            return Err(invalid("invalid format"));
        }
        Ok(EmailAddress {
            display: s.to_owned(),
            key: mailbox_key(s),
        })
    }

    /// The address as the user spelled it (trimmed).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The mailbox key ([`mailbox_key`]) the store's uniqueness is built on.
    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn into_string(self) -> String {
        self.display
    }
}

/// Whether the mailer can put `address` in a `To:` header and read it back: lettre's message
/// builder re-parses its recipient headers with a stricter parser than `Address`'s, and drops
/// what it cannot read (`a@[]`, `a@[127.0.0.1]`, `":"@example.org`), so such an address could be
/// stored and never mailed.
fn survives_the_to_header(address: lettre::Address) -> bool {
    lettre::message::Mailbox::new(None, address)
        .to_string()
        .parse::<lettre::message::Mailbox>()
        .is_ok()
}

fn invalid(reason: &str) -> ValidationError {
    ValidationError::new(
        "email",
        format!("Unable to validate email address: {reason}"),
    )
}

impl PartialEq for EmailAddress {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for EmailAddress {}

impl Hash for EmailAddress {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

/// The canonical key of any input string (a valid address or not, e.g. a search term): two
/// inputs name the same mailbox exactly when their keys are equal. The input is trimmed; a
/// domain after the last `@` that UTS-46 accepts is first mapped to its Unicode form (so
/// `xn--exmple-cua.test` and `exämple.test` agree); then local part and domain each go through
/// Unicode's compatibility caseless match (D146: NFKC(fold(NFKC(fold(NFD(x)))))), which folds
/// `Ä`/`ä`, `ß`/`ss`, `Σ`/`ς`/`σ`, fullwidth and other compatibility forms together.
/// Uniqueness of accounts (one per mailbox and audience) is built on this key (issue 8, rule 1).
pub fn mailbox_key(input: &str) -> String {
    let s = input.trim();
    match s.rsplit_once('@') {
        Some((local, domain)) => {
            let (unicode, mapped) = idna::domain_to_unicode(domain);
            let domain = if mapped.is_ok() && !unicode.is_empty() {
                Cow::Owned(unicode)
            } else {
                Cow::Borrowed(domain)
            };
            format!("{}@{}", caseless(local), caseless(&domain))
        }
        None => caseless(s),
    }
}

/// Unicode 16 §3.13 D146, the compatibility caseless match, with ICU4X's full case folding.
fn caseless(text: &str) -> String {
    const FOLD: icu_casemap::CaseMapperBorrowed<'static> = CaseMapper::new();
    const NFD: DecomposingNormalizerBorrowed<'static> = DecomposingNormalizerBorrowed::new_nfd();
    const NFKC: ComposingNormalizerBorrowed<'static> = ComposingNormalizerBorrowed::new_nfkc();
    let decomposed = NFD.normalize(text);
    let once = NFKC.normalize(&FOLD.fold_string(&decomposed)).into_owned();
    NFKC.normalize(&FOLD.fold_string(&once)).into_owned()
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
    fn what_lettre_parses_but_cannot_address_is_refused() {
        for bad in ["a@[]", "a@[x]", "a@[127.0.0.1]", "\":\"@example.org"] {
            assert!(bad.parse::<lettre::Address>().is_ok(), "{bad}");
            let err = EmailAddress::parse(bad).unwrap_err();
            assert!(
                err.reason.starts_with("Unable to validate email address"),
                "{bad}"
            );
        }
    }

    #[test]
    fn refuses_what_the_mailer_cannot_deliver() {
        for bad in [
            "plain",
            "@example.org",
            "a@",
            "a b@example.org",
            "a@exa mple.org",
            "a..b@example.org",
            "a@-example.org",
            "<a@example.org>",
            "a@example..org",
            "a:b@example.test",
            "a@b@example.test",
            "a\u{0}b@example.test",
            "a\r\nBcc: x@example.test",
            "\"a b\"@example.test\"",
        ] {
            let err = EmailAddress::parse(bad).unwrap_err();
            assert!(
                err.reason.starts_with("Unable to validate email address"),
                "{bad}"
            );
            assert!(bad.trim().parse::<lettre::Address>().is_err(), "{bad}");
        }
    }

    #[test]
    fn length_limits_hold_even_where_lettre_would_accept() {
        let long_local = format!("{}@example.test", "a".repeat(65));
        assert!(EmailAddress::parse(&long_local).is_err());
        let long = format!("a@{}.test", "b".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn unicode_addresses_are_accepted() {
        for good in [
            "Ääkkönen@example.test",
            "d@exämple.test",
            "straße@example.test",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn keys_fold_unicode_case_and_compatibility_forms() {
        let same = [
            ("Ääkkönen@example.test", "ääkkönen@example.test"),
            ("ÄÄKKÖNEN@EXAMPLE.TEST", "ääkkönen@example.test"),
            // A + combining diaeresis (NFD) against the precomposed letter.
            (
                "A\u{308}a\u{308}kko\u{308}nen@example.test",
                "ääkkönen@example.test",
            ),
            ("d@exämple.test", "d@EXÄMPLE.test"),
            ("d@xn--exmple-cua.test", "d@exämple.test"),
            ("STRASSE@example.test", "straße@example.test"),
            ("ΣΊΣΥΦΟΣ@example.test", "σίσυφος@example.test"),
            ("ﬁ@example.test", "FI@example.test"),
            ("ａｂｃ@example.test", "abc@example.test"),
            ("  Bob@Example.org ", "bob@example.org"),
        ];
        for (a, b) in same {
            assert_eq!(mailbox_key(a), mailbox_key(b), "{a} vs {b}");
        }
        assert_eq!(
            mailbox_key("ÄÄKKÖNEN@EXAMPLE.TEST"),
            "ääkkönen@example.test"
        );
        assert_ne!(mailbox_key("a@example.test"), mailbox_key("b@example.test"));
        assert_ne!(mailbox_key("ä@example.test"), mailbox_key("a@example.test"));
    }

    #[test]
    fn keys_exist_for_any_input() {
        assert_eq!(mailbox_key("ÄÄKK"), "ääkk");
        assert_eq!(mailbox_key(""), "");
        assert_eq!(mailbox_key("a@b@C"), "a@b@c");
        assert_eq!(mailbox_key("x@-bad-.."), "x@-bad-..");
    }

    #[test]
    fn addresses_compare_and_hash_by_key() {
        use std::collections::HashSet;
        let set: HashSet<EmailAddress> = ["Ääkkönen@example.test", "ääkkönen@EXAMPLE.test"]
            .into_iter()
            .map(|s| EmailAddress::parse(s).unwrap())
            .collect();
        assert_eq!(set.len(), 1);
    }

    proptest::proptest! {
        #[test]
        fn generated_addresses_parse(local in "[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", domain in "[a-z0-9]{1,10}\\.[a-z]{2,6}") {
            proptest::prop_assume!(!local.contains(".."));
            let input = format!("{local}@{domain}");
            let parsed = EmailAddress::parse(&input).unwrap();
            proptest::prop_assert_eq!(parsed.as_str(), input.as_str());
        }

        #[test]
        fn whatever_parses_the_mailer_can_address(
            local in "[a-zA-Z0-9.:@<>\"()\\[\\], äß_!#$%&'*+/=?^`{|}~\\\\-]{1,20}",
            domain in "[a-zA-Z0-9äß.\\[\\]:_-]{1,20}",
        ) {
            let input = format!("{local}@{domain}");
            if let Ok(address) = EmailAddress::parse(&input) {
                let to: lettre::Address = address.as_str().parse().unwrap();
                let message = lettre::Message::builder()
                    .from("noreply@example.org".parse().unwrap())
                    .to(lettre::message::Mailbox::new(None, to))
                    .subject("x")
                    .body(String::from("x"));
                proptest::prop_assert!(message.is_ok(), "{input:?}");
            }
        }
    }
}
