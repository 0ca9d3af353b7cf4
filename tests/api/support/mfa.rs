//! The attacker's and the user's side of TOTP: codes computed here from the secret the server
//! showed once, with totp-rs directly (not through chipflap's code), at the manual clock's time.

use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The 6-digit code for `secret` (base32) at unix time `at`.
pub fn code_at(secret: &str, at: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .unwrap();
    totp_rs::TOTP::new_unchecked(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        String::new(),
    )
    .generate(u64::try_from(at).unwrap())
}

/// The code for the step after the one accepted last (a fresh, unused code).
pub fn code_now(app: &TestApp, secret: &str) -> String {
    code_at(secret, app.clock.now().unix())
}

/// `POST /factors` with a TOTP factor type; answers the body.
pub async fn enroll(app: &TestApp, token: &str) -> Value {
    let r = app
        .post_json("/factors", Some(token), &json!({"factor_type": "totp"}))
        .await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

pub async fn challenge(app: &TestApp, token: &str, factor_id: &str) -> String {
    let r = app
        .post_json(
            &format!("/factors/{factor_id}/challenge"),
            Some(token),
            &json!({}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["id"].as_str().unwrap().to_owned()
}

pub async fn verify(
    app: &TestApp,
    token: &str,
    factor_id: &str,
    challenge_id: &str,
    code: &str,
) -> reqwest::Response {
    app.post_json(
        &format!("/factors/{factor_id}/verify"),
        Some(token),
        &json!({"challenge_id": challenge_id, "code": code}),
    )
    .await
}

/// Enrolls and verifies a factor for the session of `token`; answers (factor id, secret, the
/// aal2 token response). The clock moves one step on, so later codes are fresh.
pub async fn enroll_and_verify(app: &TestApp, token: &str) -> (String, String, Value) {
    let enrolled = enroll(app, token).await;
    let factor_id = enrolled["id"].as_str().unwrap().to_owned();
    let secret = enrolled["totp"]["secret"].as_str().unwrap().to_owned();
    let challenge_id = challenge(app, token, &factor_id).await;
    let r = verify(
        app,
        token,
        &factor_id,
        &challenge_id,
        &code_now(app, &secret),
    )
    .await;
    assert_eq!(r.status(), 200);
    let tokens: Value = r.json().await.unwrap();
    app.advance(std::time::Duration::from_secs(30));
    (factor_id, secret, tokens)
}

/// The JWT's claims, without checking the signature (the server checked it).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
