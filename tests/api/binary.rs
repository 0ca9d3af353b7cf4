//! The shipped binary, started the way a user starts it: environment variables, no flags.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `chipflap` in `dir` with only PORT (and low argon2 cost) set, and waits for its
/// "listening" line.
fn start(dir: &std::path::Path, port: u16) -> Server {
    start_with(dir, port, &[])
}

/// As `start`, with more environment variables.
pub fn start_with(dir: &std::path::Path, port: u16, env: &[(&str, &str)]) -> Server {
    spawn_listening(dir, port, "warn", Stdio::null(), env)
}

pub struct LoggingServer {
    pub server: Server,
    /// The server's standard error, line by line.
    pub log: std::sync::mpsc::Receiver<String>,
}

/// As `start_with`, with the server's log (at `info`, unless `env` sets `RUST_LOG`) readable
/// line by line.
pub fn start_logging(dir: &std::path::Path, port: u16, env: &[(&str, &str)]) -> LoggingServer {
    let mut server = spawn_listening(dir, port, "info", Stdio::piped(), env);
    let (send, log) = std::sync::mpsc::channel();
    let stderr = server.child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { return };
            if send.send(line).is_err() {
                return;
            }
        }
    });
    LoggingServer { server, log }
}

/// Starts the binary with only PATH, PORT, a low argon2 cost, `RUST_LOG=log` and `env`, and
/// waits for its "listening" line.
fn spawn_listening(
    dir: &std::path::Path,
    port: u16,
    log: &str,
    stderr: Stdio,
    env: &[(&str, &str)],
) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("CHIPFLAP_ARGON2_MEMORY_KIB", "64")
        .env("CHIPFLAP_ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", log)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(
        line.contains(&format!("http://127.0.0.1:{port}")),
        "printed {line:?}"
    );
    Server { child, port }
}

#[tokio::test]
async fn the_binary_runs_on_embedded_defaults_and_keeps_data_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let client = reqwest::Client::new();
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}/.netlify/identity{path}");

    let server = start(dir.path(), port);
    let settings: Value = client
        .get(url(server.port, "/settings"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(settings["external"]["email"], true);
    let r = client
        .post(url(server.port, "/signup"))
        .json(&serde_json::json!({"email": "ada@example.org", "password": "correct horse"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The confirmation mail landed in the default outbox as an .eml file.
    let outbox = dir.path().join("data/outbox");
    let mail = std::fs::read_dir(&outbox)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let text =
        crate::support::sent_email::SentEmail::parse(&std::fs::read_to_string(mail).unwrap()).text;
    let token = text.split("#confirmation_token=").nth(1).unwrap();
    let token: String = token
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let r = client
        .post(url(server.port, "/verify"))
        .json(&serde_json::json!({"type": "signup", "token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(server);

    // Same directory, new process: the user and the generated secret survived.
    let port = free_port();
    let server = start(dir.path(), port);
    let r = client
        .post(url(server.port, "/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "ada@example.org"),
            ("password", "correct horse"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[test]
fn bad_configuration_stops_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .current_dir(dir.path())
        .env_clear()
        .env("GOTRUE_SMTP_MAX_FREQUENCY", "often")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("GOTRUE_SMTP_MAX_FREQUENCY"), "{stderr}");
}

#[test]
fn token_system_prints_an_admin_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .args(["token", "system", "--ttl", "60"])
        .current_dir(dir.path())
        .env_clear()
        .env("GOTRUE_JWT_SECRET", "0123456789abcdef0123456789abcdef")
        .output()
        .unwrap();
    assert!(out.status.success());
    let token = String::from_utf8(out.stdout).unwrap();
    let keys = chipflap::auth::jwt::JwtKeys::new(b"0123456789abcdef0123456789abcdef");
    let claims = keys
        .verify(token.trim(), chipflap::clock::Clock::System.now())
        .unwrap();
    assert!(claims.is_system());
}

#[test]
fn users_commands_create_ban_and_unban() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_chipflap"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("CHIPFLAP_ARGON2_MEMORY_KIB", "64")
            .env("CHIPFLAP_ARGON2_ITERATIONS", "1")
            .output()
            .unwrap()
    };
    let out = crate::cli_passwords_never_come_from_arguments::run_with_stdin(
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
        "correct horse\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim().len(), 36);
    assert!(
        run(&["users", "ban", "boss@example.org", "--reason", "test"])
            .status
            .success()
    );
    assert!(
        run(&["users", "unban", "boss@example.org"])
            .status
            .success()
    );
    let out = run(&["users", "ban", "nobody@example.org"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nobody@example.org"));
    assert!(run(&["users", "add", "--help"]).status.success());
}
