//! Rule "throttles", from the attacker's side: guessing passwords, flooding mail and
//! hammering endpoints from one or many client IPs is bounded, answered with 429 and
//! `Retry-After` in each endpoint's shape, and tells nothing about which accounts exist.

use std::time::Duration;

use chipflap::config::Settings;
use chipflap::mail::Mailer;
use chipflap::services::Actor;
use chipflap::services::admin_users::{self, NewUser};
use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app, spawn_app_with, test_from};

const PROXY_HEADER: &str = "x-forwarded-for";

/// A server that trusts `X-Forwarded-For` for the client IP, as behind a proxy.
async fn behind_a_proxy(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_with(
        |s| {
            s.rate_limits.header = Some("X-Forwarded-For".into());
            configure(s);
        },
        Mailer::memory(test_from()),
    )
    .await
}

async fn create_confirmed(app: &TestApp, email: &str) {
    admin_users::create_user(
        &app.state,
        &Actor::command_line(),
        NewUser {
            aud: String::new(),
            email: email.into(),
            password: Some(PASSWORD.into()),
            confirm: true,
            ..NewUser::default()
        },
    )
    .await
    .unwrap();
}

async fn password_grant_from(app: &TestApp, ip: &str, email: &str, password: &str) -> Response {
    app.client
        .post(app.url("/token"))
        .header(PROXY_HEADER, ip)
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

async fn post_from(app: &TestApp, ip: &str, path: &str, body: &Value) -> Response {
    app.client
        .post(app.url(path))
        .header(PROXY_HEADER, ip)
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Status, headers (all but `date`, which is wall time) and body, for comparing answers.
async fn observable(response: Response) -> (u16, Vec<(String, String)>, String) {
    let status = response.status().as_u16();
    let mut headers: Vec<(String, String)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (status, headers, response.text().await.unwrap())
}

fn retry_after(response: &Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn assert_rate_limited(response: Response) -> u64 {
    assert_eq!(response.status(), 429);
    let wait = retry_after(&response);
    assert!(wait >= 1, "Retry-After is whole seconds, at least 1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"code": 429, "msg": "Rate limit exceeded"}));
    wait
}

#[tokio::test]
async fn a_distributed_guesser_gets_at_most_ten_password_evaluations_per_five_minutes() {
    let app = behind_a_proxy(|_| {}).await;
    create_confirmed(&app, "ada@example.org").await;

    // Fifty client IPs, each guessing once a minute for ten minutes.
    let mut per_minute = Vec::new();
    for minute in 0..10 {
        let before = app.state.hasher.evaluations();
        for ip in 0..50 {
            let r = password_grant_from(
                &app,
                &format!("198.51.100.{ip}"),
                "ada@example.org",
                &format!("guess {minute}-{ip}"),
            )
            .await;
            assert!(matches!(r.status().as_u16(), 400 | 429), "{minute}/{ip}");
        }
        per_minute.push(app.state.hasher.evaluations() - before);
        app.advance(Duration::from_secs(60));
    }
    for window in per_minute.windows(5) {
        let evaluations: u64 = window.iter().sum();
        assert!(
            evaluations <= 10,
            "argon2 ran {evaluations} times in 5 minutes: {per_minute:?}"
        );
    }
    assert!(
        per_minute.iter().all(|&n| n >= 1),
        "the throttle lets some guesses through each minute, not none: {per_minute:?}"
    );
}

#[tokio::test]
async fn fifty_simultaneous_guesses_get_exactly_one_burst_of_evaluations() {
    let app = behind_a_proxy(|_| {}).await;
    create_confirmed(&app, "ada@example.org").await;
    let before = app.state.hasher.evaluations();
    let guesses = (0..50).map(|ip| {
        let app = &app;
        async move {
            password_grant_from(app, &format!("198.51.100.{ip}"), "ada@example.org", "guess")
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let burst = u64::from(app.state.settings.rate_limits.password.burst);
    assert_eq!(app.state.hasher.evaluations() - before, burst);
    assert_eq!(statuses.iter().filter(|&&s| s == 400).count() as u64, burst);
    // The rest are refused unhashed: throttled (429), or, when every place in the hashing
    // engine is taken, busy (503) before the throttle is even asked.
    assert!(
        statuses.iter().all(|&s| matches!(s, 400 | 429 | 503)),
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn throttled_answers_for_known_and_unknown_emails_are_identical() {
    let app = behind_a_proxy(|_| {}).await;
    create_confirmed(&app, "ada@example.org").await;
    let mut throttled = 0;
    for minute in 0..3 {
        for ip in 0..20 {
            let ip = format!("203.0.113.{ip}");
            let known = password_grant_from(&app, &ip, "ada@example.org", "wrong guess").await;
            let unknown = password_grant_from(&app, &ip, "nobody@example.org", "wrong guess").await;
            let (known, unknown) = (observable(known).await, observable(unknown).await);
            assert_eq!(known, unknown, "minute {minute}, {ip}");
            if known.0 == 429 {
                throttled += 1;
                assert!(known.1.iter().any(|(name, _)| name == "retry-after"));
            }
        }
        if minute < 2 {
            app.advance(Duration::from_secs(60));
        }
    }
    assert!(throttled > 0, "the guesses were throttled at some point");
    // Another spelling of the same mailbox shares the account's throttle.
    let r = password_grant_from(&app, "192.0.2.1", "  ADA@Example.org ", "wrong guess").await;
    assert_rate_limited(r).await;
}

#[tokio::test]
async fn the_owner_gets_in_once_the_window_has_passed_and_right_passwords_cost_nothing() {
    let app = behind_a_proxy(|_| {}).await;
    create_confirmed(&app, "ada@example.org").await;
    // The owner logging in often never throttles themselves.
    for _ in 0..12 {
        let r = password_grant_from(&app, "192.0.2.7", "ada@example.org", PASSWORD).await;
        assert_eq!(r.status(), 200);
    }
    // An attack fills the account's bucket; the owner is refused too, for now.
    for ip in 0..30 {
        password_grant_from(
            &app,
            &format!("198.51.100.{ip}"),
            "ada@example.org",
            "guess",
        )
        .await;
    }
    let r = password_grant_from(&app, "192.0.2.7", "ada@example.org", PASSWORD).await;
    let wait = assert_rate_limited(r).await;
    let window = app.state.settings.rate_limits.password.window().as_secs();
    assert!(
        wait <= window,
        "locked out for {wait}s, longer than the {window}s window"
    );
    // Once the attack stops, the owner is back in as soon as Retry-After says.
    app.advance(Duration::from_secs(wait));
    let r = password_grant_from(&app, "192.0.2.7", "ada@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn signups_from_one_client_ip_are_bounded_and_so_is_their_hashing() {
    let app = spawn_app().await;
    let hashes_before = app.state.hasher.evaluations();
    let mut accepted = 0;
    for i in 0..60 {
        let r = app
            .post_signup(&format!("flood{i}@example.org"), PASSWORD)
            .await;
        match r.status().as_u16() {
            200 => accepted += 1,
            _ => {
                assert_rate_limited(r).await;
            }
        }
    }
    assert_eq!(accepted, 30, "the per-IP burst of GOTRUE_RATE_LIMIT_OTP");
    assert_eq!(
        app.sent_emails().await.len(),
        30,
        "one confirmation per accepted signup"
    );
    assert_eq!(app.state.hasher.evaluations() - hashes_before, 30);
    // Five minutes later: at most one bucket's worth again.
    app.advance(Duration::from_secs(300));
    let mut again = 0;
    for i in 0..60 {
        let r = app
            .post_signup(&format!("later{i}@example.org"), PASSWORD)
            .await;
        if r.status() == 200 {
            again += 1;
        }
    }
    assert_eq!(again, 30);
}

#[tokio::test]
async fn recovery_requests_from_one_client_ip_are_bounded_without_revealing_accounts() {
    let app = behind_a_proxy(|_| {}).await;
    create_confirmed(&app, "ada@example.org").await;
    let mut answers = Vec::new();
    for i in 0..40 {
        // Alternate a known and an unknown address: the answer depends on neither.
        let email = if i % 2 == 0 {
            "ada@example.org".to_owned()
        } else {
            format!("nobody{i}@example.org")
        };
        let r = post_from(&app, "192.0.2.50", "/recover", &json!({"email": email})).await;
        answers.push(r.status().as_u16());
        if r.status() == 200 {
            assert_eq!(r.json::<Value>().await.unwrap(), json!({}));
        } else {
            assert_rate_limited(r).await;
        }
    }
    assert_eq!(answers.iter().filter(|&&s| s == 200).count(), 30);
    assert!(answers[30..].iter().all(|&s| s == 429), "{answers:?}");
    // Another client IP is not affected.
    let r = post_from(
        &app,
        "192.0.2.51",
        "/recover",
        &json!({"email": "x@example.org"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    app.settle().await;
    // GOTRUE_SMTP_MAX_FREQUENCY already allows ada one recovery mail per 15 minutes.
    let to_ada = app
        .sent_emails()
        .await
        .iter()
        .filter(|m| m.to.contains("ada@example.org"))
        .count();
    assert_eq!(to_ada, 1);
}

#[tokio::test]
async fn one_address_gets_at_most_its_hourly_mails_whoever_asks() {
    // Generous per-IP limits: this test is about the recipient's limit alone.
    let app = behind_a_proxy(|s| {
        s.rate_limits.otp.burst = 1000;
        s.rate_limits.token.burst = 1000;
    })
    .await;
    create_confirmed(&app, "taken@example.org").await;
    let limit = app.state.settings.rate_limits.email_sent.burst as usize;
    // Many accounts each ask, once, to move to the same two addresses: one free, one taken.
    for target in ["free@example.org", "taken@example.org"] {
        for i in 0..limit + 5 {
            let email = format!("mover{i}.{target}");
            create_confirmed(&app, &email).await;
            let ip = format!("198.51.100.{i}");
            let token: Value = password_grant_from(&app, &ip, &email, PASSWORD)
                .await
                .json()
                .await
                .unwrap();
            let r = app
                .client
                .put(app.url("/user"))
                .header(PROXY_HEADER, ip)
                .bearer_auth(token["access_token"].as_str().unwrap())
                .json(&json!({"email": target}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "answered as usual, mail or not");
        }
    }
    // Signups and recoveries for the taken address count against the same limit.
    post_from(
        &app,
        "192.0.2.9",
        "/recover",
        &json!({"email": "taken@example.org"}),
    )
    .await;
    app.post_signup("taken@example.org", PASSWORD).await;
    app.settle().await;
    let sent = app.sent_emails().await;
    for target in ["free@example.org", "taken@example.org"] {
        // Exactly the address: each mover's own address (mover0.free@…) gets a change notice.
        let count = sent.iter().filter(|m| m.to == target).count();
        assert_eq!(count, limit, "{target} got {count} mails");
    }
    // An hour later the address can be mailed again.
    app.advance(Duration::from_secs(3600));
    post_from(
        &app,
        "192.0.2.9",
        "/recover",
        &json!({"email": "taken@example.org"}),
    )
    .await;
    app.settle().await;
    let to_taken = app
        .sent_emails()
        .await
        .iter()
        .filter(|m| m.to == "taken@example.org")
        .count();
    assert_eq!(to_taken, limit + 1);
}

#[tokio::test]
async fn token_refreshes_from_one_client_ip_are_bounded() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for i in 0..31 {
        let r = app.post_token_refresh(&format!("not-a-token-{i}")).await;
        statuses.push(r.status().as_u16());
        if i == 30 {
            let wait = assert_rate_limited(r).await;
            assert_eq!(wait, 2, "GOTRUE_RATE_LIMIT_TOKEN_REFRESH=150 per 5 minutes");
        }
    }
    assert!(statuses[..30].iter().all(|&s| s == 400), "{statuses:?}");
    app.advance(Duration::from_secs(2));
    assert_eq!(
        app.post_token_refresh("still-not-a-token").await.status(),
        400
    );
    assert_eq!(
        app.post_token_refresh("still-not-a-token").await.status(),
        429
    );
}

#[tokio::test]
async fn verify_attempts_from_one_client_ip_are_bounded() {
    let app = spawn_app().await;
    for i in 0..30 {
        let r = app.post_verify("signup", &format!("guess-{i}"), None).await;
        assert_ne!(r.status(), 429, "attempt {i}");
    }
    let wait = assert_rate_limited(app.post_verify("signup", "guess", None).await).await;
    assert_eq!(wait, 10, "GOTRUE_RATE_LIMIT_VERIFY=30 per 5 minutes");
    app.advance(Duration::from_secs(10));
    assert_ne!(app.post_verify("signup", "guess", None).await.status(), 429);
}

#[tokio::test]
async fn the_client_ip_header_is_trusted_only_when_configured() {
    // Without GOTRUE_RATE_LIMIT_HEADER, a forged header does not buy a fresh bucket.
    let app = spawn_app().await;
    for i in 0..30 {
        let r = post_from(
            &app,
            &format!("10.0.0.{i}"),
            "/verify",
            &json!({"type": "signup", "token": "x"}),
        )
        .await;
        assert_ne!(r.status(), 429);
    }
    let r = post_from(
        &app,
        "10.0.1.1",
        "/verify",
        &json!({"type": "signup", "token": "x"}),
    )
    .await;
    assert_rate_limited(r).await;
    // With it, each proxied client has its own bucket, keyed by the header's first value.
    let app = behind_a_proxy(|_| {}).await;
    for _ in 0..30 {
        post_from(
            &app,
            "10.0.0.1, 127.0.0.1",
            "/verify",
            &json!({"type": "signup", "token": "x"}),
        )
        .await;
    }
    let r = post_from(
        &app,
        "10.0.0.1",
        "/verify",
        &json!({"type": "signup", "token": "x"}),
    )
    .await;
    assert_rate_limited(r).await;
    let r = post_from(
        &app,
        "10.0.0.2",
        "/verify",
        &json!({"type": "signup", "token": "x"}),
    )
    .await;
    assert_ne!(r.status(), 429);
}

#[tokio::test]
async fn invites_and_email_changes_from_one_client_ip_are_bounded() {
    let app = spawn_app().await;
    for i in 0..30 {
        let r = app
            .post_json(
                "/invite",
                Some(crate::helpers::OPERATOR_TOKEN),
                &json!({"email": format!("invitee{i}@example.org")}),
            )
            .await;
        assert_eq!(r.status(), 200, "invite {i}");
    }
    let r = app
        .post_json(
            "/invite",
            Some(crate::helpers::OPERATOR_TOKEN),
            &json!({"email": "one-more@example.org"}),
        )
        .await;
    assert_rate_limited(r).await;

    let ada = app.confirmed_user("ada@example.org").await;
    let token = ada["access_token"].as_str().unwrap();
    // Metadata updates are not email changes and are not limited by it.
    for _ in 0..40 {
        let r = app
            .put_json("/user", token, &json!({"data": {"x": 1}}))
            .await;
        assert_eq!(r.status(), 200);
    }
    let r = app
        .put_json("/user", token, &json!({"email": "ada@new.example"}))
        .await;
    assert_eq!(r.status(), 200);
    // The user's own mail throttle (GOTRUE_SMTP_MAX_FREQUENCY) now applies to email changes.
    let r = app
        .put_json("/user", token, &json!({"email": "ada@other.example"}))
        .await;
    let wait = assert_rate_limited(r).await;
    assert_eq!(wait, 900);
    app.advance(Duration::from_secs(900));
    let r = app
        .put_json("/user", token, &json!({"email": "ada@other.example"}))
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn expired_counters_do_not_pile_up_in_the_store() {
    let app = behind_a_proxy(|_| {}).await;
    for ip in 0..40 {
        post_from(
            &app,
            &format!("198.51.100.{ip}"),
            "/verify",
            &json!({"type": "signup", "token": "x"}),
        )
        .await;
    }
    assert_eq!(app.count("throttles").await, 40);
    // Every counter is back to empty after its window; new keys sweep them away.
    app.advance(Duration::from_secs(3600));
    for ip in 0..3 {
        post_from(
            &app,
            &format!("192.0.2.{ip}"),
            "/verify",
            &json!({"type": "signup", "token": "x"}),
        )
        .await;
    }
    assert_eq!(app.count("throttles").await, 3);
}

/// A limit faster than one request a second (an operator raised it) refills to the millisecond:
/// counting in whole seconds would refuse the second of two requests 300 ms apart under a
/// limit of one per 250 ms, whenever both fall in the same second.
#[tokio::test]
async fn throttles_refill_to_the_millisecond() {
    let app = spawn_app_with(
        |s| {
            s.rate_limits.token = chipflap::config::Rate {
                burst: 1,
                interval: Duration::from_millis(250),
            }
        },
        Mailer::memory(test_from()),
    )
    .await;
    for i in 0..8 {
        assert_eq!(
            app.post_token_refresh(&format!("not-a-token-{i}"))
                .await
                .status(),
            400,
            "request {i}, 300 ms after the one before"
        );
        app.advance(Duration::from_millis(300));
    }
    // Two at the same instant: the second is over the limit.
    assert_eq!(app.post_token_refresh("a").await.status(), 400);
    assert_eq!(app.post_token_refresh("b").await.status(), 429);
}
