//! Rule: no secret reaches the logs. The shipped binary runs a full flow at the most verbose
//! level its operators can pick, and every password, token, cookie and configured secret is
//! then searched for in everything it wrote to stderr.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use reqwest::{Client, Response, redirect};
use serde_json::{Value, json};

use crate::binary::free_port;
use crate::cli_passwords_never_come_from_arguments::run_with_stdin;
use crate::console::csrf_in;
use crate::helpers::link_token;
use crate::support::smtp_sink::SmtpSink;

const JWT_SECRET: &str = "jwt-secret-0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const OPERATOR_TOKEN: &str = "operator-token-5e4d3c2b1a09f8e7";
const SMTP_PASSWORD: &str = "smtp-password-77a1b2c3";
const ABLY_KEY_SECRET: &str = "ablyKeySecretA1B2C3D4E5";
const FIRST_PASSWORD: &str = "first passphrase 4411";
const WRONG_PASSWORD: &str = "wrong passphrase 9077";
const SECOND_PASSWORD: &str = "second passphrase 5522";
const RECOVERED_PASSWORD: &str = "recovered passphrase 6633";
const ADMIN_PASSWORD: &str = "admin passphrase 7744";

struct LoggedServer {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl Drop for LoggedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The environment every run here shares: real secrets, SMTP with a password, Ably on.
fn env(smtp_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("CHIPFLAP_ARGON2_MEMORY_KIB", "64".into()),
        ("CHIPFLAP_ARGON2_ITERATIONS", "1".into()),
        ("GOTRUE_SITE_URL", "http://site.test".into()),
        ("GOTRUE_JWT_SECRET", JWT_SECRET.into()),
        ("GOTRUE_OPERATOR_TOKEN", OPERATOR_TOKEN.into()),
        ("GOTRUE_SMTP_HOST", "127.0.0.1".into()),
        ("GOTRUE_SMTP_PORT", smtp_port.to_string()),
        ("GOTRUE_SMTP_USER", "mailer".into()),
        ("GOTRUE_SMTP_PASS", SMTP_PASSWORD.into()),
        ("ABLY_APIKEY", format!("appId.keyId:{ABLY_KEY_SECRET}")),
        // The most verbose level there is, for chipflap and every library.
        ("RUST_LOG", "trace".into()),
    ]
}

fn start(dir: &std::path::Path, smtp_port: u16) -> LoggedServer {
    let port = free_port();
    let log = dir.join("server.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .envs(env(smtp_port))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "printed {line:?}");
    LoggedServer { child, port, log }
}

/// Collects every secret the flow sees.
#[derive(Default)]
struct Secrets(Vec<(String, String)>);

impl Secrets {
    fn add(&mut self, what: &str, value: &str) {
        assert!(
            value.len() >= 8,
            "{what} is too short to search for: {value:?}"
        );
        self.0.push((what.to_owned(), value.to_owned()));
    }

    fn tokens(&mut self, what: &str, response: &Value) {
        self.add(
            &format!("{what} access token"),
            response["access_token"].as_str().unwrap(),
        );
        self.add(
            &format!("{what} refresh token"),
            response["refresh_token"].as_str().unwrap(),
        );
    }
}

fn cookie(r: &Response, name: &str) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap())
        .find_map(|c| c.strip_prefix(&format!("{name}=")))
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no {name} cookie"))
        .to_owned()
}

#[tokio::test]
async fn no_secret_reaches_the_logs_in_a_full_flow() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SmtpSink::start_with_auth("mailer", SMTP_PASSWORD);
    let mut secrets = Secrets::default();
    for (what, value) in [
        ("JWT secret", JWT_SECRET),
        ("operator token", OPERATOR_TOKEN),
        ("SMTP password", SMTP_PASSWORD),
        ("Ably key secret", ABLY_KEY_SECRET),
        ("signup password", FIRST_PASSWORD),
        ("wrong password", WRONG_PASSWORD),
        ("changed password", SECOND_PASSWORD),
        ("recovered password", RECOVERED_PASSWORD),
        ("admin password", ADMIN_PASSWORD),
    ] {
        secrets.add(what, value);
    }
    // SMTP AUTH sends the password base64-encoded: `AUTH PLAIN` (with the user) and `AUTH LOGIN`.
    let b64 = |raw: &str| base64::engine::general_purpose::STANDARD.encode(raw);
    secrets.add(
        "SMTP AUTH PLAIN credentials",
        &b64(&format!("\0mailer\0{SMTP_PASSWORD}")),
    );
    secrets.add("SMTP AUTH LOGIN password", &b64(SMTP_PASSWORD));

    // The console admin, created the way an operator does.
    let out = run_with_stdin(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "boss@example.org",
            "--password-stdin",
            "--admin",
            "--confirmed",
        ],
        &format!("{ADMIN_PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let server = start(dir.path(), sink.port());
    let base = format!("http://127.0.0.1:{}", server.port);
    let api = |path: &str| format!("{base}/.netlify/identity{path}");
    let http = Client::builder()
        .redirect(redirect::Policy::none())
        .build()
        .unwrap();
    let mail = |n: usize| sink.wait_for_messages(n, Duration::from_secs(10));
    let token_form = |form: &[(&str, &str)]| {
        http.post(api("/token"))
            .form(&form.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>())
            .send()
    };

    // Signup → confirm.
    let r = http
        .post(api("/signup"))
        .json(&json!({"email": "ada@example.org", "password": FIRST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let confirmation = link_token(&mail(1).await[0].text(), "confirmation");
    secrets.add("confirmation token", &confirmation);
    let r = http
        .post(api("/verify"))
        .json(&json!({"type": "signup", "token": confirmation}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    secrets.tokens("confirmation", &r.json().await.unwrap());

    // A failed login, then a login → refresh.
    let r = token_form(&[
        ("grant_type", "password"),
        ("username", "ada@example.org"),
        ("password", WRONG_PASSWORD),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 400);
    // With the cookies a same-origin page asks for (`X-Use-Cookie`).
    let r = http
        .post(api("/token"))
        .header("x-use-cookie", "1")
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.org"),
            ("password", FIRST_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    secrets.add("nf_jwt cookie", &cookie(&r, "nf_jwt"));
    secrets.add("session cookie", &cookie(&r, "chipflap_session"));
    let login: Value = r.json().await.unwrap();
    secrets.tokens("login", &login);
    let r = token_form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", login["refresh_token"].as_str().unwrap()),
    ])
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let refreshed: Value = r.json().await.unwrap();
    secrets.tokens("refresh", &refreshed);
    let access = refreshed["access_token"].as_str().unwrap().to_owned();

    // Password change.
    let r = http
        .put(api("/user"))
        .bearer_auth(&access)
        .json(&json!({"password": SECOND_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Recovery (after the password change's notice, which goes out in the background).
    let sent = mail(2).await.len();
    let r = http
        .post(api("/recover"))
        .json(&json!({"email": "ada@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mails = mail(sent + 1).await;
    let recovery = link_token(&mails.last().unwrap().text(), "recovery");
    secrets.add("recovery token", &recovery);
    let r = http
        .post(api("/verify"))
        .json(&json!({"type": "recovery", "token": recovery}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let recovered: Value = r.json().await.unwrap();
    secrets.tokens("recovery", &recovered);
    let access = recovered["access_token"].as_str().unwrap().to_owned();
    let r = http
        .put(api("/user"))
        .bearer_auth(&access)
        .json(&json!({"password": RECOVERED_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Email change.
    let sent = sink
        .wait_for_messages(1, Duration::from_secs(1))
        .await
        .len();
    let r = http
        .put(api("/user"))
        .bearer_auth(&access)
        .json(&json!({"email": "ada@new.example"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mails = mail(sent + 1).await;
    let change = mails
        .iter()
        .rev()
        .find(|m| m.to.iter().any(|to| to == "ada@new.example"))
        .unwrap();
    let change = link_token(&change.text(), "email_change");
    secrets.add("email change token", &change);
    let r = http
        .put(api("/user"))
        .bearer_auth(&access)
        .json(&json!({"email_change_token": change}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The Ably token, then logout.
    let r = http
        .get(format!("{base}/.netlify/functions/ably-jwt"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    secrets.add("Ably token", &r.text().await.unwrap());
    let r = http
        .post(api("/logout"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    // The operator token at work.
    let r = http
        .get(api("/admin/users"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Console login → a page → logout.
    let r = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    let login_csrf_cookie = cookie(&r, "chipflap_login_csrf");
    secrets.add("console login CSRF cookie", &login_csrf_cookie);
    let login_csrf = csrf_in(&r.text().await.unwrap());
    secrets.add("console login CSRF token", &login_csrf);
    let r = http
        .post(format!("{base}/console/login"))
        .header("cookie", format!("chipflap_login_csrf={login_csrf_cookie}"))
        .form(&[
            ("email", "boss@example.org"),
            ("password", ADMIN_PASSWORD),
            ("csrf", login_csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = cookie(&r, "chipflap_console");
    secrets.add("console session cookie", &session);
    let r = http
        .get(format!("{base}/console/users"))
        .header("cookie", format!("chipflap_console={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csrf = csrf_in(&r.text().await.unwrap());
    secrets.add("console CSRF token", &csrf);
    let r = http
        .post(format!("{base}/console/logout"))
        .header("cookie", format!("chipflap_console={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // Let the last lines reach the file, then stop the server.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let log_path = server.log.clone();
    drop(server);
    let log = std::fs::read_to_string(&log_path).unwrap();

    // The capture is real: it holds the request lines and the failed login.
    assert!(log.contains("/.netlify/identity/token"), "{log}");
    assert!(log.contains("login failed"), "{log}");
    assert!(
        log.contains("ada@example.org"),
        "the failed login names the account"
    );
    let leaked: Vec<&str> = secrets
        .0
        .iter()
        .filter(|(_, value)| log.contains(value.as_str()))
        .map(|(what, _)| what.as_str())
        .collect();
    assert!(leaked.is_empty(), "secrets in the log: {leaked:?}");
}
