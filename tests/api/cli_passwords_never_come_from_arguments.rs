//! Rule: the command line takes passwords from standard input or a terminal prompt, never from
//! its arguments, which every local user can read in the process list.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::binary::{free_port, start_with};

/// Runs `chipflap <args>` in `dir` with `stdin` on its standard input.
pub fn run_with_stdin(dir: &std::path::Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("CHIPFLAP_ARGON2_MEMORY_KIB", "64")
        .env("CHIPFLAP_ARGON2_ITERATIONS", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

async fn login(port: u16, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/.netlify/identity/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn cli_passwords_come_from_stdin_and_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let add = |email: &str, input: &str| {
        run_with_stdin(
            dir.path(),
            &[
                "users",
                "add",
                "--email",
                email,
                "--password-stdin",
                "--confirmed",
            ],
            input,
        )
    };
    // One line, with a Windows line ending, and a password with spaces.
    let out = add(
        "ada@example.org",
        "pass phrase with spaces\r\nignored second line\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Empty standard input is a clear error, and creates no user.
    let out = add("bob@example.org", "");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no password"));

    let port = free_port();
    let _server = start_with(dir.path(), port, &[]);
    assert_eq!(
        login(port, "ada@example.org", "pass phrase with spaces").await,
        200
    );
    assert_eq!(
        login(port, "ada@example.org", "pass phrase with spaces\r").await,
        400
    );
    assert_eq!(login(port, "bob@example.org", "").await, 400);
}

#[test]
fn a_password_in_the_arguments_is_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_stdin(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "ada@example.org",
            "--password",
            "correct horse",
            "--confirmed",
        ],
        "",
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--password-stdin"), "{stderr}");
    // The same email can then be added the right way: nothing was stored.
    let out = run_with_stdin(
        dir.path(),
        &[
            "users",
            "add",
            "--email",
            "ada@example.org",
            "--password-stdin",
        ],
        "correct horse\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
