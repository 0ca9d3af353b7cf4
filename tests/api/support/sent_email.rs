//! A sent mail as the tests read it: its recipients, decoded subject and bodies, parsed from the
//! raw message by mail-parser (the same MIME a mail client reads, not chipflap's own code).

use std::borrow::Cow;

use chipflap::mail::RecordedMail;
use mail_parser::MimeHeaders;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentEmail {
    /// The recipients, comma-separated: the envelope's for the memory transport and the SMTP
    /// sink, the `To` header's addresses for a mail read from a file.
    pub to: String,
    /// The decoded `Subject` header.
    pub subject: String,
    /// The first `text/plain` part, decoded, with `\n` line endings ("" when there is none).
    pub text: String,
    /// The first `text/html` part, decoded, with `\n` line endings ("" when there is none).
    pub html: String,
    /// The whole message as it was handed to the transport.
    pub raw: String,
}

impl SentEmail {
    /// Parses a raw RFC 5322 message (MIME parts, transfer encodings, RFC 2047 headers).
    pub fn parse(raw: &str) -> SentEmail {
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap_or_else(|| panic!("not a mail message: {raw}"));
        let lines =
            |s: Option<Cow<'_, str>>| s.map(|s| s.replace("\r\n", "\n")).unwrap_or_default();
        // mail-parser makes a missing text part from the HTML and back: only real parts count.
        let has = |kind: &str| {
            message.parts.iter().any(|part| {
                part.content_type().is_some_and(|t| {
                    t.ctype().eq_ignore_ascii_case("text")
                        && t.subtype().is_some_and(|s| s.eq_ignore_ascii_case(kind))
                }) || (kind == "plain" && part.content_type().is_none() && message.parts.len() == 1)
            })
        };
        let to = message
            .to()
            .map(|to| {
                to.iter()
                    .filter_map(|a| a.address())
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        SentEmail {
            to,
            subject: message.subject().unwrap_or_default().to_owned(),
            text: if has("plain") {
                lines(message.body_text(0))
            } else {
                String::new()
            },
            html: if has("html") {
                lines(message.body_html(0))
            } else {
                String::new()
            },
            raw: raw.to_owned(),
        }
    }
}

impl From<RecordedMail> for SentEmail {
    fn from(mail: RecordedMail) -> Self {
        SentEmail {
            to: mail.to,
            ..SentEmail::parse(&mail.raw)
        }
    }
}
