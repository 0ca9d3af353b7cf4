//! Rule: every Ably token issued is counted in the audit log, with its user and format, even
//! though the count is committed after the answer (one `ably_token_issued` entry per user and
//! format per period, its `count` trait the tokens it stands for): the audit listing shows it
//! shortly after, and a clean shutdown (SIGTERM) commits every queued entry and count before
//! the process exits.

use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use serde_json::Value;
use sqlx::Connection;

use crate::binary::{free_port, start_logging};
use crate::console::{get_page, login_admin};
use crate::helpers::{OPERATOR_TOKEN, spawn_app_with, test_from};
use chipflap::auth::ably::AblyKey;
use chipflap::mail::Mailer;

const KEY: &str = "appId1.keyId1:s3cr3tKeyValue_ForTests-0123";
const EMAIL: &str = "ada@example.org";
const PASSWORD: &str = "correct horse battery staple 9";
const TOKENS: usize = 300;

fn format_of(i: usize) -> &'static str {
    if i.is_multiple_of(3) {
        "token_request"
    } else {
        "jwt"
    }
}

#[tokio::test]
async fn the_audit_record_of_every_issued_token_exists_after_a_clean_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("audit.db");
    let database_url = format!("sqlite://{}", db_path.display());
    let env = [
        ("DATABASE_URL", database_url.as_str()),
        ("ABLY_APIKEY", KEY),
        (
            "GOTRUE_JWT_SECRET",
            "audit-test-jwt-secret-0123456789abcdef",
        ),
    ];
    let add = Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .args([
            "users",
            "add",
            "--email",
            EMAIL,
            "--confirmed",
            "--password-stdin",
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("CHIPFLAP_ARGON2_MEMORY_KIB", "64")
        .env("CHIPFLAP_ARGON2_ITERATIONS", "1")
        .envs(env)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let add = {
        use std::io::Write;
        let mut add = add;
        add.stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        add.wait_with_output().unwrap()
    };
    assert!(add.status.success());
    let user_id = String::from_utf8(add.stdout).unwrap().trim().to_owned();

    let port = free_port();
    let mut server = start_logging(dir.path(), port, &env);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{base}/.netlify/identity/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["access_token"].as_str().unwrap().to_owned();

    // A refused login is queued the same way (before the lock: its throttle is a write).
    let refused = client
        .post(format!("{base}/.netlify/identity/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", EMAIL),
            ("password", "not the password 7781"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);

    // Another process holds the store's write lock: nothing can be committed until it lets go,
    // so the entries of the tokens below are still queued when the server is told to stop.
    let mut blocker = sqlx::SqliteConnection::connect(&database_url)
        .await
        .unwrap();
    sqlx::query("begin immediate")
        .execute(&mut blocker)
        .await
        .unwrap();

    let answers = join_all((0..TOKENS).map(|i| {
        let request = client
            .get(format!(
                "{base}/.netlify/functions/ably-jwt?format={}",
                format_of(i)
            ))
            .bearer_auth(&token)
            .send();
        async move { request.await.unwrap().status().as_u16() }
    }))
    .await;
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");

    let killed = Command::new("kill")
        .args(["-TERM", &server.server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The HTTP server stops, then the queue drains: only then may the store be written again.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match server.log.recv_timeout(Duration::from_millis(50)) {
            Ok(line) if line.contains("committing the queued audit entries before exit") => break,
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(e) => panic!("the server stopped without draining its audit queue: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "the server did not start draining"
        );
    }
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    sqlx::query("rollback").execute(&mut blocker).await.unwrap();
    let status = loop {
        if let Some(status) = server.server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not exit");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "exit status {status}");

    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "select actor_id, actor_email, traits from audit_log_entries
         where action = 'ably_token_issued'",
    )
    .fetch_all(&mut blocker)
    .await
    .unwrap();
    // Every token is counted once, under its format, in entries of its user.
    let (mut jwts, mut token_requests) = (0, 0);
    for (actor_id, actor_email, traits) in &rows {
        assert_eq!(actor_id, &user_id);
        assert_eq!(actor_email, EMAIL);
        let traits: Value = serde_json::from_str(traits).unwrap();
        assert_eq!(traits["user_id"], user_id.as_str());
        assert!(traits["expires_at"].is_string());
        assert!(traits["first_issued_at"].as_str() <= traits["last_issued_at"].as_str());
        let count = usize::try_from(traits["count"].as_u64().unwrap()).unwrap();
        assert!(count >= 1);
        match traits["format"].as_str().unwrap() {
            "jwt" => jwts += count,
            "token_request" => token_requests += count,
            other => panic!("format {other}"),
        }
    }
    assert_eq!(jwts, (0..TOKENS).filter(|i| format_of(*i) == "jwt").count());
    assert_eq!(jwts + token_requests, TOKENS);
    let failed: i64 =
        sqlx::query_scalar("select count(*) from audit_log_entries where action = 'login_failed'")
            .fetch_one(&mut blocker)
            .await
            .unwrap();
    assert_eq!(failed, 1);
}

#[tokio::test]
async fn issued_tokens_appear_in_the_audit_listing_shortly_after_issue() {
    let app = spawn_app_with(
        |s| s.ably.key = Some(AblyKey::parse(KEY).unwrap()),
        Mailer::memory(test_from()),
    )
    .await;
    let session = app.confirmed_user(EMAIL).await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let user_id = app.user_id(&token).await;
    let answers = join_all((0..50).map(|i| {
        app.client
            .get(format!(
                "{}/.netlify/functions/ably-jwt?format={}",
                app.base,
                format_of(i)
            ))
            .bearer_auth(&token)
            .send()
    }))
    .await;
    assert!(answers.iter().all(|r| r.as_ref().unwrap().status() == 200));

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app
            .get(
                "/admin/audit?query=action:ably_token_issued&per_page=100",
                Some(OPERATOR_TOKEN),
            )
            .await;
        assert_eq!(r.status(), 200);
        let entries: Vec<Value> = r.json().await.unwrap();
        assert!(
            entries
                .iter()
                .all(|e| e["payload"]["traits"]["user_id"] == user_id.as_str()
                    && e["payload"]["actor_email"] == EMAIL)
        );
        let counted: u64 = entries
            .iter()
            .map(|e| e["payload"]["traits"]["count"].as_u64().unwrap())
            .sum();
        if counted == 50 {
            break;
        }
        assert!(counted < 50, "{counted} tokens counted");
        assert!(
            Instant::now() < deadline,
            "only {counted} of 50 tokens counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The console's audit page and the user's page list them too.
    login_admin(&app).await;
    for page in [
        "/audit?action=ably_token_issued".to_owned(),
        format!("/users/{user_id}"),
    ] {
        loop {
            let (status, html) = get_page(&app, &page).await;
            assert_eq!(status, 200);
            if html.contains("ably_token_issued") {
                break;
            }
            assert!(Instant::now() < deadline, "{page} lists no issued token");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
