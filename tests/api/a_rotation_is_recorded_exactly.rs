//! Rule: a refresh records exactly what happened, in the rows each value belongs to: the
//! successor token belongs to the same user and session and names the token it replaced; the
//! session's last refresh is now; one `token_refreshed` entry names the user. (The rotation
//! writes these in one statement list whose `?`s bind in order across the statements: a value
//! bound to the wrong place would pass the type check and land here.)

use serde_json::{Value, json};

use crate::helpers::{committed_while, spawn_app};
use crate::support::mfa::claims;
use chipflap::services::token::refresh_grant;

#[tokio::test]
async fn a_refresh_stores_its_successor_session_touch_and_audit_entry_where_they_belong() {
    rotate_and_check_the_records(false).await;
}

/// The same rule when the refresh is decided again inside its transaction (its user row
/// moved between its first read and the write gate), which rotates with another statement list.
#[tokio::test]
async fn a_refresh_decided_again_records_the_same() {
    rotate_and_check_the_records(true).await;
}

async fn rotate_and_check_the_records(rows_move_meanwhile: bool) {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let access = session["access_token"].as_str().unwrap().to_owned();
    let user = app.user_id(&access).await;
    let session_id = claims(&access)["session_id"].as_str().unwrap().to_owned();
    app.advance(std::time::Duration::from_secs(120));
    let now = app.state.clock.now().unix();

    let before: i64 = app.count("refresh_tokens").await;
    let body: Value = if rows_move_meanwhile {
        let refreshed = committed_while(
            &app,
            async |tx| {
                sqlx::query("update users set user_metadata = '{\"moved\":true}' where id = ?")
                    .bind(&user)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
            },
            refresh_grant(&app.state, &first, "192.0.2.9"),
        )
        .await
        .unwrap();
        json!({"access_token": refreshed.access_token, "refresh_token": refreshed.refresh_token})
    } else {
        let response = app.post_token_refresh(&first).await;
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    };
    let access_claims = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access_claims["session_id"], session_id.as_str());
    assert_eq!(
        access_claims["user_metadata"]["moved"].as_bool(),
        rows_move_meanwhile.then_some(true),
        "{access_claims}"
    );
    assert_eq!(app.count("refresh_tokens").await, before + 1);

    let first_digest = chipflap::domain::one_time_token::SecretToken::presented(&first).digest();
    let (old_id, rotated_at): (i64, Option<i64>) =
        sqlx::query_as("select id, rotated_at from refresh_tokens where digest = ?")
            .bind(first_digest.as_bytes().to_vec())
            .fetch_one(app.db())
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
    .fetch_one(app.db())
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
            .fetch_one(app.db())
            .await
            .unwrap();
    assert_eq!((refreshed_at, updated_at), (now, now));

    app.settle().await;
    let entries: Vec<(String, String, String, String, i64)> = sqlx::query_as(
        "select actor_id, actor_email, log_type, coalesce(subject_id, ''), created_at
         from audit_log_entries where action = 'token_refreshed'",
    )
    .fetch_all(app.db())
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
    let record = chipflap::db::refresh_tokens::find_refresh_token(app.db(), &digest)
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
            .fetch_one(app.db())
            .await
            .unwrap();

    let audit = chipflap::services::audit::entry(
        &chipflap::services::Actor::command_line(),
        chipflap::services::audit::Action::TokenRefreshed,
        serde_json::json!({}),
        now,
    );
    let successor = chipflap::domain::one_time_token::SecretToken::generate();
    let mut conn = app.db().acquire().await.unwrap();
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
        .fetch_one(app.db())
        .await
        .unwrap();
    assert_eq!(refreshed_after, refreshed_before);
}

/// Rule: a rotation sent as one statement list with its own transaction either commits all of
/// it or leaves nothing, and never leaves its connection inside a transaction. Here the
/// successor's insert fails after the token was marked (its digest is taken): the mark is
/// rolled back and the same connection starts a new transaction at once.
#[tokio::test]
async fn a_rotation_list_that_fails_midway_leaves_nothing_and_no_open_transaction() {
    let Live {
        app,
        first,
        digest,
        found,
        user,
        now,
        audit,
    } = live_token().await;
    let tokens_before = app.count("refresh_tokens").await;
    let mut writer = chipflap::db::writer(app.db(), &app.state.write_epoch)
        .await
        .unwrap();
    let failed = chipflap::db::refresh_tokens::rotate_in_own_transaction(
        &mut writer,
        found.token.id,
        // The presented token's own digest: the successor's insert breaks the unique index.
        &digest,
        user.id,
        found.token.session_id,
        found.versions.unwrap(),
        &audit,
        now,
    )
    .await;
    assert!(failed.is_err(), "{failed:?}");
    // No transaction is left open: this one begins, reads the token unmarked, and commits.
    let mut tx = writer.begin().await.unwrap();
    let rotated_at: Option<i64> =
        sqlx::query_scalar("select rotated_at from refresh_tokens where id = ?")
            .bind(found.token.id)
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    assert_eq!(rotated_at, None);
    tx.commit().await.unwrap();
    drop(writer);
    assert_eq!(app.count("refresh_tokens").await, tokens_before);
    assert_eq!(app.post_token_refresh(&first).await.status(), 200);
}

/// Rule: the one-round-trip rotation applies only to rows still at the versions read. With
/// either version stale it answers false and writes nothing: no mark, no successor, no session
/// touch, no audit entry.
#[tokio::test]
async fn a_rotation_whose_rows_moved_writes_nothing() {
    let Live {
        app,
        first: _,
        digest,
        found,
        user,
        now,
        audit,
    } = live_token().await;
    let seen = found.versions.unwrap();
    let counts = async || {
        (
            app.count("refresh_tokens").await,
            app.count("audit_log_entries").await,
        )
    };
    let before = counts().await;
    for stale in [
        chipflap::db::refresh_tokens::OwnerVersions {
            user: seen.user - 1,
            ..seen
        },
        chipflap::db::refresh_tokens::OwnerVersions {
            session: seen.session + 1,
            ..seen
        },
    ] {
        let mut writer = chipflap::db::writer(app.db(), &app.state.write_epoch)
            .await
            .unwrap();
        let successor = chipflap::domain::one_time_token::SecretToken::generate();
        let rotated = chipflap::db::refresh_tokens::rotate_in_own_transaction(
            &mut writer,
            found.token.id,
            &successor.digest(),
            user.id,
            found.token.session_id,
            stale,
            &audit,
            now,
        )
        .await
        .unwrap();
        assert!(!rotated, "{stale:?}");
    }
    assert_eq!(counts().await, before);
    let again = chipflap::db::sessions::find_refresh_token_with_owner(app.db(), &digest)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.token.rotated_at, None);
    assert_eq!(again.versions, Some(seen));
}

/// A signed-in user's first refresh token as the refresh grant reads it, and the audit entry a
/// rotation of it would append: what the rotation tests above call the store with.
struct Live {
    app: crate::helpers::TestApp,
    first: String,
    digest: chipflap::domain::one_time_token::TokenDigest,
    found: chipflap::db::sessions::RefreshTokenWithOwner,
    user: chipflap::domain::user::User,
    now: chipflap::domain::timestamp::Timestamp,
    audit: chipflap::db::audit_log::AuditEntry,
}

async fn live_token() -> Live {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let first = session["refresh_token"].as_str().unwrap().to_owned();
    let digest = chipflap::domain::one_time_token::SecretToken::presented(&first).digest();
    let found = chipflap::db::sessions::find_refresh_token_with_owner(app.db(), &digest)
        .await
        .unwrap()
        .unwrap();
    let user = found.user.clone().unwrap();
    let now = app.state.clock.now();
    let audit = chipflap::services::audit::entry(
        &chipflap::services::Actor::user(&user),
        chipflap::services::audit::Action::TokenRefreshed,
        serde_json::json!({}),
        now,
    );
    Live {
        app,
        first,
        digest,
        found,
        user,
        now,
        audit,
    }
}
