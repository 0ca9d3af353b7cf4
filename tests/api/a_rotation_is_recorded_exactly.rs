//! Rule: a refresh records exactly what happened, in the rows each value belongs to: the
//! successor token belongs to the same user and session and names the token it replaced; the
//! session's last refresh is now; one `token_refreshed` entry names the user. (The rotation
//! writes these in one statement list whose `?`s bind in order across the statements: a value
//! bound to the wrong place would pass the type check and land here.)

use serde_json::Value;

use crate::helpers::spawn_app;
use crate::support::mfa::claims;

#[tokio::test]
async fn a_refresh_stores_its_successor_session_touch_and_audit_entry_where_they_belong() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let access = session["access_token"].as_str().unwrap().to_owned();
    let user = app.user_id(&access).await;
    let session_id = claims(&access)["session_id"].as_str().unwrap().to_owned();
    app.advance(std::time::Duration::from_secs(120));
    let now = app.state.clock.now().unix();

    let before: i64 = app.count("refresh_tokens").await;
    let response = app.post_token_refresh(&first).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["session_id"],
        session_id.as_str()
    );
    assert_eq!(app.count("refresh_tokens").await, before + 1);

    let first_digest = chipflap::domain::one_time_token::SecretToken::presented(&first).digest();
    let (old_id, rotated_at): (i64, Option<i64>) =
        sqlx::query_as("select id, rotated_at from refresh_tokens where digest = ?")
            .bind(first_digest.as_bytes().to_vec())
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(rotated_at, Some(now));
    let successor = chipflap::domain::one_time_token::SecretToken::presented(
        body["refresh_token"].as_str().unwrap(),
    )
    .digest();
    let (user_id, sid, parent, created, rotated, revoked): (
        String,
        String,
        Option<i64>,
        i64,
        Option<i64>,
        Option<i64>,
    ) = sqlx::query_as(
        "select user_id, session_id, parent_id, created_at, rotated_at, revoked_at
         from refresh_tokens where digest = ?",
    )
    .bind(successor.as_bytes().to_vec())
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(
        (
            user_id.as_str(),
            sid.as_str(),
            parent,
            created,
            rotated,
            revoked
        ),
        (
            user.as_str(),
            session_id.as_str(),
            Some(old_id),
            now,
            None,
            None
        )
    );

    let (refreshed_at, updated_at): (i64, i64) =
        sqlx::query_as("select refreshed_at, updated_at from sessions where id = ?")
            .bind(&session_id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!((refreshed_at, updated_at), (now, now));

    app.settle().await;
    let entries: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "select actor_id, actor_email, log_type, coalesce(subject_id, ''), created_at
         from audit_log_entries where action = 'token_refreshed'",
    )
    .fetch_all(&app.state.db)
    .await
    .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (actor_id, actor_email, log_type, _subject, created_at) = &entries[0];
    assert_eq!(actor_id, &user);
    assert_eq!(actor_email, "ada@example.org");
    assert_eq!(log_type, "token");
    assert_eq!(*created_at, now);
}

/// Rule: the rotation's four writes apply together or not at all. A token another request
/// rotated first is marked again by nobody: the call answers false and writes no successor,
/// no session touch and no audit entry (each write of the statement list applies only when
/// the one before it changed a row).
#[tokio::test]
async fn a_rotation_of_a_token_already_rotated_writes_nothing() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let access = session["access_token"].as_str().unwrap().to_owned();
    assert_eq!(app.post_token_refresh(&first).await.status(), 200);
    let user_id: chipflap::domain::user::UserId = app.user_id(&access).await.parse().unwrap();
    let digest = chipflap::domain::one_time_token::SecretToken::presented(&first).digest();
    let record = chipflap::db::refresh_tokens::find_refresh_token(&app.state.db, &digest)
        .await
        .unwrap()
        .unwrap();
    assert!(record.rotated_at.is_some());
    app.advance(std::time::Duration::from_secs(60));
    let now = app.state.clock.now();
    let tables = ["refresh_tokens", "audit_log_entries"];
    let mut before = Vec::new();
    for table in tables {
        before.push(app.count(table).await);
    }
    let refreshed_before: i64 =
        sqlx::query_scalar("select refreshed_at from sessions where id = ?")
            .bind(record.session_id.to_string())
            .fetch_one(&app.state.db)
            .await
            .unwrap();

    let audit = chipflap::services::audit::entry(
        &chipflap::services::Actor::command_line(),
        chipflap::services::audit::Action::TokenRefreshed,
        serde_json::json!({}),
        now,
    );
    let successor = chipflap::domain::one_time_token::SecretToken::generate();
    let mut conn = app.state.db.acquire().await.unwrap();
    let rotated = chipflap::db::refresh_tokens::rotate_refresh_token(
        &mut conn,
        record.id,
        &successor.digest(),
        user_id,
        record.session_id,
        &audit,
        now,
    )
    .await
    .unwrap();
    assert!(!rotated);

    for (table, before) in tables.into_iter().zip(before) {
        assert_eq!(app.count(table).await, before, "{table}");
    }
    let refreshed_after: i64 = sqlx::query_scalar("select refreshed_at from sessions where id = ?")
        .bind(record.session_id.to_string())
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(refreshed_after, refreshed_before);
}
