//! Rule: a mailed link whose mail never went out does not throttle the next request. A server
//! killed between its commit and its mail must not leave the user waiting out
//! `GOTRUE_SMTP_MAX_FREQUENCY` for a mail that was never sent.

use std::time::Duration;

use serde_json::json;

use crate::binary::{free_port, start_with};

/// An SMTP "server" that accepts connections and never says a word, so the sender hangs
/// after its commit, where a crash would leave it.
fn silent_smtp_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, port)
}

async fn users_in(db: &std::path::Path) -> i64 {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let Ok(pool) = sqlx::SqlitePool::connect(&url).await else {
        return 0;
    };
    let count = sqlx::query_scalar::<_, i64>("select count(*) from users")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    pool.close().await;
    count
}

#[tokio::test]
async fn a_signup_killed_before_its_mail_can_be_retried_at_once() {
    // Arrange: the server's mail hangs after the signup committed; then it is killed (-9).
    let dir = tempfile::tempdir().unwrap();
    let (_smtp, smtp_port) = silent_smtp_server();
    let smtp_port = smtp_port.to_string();
    let port = free_port();
    let mut server = start_with(
        dir.path(),
        port,
        &[
            ("GOTRUE_SMTP_HOST", "127.0.0.1"),
            ("GOTRUE_SMTP_PORT", &smtp_port),
        ],
    );
    let url =
        move |port: u16, path: &str| format!("http://127.0.0.1:{port}/.netlify/identity{path}");
    let signup = json!({"email": "kim@example.org", "password": "correct horse"});
    let client = reqwest::Client::new();
    let hanging = tokio::spawn({
        let (client, signup, url) = (client.clone(), signup.clone(), url(port, "/signup"));
        async move { client.post(url).json(&signup).send().await }
    });
    let db = dir.path().join("data/chipflap.db");
    for _ in 0..200 {
        if users_in(&db).await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(
        users_in(&db).await,
        1,
        "the signup committed before its mail"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    hanging.abort();

    // Act: a new process, mailing into the outbox; the same signup again, at once.
    let port = free_port();
    let _server = start_with(dir.path(), port, &[]);
    let r = client
        .post(url(port, "/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap();

    // Assert: answered as usual, and the confirmation mail went out now, with a working link.
    assert_eq!(r.status(), 200);
    let outbox = dir.path().join("data/outbox");
    let mails: Vec<_> = std::fs::read_dir(&outbox).unwrap().collect();
    assert_eq!(mails.len(), 1, "exactly one mail, sent at once");
    let path = mails.into_iter().next().unwrap().unwrap().path();
    let text =
        crate::support::sent_email::SentEmail::parse(&std::fs::read_to_string(path).unwrap()).text;
    let token: String = text
        .split("#confirmation_token=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    let r = client
        .post(url(port, "/verify"))
        .json(&json!({"type": "signup", "token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_mail_that_went_out_still_throttles_after_a_restart() {
    // The other side of the rule: a restart forgets only links that were never mailed. (A
    // second signup for an unconfirmed address always mails its own link, so the throttled
    // mail here is a recovery link.)
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let url = |port: u16, path: &str| format!("http://127.0.0.1:{port}/.netlify/identity{path}");
    let outbox = |n: usize| {
        let dir = dir.path().join("data/outbox");
        async move {
            for _ in 0..200 {
                if std::fs::read_dir(&dir).map_or(0, |d| d.count()) >= n {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            panic!("expected {n} mails in the outbox");
        }
    };
    let signup = json!({"email": "lee@example.org", "password": "correct horse"});
    let recover = json!({"email": "lee@example.org"});
    let port = free_port();
    let server = start_with(dir.path(), port, &[]);
    let r = client
        .post(url(port, "/signup"))
        .json(&signup)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .post(url(port, "/recover"))
        .json(&recover)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    outbox(2).await;
    drop(server);

    let port = free_port();
    let _server = start_with(dir.path(), port, &[]);
    let r = client
        .post(url(port, "/recover"))
        .json(&recover)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mails = std::fs::read_dir(dir.path().join("data/outbox"))
        .unwrap()
        .count();
    assert_eq!(
        mails, 2,
        "the second recovery inside GOTRUE_SMTP_MAX_FREQUENCY mails nothing"
    );
}
