//! Rule: the access token a refresh answers carries the user and the session as they are when
//! the refresh commits. A change committed while the refresh waits for the write lock (an
//! admin removing a factor, so the session falls back to aal1; an admin changing the user's
//! roles) is in the token; the token never carries what the refresh read before it waited.

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{committed_while, spawn_app};
use crate::support::mfa::{claims, enroll_and_verify};
use chipflap::services::token::refresh_grant;

const CLIENT: &str = "192.0.2.9";

#[tokio::test]
async fn a_factor_removed_while_a_refresh_waits_leaves_the_new_token_at_aal1() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let (factor, _, tokens) = enroll_and_verify(&app, &token).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(
        claims(tokens["access_token"].as_str().unwrap())["aal"],
        "aal2"
    );
    let factor: Uuid = factor.parse().unwrap();
    let now = app.state.clock.now();
    let refreshed = committed_while(
        &app,
        async |tx| {
            // What removing a factor does (services::mfa): the sessions it raised fall back.
            chipflap::db::factors::downgrade_sessions_of_factor(&mut *tx, factor, now)
                .await
                .unwrap();
            sqlx::query("delete from mfa_factors where id = ?")
                .bind(factor.to_string())
                .execute(&mut *tx)
                .await
                .unwrap();
        },
        refresh_grant(&app.state, &refresh, CLIENT),
    )
    .await
    .unwrap();
    let claims = claims(&refreshed.access_token);
    assert_eq!(claims["aal"], "aal1", "{claims}");
    assert!(
        !claims["amr"].to_string().contains("totp"),
        "the removed factor is not in amr: {claims}"
    );
}

#[tokio::test]
async fn roles_taken_away_while_a_refresh_waits_are_not_in_the_new_token() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap().to_owned();
    let user = app.user_id(&token).await;
    let refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let set_roles = |roles: Value| {
        let user = user.clone();
        async move |conn: &mut sqlx::SqliteConnection| {
            sqlx::query(
                "update users set app_metadata = json_set(app_metadata, '$.roles', json(?)) where id = ?",
            )
            .bind(roles.to_string())
            .bind(user)
            .execute(&mut *conn)
            .await
            .unwrap();
        }
    };
    let mut tx = chipflap::db::begin_write(app.db(), &app.state.write_epoch)
        .await
        .unwrap();
    set_roles(json!(["editor"]))(&mut tx).await;
    tx.commit().await.unwrap();
    let refreshed = committed_while(
        &app,
        set_roles(json!([])),
        refresh_grant(&app.state, &refresh, CLIENT),
    )
    .await
    .unwrap();
    let claims = claims(&refreshed.access_token);
    assert_eq!(claims["app_metadata"]["roles"], json!([]), "{claims}");
}

#[tokio::test]
async fn a_token_that_expires_while_its_refresh_waits_is_refused_and_rotates_nothing() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let refresh = session["refresh_token"].as_str().unwrap().to_owned();
    let lifetime = app.state.settings.jwt.refresh_token_lifetime;
    let tokens_before = app.count("refresh_tokens").await;
    let tx = app.state.store.begin_write().await.unwrap();
    let (_, result) = tokio::join!(
        async {
            // The refresh has read the token live and waits for the lock; time passes.
            tokio::time::sleep(Duration::from_millis(100)).await;
            app.advance(lifetime);
            tx.commit().await.unwrap();
        },
        refresh_grant(&app.state, &refresh, CLIENT)
    );
    match result {
        Err(chipflap::services::token::TokenError::InvalidGrant(description)) => {
            assert_eq!(description, "Refresh token expired");
        }
        other => panic!("expected invalid_grant, got {other:?}"),
    }
    assert_eq!(app.count("refresh_tokens").await, tokens_before);
}

/// Every way a session ends (or its user goes) that commits while a refresh waits refuses that
/// refresh, including the grace-window answer of a token another tab had just rotated.
#[tokio::test]
async fn every_ending_committed_while_a_refresh_waits_refuses_it() {
    use chipflap::domain::session::EndReason;
    for ending in ["deleted", "admin", "password", "ban"] {
        for rotated_first in [false, true] {
            let app = spawn_app().await;
            let session = app.confirmed_user("ada@example.org").await;
            let user = app.user_id(session["access_token"].as_str().unwrap()).await;
            let refresh = session["refresh_token"].as_str().unwrap().to_owned();
            if rotated_first {
                // Another tab refreshed a moment ago: this token would get the grace answer.
                assert_eq!(app.post_token_refresh(&refresh).await.status(), 200);
            }
            let now = app.state.clock.now();
            let id: chipflap::domain::user::UserId = user.parse().unwrap();
            let result = committed_while(
                &app,
                async |tx| match ending {
                    "deleted" => {
                        sqlx::query("delete from users where id = ?")
                            .bind(id.to_string())
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    "admin" | "password" | "ban" => {
                        let reason = match ending {
                            "admin" => EndReason::Admin,
                            "password" => EndReason::PasswordChange,
                            _ => EndReason::Ban,
                        };
                        if ending == "ban" {
                            sqlx::query("update users set banned_until = ? where id = ?")
                                .bind(now.unix() + 3600)
                                .bind(id.to_string())
                                .execute(&mut *tx)
                                .await
                                .unwrap();
                        }
                        chipflap::db::sessions::end_user_sessions(tx, id, None, reason, now)
                            .await
                            .unwrap();
                    }
                    _ => unreachable!(),
                },
                refresh_grant(&app.state, &refresh, CLIENT),
            )
            .await;
            assert!(
                matches!(
                    result,
                    Err(chipflap::services::token::TokenError::InvalidGrant(_))
                ),
                "{ending} (rotated first: {rotated_first}): {result:?}"
            );
        }
    }
}
