//! A real SMTP server on 127.0.0.1 for integration tests: it accepts every message and keeps it.
//!
//! The SMTP protocol (command parsing, the session state machine, replies, `DATA` dot-unstuffing,
//! `AUTH`) is the `mailin` crate's. Its sibling `mailin-embedded` would also supply the socket
//! loop, but it depends on rustls with default features, which would bring aws-lc-sys (a C
//! build) into every test build and change rustls' features between `cargo build` and
//! `cargo test`. The loop below is that crate's loop minus STARTTLS, about 40 lines.
#![allow(
    clippy::expect_used,
    reason = "test support: a sink that cannot bind its socket must fail the test loudly"
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use super::sent_email::SentEmail;
use mailin::{Action, AuthMechanism, Handler, Response, SessionBuilder, response};

/// One message as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The `MAIL FROM` address.
    pub from: String,
    /// The `RCPT TO` addresses.
    pub to: Vec<String>,
    /// The message data, headers and body, dot-unstuffed, CRLF line endings.
    pub raw: String,
}

impl ReceivedMail {
    /// Subject and decoded bodies.
    pub fn parsed(&self) -> SentEmail {
        SentEmail::parse(&self.raw)
    }

    /// The decoded `text/plain` part.
    pub fn text(&self) -> String {
        self.parsed().text
    }

    /// The decoded `text/html` part.
    pub fn html(&self) -> String {
        self.parsed().html
    }

    /// The decoded `Subject` header.
    pub fn subject(&self) -> String {
        self.parsed().subject
    }
}

type Inbox = Arc<Mutex<Vec<ReceivedMail>>>;

fn lock(inbox: &Inbox) -> MutexGuard<'_, Vec<ReceivedMail>> {
    // A panicking connection thread must not hide the mails already received.
    inbox.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The running server; it stops accepting connections when dropped.
pub struct SmtpSink {
    addr: SocketAddr,
    inbox: Inbox,
    auth_attempts: Arc<AtomicUsize>,
    stopping: Arc<AtomicBool>,
}

impl SmtpSink {
    /// Starts a server that accepts any client without authentication.
    pub fn start() -> SmtpSink {
        Self::spawn(None)
    }

    /// Starts a server that advertises `AUTH PLAIN LOGIN` on the plain connection (there is no
    /// TLS here) and accepts only these credentials.
    pub fn start_with_auth(user: &str, password: &str) -> SmtpSink {
        Self::spawn(Some((user.to_owned(), password.to_owned())))
    }

    fn spawn(credentials: Option<(String, String)>) -> SmtpSink {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("SMTP sink address");
        let inbox = Inbox::default();
        let stopping = Arc::new(AtomicBool::new(false));

        let mut session_builder = SessionBuilder::new("smtp-sink.test");
        if credentials.is_some() {
            session_builder
                .enable_auth(AuthMechanism::Plain)
                .enable_auth(AuthMechanism::Login)
                .insecure_enable_plaintext_auth();
        }
        let auth_attempts = Arc::new(AtomicUsize::new(0));
        let handler = SinkHandler {
            inbox: Arc::clone(&inbox),
            auth_attempts: Arc::clone(&auth_attempts),
            credentials,
            current: None,
        };
        let accepting = Arc::clone(&stopping);
        // Plain threads rather than tokio tasks, so the sink works under any test runtime
        // (`#[tokio::test]`'s current-thread one included) and outlives none of them.
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let builder = session_builder.clone();
                let handler = handler.clone();
                thread::spawn(move || serve_connection(stream, &builder, handler));
            }
        });
        SmtpSink {
            addr,
            inbox,
            auth_attempts,
            stopping,
        }
    }

    /// The port the server listens on, on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// How many AUTH commands arrived (each carries the credentials).
    pub fn auth_attempts(&self) -> usize {
        self.auth_attempts.load(Ordering::SeqCst)
    }

    /// The messages received so far.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.inbox).clone()
    }

    /// Waits until at least `n` messages have arrived and returns all of them; panics after
    /// `timeout` with what did arrive, so a failing test says why.
    pub async fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mail(s) within {timeout:?}, got {}: {messages:#?}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking `accept` so the thread sees the flag and exits.
        let _ = TcpStream::connect(self.addr);
    }
}

#[derive(Clone)]
struct SinkHandler {
    inbox: Inbox,
    /// Every AUTH the server received, accepted or not (were credentials sent in clear?).
    auth_attempts: Arc<AtomicUsize>,
    credentials: Option<(String, String)>,
    current: Option<ReceivedMail>,
}

impl SinkHandler {
    fn check_credentials(&self, user: &str, password: &str) -> Response {
        self.auth_attempts.fetch_add(1, Ordering::SeqCst);
        match &self.credentials {
            Some((u, p)) if u == user && p == password => response::AUTH_OK,
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

impl Handler for SinkHandler {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(ReceivedMail {
            from: from.to_owned(),
            to: to.to_vec(),
            raw: String::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(mail) = self.current.as_mut() {
            mail.raw.push_str(&String::from_utf8_lossy(buf));
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(mail) = self.current.take() {
            lock(&self.inbox).push(mail);
        }
        response::OK
    }

    fn auth_plain(&mut self, _authorization_id: &str, user: &str, password: &str) -> Response {
        self.check_credentials(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check_credentials(user, password)
    }
}

/// One SMTP session: greet, then feed lines to mailin and write its replies until it closes.
fn serve_connection(stream: TcpStream, builder: &SessionBuilder, handler: SinkHandler) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_nodelay(true);
    let remote = stream
        .peer_addr()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |a| a.ip());
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut session = builder.build(remote, handler);
    if write_response(&mut writer, &session.greeting()).is_err() {
        return;
    }
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply = session.process(&line);
        match reply.action {
            Action::NoReply => {}
            Action::Reply => {
                if write_response(&mut writer, &reply).is_err() {
                    return;
                }
            }
            // No TLS here, so STARTTLS is never advertised; treat a request for it as the end.
            Action::Close | Action::UpgradeTls => {
                let _ = write_response(&mut writer, &reply);
                return;
            }
        }
    }
}

// One write per reply: `Response::write_to` writes a multi-line reply (EHLO) line by line, and
// small writes meet Nagle's algorithm and delayed ACKs, costing ~40 ms each.
fn write_response(writer: &mut TcpStream, reply: &Response) -> std::io::Result<()> {
    writer.write_all(&reply.buffer()?)?;
    writer.flush()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;
    use chipflap::mail::{ConfirmationEmail, EmailMessage, MailError, Mailer};
    use secrecy::SecretString;

    const WAIT: Duration = Duration::from_secs(10);

    fn confirmation(link: &str) -> ConfirmationEmail {
        ConfirmationEmail {
            site_url: "http://localhost:9999".to_owned(),
            action_url: link.to_owned(),
            email: "jane@example.com".to_owned(),
            valid_for: "24 hours".to_owned(),
        }
    }

    fn from() -> lettre::message::Mailbox {
        "Chipflap <noreply@example.com>".parse().unwrap()
    }

    #[tokio::test]
    async fn lettre_smtp_transport_delivers_to_the_sink() {
        let sink = SmtpSink::start();
        let mailer = Mailer::smtp(
            from(),
            "127.0.0.1",
            sink.port(),
            None,
            chipflap::config::SmtpTls::Opportunistic,
            Duration::from_secs(10),
        )
        .unwrap();
        let link = "http://localhost:9999/#confirmation_token=Ab9_-xYz_-012";
        let message = confirmation(link);

        mailer.send("jane@example.com", &message).await.unwrap();

        let mails = sink.wait_for_messages(1, WAIT).await;
        assert_eq!(mails.len(), 1);
        let mail = &mails[0];
        assert_eq!(mail.from, "noreply@example.com");
        assert_eq!(mail.to, vec!["jane@example.com".to_owned()]);
        assert_eq!(mail.subject(), "Confirm Your Signup");
        assert_eq!(mail.text(), message.text().unwrap());
        assert_eq!(mail.html(), message.html().unwrap());
        assert!(mail.text().contains(link));
    }

    struct DottedLines;

    impl EmailMessage for DottedLines {
        fn subject(&self) -> String {
            "dots".to_owned()
        }
        fn text(&self) -> Result<String, askama::Error> {
            Ok(".leading dot\n..two dots\n.\nend".to_owned())
        }
        fn html(&self) -> Result<String, askama::Error> {
            Ok("<p>.</p>".to_owned())
        }
        fn kind(&self) -> &'static str {
            "dots"
        }
        fn action_url(&self) -> &str {
            "http://localhost:9999/"
        }
    }

    #[tokio::test]
    async fn the_sink_keeps_several_mails_in_order_and_dot_unstuffs_them() {
        let sink = SmtpSink::start();
        let mailer = Mailer::smtp(
            from(),
            "localhost",
            sink.port(),
            None,
            chipflap::config::SmtpTls::Opportunistic,
            WAIT,
        )
        .unwrap();
        for n in 0..3 {
            let link = format!("http://localhost:9999/#confirmation_token=t{n}");
            mailer
                .send(&format!("u{n}@example.com"), &confirmation(&link))
                .await
                .unwrap();
        }
        mailer.send("dots@example.com", &DottedLines).await.unwrap();

        let mails = sink.wait_for_messages(4, WAIT).await;
        let recipients: Vec<_> = mails.iter().map(|m| m.to.join(",")).collect();
        assert_eq!(
            recipients,
            [
                "u0@example.com",
                "u1@example.com",
                "u2@example.com",
                "dots@example.com"
            ]
        );
        assert!(mails[2].text().contains("#confirmation_token=t2"));
        // A lone "." line would end DATA early unless lettre stuffs it and the server unstuffs.
        assert_eq!(mails[3].text(), DottedLines.text().unwrap());
    }

    #[tokio::test]
    async fn credentials_are_sent_with_smtp_auth() {
        let sink = SmtpSink::start_with_auth("mailer", "s3cret");
        let good = Mailer::smtp(
            from(),
            "127.0.0.1",
            sink.port(),
            Some(("mailer".to_owned(), SecretString::from("s3cret"))),
            chipflap::config::SmtpTls::Opportunistic,
            WAIT,
        )
        .unwrap();
        good.send("jane@example.com", &confirmation("http://x/#a"))
            .await
            .unwrap();

        let bad = Mailer::smtp(
            from(),
            "127.0.0.1",
            sink.port(),
            Some(("mailer".to_owned(), SecretString::from("wrong"))),
            chipflap::config::SmtpTls::Opportunistic,
            WAIT,
        )
        .unwrap();
        let err = bad
            .send("jane@example.com", &confirmation("http://x/#b"))
            .await
            .unwrap_err();
        assert!(matches!(err, MailError::Send(_)), "{err:?}");

        assert_eq!(sink.wait_for_messages(1, WAIT).await.len(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            sink.messages().len(),
            1,
            "the rejected client must not deliver"
        );
    }
}
