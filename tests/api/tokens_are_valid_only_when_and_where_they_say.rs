//! Rule (tokens): a token is honoured only from its `nbf`, and only from the configured issuer
//! (`GOTRUE_JWT_ISSUER`, when set: new tokens carry it as `iss`, and a token without it or with
//! another is refused on every path). With no issuer configured, tokens carry no `iss`, as
//! GoTrue's do. A user token whose `aud` is not a configured audience is refused on every path
//! (`audiences_are_configured.rs` covers the audiences themselves).

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with, test_from};
use crate::support::sessions::{ABLY_KEY, Login, claims, login, probe_paths};
use chipflap::auth::ably::AblyKey;
use chipflap::mail::Mailer;

const VICTIM: &str = "victim@example.org";
const ISSUER: &str = "https://id.example.org";

async fn spawn(issuer: Option<&str>) -> TestApp {
    let issuer = issuer.map(str::to_owned);
    spawn_app_with(
        |s| {
            s.jwt.issuer = issuer;
            s.ably.key = Some(AblyKey::parse(ABLY_KEY).unwrap());
            s.ably.revoke_on_ban = false;
        },
        Mailer::memory(test_from()),
    )
    .await
}

/// `login`'s token with its claims changed by `edit`, signed with the server's own secret and
/// kid: only the claim under test differs from a token the server issued.
fn resigned(app: &TestApp, login: &Login, edit: impl FnOnce(&mut Value)) -> Login {
    use secrecy::ExposeSecret;
    let mut c = claims(&login.access_token);
    edit(&mut c);
    let header = jsonwebtoken::decode_header(&login.access_token).unwrap();
    let secret = app
        .state
        .settings
        .jwt
        .secret
        .expose_secret()
        .as_bytes()
        .to_vec();
    let token = jsonwebtoken::encode(
        &header,
        &c,
        &jsonwebtoken::EncodingKey::from_secret(&secret),
    )
    .unwrap();
    Login {
        access_token: token.clone(),
        nf_jwt: token,
        ..login.clone()
    }
}

/// Every path that reads the access token (the session cookie does not).
async fn token_paths(app: &TestApp, login: &Login) -> Vec<(&'static str, u16, String)> {
    probe_paths(app, login, false)
        .await
        .into_iter()
        .filter(|(path, _, _)| *path != "Ably, session cookie")
        .collect()
}

#[tokio::test]
async fn a_token_is_refused_everywhere_before_its_nbf() {
    let app = spawn(None).await;
    app.admin_user(VICTIM).await;
    let real = login(&app, VICTIM).await;
    let now = claims(&real.access_token)["exp"].as_i64().unwrap() - 3600;
    let early = resigned(&app, &real, |c| c["nbf"] = json!(now + 60));
    for (path, status, msg) in token_paths(&app, &early).await {
        assert_eq!(
            (status, msg.as_str()),
            (401, "Invalid token: token is not valid yet"),
            "{path}"
        );
    }
    // From its nbf on, the same token is good: nothing else was wrong with it.
    app.advance(Duration::from_secs(60));
    for (path, status, msg) in token_paths(&app, &early).await {
        assert_eq!(status, 200, "{path}: {msg}");
    }
}

#[tokio::test]
async fn a_configured_issuer_is_stamped_on_tokens_and_required_everywhere() {
    let app = spawn(Some(ISSUER)).await;
    app.admin_user(VICTIM).await;
    let real = login(&app, VICTIM).await;
    assert_eq!(claims(&real.access_token)["iss"], json!(ISSUER));
    for (path, status, msg) in token_paths(&app, &real).await {
        assert_eq!(status, 200, "{path}: {msg}");
    }
    let missing = resigned(&app, &real, |c| {
        c.as_object_mut().unwrap().remove("iss");
    });
    let foreign = resigned(&app, &real, |c| {
        c["iss"] = json!("https://other.example.org")
    });
    for forged in [missing, foreign] {
        for (path, status, msg) in token_paths(&app, &forged).await {
            assert_eq!(
                (status, msg.as_str()),
                (401, "Invalid token: token has invalid issuer"),
                "{path}"
            );
        }
    }
    // The system token `chipflap token system` prints is stamped too.
    let exp = app.state.clock.now().plus(Duration::from_secs(60));
    let system = app.state.jwt.issue_system(exp).unwrap();
    assert_eq!(claims(&system)["iss"], json!(ISSUER));
    let r = app.get("/admin/users", Some(&system)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn without_a_configured_issuer_tokens_carry_none_as_gotrue() {
    let app = spawn(None).await;
    app.confirmed_user(VICTIM).await;
    let real = login(&app, VICTIM).await;
    assert!(claims(&real.access_token).get("iss").is_none());
    // A foreign `iss` is not our business then.
    let stamped = resigned(&app, &real, |c| {
        c["iss"] = json!("https://other.example.org")
    });
    let r = app.get("/user", Some(&stamped.access_token)).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn a_token_for_an_audience_this_server_does_not_serve_is_refused_everywhere() {
    let app = spawn(None).await;
    app.admin_user(VICTIM).await;
    let real = login(&app, VICTIM).await;
    let elsewhere = resigned(&app, &real, |c| c["aud"] = json!("another-site"));
    for (path, status, msg) in token_paths(&app, &elsewhere).await {
        assert_eq!(
            (status, msg.as_str()),
            (
                401,
                "Invalid token: token audience is not served by this server"
            ),
            "{path}"
        );
    }
}
