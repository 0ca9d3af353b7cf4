//! Rule: one account per mailbox. Every spelling of an address (Unicode case, normalization,
//! `xn--` domains) is the same mailbox, on every path, and old databases migrate without merging.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app, spawn_app_with, spawn_in, test_from,
    test_settings,
};
use chipflap::clock::Clock;
use chipflap::mail::Mailer;

/// Accounts whose stored address has this mailbox key, in any audience.
async fn accounts_of(app: &TestApp, email: &str) -> Vec<(String, String)> {
    let key = chipflap::domain::email_address::mailbox_key(email);
    sqlx::query_as("select aud, email from users where email_key = ? order by created_at")
        .bind(key)
        .fetch_all(app.db())
        .await
        .unwrap()
}

async fn ban_by_role(app: &TestApp, id: &str) {
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": ["banned"]}}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn twenty_concurrent_signups_of_one_mailbox_leave_one_account() {
    // Sixty signups from one IP: lift the per-IP throttle, which has its own tests.
    let app = spawn_app_with(
        |s| s.rate_limits.otp.burst = 1000,
        Mailer::memory(test_from()),
    )
    .await;
    let groups: [&[&str]; 3] = [
        &[
            "Ääkkönen@example.test",
            "ääkkönen@example.test",
            "ÄÄKKÖNEN@EXAMPLE.TEST",
            // Decomposed: A + U+0308 COMBINING DIAERESIS.
            "A\u{308}a\u{308}kko\u{308}nen@example.test",
            "ääKKönen@Example.Test",
        ],
        &[
            "d@exämple.test",
            "d@EXÄMPLE.test",
            "D@xn--exmple-cua.test",
            "d@EXA\u{308}MPLE.TEST",
        ],
        &[
            "straße@example.test",
            "STRASSE@example.test",
            "strasse@example.test",
            "Straße@EXAMPLE.test",
        ],
    ];
    let app = &app;
    for variants in groups {
        let signups = (0..20).map(|i| {
            let body = json!({"email": variants[i % variants.len()], "password": PASSWORD});
            async move { app.post_json("/signup", None, &body).await }
        });
        for r in futures_util::future::join_all(signups).await {
            assert_eq!(r.status(), 200, "every answer looks like a fresh signup");
        }
        let accounts = accounts_of(app, variants[0]).await;
        assert_eq!(accounts.len(), 1, "{variants:?}: {accounts:?}");
        assert!(
            variants.contains(&accounts[0].1.as_str()),
            "the address keeps one user's spelling"
        );
    }
    assert_eq!(app.count("users").await, 3);
}

#[tokio::test]
async fn every_spelling_logs_in_recovers_and_is_found() {
    let app = spawn_app().await;
    app.confirmed_user("Ääkkönen@example.test").await;

    for spelling in [
        "Ääkkönen@example.test",
        "ääkkönen@example.test",
        "ÄÄKKÖNEN@EXAMPLE.TEST",
        " A\u{308}A\u{308}KKO\u{308}NEN@example.test ",
    ] {
        let r = app.post_token_password(spelling, PASSWORD).await;
        assert_eq!(r.status(), 200, "login as {spelling:?}");
    }

    // Recovery by another spelling mails the account, at the address it was created with.
    let before = app.sent_emails().await.len();
    let r = app
        .post_json("/recover", None, &json!({"email": "ÄÄKKÖNEN@example.TEST"}))
        .await;
    assert_eq!(r.status(), 200);
    let sent = app.wait_for_emails(before + 1).await;
    assert!(
        sent.last().unwrap().to.contains("Ääkkönen@example.test"),
        "{:?}",
        sent.last()
    );

    // The admin list's filter and the console's search find it by any spelling or part.
    for filter in [
        "ÄÄKKÖNEN",
        "ääkk",
        "Ääkkönen@EXAMPLE.test",
        "A\u{308}A\u{308}KK",
    ] {
        let encoded: String = url::form_urlencoded::byte_serialize(filter.as_bytes()).collect();
        let r = app
            .get(
                &format!("/admin/users?filter={encoded}"),
                Some(OPERATOR_TOKEN),
            )
            .await;
        assert_eq!(r.headers()["x-total-count"], "1", "filter {filter:?}");
        let list: Value = r.json().await.unwrap();
        assert_eq!(list["users"][0]["email"], "Ääkkönen@example.test");
    }
    let html = console_search(&app, "ÄÄKKÖNEN@EXAMPLE").await;
    assert!(html.contains("Ääkkönen@example.test"), "{html}");
}

/// Logs the test client into the console as a fresh admin and answers the users page for `q`.
async fn console_search(app: &TestApp, q: &str) -> String {
    app.admin_user("boss@example.org").await;
    let login = format!("{}/console/login", app.base);
    let html = app
        .client
        .get(&login)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let csrf = html[start..].split('"').next().unwrap().to_owned();
    let r = app
        .client
        .post(&login)
        .form(&[
            ("email", "BOSS@example.org"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "console login by another spelling");
    let url = format!("{}/console/users", app.base);
    let r = app
        .client
        .get(&url)
        .query(&[("q", q)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

#[tokio::test]
async fn a_banned_mailbox_cannot_come_back_through_another_spelling() {
    let app = spawn_app().await;
    let tokens = app.confirmed_user("Ääkkönen@example.test").await;
    let id = app.user_id(tokens["access_token"].as_str().unwrap()).await;
    ban_by_role(&app, &id).await;

    // Signup: answers like a fresh signup, creates nothing.
    let r = app.post_signup("ÄÄKKÖNEN@EXAMPLE.TEST", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(accounts_of(&app, "ääkkönen@example.test").await.len(), 1);
    // Login by another spelling reaches the banned account.
    let r = app
        .post_token_password("ääkkönen@example.test", PASSWORD)
        .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error_description"], "User is banned");
    // Admin create and invite refuse the taken mailbox.
    let r = app
        .post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "A\u{308}A\u{308}KKO\u{308}NEN@example.test", "password": PASSWORD, "confirm": true}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let r = app
        .post_json(
            "/invite",
            Some(OPERATOR_TOKEN),
            &json!({"email": "ääkkönen@EXAMPLE.test"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(accounts_of(&app, "ääkkönen@example.test").await.len(), 1);

    // Another account cannot take the mailbox by an admin edit or an email change.
    let other = app.confirmed_user("other@example.test").await;
    let other_token = other["access_token"].as_str().unwrap();
    let other_id = app.user_id(other_token).await;
    let r = app
        .put_json(
            &format!("/admin/users/{other_id}"),
            OPERATOR_TOKEN,
            &json!({"email": "ÄÄKKÖNEN@example.test"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let _ = app
        .put_json(
            "/user",
            other_token,
            &json!({"email": "ääkkönen@example.test"}),
        )
        .await;
    let accounts = accounts_of(&app, "ääkkönen@example.test").await;
    assert_eq!(
        accounts,
        vec![(String::new(), "Ääkkönen@example.test".into())]
    );
}

#[tokio::test]
async fn an_email_change_loses_to_an_account_created_meanwhile() {
    let app = spawn_app().await;
    let tokens = app.confirmed_user("mover@example.test").await;
    let token = tokens["access_token"].as_str().unwrap();
    let r = app
        .put_json("/user", token, &json!({"email": "Ääkkönen@example.test"}))
        .await;
    assert_eq!(r.status(), 200);
    let change = app
        .token_in_last_email("Ääkkönen@example.test", "email_change")
        .await;
    // Someone else signs up with another spelling of the same mailbox before it is applied.
    app.confirmed_user("ÄÄKKÖNEN@EXAMPLE.TEST").await;
    let r = app
        .put_json("/user", token, &json!({"email_change_token": change}))
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(accounts_of(&app, "ääkkönen@example.test").await.len(), 1);
    assert_eq!(accounts_of(&app, "mover@example.test").await.len(), 1);
}

#[tokio::test]
async fn an_address_keeps_its_spelling_and_can_be_respelled_by_its_owner() {
    let app = spawn_app().await;
    let tokens = app.confirmed_user("ääkkönen@example.test").await;
    let id = app.user_id(tokens["access_token"].as_str().unwrap()).await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"email": "Ääkkönen@Example.test"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let user: Value = r.json().await.unwrap();
    assert_eq!(user["email"], "Ääkkönen@Example.test");
    let r = app
        .post_token_password("ÄÄKKÖNEN@example.test", PASSWORD)
        .await;
    assert_eq!(r.status(), 200);
}

/// A database written without the mailbox-key migration, holding `rows` (id, aud, email).
async fn old_database(dir: &std::path::Path, later_too: bool, rows: &[(&str, &str, &str)]) {
    let settings = test_settings(dir);
    let pool = chipflap::db::connect_pool(settings.database.sqlite_path().unwrap())
        .await
        .unwrap();
    // Migrations as files: sqlx records them exactly as the server's embedded copies, so the
    // server later applies only the missing ones.
    let old_dir = dir.join("old-migrations");
    std::fs::create_dir_all(&old_dir).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(all).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // The migrations before this rule's (a database from before it), or with `later_too`
        // every other one (a build that had the later migrations: sqlx applies 6 afterwards).
        let version = name.split('_').next().unwrap_or("");
        // Issue 10's migrations (20261201000030 on) index `email_key`, so no build applied
        // them without 6: they stay out of both.
        let wanted = if later_too {
            version != "20261130000006" && version < "20261201000030"
        } else {
            version < "20261130000006"
        };
        if name.ends_with(".sql") && wanted {
            std::fs::copy(&path, old_dir.join(&name)).unwrap();
        }
    }
    let old = sqlx::migrate::Migrator::new(old_dir.as_path())
        .await
        .unwrap();
    assert!(old.iter().all(|m| m.version != 20261130000006));
    old.run(&pool).await.unwrap();
    for (i, (id, aud, email)) in rows.iter().enumerate() {
        let at = 1_700_000_000 + i64::try_from(i).unwrap();
        sqlx::query(
            "insert into users (id, aud, email, password_hash, confirmed_at, created_at, updated_at)
             values (?, ?, ?, null, ?, ?, ?)",
        )
        .bind(id)
        .bind(aud)
        .bind(email)
        .bind(at)
        .bind(at)
        .bind(at)
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;
}

const A1: &str = "00000000-0000-4000-8000-00000000000a";
const A2: &str = "00000000-0000-4000-8000-00000000000b";
const B1: &str = "00000000-0000-4000-8000-00000000000c";
const B2: &str = "00000000-0000-4000-8000-00000000000d";
const C1: &str = "00000000-0000-4000-8000-00000000000e";

#[tokio::test]
async fn an_old_database_with_colliding_accounts_stops_the_start_and_names_them() {
    colliding_accounts_stop_the_start(false).await;
}

#[tokio::test]
async fn a_database_with_later_migrations_but_no_keys_is_checked_the_same_way() {
    colliding_accounts_stop_the_start(true).await;
}

async fn colliding_accounts_stop_the_start(later_too: bool) {
    let dir = tempfile::tempdir().unwrap();
    // COLLATE NOCASE let these in: they differ only outside ASCII.
    old_database(
        dir.path(),
        later_too,
        &[
            (A1, "", "Ääkkönen@example.test"),
            (A2, "", "ääkkönen@example.test"),
            (B1, "shop", "d@exämple.test"),
            (B2, "shop", "d@EXÄMPLE.test"),
            (C1, "", "ada@example.test"),
        ],
    )
    .await;

    let settings = test_settings(dir.path());
    let err = chipflap::startup::Application::build(
        settings.clone(),
        Mailer::memory(test_from()),
        Clock::manual(crate::helpers::START),
    )
    .await
    .err()
    .expect("the start must stop");
    let report = format!("{err:#}");
    for needle in [
        A1,
        A2,
        B1,
        B2,
        "\"Ääkkönen@example.test\"",
        "\"ääkkönen@example.test\"",
        "\"d@exämple.test\"",
        "\"d@EXÄMPLE.test\"",
        "audience \"shop\"",
        "audience \"\"",
        "2 group(s)",
        "never merges",
        "delete from users where id",
    ] {
        assert!(
            report.contains(needle),
            "{needle:?} missing from:\n{report}"
        );
    }
    assert!(!report.contains(C1), "only colliding accounts are listed");

    // Nothing was merged or keyed; `chipflap migrate` reports the same and fails.
    let pool = chipflap::db::connect_pool(settings.database.sqlite_path().unwrap())
        .await
        .unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("select id, email_key from users order by id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|(_, key)| key.is_none()), "{rows:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chipflap"))
        .arg("migrate")
        .current_dir(dir.path())
        .env_clear()
        .env(
            "DATABASE_URL",
            format!(
                "sqlite://{}",
                settings.database.sqlite_path().unwrap().display()
            ),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(A1) && stderr.contains(B2), "{stderr}");

    // The operator resolves each group as the report says; then the start goes through.
    sqlx::query("delete from users where id = ?")
        .bind(A2)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("update users set email = 'd2@example.test' where id = ?")
        .bind(B2)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let app = spawn_in(dir, settings, Mailer::memory(test_from())).await;
    let keys: Vec<(String, Option<String>)> =
        sqlx::query_as("select id, email_key from users order by id")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert_eq!(
        keys,
        vec![
            (A1.to_owned(), Some("ääkkönen@example.test".to_owned())),
            (B1.to_owned(), Some("d@exämple.test".to_owned())),
            (B2.to_owned(), Some("d2@example.test".to_owned())),
            (C1.to_owned(), Some("ada@example.test".to_owned())),
        ]
    );
    // The migrated account is found by any spelling, and its mailbox stays taken.
    let r = app
        .get("/admin/users?filter=%C3%84%C3%84KK", Some(OPERATOR_TOKEN))
        .await;
    assert_eq!(r.headers()["x-total-count"], "1");
    let r = app
        .post_json(
            "/admin/users",
            Some(OPERATOR_TOKEN),
            &json!({"email": "ÄÄKKÖNEN@example.test"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[test]
fn the_command_line_finds_an_account_by_any_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_chipflap"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("CHIPFLAP_ARGON2_MEMORY_KIB", "64")
            .env("CHIPFLAP_ARGON2_ITERATIONS", "1")
            .output()
            .unwrap()
    };
    let out = run(&["users", "add", "--email", "Ääkkönen@example.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["users", "add", "--email", "ÄÄKKÖNEN@EXAMPLE.TEST"]);
    assert!(!out.status.success(), "a second account for the mailbox");
    let out = run(&["users", "ban", "ääkkönen@example.test"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "banned Ääkkönen@example.test"
    );
    let out = run(&[
        "users",
        "unban",
        "A\u{308}A\u{308}KKO\u{308}NEN@example.test",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
