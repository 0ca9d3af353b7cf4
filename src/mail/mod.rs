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
    /// Tests decode the raw messages with a MIME parser (the `mail-parser` dev-dependency).
    pub async fn sent(&self) -> Vec<RecordedMail> {
        let Transport::Memory(stub) = &self.transport else {
            return Vec::new();
        };
        stub.messages()
            .await
            .into_iter()
            .map(|(envelope, raw)| RecordedMail {
                // The envelope is what an SMTP server would see in `RCPT TO`.
                to: envelope
                    .to()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                raw,
            })
            .collect()
    }
}

/// A message the memory transport recorded: its envelope recipients and the message as it was
/// handed to the transport (RFC 5322, MIME-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedMail {
    /// The envelope recipients, comma-separated.
    pub to: String,
    pub raw: String,
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

    /// Subject, text part and HTML part of a raw message, decoded by mail-parser, with `\n`
    /// line endings.
    fn decoded(raw: &str) -> (String, String, String) {
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let unfold = |s: Option<std::borrow::Cow<'_, str>>| {
            s.map(|s| s.replace("\r\n", "\n")).unwrap_or_default()
        };
        (
            message.subject().unwrap_or_default().to_owned(),
            unfold(message.body_text(0)),
            unfold(message.body_html(0)),
        )
    }

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
        let (subject, text, html) = decoded(&mail.raw);
        assert_eq!(subject, "Confirm Your Signup");
        assert_eq!(text, confirmation(LINK).text().unwrap());
        assert_eq!(html, confirmation(LINK).html().unwrap());
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
        let (subject, text, html) = decoded(&mail.raw);
        assert_eq!(subject, Unusual.subject());
        assert_eq!(text, Unusual.text().unwrap());
        assert_eq!(html, Unusual.html().unwrap());
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
        let raw = std::fs::read_to_string(&files[0]).unwrap();
        let (subject, text, _) = decoded(&raw);
        assert_eq!(subject, "Confirm Your Signup");
        assert!(raw.contains("To: jane@example.com"), "{raw}");
        assert!(text.contains(LINK));
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
}
