//! Rule: the refresh grant reads the presented token before it waits for the write lock, but
//! what it answers is decided on the rows as they are once it holds the lock. A ban, a logout
//! or another tab's refresh committed in between wins; nothing is rotated for a refused
//! request, and a request the throttle refuses rotates nothing either.

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{TestApp, committed_while, spawn_app};
use chipflap::domain::session::EndReason;
use chipflap::services::token::{INVALID_REFRESH_TOKEN, TokenError, TokenResponse, refresh_grant};

const CLIENT: &str = "192.0.2.7";

async fn signed_in(app: &TestApp) -> (Uuid, Uuid, String) {
    let tokens: Value = app.confirmed_user("ada@example.org").await;
    let access = tokens["access_token"].as_str().unwrap();
    let user: Uuid = app.user_id(access).await.parse().unwrap();
    let session: String = sqlx::query_scalar("select id from sessions where user_id = ?")
        .bind(user.to_string())
        .fetch_one(app.db())
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    (user, session.parse().unwrap(), refresh)
}

fn refused_with(result: Result<TokenResponse, TokenError>) -> &'static str {
    match result {
        Err(TokenError::InvalidGrant(description)) => description,
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn a_ban_committed_while_a_refresh_waits_refuses_it_and_rotates_nothing() {
    let app = spawn_app().await;
    let (user, session, refresh) = signed_in(&app).await;
    let tokens_before = app.count("refresh_tokens").await;
    let now = app.state.clock.now();
    let result = committed_while(
        &app,
        async |tx| {
            sqlx::query("update users set banned_until = ? where id = ?")
                .bind(now.unix() + 3600)
                .bind(user.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
            chipflap::db::sessions::end_session(tx, session, EndReason::Ban, now)
                .await
                .unwrap();
        },
        refresh_grant(&app.state, &refresh, CLIENT),
    )
    .await;
    // As after any ban: the ban ended the session, so its token is dead (admin_users.rs).
    assert_eq!(refused_with(result), INVALID_REFRESH_TOKEN);
    assert_eq!(app.count("refresh_tokens").await, tokens_before);
    assert_eq!(
        app.count("audit_log_entries where action = 'token_refreshed'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_logout_committed_while_a_refresh_waits_refuses_it() {
    let app = spawn_app().await;
    let (_, session, refresh) = signed_in(&app).await;
    let now = app.state.clock.now();
    let result = committed_while(
        &app,
        async |tx| {
            chipflap::db::sessions::end_session(tx, session, EndReason::Logout, now)
                .await
                .unwrap();
        },
        refresh_grant(&app.state, &refresh, CLIENT),
    )
    .await;
    assert_eq!(refused_with(result), INVALID_REFRESH_TOKEN);
}

#[tokio::test]
async fn two_refreshes_that_read_the_same_live_token_share_one_successor() {
    let app = spawn_app().await;
    let (_, _, refresh) = signed_in(&app).await;
    let tokens_before = app.count("refresh_tokens").await;
    // Both read the token live before the lock frees; the second to write finds it rotated
    // and, inside the grace window, answers with the first one's successor.
    let (first, second) = committed_while(&app, async |_| {}, async {
        tokio::join!(
            refresh_grant(&app.state, &refresh, CLIENT),
            refresh_grant(&app.state, &refresh, CLIENT)
        )
    })
    .await;
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(first.refresh_token, second.refresh_token);
    assert_eq!(first.session_id, second.session_id);
    assert_eq!(app.count("refresh_tokens").await, tokens_before + 1);
    assert_eq!(
        app.post_token_refresh(&first.refresh_token).await.status(),
        200
    );
}

#[tokio::test]
async fn a_refresh_the_throttle_refuses_rotates_nothing() {
    let app = spawn_app().await;
    let (_, _, mut refresh) = signed_in(&app).await;
    let mut granted = 0;
    let limited = loop {
        let response = app.post_token_refresh(&refresh).await;
        if response.status() == 429 {
            break response;
        }
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        refresh = body["refresh_token"].as_str().unwrap().to_owned();
        granted += 1;
        assert!(
            granted <= 30,
            "GOTRUE_RATE_LIMIT_TOKEN_REFRESH never limited"
        );
    };
    assert!(granted >= 20, "only {granted} refreshes before the limit");
    let wait: u64 = limited.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    app.advance(Duration::from_secs(wait));
    // The refused request rotated nothing: the last token given out is still the live one.
    let response = app.post_token_refresh(&refresh).await;
    assert_eq!(response.status(), 200);
}
