//! Rule: every refresh request counts against the `/token` throttle of its client, whatever it
//! presents (nothing, an unknown token, a live one), and a request the throttle refuses
//! changes nothing: not even a reused token's session is ended by it (the client learns only
//! 429, and the owner's live token keeps working once the wait is over).

use std::time::Duration;

use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn empty_refreshes_count_and_a_limited_reuse_ends_no_session() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let r = app.post_token_refresh(&first).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    let second = second["refresh_token"].as_str().unwrap().to_owned();
    // Past the grace window: `first` presented again is a reuse.
    app.advance(Duration::from_secs(11));

    let mut sent = 0;
    loop {
        let r = app.post_token_refresh("").await;
        if r.status() == 429 {
            break;
        }
        assert_eq!(r.status(), 400, "{}", r.text().await.unwrap());
        sent += 1;
        assert!(sent <= 300, "empty refresh tokens are never counted");
    }

    let r = app.post_token_refresh(&first).await;
    assert_eq!(r.status(), 429);
    let wait: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let unended: i64 = app.count("sessions where ended_at is null").await;
    assert_eq!(unended, 1, "a limited reuse ended the session");
    assert_eq!(
        app.count("refresh_tokens where revoked_at is not null")
            .await,
        0
    );

    app.advance(Duration::from_secs(wait));
    assert_eq!(app.post_token_refresh(&second).await.status(), 200);
}
