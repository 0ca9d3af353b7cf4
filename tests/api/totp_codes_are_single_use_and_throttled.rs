//! TOTP factors (supabase/auth's `/factors` API): a code proves the factor once, within its
//! window, for a live challenge, at a throttled rate; the secret is shown once and is not
//! readable from the store or any later answer (ASVS 5.0 V6.5.1, V6.5.5, V6.6.3, V6.3.3).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{assert_gotrue_error, spawn_app, spawn_app_with, test_from};
use crate::support::mfa::{
    challenge, claims, code_at, code_now, enroll, enroll_and_verify, verify,
};
use chipflap::mail::Mailer;

#[tokio::test]
async fn enrolling_answers_the_secret_once_in_supabase_shape() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();

    let enrolled = enroll(&app, token).await;

    assert_eq!(enrolled["type"], "totp");
    let secret = enrolled["totp"]["secret"].as_str().unwrap();
    assert!(secret.len() >= 32, "160-bit key in base32");
    let uri = enrolled["totp"]["uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/site.test:ada%40example.org?"),
        "{uri}"
    );
    assert!(uri.contains(&format!("secret={secret}")));
    assert!(uri.contains("issuer=site.test"));
    assert!(
        enrolled["totp"]["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;utf-8,")
    );
    // The user object lists it, unverified, without the secret.
    let user: Value = app.get("/user", Some(token)).await.json().await.unwrap();
    let factors = user["factors"].as_array().unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0]["id"], enrolled["id"]);
    assert_eq!(factors[0]["status"], "unverified");
    assert_eq!(factors[0]["factor_type"], "totp");
    assert!(!user.to_string().contains(secret));
}

#[tokio::test]
async fn a_right_code_raises_the_same_session_to_aal2_with_amr() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();
    let before = claims(token);
    assert_eq!(before["aal"], "aal1");
    assert_eq!(before["amr"][0]["method"], "email/signup");

    let (factor_id, _, tokens) = enroll_and_verify(&app, token).await;

    let after = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(after["session_id"], before["session_id"], "same session");
    assert_eq!(after["aal"], "aal2");
    assert_eq!(after["amr"][0]["method"], "totp");
    assert_eq!(after["amr"][1]["method"], "email/signup");
    assert_eq!(tokens["token_type"], "bearer");
    // The refresh token keeps the level.
    let refreshed: Value = app
        .post_token_refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["aal"],
        "aal2"
    );
    let user: Value = app
        .get("/user", Some(tokens["access_token"].as_str().unwrap()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["factors"][0]["id"], factor_id.as_str());
    assert_eq!(user["factors"][0]["status"], "verified");
}

#[tokio::test]
async fn wrong_reused_and_expired_codes_are_refused() {
    // The per-user throttle has its own test; here every refusal must be the code's.
    let app = spawn_app_with(
        |s| {
            s.mfa.verify_per_user = chipflap::config::Rate {
                burst: 100,
                interval: Duration::from_secs(1),
            }
        },
        Mailer::memory(test_from()),
    )
    .await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();
    let enrolled = enroll(&app, token).await;
    let factor = enrolled["id"].as_str().unwrap();
    let secret = enrolled["totp"]["secret"].as_str().unwrap();
    let now = app.clock.now().unix();

    // Wrong: another code, a code two steps away, garbage.
    let c = challenge(&app, token, factor).await;
    let right = code_now(&app, secret);
    let wrong = if right == "000000" {
        "000001"
    } else {
        "000000"
    };
    for code in [
        wrong,
        &code_at(secret, now - 60),
        &code_at(secret, now + 60),
        "abcdef",
        "1234567",
    ] {
        assert_gotrue_error(
            verify(&app, token, factor, &c, code).await,
            422,
            "Invalid TOTP code entered",
        )
        .await;
    }

    // Right once; the same code again (same step, even on a new challenge) is refused.
    assert_eq!(verify(&app, token, factor, &c, &right).await.status(), 200);
    let c2 = challenge(&app, token, factor).await;
    assert_gotrue_error(
        verify(&app, token, factor, &c2, &right).await,
        422,
        "Invalid TOTP code entered",
    )
    .await;
    // The previous step's code is older than the used one: refused too.
    assert_gotrue_error(
        verify(&app, token, factor, &c2, &code_at(secret, now - 30)).await,
        422,
        "Invalid TOTP code entered",
    )
    .await;
    // An answered challenge cannot be answered again, even with a fresh code.
    app.advance(Duration::from_secs(30));
    assert_gotrue_error(
        verify(&app, token, factor, &c, &code_now(&app, secret)).await,
        422,
        "MFA factor with the provided challenge ID not found",
    )
    .await;

    // An expired challenge (default 300 s) is refused even with the right code.
    let c3 = challenge(&app, token, factor).await;
    app.advance(Duration::from_secs(301));
    let r = verify(&app, token, factor, &c3, &code_now(&app, secret)).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("has expired"));
    // A code from before the window is refused.
    let c4 = challenge(&app, token, factor).await;
    assert_gotrue_error(
        verify(
            &app,
            token,
            factor,
            &c4,
            &code_at(secret, app.clock.now().unix() - 90),
        )
        .await,
        422,
        "Invalid TOTP code entered",
    )
    .await;
}

#[tokio::test]
async fn guessing_codes_is_throttled_per_user() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();
    let enrolled = enroll(&app, token).await;
    let factor = enrolled["id"].as_str().unwrap();
    let secret = enrolled["totp"]["secret"].as_str().unwrap();
    let c = challenge(&app, token, factor).await;
    let right = code_now(&app, secret);

    let mut refused = None;
    for guess in 0..20 {
        let code = format!("{:06}", (guess * 7919) % 1_000_000);
        if code == right {
            continue;
        }
        let r = verify(&app, token, factor, &c, &code).await;
        if r.status() == 429 {
            refused = Some(guess);
            assert!(r.headers().contains_key("retry-after"));
            break;
        }
        assert_eq!(r.status(), 422);
    }
    assert_eq!(
        refused,
        Some(5),
        "burst of 5 per user (CHIPFLAP_RATE_LIMIT_MFA_VERIFY=5/1m)"
    );
    // Even the right code waits: the throttle comes before any check.
    assert_eq!(verify(&app, token, factor, &c, &right).await.status(), 429);
    app.advance(Duration::from_secs(60));
    assert_eq!(
        verify(&app, token, factor, &c, &code_now(&app, secret))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn factor_secrets_are_not_readable_from_the_store_or_later_answers() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();
    let enrolled = enroll(&app, token).await;
    let secret = enrolled["totp"]["secret"].as_str().unwrap().to_owned();
    let raw = totp_rs::Secret::Encoded(secret.clone()).to_bytes().unwrap();

    // The store holds neither the key nor its base32 form, in any column of any table.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select secret from mfa_factors")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].windows(raw.len()).any(|w| w == raw.as_slice()));
    let dump: Vec<String> =
        sqlx::query_scalar("select quote(secret) || coalesce(friendly_name, '') from mfa_factors")
            .fetch_all(app.db())
            .await
            .unwrap();
    assert!(
        !dump
            .concat()
            .to_lowercase()
            .contains(&secret.to_lowercase())
    );
    // Later answers: /user, challenge, verify, the audit log.
    let factor = enrolled["id"].as_str().unwrap();
    let c = challenge(&app, token, factor).await;
    let verified = verify(&app, token, factor, &c, &code_now(&app, &secret)).await;
    let tokens: Value = verified.json().await.unwrap();
    let aal2 = tokens["access_token"].as_str().unwrap();
    let answers = [
        app.get("/user", Some(aal2)).await.text().await.unwrap(),
        tokens.to_string(),
        app.client
            .get(app.url("/admin/audit"))
            .bearer_auth(crate::helpers::OPERATOR_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    ];
    for answer in answers {
        assert!(!answer.contains(&secret), "{answer}");
    }
    let audit: Vec<String> = sqlx::query_scalar("select traits from audit_log_entries")
        .fetch_all(app.db())
        .await
        .unwrap();
    assert!(audit.iter().any(|t| t.contains("factor_id")));
    assert!(!audit.concat().contains(&secret));
}

#[tokio::test]
async fn factors_are_the_users_own_and_need_a_live_session() {
    let app = spawn_app().await;
    let ada = app.confirmed_user("ada@example.org").await;
    let eve = app.confirmed_user("eve@example.org").await;
    let ada_token = ada["access_token"].as_str().unwrap();
    let eve_token = eve["access_token"].as_str().unwrap();
    let enrolled = enroll(&app, ada_token).await;
    let factor = enrolled["id"].as_str().unwrap();

    // Another user's factor does not exist for them.
    let r = app
        .post_json(
            &format!("/factors/{factor}/challenge"),
            Some(eve_token),
            &json!({}),
        )
        .await;
    assert_gotrue_error(r, 404, "Factor not found").await;
    assert_gotrue_error(
        app.delete(&format!("/factors/{factor}"), eve_token).await,
        404,
        "Factor not found",
    )
    .await;
    // Bad input gets clear errors.
    let r = app
        .post_json("/factors", Some(ada_token), &json!({"factor_type": "sms"}))
        .await;
    assert_gotrue_error(r, 400, "factor_type needs to be totp").await;
    let r = app
        .post_json(
            &format!("/factors/{factor}/verify"),
            Some(ada_token),
            &json!({"code": "123456"}),
        )
        .await;
    assert_gotrue_error(r, 400, "challenge_id needs to be a UUID").await;
    let r = app
        .post_json("/factors/not-a-uuid/challenge", Some(ada_token), &json!({}))
        .await;
    assert_gotrue_error(r, 404, "Factor not found").await;
    // No token, or an ended session: refused.
    assert_eq!(
        app.post_json("/factors", None, &json!({"factor_type": "totp"}))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_json("/logout", Some(ada_token), &json!({}))
            .await
            .status(),
        204
    );
    let r = app
        .post_json("/factors", Some(ada_token), &json!({"factor_type": "totp"}))
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn removing_a_verified_factor_needs_aal2_and_lowers_its_sessions() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let aal1 = session["access_token"].as_str().unwrap().to_owned();
    let (factor, _, tokens) = enroll_and_verify(&app, &aal1).await;
    let aal2 = tokens["access_token"].as_str().unwrap();

    // A second login (another aal1 session) can neither remove it nor enroll another.
    let other: Value = app
        .post_token_password("ada@example.org", crate::helpers::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let other = other["access_token"].as_str().unwrap();
    assert_gotrue_error(
        app.delete(&format!("/factors/{factor}"), other).await,
        422,
        "AAL2 required to unenroll verified factor",
    )
    .await;
    let r = app
        .post_json("/factors", Some(other), &json!({"factor_type": "totp"}))
        .await;
    assert_gotrue_error(r, 403, "AAL2 required to enroll a new factor").await;

    // The aal2 session can.
    let r = app.delete(&format!("/factors/{factor}"), aal2).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["id"], factor.as_str());
    // Its session is aal1 again: a refresh says so, and /user lists no factors.
    let refreshed: Value = app
        .post_token_refresh(tokens["refresh_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        claims(refreshed["access_token"].as_str().unwrap())["aal"],
        "aal1"
    );
    let user: Value = app.get("/user", Some(aal2)).await.json().await.unwrap();
    assert!(user.get("factors").is_none());
}

#[tokio::test]
async fn abandoned_enrollments_are_bounded_and_expire() {
    let app = spawn_app().await;
    let session = app.confirmed_user("ada@example.org").await;
    let token = session["access_token"].as_str().unwrap();
    for _ in 0..10 {
        enroll(&app, token).await;
    }
    let r = app
        .post_json("/factors", Some(token), &json!({"factor_type": "totp"}))
        .await;
    assert_gotrue_error(
        r,
        422,
        "Maximum number of verified factors reached, unenroll to continue",
    )
    .await;
    app.advance(Duration::from_secs(301));
    enroll(&app, token).await;
    assert_eq!(app.count("mfa_factors").await, 1);
}
