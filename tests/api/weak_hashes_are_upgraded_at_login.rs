//! Rule: a password hash made with a lower cost than the configured one is replaced, at the next
//! successful password check, by a hash with the configured cost; a wrong password changes
//! nothing and costs no second argon2 run.

use chipflap::mail::Mailer;

use crate::console::console_login;
use crate::helpers::{PASSWORD, TestApp, spawn_app_with, test_from};

/// A server over the database file in `dir`, hashing with `memory_kib` and `iterations`.
async fn server(dir: &std::path::Path, memory_kib: u32, iterations: u32) -> TestApp {
    let db = dir.join("shared.db");
    spawn_app_with(
        move |s| {
            s.database.backend = chipflap::config::DatabaseBackend::Sqlite(db);
            s.hashing.memory_kib = memory_kib;
            s.hashing.iterations = iterations;
        },
        Mailer::memory(test_from()),
    )
    .await
}

async fn stored_hash(app: &TestApp, email: &str) -> String {
    sqlx::query_scalar::<_, String>("select password_hash from users where email = ?")
        .bind(email)
        .fetch_one(app.db())
        .await
        .unwrap()
}

#[tokio::test]
async fn weak_hashes_are_upgraded_at_the_next_successful_login_after_a_cost_change() {
    let dir = tempfile::tempdir().unwrap();
    // Arrange: the account is made while the cost is low.
    let cheap = server(dir.path(), 8, 1).await;
    cheap.confirmed_user("ada@example.org").await;
    cheap.admin_user("boss@example.org").await;
    assert!(
        stored_hash(&cheap, "ada@example.org")
            .await
            .contains("$m=8,t=1,p=1$")
    );
    drop(cheap);

    // The operator raises the cost and restarts.
    let app = server(dir.path(), 64, 2).await;

    // A wrong password: one argon2 run, nothing stored.
    let before = app.state.hasher.evaluations();
    let r = app
        .post_token_password("ada@example.org", "wrong password 1")
        .await;
    assert_eq!(r.status(), 400);
    assert_eq!(app.state.hasher.evaluations() - before, 1);
    assert!(
        stored_hash(&app, "ada@example.org")
            .await
            .contains("$m=8,t=1,p=1$")
    );

    // The right one: verified, re-hashed once with the configured cost, stored.
    let before = app.state.hasher.evaluations();
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(app.state.hasher.evaluations() - before, 2);
    let upgraded = stored_hash(&app, "ada@example.org").await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=64,t=2,p=1$"),
        "{upgraded}"
    );

    // The new hash works, and a hash at the configured cost is left alone.
    let before = app.state.hasher.evaluations();
    assert_eq!(
        app.post_token_password("ada@example.org", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(app.state.hasher.evaluations() - before, 1);
    assert_eq!(stored_hash(&app, "ada@example.org").await, upgraded);

    // The console login shares the check, so it upgrades too.
    assert_eq!(
        console_login(&app, "boss@example.org", PASSWORD)
            .await
            .status(),
        303
    );
    assert!(
        stored_hash(&app, "boss@example.org")
            .await
            .starts_with("$argon2id$v=19$m=64,t=2,p=1$")
    );
}
