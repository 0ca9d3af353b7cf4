//! Outgoing mail: a [`Mailer`] that renders an [`EmailMessage`] and hands it to one of lettre's
//! transports (SMTP, `.eml` files for local development, or in memory for tests).

pub mod messages;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::stub::AsyncStubTransport;
use lettre::{
    Address, AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::{ExposeSecret, SecretString};

use crate::config::SmtpTls;

pub use messages::{
    AccountExistsEmail, AddressInUseEmail, ConfirmationEmail, EmailChangeEmail,
    EmailChangeRequestedNotificationEmail, EmailChangedNotificationEmail, EmailMessage,
    InviteEmail, PasswordChangedNotificationEmail, RecoveryEmail,
};

/// Upper bound for transports that are not given one (file and memory); they never wait on a
/// network, so this only guards against a stuck disk.
const LOCAL_TIMEOUT: Duration = Duration::from_secs(30);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a mail was not sent.
#[derive(thiserror::Error)]
pub enum MailError {
    #[error("invalid recipient address")]
    InvalidAddress(#[source] lettre::address::AddressError),
    #[error("failed to render the mail template")]
    Render(#[from] askama::Error),
    #[error("failed to build the mail message")]
    Build(#[source] lettre::error::Error),
    #[error("failed to set up the mail transport")]
    Setup(#[source] BoxError),
    #[error("failed to send the mail")]
    Send(#[source] BoxError),
    #[error("sending the mail timed out after {0:?}")]
    Timeout(Duration),
}

// The `Display` of the top error alone ("failed to send the mail") hides the useful part, so
// `Debug` (what `{:?}` and `.unwrap()` print) walks the whole cause chain.
impl fmt::Debug for MailError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            write!(f, "\n  caused by: {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// An enum rather than a trait object: lettre's `AsyncTransport` has associated `Ok`/`Error`
/// types, so it cannot be boxed without wrapping every method anyway.
#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
    // Clones share one message log, so a test keeps a clone of the `Mailer` it handed out.
    Memory(AsyncStubTransport),
}

/// Sends [`EmailMessage`]s from one fixed sender.
#[derive(Clone)]
pub struct Mailer {
    from: Mailbox,
    transport: Transport,
    /// Bounds the whole `send` (connect, TLS, auth, data), so a slow SMTP server cannot hold a
    /// request forever.
    timeout: Duration,
}

impl fmt::Debug for Mailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("transport", &self.transport_name())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Mailer {
    /// Sends through an SMTP server: implicit TLS on port 465; otherwise STARTTLS, which must
    /// succeed with [`SmtpTls::Required`] (production's default: a server that offers no TLS
    /// gets no credentials and no mail) or is used when offered with
    /// [`SmtpTls::Opportunistic`] (GoTrue's behaviour, for local mail catchers).
    pub fn smtp(
        from: Mailbox,
        host: &str,
        port: u16,
        credentials: Option<(String, SecretString)>,
        tls: SmtpTls,
        timeout: Duration,
    ) -> Result<Mailer, MailError> {
        let tls_parameters =
            TlsParameters::new(host.to_owned()).map_err(|e| MailError::Setup(Box::new(e)))?;
        let tls = match (port, tls) {
            (465, _) => Tls::Wrapper(tls_parameters),
            (_, SmtpTls::Required) => Tls::Required(tls_parameters),
            (_, SmtpTls::Opportunistic) => Tls::Opportunistic(tls_parameters),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((user, password)) = credentials {
            builder =
                builder.credentials(Credentials::new(user, password.expose_secret().to_owned()));
        }
        Ok(Mailer {
            from,
            transport: Transport::Smtp(builder.build()),
            timeout,
        })
    }

    /// Writes every message as one `<uuid>.eml` file into `dir`, creating it if missing.
    pub fn file(from: Mailbox, dir: &Path) -> Result<Mailer, MailError> {
        std::fs::create_dir_all(dir).map_err(|e| MailError::Setup(Box::new(e)))?;
        Ok(Mailer {
            from,
            transport: Transport::File(AsyncFileTransport::new(dir)),
            timeout: LOCAL_TIMEOUT,
        })
    }

    /// Keeps messages in memory; read them back with [`Mailer::sent`].
    pub fn memory(from: Mailbox) -> Mailer {
        Mailer {
            from,
            transport: Transport::Memory(AsyncStubTransport::new_ok()),
            timeout: LOCAL_TIMEOUT,
        }
    }

    /// Like [`Mailer::memory`], but every send fails, to test the error paths.
    pub fn memory_failing(from: Mailbox) -> Mailer {
        Mailer {
            from,
            transport: Transport::Memory(AsyncStubTransport::new_error()),
            timeout: LOCAL_TIMEOUT,
        }
    }

    /// `"smtp"`, `"file"` or `"memory"`, for the startup log.
    pub fn transport_name(&self) -> &'static str {
        match self.transport {
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
            Transport::Memory(_) => "memory",
        }
    }

    /// Renders `message` as `multipart/alternative` (text, then HTML) and sends it to `to`.
    pub async fn send(
        &self,
        to: &str,
        message: &(impl EmailMessage + ?Sized),
    ) -> Result<(), MailError> {
        let to: Address = to.trim().parse().map_err(MailError::InvalidAddress)?;
        let to = ascii_domain(to);
        let email = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to))
            .subject(message.subject())
            .multipart(MultiPart::alternative_plain_html(
                message.text()?,
                message.html()?,
            ))
            .map_err(MailError::Build)?;

        tokio::time::timeout(self.timeout, self.send_message(email))
            .await
            .map_err(|_| MailError::Timeout(self.timeout))??;

        let kind = message.kind();
        if let Transport::File(_) = self.transport {
            // Development only (no SMTP host configured): the link is already on disk in the
            // outbox, and logging it saves opening the file. Never done for real transports.
            tracing::info!(
                kind,
                link = message.action_url(),
                "mail written to the outbox"
            );
        } else {
            tracing::info!(kind, transport = self.transport_name(), "mail sent");
        }
        Ok(())
    }

    async fn send_message(&self, email: Message) -> Result<(), MailError> {
        let result = match &self.transport {
            Transport::Smtp(t) => t.send(email).await.map(drop).map_err(BoxError::from),
            Transport::File(t) => t.send(email).await.map(drop).map_err(BoxError::from),
            Transport::Memory(t) => t.send(email).await.map_err(BoxError::from),
        };
        result.map_err(MailError::Send)
    }

    /// What the memory transport has recorded, oldest first; empty for the other transports.
    pub async fn sent(&self) -> Vec<SentEmail> {
        let Transport::Memory(stub) = &self.transport else {
            return Vec::new();
        };
        stub.messages()
            .await
            .into_iter()
            .map(|(envelope, raw)| {
                let mut sent = SentEmail::parse(&raw);
                // The envelope is what an SMTP server would see in `RCPT TO`.
                sent.to = envelope
                    .to()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ");
                sent
            })
            .collect()
    }
}

/// A mail as a test or a reader of the outbox sees it: a few headers and the decoded bodies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentEmail {
    /// The recipients, comma-separated.
    pub to: String,
    /// The decoded `Subject` header.
    pub subject: String,
    /// The `text/plain` part, decoded, with `\n` line endings.
    pub text: String,
    /// The `text/html` part, decoded, with `\n` line endings.
    pub html: String,
    /// The whole message as it was handed to the transport.
    pub raw: String,
}

impl SentEmail {
    /// Parses the kind of message [`Mailer::send`] builds: one `text/plain` and one `text/html`
    /// part (nested multiparts are walked), each `7bit`, `8bit`, `quoted-printable` or `base64`,
    /// and RFC 2047 encoded words in headers. Not a general MIME parser: charsets other than
    /// UTF-8 are not converted, and a missing part stays empty.
    pub fn parse(raw: &str) -> SentEmail {
        let normalized = raw.replace("\r\n", "\n");
        let (head, _) = split_head(&normalized);
        let headers = parse_headers(head);
        let decoded_header =
            |name| decode_encoded_words(header(&headers, name).unwrap_or_default());
        let mut sent = SentEmail {
            to: decoded_header("to"),
            subject: decoded_header("subject"),
            raw: raw.to_owned(),
            ..SentEmail::default()
        };
        collect_parts(&normalized, &mut sent);
        sent
    }
}

/// Splits an entity (with `\n` line endings) at the blank line that ends its headers.
fn split_head(entity: &str) -> (&str, &str) {
    match entity.split_once("\n\n") {
        Some((head, body)) => (head, body),
        None => (entity, ""),
    }
}

/// Header names lowercased; folded lines joined (RFC 5322 unfolding keeps the whitespace).
fn parse_headers(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
    }
    headers
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, value)| value.as_str())
}

/// The value of `name` in a header like `multipart/alternative; boundary="abc"`.
fn header_param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|param| {
        let (key, val) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then(|| val.trim().trim_matches('"').to_owned())
    })
}

fn collect_parts(entity: &str, sent: &mut SentEmail) {
    let (head, body) = split_head(entity);
    let headers = parse_headers(head);
    let content_type = header(&headers, "content-type").unwrap_or("text/plain");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        if let Some(boundary) = header_param(content_type, "boundary") {
            for part in split_multipart(body, &boundary) {
                collect_parts(&part, sent);
            }
        }
        return;
    }
    let target = match mime.as_str() {
        "text/plain" => &mut sent.text,
        "text/html" => &mut sent.html,
        _ => return,
    };
    if target.is_empty() {
        let encoding = header(&headers, "content-transfer-encoding").unwrap_or("7bit");
        *target = decode_body(body, encoding);
    }
}

/// The parts between `--boundary` lines, up to `--boundary--`. The line break before a
/// delimiter belongs to the delimiter, which joining the lines with `\n` respects.
fn split_multipart(body: &str, boundary: &str) -> Vec<String> {
    let delimiter = format!("--{boundary}");
    let close = format!("--{boundary}--");
    let mut parts = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in body.split('\n') {
        let trimmed = line.trim_end();
        if trimmed == close || trimmed == delimiter {
            if let Some(lines) = current.take() {
                parts.push(lines.join("\n"));
            }
            if trimmed == close {
                break;
            }
            current = Some(Vec::new());
        } else if let Some(lines) = current.as_mut() {
            lines.push(line);
        }
    }
    parts
}

fn decode_body(body: &str, transfer_encoding: &str) -> String {
    let bytes = match transfer_encoding.trim().to_ascii_lowercase().as_str() {
        "quoted-printable" => decode_quoted_printable(body),
        "base64" => {
            use base64::Engine as _;
            let compact: String = body.split_ascii_whitespace().collect();
            match base64::engine::general_purpose::STANDARD.decode(compact) {
                Ok(bytes) => bytes,
                Err(_) => return body.to_owned(),
            }
        }
        _ => return body.to_owned(),
    };
    String::from_utf8_lossy(&bytes).replace("\r\n", "\n")
}

/// `=XX` escapes and `=` soft line breaks; an `=` that is neither is kept as is.
fn decode_quoted_printable(input: &str) -> Vec<u8> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            // Checked digit by digit: `from_str_radix` alone would accept a sign, e.g. `=+1`.
            let byte = bytes
                .get(i + 1..i + 3)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok());
            if let Some(byte) = byte {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Decodes RFC 2047 `=?charset?B|Q?…?=` words (assumed UTF-8, which is what lettre writes).
/// Adjacent words are concatenated as bytes first, since a character may span two of them.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u8> = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let (before, candidate) = rest.split_at(start);
        if let Some((bytes, consumed)) = decode_encoded_word(candidate) {
            // Whitespace between two encoded words is not part of the text.
            let continues_previous_word = !pending.is_empty() && before.trim().is_empty();
            if !continues_previous_word {
                out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
                out.push_str(before);
            }
            pending.extend(bytes);
            rest = &candidate[consumed..];
        } else {
            out.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
            out.push_str(before);
            out.push_str("=?");
            rest = &candidate[2..];
        }
    }
    out.push_str(&String::from_utf8_lossy(&pending));
    out.push_str(rest);
    out
}

/// One encoded word at the start of `word`: its bytes and how many characters it spans.
fn decode_encoded_word(word: &str) -> Option<(Vec<u8>, usize)> {
    let inner = word.strip_prefix("=?")?;
    let (charset, inner) = inner.split_once('?')?;
    let (encoding, inner) = inner.split_once('?')?;
    let (text, _) = inner.split_once("?=")?;
    if text.contains([' ', '?']) {
        return None;
    }
    let bytes = match encoding {
        "B" | "b" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()?
        }
        "Q" | "q" => decode_quoted_printable(&text.replace('_', " ")),
        _ => return None,
    };
    let consumed = "=?".len() + charset.len() + 1 + encoding.len() + 1 + text.len() + "?=".len();
    Some((bytes, consumed))
}

/// An internationalized domain goes out as punycode (UTS-46), so only a non-ASCII local part
/// needs the SMTP server's SMTPUTF8 (lettre refuses a non-ASCII envelope without it).
fn ascii_domain(address: Address) -> Address {
    if address.domain().is_ascii() {
        return address;
    }
    idna::domain_to_ascii(address.domain())
        .ok()
        .and_then(|domain| Address::new(address.user(), domain).ok())
        .unwrap_or(address)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    fn from() -> Mailbox {
        "Chipflap <noreply@example.com>".parse().unwrap()
    }

    fn confirmation(link: &str) -> ConfirmationEmail {
        ConfirmationEmail {
            site_url: "https://example.com".to_owned(),
            action_url: link.to_owned(),
            email: "jane@example.com".to_owned(),
            valid_for: "24 hours".to_owned(),
        }
    }

    const LINK: &str = "https://example.com/#confirmation_token=Ab9_-xYz_-012";

    #[tokio::test]
    async fn memory_transport_records_and_decodes_the_message() {
        let mailer = Mailer::memory(from());
        let observer = mailer.clone();
        mailer
            .send("jane@example.com", &confirmation(LINK))
            .await
            .unwrap();

        let sent = observer.sent().await;
        assert_eq!(sent.len(), 1);
        let mail = &sent[0];
        assert_eq!(mail.to, "jane@example.com");
        assert_eq!(mail.subject, "Confirm Your Signup");
        assert_eq!(mail.text, confirmation(LINK).text().unwrap());
        assert_eq!(mail.html, confirmation(LINK).html().unwrap());
        assert!(mail.raw.contains("From: Chipflap <noreply@example.com>"));
        assert!(mail.raw.contains("multipart/alternative"));
    }

    /// A mail whose bodies lettre must encode (non-ASCII, long lines), to exercise the decoder.
    struct Unusual;

    const LONG_LINE: &str = "Grüße aus Köln — ünïcödé everywhere, and a line well over seventy-six characters so quoted-printable has to wrap it with soft breaks.";

    impl EmailMessage for Unusual {
        fn subject(&self) -> String {
            "Grüße — a non-ASCII subject that is long enough to be folded over more than one header line".to_owned()
        }
        fn text(&self) -> Result<String, askama::Error> {
            Ok(format!("{LONG_LINE}\n{LINK}\n= not an escape\n"))
        }
        fn html(&self) -> Result<String, askama::Error> {
            Ok(format!("<p>{}</p>", "日本語のテキスト。".repeat(20)))
        }
        fn kind(&self) -> &'static str {
            "unusual"
        }
        fn action_url(&self) -> &str {
            LINK
        }
    }

    #[tokio::test]
    async fn encoded_bodies_and_subjects_are_decoded() {
        let mailer = Mailer::memory(from());
        mailer.send("jane@example.com", &Unusual).await.unwrap();
        let mail = mailer.sent().await.remove(0);
        // Proves the decoder was exercised rather than the bodies being sent as 8bit.
        assert!(
            mail.raw.contains("quoted-printable") || mail.raw.contains("base64"),
            "{}",
            mail.raw
        );
        assert_eq!(mail.subject, Unusual.subject());
        assert_eq!(mail.text, Unusual.text().unwrap());
        assert_eq!(mail.html, Unusual.html().unwrap());
    }

    #[tokio::test]
    async fn failing_memory_transport_returns_a_send_error() {
        let mailer = Mailer::memory_failing(from());
        let err = mailer
            .send("jane@example.com", &confirmation(LINK))
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::Send(_)), "{err:?}");
        // Debug shows the cause chain, not just the top message.
        assert!(format!("{err:?}").contains("caused by"), "{err:?}");
    }

    #[tokio::test]
    async fn invalid_recipients_are_rejected_before_sending() {
        let mailer = Mailer::memory(from());
        for bad in [
            "",
            "not-an-address",
            "a@",
            "two@a.b, three@c.d",
            "x@y.z\r\nBcc: e@f.g",
        ] {
            let err = mailer.send(bad, &confirmation(LINK)).await.unwrap_err();
            assert!(
                matches!(err, MailError::InvalidAddress(_)),
                "{bad}: {err:?}"
            );
        }
        assert!(mailer.sent().await.is_empty());
    }

    #[tokio::test]
    async fn file_transport_writes_one_eml_file() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mailer = Mailer::file(from(), &outbox).unwrap();
        assert_eq!(mailer.transport_name(), "file");
        mailer
            .send("jane@example.com", &confirmation(LINK))
            .await
            .unwrap();

        let files: Vec<_> = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        assert_eq!(files[0].extension().unwrap(), "eml");
        let parsed = SentEmail::parse(&std::fs::read_to_string(&files[0]).unwrap());
        assert_eq!(parsed.subject, "Confirm Your Signup");
        assert_eq!(parsed.to, "jane@example.com");
        assert!(parsed.text.contains(LINK));
        assert!(mailer.sent().await.is_empty());
    }

    #[tokio::test]
    async fn smtp_to_a_closed_port_fails_with_a_send_error() {
        // Bind then drop a listener to get a local port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mailer = Mailer::smtp(
            from(),
            "127.0.0.1",
            port,
            None,
            crate::config::SmtpTls::Opportunistic,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(mailer.transport_name(), "smtp");
        let err = mailer
            .send("jane@example.com", &confirmation(LINK))
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::Send(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_silent_smtp_server_hits_the_timeout() {
        // Accepts the connection but never sends the greeting.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (_socket, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
        });
        let timeout = Duration::from_millis(300);
        let mailer = Mailer::smtp(
            from(),
            "127.0.0.1",
            port,
            None,
            crate::config::SmtpTls::Opportunistic,
            timeout,
        )
        .unwrap();
        let started = std::time::Instant::now();
        let err = mailer
            .send("jane@example.com", &confirmation(LINK))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // lettre's own command timeout may fire first; either way the send is bounded.
        assert!(
            matches!(err, MailError::Timeout(_) | MailError::Send(_)),
            "{err:?}"
        );
        server.abort();
    }
    #[test]
    fn parses_a_hand_written_multipart_message() {
        let raw = "To: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\r\n\
Subject: =?utf-8?b?R3LDvMOf?=\r\n =?utf-8?b?ZQ==?= and plain\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/alternative;\r\n boundary=\"XyZ\"\r\n\
\r\n\
preamble\r\n\
--XyZ\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
caf=C3=A9 =3D soft=\r\n\
break\r\n\
--XyZ\r\n\
Content-Type: text/html; charset=utf-8\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
PHA+\r\naGk8L3A+\r\n\
--XyZ--\r\n\
epilogue\r\n";
        let parsed = SentEmail::parse(raw);
        assert_eq!(parsed.to, "Jürgen <j@example.com>");
        assert_eq!(parsed.subject, "Grüße and plain");
        assert_eq!(parsed.text, "café = softbreak");
        assert_eq!(parsed.html, "<p>hi</p>");
    }

    #[test]
    fn parses_a_single_part_message_and_keeps_bare_equals_signs() {
        let parsed = SentEmail::parse("Subject: hi =? there\n\nbody = text\n");
        assert_eq!(parsed.subject, "hi =? there");
        assert_eq!(parsed.text, "body = text\n");
        assert_eq!(decode_quoted_printable("a=+1=4=3D=\nb="), b"a=+1=4=b=");
        assert_eq!(parsed.html, "");
    }
}
