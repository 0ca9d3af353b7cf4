//! Rule: when every password-hashing thread is busy and `CHIPFLAP_HASH_QUEUE` jobs already
//! wait, a request that needs argon2 is refused at once with 503 and `Retry-After: 1` in its
//! endpoint's shape; the refusal checks no password, is not audited as a failed login and
//! writes nothing: no throttle counts it (password or IP), so a login flood costs the store
//! nothing. Every other request gets its normal answer.

use chipflap::auth::password_hasher::BUSY;
use chipflap::mail::Mailer;
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app_with, test_from};

/// Requests fired at once: more than one thread and one queued job can take, and below the
/// per-IP throttles' bursts (30), so nothing here is a 429.
const AT_ONCE: usize = 16;

/// One hashing thread, one waiting job, and a cost high enough (16 MiB, 4 passes) that the
/// other requests arrive while the first hash still runs.
async fn one_slow_hashing_thread() -> TestApp {
    spawn_app_with(
        |s| {
            s.hashing.concurrency = 1;
            s.hashing.queue = 1;
            s.hashing.memory_kib = 16 * 1024;
            s.hashing.iterations = 4;
        },
        Mailer::memory(test_from()),
    )
    .await
}

/// The status, and for a 503 checks its `Retry-After`, GoTrue body and `Connection: close` (a
/// refused client gives its place under `CHIPFLAP_MAX_CONNECTIONS` to the next one).
async fn status_checking_busy_shape(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let connection = r
        .headers()
        .get("connection")
        .map(|v| v.to_str().unwrap().to_ascii_lowercase());
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap();
    if status == 503 {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(connection.as_deref(), Some("close"));
        assert_eq!(
            body,
            json!({"code": 503, "msg": BUSY}),
            "no error_id, no internals"
        );
    }
    (status, body)
}

async fn failed_logins_audited(app: &TestApp) -> usize {
    let r = app
        .get(
            "/admin/audit?query=action:login_failed",
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>().await.unwrap().len()
}

#[tokio::test]
async fn password_grants_beyond_the_hashing_queue_get_503_and_write_nothing() {
    let app = one_slow_hashing_thread().await;
    let app = &app;
    let before = app.state.hasher.evaluations();
    let guesses = (0..AT_ONCE).map(|i| async move {
        let email = format!("guess{i}@example.org");
        let r = app.post_token_password(&email, "wrong password 1").await;
        (email, status_checking_busy_shape(r).await)
    });
    let answers = futures_util::future::join_all(guesses).await;

    let busy: Vec<&String> = answers
        .iter()
        .filter(|(_, (s, _))| *s == 503)
        .map(|(e, _)| e)
        .collect();
    let checked = answers.iter().filter(|(_, (s, _))| *s == 400).count();
    assert!(!busy.is_empty(), "the queue overflowed: {answers:?}");
    assert_eq!(
        checked + busy.len(),
        AT_ONCE,
        "only 400 or 503: {answers:?}"
    );
    for (_, (status, body)) in &answers {
        if *status == 400 {
            assert_eq!(body["error"], "invalid_grant");
        }
    }
    assert_eq!(
        app.state.hasher.evaluations() - before,
        checked as u64,
        "a refused guess ran no argon2"
    );
    assert_eq!(
        failed_logins_audited(app).await,
        checked,
        "a refused guess is no failed login"
    );

    // Only the checked guesses were counted: one password-throttle row each, and as many
    // emissions on the IP's /token throttle (the manual clock stands still, so its TAT is
    // now + counted × interval).
    let password_rows: i64 =
        sqlx::query_scalar("select count(*) from throttles where key like 'password:%'")
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!(
        password_rows, checked as i64,
        "a busy guess wrote a throttle"
    );
    let ip_tat: i64 =
        sqlx::query_scalar("select tat_ms from throttles where key like 'ip.token:%'")
            .fetch_one(app.db())
            .await
            .unwrap();
    let interval =
        i64::try_from(app.state.settings.rate_limits.token.interval.as_millis()).unwrap();
    assert_eq!(
        (ip_tat - app.state.clock.now_millis()) / interval,
        checked as i64,
        "a busy guess counted against the IP"
    );

    // The refused address still has its whole password burst: it was never counted.
    let refused = busy[0];
    let burst = app.state.settings.rate_limits.password.burst;
    for _ in 0..burst {
        let r = app.post_token_password(refused, "wrong password 2").await;
        assert_eq!(r.status(), 400, "not throttled");
    }
}

#[tokio::test]
async fn signups_beyond_the_hashing_queue_get_503_and_create_nothing() {
    let app = one_slow_hashing_thread().await;
    let app = &app;
    let signups = (0..AT_ONCE).map(|i| async move {
        let r = app
            .post_signup(&format!("new{i}@example.org"), PASSWORD)
            .await;
        status_checking_busy_shape(r).await
    });
    let answers = futures_util::future::join_all(signups).await;
    let busy = answers.iter().filter(|(s, _)| *s == 503).count();
    let created = answers.iter().filter(|(s, _)| *s == 200).count();
    assert!(busy > 0, "the queue overflowed: {answers:?}");
    assert_eq!(created + busy, AT_ONCE, "only 200 or 503: {answers:?}");
    assert_eq!(app.count("users").await, created as i64);
}
