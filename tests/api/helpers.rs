//! `spawn_app()`: a real server on port 0 with its own temporary SQLite file, an in-memory
//! mailer and a hand-moved clock; plus typed helpers for every endpoint.

use std::sync::LazyLock;
use std::time::Duration;

use chipflap::clock::Clock;
use chipflap::config::Settings;
use chipflap::mail::Mailer;

use crate::support::sent_email::SentEmail;
use chipflap::services::Actor;
use chipflap::services::admin_users::{self, NewUser};
use chipflap::startup::Application;
use chipflap::state::AppState;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

/// Where every test clock starts: 2027-01-15T08:00:00Z.
pub const START: i64 = 1_800_000_000;
pub const PASSWORD: &str = "correct horse battery";
pub const OPERATOR_TOKEN: &str = "test-operator-token";

static TRACING: LazyLock<()> = LazyLock::new(|| {
    if std::env::var("TEST_LOG").is_ok() {
        chipflap::telemetry::init(chipflap::config::Environment::Test);
    }
});

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub mailer: Mailer,
    pub clock: Clock,
    /// Holds the database file; dropped (deleted) with the app.
    _dir: tempfile::TempDir,
}

pub fn test_settings(dir: &std::path::Path) -> Settings {
    let mut settings = Settings::for_tests();
    settings.database.backend = chipflap::config::DatabaseBackend::Sqlite(dir.join("chipflap.db"));
    settings.mailer.mail_dir = dir.join("outbox");
    settings
}

pub fn test_from() -> lettre::message::Mailbox {
    "chipflap <noreply@site.test>".parse().unwrap()
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, Mailer::memory(test_from())).await
}

/// A server whose settings `configure` adjusts, sending mail through `mailer`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings), mailer: Mailer) -> TestApp {
    LazyLock::force(&TRACING);
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(dir.path());
    configure(&mut settings);
    spawn_in(dir, settings, mailer).await
}

pub async fn spawn_in(dir: tempfile::TempDir, settings: Settings, mailer: Mailer) -> TestApp {
    let clock = Clock::manual(START);
    let app = Application::build(settings, mailer.clone(), clock.clone())
        .await
        .unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state().clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    TestApp {
        base,
        client,
        state,
        mailer,
        clock,
        _dir: dir,
    }
}

impl TestApp {
    /// The SQLite pool behind the app, for tests that check rows directly.
    pub fn db(&self) -> &sqlx::SqlitePool {
        self.state
            .store
            .sqlite_pool()
            .expect("these tests run on a SQLite store")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/.netlify/identity{path}", self.base)
    }

    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut r = self.client.get(self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut r = self.client.post(self.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    pub async fn put_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .put(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_signup(&self, email: &str, password: &str) -> Response {
        self.post_json(
            "/signup",
            None,
            &json!({"email": email, "password": password, "data": {"full_name": "Test User"}}),
        )
        .await
    }

    /// The password grant, form-encoded as gotrue-js sends it.
    pub async fn post_token_password(&self, email: &str, password: &str) -> Response {
        self.client
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", email),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn post_token_refresh(&self, refresh_token: &str) -> Response {
        self.client
            .post(self.url("/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn post_verify(&self, kind: &str, token: &str, password: Option<&str>) -> Response {
        let mut body = json!({"type": kind, "token": token});
        if let Some(p) = password {
            body["password"] = json!(p);
        }
        self.post_json("/verify", None, &body).await
    }

    /// Waits until work started after a response (mail, revocations) has finished.
    pub async fn settle(&self) {
        for _ in 0..500 {
            if self.state.background.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("background work did not finish");
    }

    pub async fn sent_emails(&self) -> Vec<SentEmail> {
        self.mailer
            .sent()
            .await
            .into_iter()
            .map(SentEmail::from)
            .collect()
    }

    /// Waits briefly for mail sent after the response (recovery mails go out in the background).
    pub async fn wait_for_emails(&self, n: usize) -> Vec<SentEmail> {
        for _ in 0..100 {
            let sent = self.sent_emails().await;
            if sent.len() >= n {
                return sent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("expected {n} mails, got {:?}", self.sent_emails().await);
    }

    /// The token of kind `kind` (`confirmation`, `recovery`, `invite`, `email_change`) in the
    /// newest mail to `to`, after checking the link points at our site.
    pub async fn token_in_last_email(&self, to: &str, kind: &str) -> String {
        let sent = self.sent_emails().await;
        let mail = sent
            .iter()
            .rev()
            .find(|m| m.to.contains(to))
            .unwrap_or_else(|| panic!("no mail to {to} in {sent:?}"));
        link_token(&mail.text, kind)
    }

    /// Signs up, confirms through the mailed link, and answers the token response.
    pub async fn confirmed_user(&self, email: &str) -> Value {
        assert_eq!(self.post_signup(email, PASSWORD).await.status(), 200);
        let token = self.token_in_last_email(email, "confirmation").await;
        let r = self.post_verify("signup", &token, None).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// A confirmed user whose role column is the admin group, and their token response.
    pub async fn admin_user(&self, email: &str) -> Value {
        admin_users::create_user(
            &self.state,
            &Actor::command_line(),
            NewUser {
                aud: String::new(),
                email: email.into(),
                password: Some(PASSWORD.into()),
                confirm: true,
                role: Some("admin".into()),
                ..NewUser::default()
            },
        )
        .await
        .unwrap();
        let r = self.post_token_password(email, PASSWORD).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn user_id(&self, access_token: &str) -> String {
        let r = self.get("/user", Some(access_token)).await;
        assert_eq!(r.status(), 200);
        let user: Value = r.json().await.unwrap();
        user["id"].as_str().unwrap().to_owned()
    }

    /// Rows in a table, read straight from the store (for "nothing was written" checks).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = format!("select count(*) from {table}");
        sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .fetch_one(self.db())
            .await
            .unwrap()
    }
}

/// Finds `#<kind>_token=<token>` in a mail body and checks the link starts at our site.
pub fn link_token(text: &str, kind: &str) -> String {
    let finder = linkify::LinkFinder::new();
    let marker = format!("#{kind}_token=");
    let link = finder
        .links(text)
        .map(|l| l.as_str().to_owned())
        .find(|l| l.contains(&marker))
        .unwrap_or_else(|| panic!("no {kind} link in {text}"));
    assert!(
        link.starts_with("http://site.test/#"),
        "link {link} is not on the site"
    );
    link.split(&marker).nth(1).unwrap().to_owned()
}

/// Asserts GoTrue's `{code, msg}` body with this status and message.
pub async fn assert_gotrue_error(response: Response, status: u16, msg: &str) {
    assert_eq!(response.status(), StatusCode::from_u16(status).unwrap());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"code": status, "msg": msg}));
}

/// Asserts `/token`'s OAuth error body.
pub async fn assert_oauth_error(response: Response, error: &str, description: &str) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": error, "error_description": description})
    );
}

/// Runs `change` inside a write transaction and `during` at once: the transaction holds the
/// write lock first, `during` starts (reading whatever it reads before the lock) and waits
/// for it, then `change` commits. For rules of the form "a change committed while X waited
/// wins".
pub async fn committed_while<T>(
    app: &TestApp,
    change: impl AsyncFnOnce(&mut sqlx::SqliteConnection),
    during: impl std::future::Future<Output = T>,
) -> T {
    let mut tx = chipflap::db::begin_write(app.db(), &app.state.write_epoch)
        .await
        .unwrap();
    change(&mut tx).await;
    let (_, out) = tokio::join!(
        async {
            // Long enough for `during` to read what it reads before it waits for the lock.
            tokio::time::sleep(Duration::from_millis(100)).await;
            tx.commit().await.unwrap();
        },
        during
    );
    out
}
