//! A user with a verified TOTP factor whose session has not used it (aal1) is refused where
//! access matters: Ably tokens, the admin API, password and email changes; `GET /user` stays
//! readable so a client sees it must step up. Users without a factor are unaffected (ASVS 5.0
//! V6.3.3, MFA opt-in per user).

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app_with, test_from};
use crate::support::mfa::{claims, enroll_and_verify};
use chipflap::auth::ably::AblyKey;
use chipflap::mail::Mailer;

async fn app_with_ably() -> TestApp {
    spawn_app_with(
        |s| {
            s.ably.key =
                Some(AblyKey::parse("appId1.keyId1:s3cr3tKeyValue_ForTests-0123").unwrap());
            s.ably.revoke_on_ban = false;
        },
        Mailer::memory(test_from()),
    )
    .await
}

async fn ably(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(format!("{}/.netlify/functions/ably-jwt", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ably_refuses_aal1_tokens_of_a_user_with_a_verified_factor() {
    let app = app_with_ably().await;
    let session = app.confirmed_user("ada@example.org").await;
    let aal1 = session["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        ably(&app, &aal1).await.status(),
        200,
        "no factor: unaffected"
    );

    let (_, _, tokens) = enroll_and_verify(&app, &aal1).await;

    // The token minted before the session stepped up stays aal1: refused; so is a second
    // login (a new aal1 session). Ably's shape, 403 so ably-js stops retrying.
    assert_eq!(ably(&app, &aal1).await.status(), 403);
    let login: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let other = login["access_token"].as_str().unwrap();
    assert_eq!(claims(other)["aal"], "aal1");
    let r = ably(&app, other).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.headers()["x-ably-errorcode"], "40300");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], 40300);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Multi-factor authentication required")
    );
    // GET /user stays available at aal1 and shows the verified factor.
    let user: Value = app.get("/user", Some(other)).await.json().await.unwrap();
    assert_eq!(user["factors"][0]["status"], "verified");
    // The aal2 token is served.
    assert_eq!(
        ably(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn the_admin_api_refuses_an_aal1_admin_with_a_verified_factor() {
    let app = app_with_ably().await;
    let session = app.admin_user("boss@example.org").await;
    let first = session["access_token"].as_str().unwrap().to_owned();
    let list = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/admin/users"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        list(first.clone()).await.status(),
        200,
        "no factor: unaffected"
    );

    let (_, _, tokens) = enroll_and_verify(&app, &first).await;

    assert_eq!(
        list(first.clone()).await.status(),
        403,
        "the pre-step-up token"
    );
    let login: Value = app
        .post_token_password("boss@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let aal1 = login["access_token"].as_str().unwrap().to_owned();
    let r = list(aal1.clone()).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert!(body["msg"].as_str().unwrap().starts_with("AAL2 required"));
    let r = app
        .client
        .delete(app.url("/admin/users/00000000-0000-4000-8000-000000000000"))
        .bearer_auth(&aal1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        list(tokens["access_token"].as_str().unwrap().to_owned())
            .await
            .status(),
        200
    );
    // The operator token and system tokens are not users: unaffected.
    assert_eq!(list(OPERATOR_TOKEN.to_owned()).await.status(), 200);
}

#[tokio::test]
async fn password_and_email_changes_need_aal2_once_a_factor_is_verified() {
    let app = app_with_ably().await;
    let session = app.confirmed_user("ada@example.org").await;
    let first = session["access_token"].as_str().unwrap().to_owned();
    let (_, _, tokens) = enroll_and_verify(&app, &first).await;
    let login: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let aal1 = login["access_token"].as_str().unwrap();

    for body in [
        json!({"password": "a whole new passphrase"}),
        json!({"email": "eve@example.org"}),
    ] {
        assert_eq!(app.put_json("/user", aal1, &body).await.status(), 403);
        assert_eq!(app.put_json("/user", &first, &body).await.status(), 403);
    }
    // Metadata is not access: allowed at aal1.
    let r = app
        .put_json("/user", aal1, &json!({"data": {"nick": "a"}}))
        .await;
    assert_eq!(r.status(), 200);
    let aal2 = tokens["access_token"].as_str().unwrap();
    let r = app
        .put_json(
            "/user",
            aal2,
            &json!({"password": "a whole new passphrase"}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn users_without_a_factor_keep_gotrues_claims_and_user_object() {
    let app = app_with_ably().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();

    let c = claims(token);
    let keys: Vec<_> = c.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "exp",
            "sub",
            "email",
            "app_metadata",
            "user_metadata",
            "session_id",
            "aal",
            "amr"
        ],
        "GoTrue's claims first, in GoTrue's order; new claims after them"
    );
    assert_eq!(c["aal"], "aal1");
    let login: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(login["access_token"].as_str().unwrap())["amr"][0]["method"],
        "password"
    );
    let user: Value = app.get("/user", Some(token)).await.json().await.unwrap();
    assert!(
        user.get("factors").is_none(),
        "no factors key: GoTrue's object"
    );
    assert_eq!(ably(&app, token).await.status(), 200);
    let r = app
        .put_json(
            "/user",
            token,
            &json!({"password": "a whole new passphrase"}),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn the_seed_pages_session_cookie_of_an_aal1_session_gets_no_ably_token() {
    use crate::support::sessions::{ably_with_cookies, login};
    let app = app_with_ably().await;
    let first = app.confirmed_user("ada@example.org").await;
    enroll_and_verify(&app, first["access_token"].as_str().unwrap()).await;

    // A password login with X-Use-Cookie: aal1, so neither its nf_jwt nor its session cookie
    // is served.
    let l = login(&app, "ada@example.org").await;
    assert!(!l.session_cookie.is_empty());
    let r = ably_with_cookies(
        &app,
        &l.user_id,
        &format!("chipflap_session={}", l.session_cookie),
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = ably_with_cookies(&app, &l.user_id, &format!("nf_jwt={}", l.nf_jwt)).await;
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn with_mfa_required_every_user_needs_aal2_and_can_enroll_at_aal1() {
    let app = spawn_app_with(
        |s| {
            s.ably.key =
                Some(AblyKey::parse("appId1.keyId1:s3cr3tKeyValue_ForTests-0123").unwrap());
            s.ably.revoke_on_ban = false;
            s.mfa.required = true;
        },
        Mailer::memory(test_from()),
    )
    .await;
    let session = app.confirmed_user("ada@example.org").await;
    let aal1 = session["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        ably(&app, &aal1).await.status(),
        403,
        "no factor, still aal1"
    );
    let r = app
        .put_json(
            "/user",
            &aal1,
            &json!({"password": "a whole new passphrase"}),
        )
        .await;
    assert_eq!(r.status(), 403);

    let (_, _, tokens) = enroll_and_verify(&app, &aal1).await;

    assert_eq!(
        ably(&app, tokens["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
}
