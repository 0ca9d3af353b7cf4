//! Rule: token minting never fails for a busy user. Every access token names its session, so
//! tokens are distinct without probing the store, and any number of logins and refreshes of
//! one user within one second succeed (the clock below never moves).

use std::collections::HashSet;

use std::time::Duration;

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, test_from};
use crate::support::sessions::{claims, read_login};
use chipflap::config::Rate;
use chipflap::mail::Mailer;

/// A server whose throttles let a busy user through: this rule is about minting, and the
/// throttles have their own tests.
async fn spawn_app() -> TestApp {
    spawn_app_with(
        |s| {
            let generous = Rate {
                burst: 10_000,
                interval: Duration::from_millis(1),
            };
            s.rate_limits.token = generous;
            s.rate_limits.password = generous;
        },
        Mailer::memory(test_from()),
    )
    .await
}

#[tokio::test]
async fn a_hundred_logins_and_a_hundred_refreshes_in_one_second_all_succeed() {
    let app = spawn_app().await;
    app.confirmed_user("busy@example.org").await;
    let now = app.clock.now().unix();

    // 100 logins, 20 at a time, in the same second.
    let mut logins = Vec::new();
    for _ in 0..5 {
        let batch = (0..20).map(|_| app.post_token_password("busy@example.org", PASSWORD));
        for r in futures_util::future::join_all(batch).await {
            logins.push(read_login(r).await);
        }
    }
    assert_eq!(
        app.clock.now().unix(),
        now,
        "one second of the manual clock"
    );
    let sessions: HashSet<_> = logins.iter().map(|l| l.session_id.clone()).collect();
    let tokens: HashSet<_> = logins.iter().map(|l| l.access_token.clone()).collect();
    assert_eq!(sessions.len(), 100, "a session per login");
    assert_eq!(tokens.len(), 100, "distinct access tokens");
    for l in &logins {
        assert_eq!(
            claims(&l.access_token)["exp"],
            now + 3600,
            "exp is never nudged"
        );
    }

    // 100 refreshes of one session, one after the other, then one of each other session.
    let mut current = logins[0].clone();
    for _ in 0..100 {
        let next = read_login(app.post_token_refresh(&current.refresh_token).await).await;
        assert_eq!(next.session_id, current.session_id);
        assert_ne!(next.refresh_token, current.refresh_token);
        current = next;
    }
    for l in &logins[1..] {
        let next = read_login(app.post_token_refresh(&l.refresh_token).await).await;
        assert_eq!(next.session_id, l.session_id);
    }
    // Every token still opens /user: none of that ended anything.
    assert_eq!(
        app.get("/user", Some(&current.access_token)).await.status(),
        200
    );
    assert_eq!(
        app.get("/user", Some(&logins[99].access_token))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn concurrent_refreshes_of_many_sessions_all_succeed() {
    let app = spawn_app().await;
    app.confirmed_user("busy@example.org").await;
    let mut logins = Vec::new();
    for _ in 0..70 {
        logins.push(read_login(app.post_token_password("busy@example.org", PASSWORD).await).await);
    }
    let refreshes = logins
        .iter()
        .map(|l| app.post_token_refresh(&l.refresh_token));
    let answers = futures_util::future::join_all(refreshes).await;
    let mut sessions = HashSet::new();
    for r in answers {
        assert_eq!(r.status(), 200);
        sessions.insert(read_login(r).await.session_id);
    }
    assert_eq!(sessions.len(), 70);
}
