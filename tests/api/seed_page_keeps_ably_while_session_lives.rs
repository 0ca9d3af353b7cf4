//! Rule: the seed page keeps Ably for as long as the login lasts. The page (widget 1.9.2)
//! never refreshes its access token or `nf_jwt`, so the Ably endpoint also accepts the session
//! cookie set with `nf_jwt`: HttpOnly, SameSite=Strict, bound to one live session by a MAC.
//! It stops working the moment the session ends (401) or the user is banned (403); a Bearer
//! is never replaced by it (an expired one stays 401); nothing else accepts it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{OPERATOR_TOKEN, TestApp, spawn_app_with, test_from};
use crate::support::sessions::{
    ABLY_KEY, Login, ably_url, ably_with_cookies, bare_client, claims, cookie_in, login, login_as,
    outcome, read_login, set_cookies, spawn_app_with_ably,
};
use chipflap::auth::ably::AblyKey;
use chipflap::mail::Mailer;
use chipflap::routes::errors::SESSION_ENDED;

const EMAIL: &str = "page@example.org";

async fn logged_in(app: &TestApp) -> Login {
    app.confirmed_user(EMAIL).await;
    login(app, EMAIL).await
}

/// Past the access token's expiry (3600 s in tests).
fn expire_access_tokens(app: &TestApp) {
    app.advance(Duration::from_secs(3601));
}

async fn ably_client_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let jwt = response.text().await.unwrap();
    claims(&jwt)["x-ably-clientId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_scoped_to_the_ably_endpoint() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    let header = l
        .set_cookies
        .iter()
        .find(|c| c.starts_with("chipflap_session="))
        .unwrap();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/.netlify/functions/ably-jwt",
        "Max-Age=2592000",
    ] {
        assert!(header.contains(attribute), "{attribute} in {header}");
    }
    assert!(!header.contains("Secure"), "plain-http site: {header}");
    // The value names the session and carries a MAC; it is not the access token.
    assert!(l.session_cookie.starts_with(&format!("{}.", l.session_id)));
    assert!(!l.session_cookie.contains(&l.access_token));

    // `X-Use-Cookie: session` gives browser-session cookies; no header, no cookies.
    let r = login_as(&app, EMAIL, crate::helpers::PASSWORD, "session").await;
    let cookies = set_cookies(&r);
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(
        cookies.iter().all(|c| !c.contains("Max-Age")),
        "{cookies:?}"
    );
    let r = app
        .post_token_password(EMAIL, crate::helpers::PASSWORD)
        .await;
    assert!(set_cookies(&r).is_empty());
}

#[tokio::test]
async fn the_session_cookie_is_secure_on_an_https_site() {
    let app = spawn_app_with(
        |s| {
            s.ably.key = Some(AblyKey::parse(ABLY_KEY).unwrap());
            s.http.site_url = "https://site.test".parse().unwrap();
        },
        Mailer::memory(test_from()),
    )
    .await;
    // (Mail links would point at the made-up site, so the user is made confirmed directly.)
    app.admin_user(EMAIL).await;
    let l = login(&app, EMAIL).await;
    assert_eq!(l.set_cookies.len(), 2);
    for c in &l.set_cookies {
        assert!(c.contains("Secure"), "{c}");
    }
}

#[tokio::test]
async fn after_nf_jwt_expires_the_session_cookie_keeps_ably_tokens_coming() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    let both = format!("nf_jwt={}; chipflap_session={}", l.nf_jwt, l.session_cookie);
    assert_eq!(
        ably_client_id(ably_with_cookies(&app, &l.user_id, &both).await).await,
        l.user_id
    );
    expire_access_tokens(&app);
    // The expired nf_jwt alone is refused, as before.
    let r = ably_with_cookies(&app, &l.user_id, &format!("nf_jwt={}", l.nf_jwt)).await;
    assert_eq!(outcome(r).await.0, 401);
    // With the session cookie beside it (what the browser sends), and on its own.
    for cookies in [
        both.clone(),
        format!("chipflap_session={}", l.session_cookie),
    ] {
        assert_eq!(
            ably_client_id(ably_with_cookies(&app, &l.user_id, &cookies).await).await,
            l.user_id
        );
    }
    // Also as a POST with format=token_request (ably-js may ask either way).
    let r = bare_client()
        .post(ably_url(&app, &l.user_id))
        .header("cookie", &both)
        .form(&[("format", "token_request")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let request: Value = r.json().await.unwrap();
    assert_eq!(request["clientId"], json!(l.user_id));
}

#[tokio::test]
async fn an_expired_bearer_is_still_401_whatever_cookies_come_with_it() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    expire_access_tokens(&app);
    let r = bare_client()
        .get(ably_url(&app, &l.user_id))
        .bearer_auth(&l.access_token)
        .header("cookie", format!("chipflap_session={}", l.session_cookie))
        .send()
        .await
        .unwrap();
    let (status, msg) = outcome(r).await;
    assert_eq!(status, 401);
    assert!(msg.starts_with("Invalid token: token is expired"), "{msg}");
}

#[tokio::test]
async fn the_session_cookie_opens_nothing_but_the_ably_endpoint() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    let cookie = format!("chipflap_session={}", l.session_cookie);
    for (method, path) in [("GET", "/user"), ("PUT", "/user"), ("POST", "/logout")] {
        let r = bare_client()
            .request(method.parse().unwrap(), app.url(path))
            .header("cookie", &cookie)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{method} {path}");
    }
    // As a Bearer it is no token at all.
    let r = bare_client()
        .get(ably_url(&app, &l.user_id))
        .bearer_auth(&l.session_cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(outcome(r).await.0, 401);
}

#[tokio::test]
async fn a_forged_or_moved_session_cookie_is_refused() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    app.confirmed_user("other@example.org").await;
    let other = login(&app, "other@example.org").await;
    expire_access_tokens(&app);
    let (_, mac) = l.session_cookie.split_once('.').unwrap();
    let (other_session, other_mac) = other.session_cookie.split_once('.').unwrap();
    for forged in [
        // Another session id (known from its access token) under my MAC, and the reverse.
        format!("{other_session}.{mac}"),
        format!("{}.{other_mac}", l.session_id),
        // The bare session id; a truncated MAC; garbage.
        other_session.to_owned(),
        format!("{other_session}.{}", &other_mac[..other_mac.len() - 2]),
        "x.y".to_owned(),
    ] {
        let r = ably_with_cookies(&app, "", &format!("chipflap_session={forged}")).await;
        assert_eq!(outcome(r).await.0, 401, "{forged}");
    }
    // A genuine cookie asking for someone else's id.
    let r = ably_with_cookies(
        &app,
        &other.user_id,
        &format!("chipflap_session={}", l.session_cookie),
    )
    .await;
    assert_eq!(outcome(r).await.0, 403);
}

#[tokio::test]
async fn the_session_cookie_dies_with_its_session() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    let cookie = format!("chipflap_session={}", l.session_cookie);
    expire_access_tokens(&app);
    assert_eq!(
        ably_client_id(ably_with_cookies(&app, &l.user_id, &cookie).await).await,
        l.user_id
    );
    // Logout (with a fresh token of another session) clears both cookies and ends the session:
    // a client that kept the cookie anyway gets 401, so ably-js keeps waiting for a new login.
    let fresh = login(&app, EMAIL).await;
    let r = bare_client()
        .post(app.url("/logout"))
        .bearer_auth(&fresh.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let cleared = set_cookies(&r);
    for name in ["nf_jwt", "chipflap_session"] {
        assert_eq!(
            cookie_in(&cleared, name).as_deref(),
            Some(""),
            "{cleared:?}"
        );
    }
    assert!(
        cleared.iter().any(|c| c.starts_with("chipflap_session=")
            && c.contains("Path=/.netlify/functions/ably-jwt")),
        "cleared on the path it was set: {cleared:?}"
    );
    let (status, msg) = outcome(ably_with_cookies(&app, &l.user_id, &cookie).await).await;
    assert_eq!((status, msg.as_str()), (401, SESSION_ENDED));
}

#[tokio::test]
async fn a_banned_user_gets_403_through_the_session_cookie_and_nothing_after_unbanning() {
    let app = spawn_app_with_ably().await;
    let l = logged_in(&app).await;
    let cookie = format!("chipflap_session={}", l.session_cookie);
    expire_access_tokens(&app);
    let path = format!("/admin/users/{}", l.user_id);
    app.put_json(
        &path,
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": ["banned"]}}),
    )
    .await;
    let r = ably_with_cookies(&app, &l.user_id, &cookie).await;
    assert_eq!(r.headers()["x-ably-errorcode"], "40300");
    assert_eq!(outcome(r).await, (403, "User is banned".to_owned()));
    app.put_json(
        &path,
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": []}}),
    )
    .await;
    let r = ably_with_cookies(&app, &l.user_id, &cookie).await;
    assert_eq!(r.headers()["x-ably-errorcode"], "40100");
    assert_eq!(outcome(r).await.0, 401);
}

#[tokio::test]
async fn verify_and_refresh_set_the_session_cookie_too() {
    let app = spawn_app_with_ably().await;
    app.post_signup(EMAIL, crate::helpers::PASSWORD).await;
    let token = app.token_in_last_email(EMAIL, "confirmation").await;
    let r = bare_client()
        .post(app.url("/verify"))
        .header("x-use-cookie", "1")
        .json(&json!({"type": "signup", "token": token}))
        .send()
        .await
        .unwrap();
    let verified = read_login(r).await;
    assert!(verified.session_cookie.starts_with(&verified.session_id));
    let refreshed =
        read_login(crate::support::sessions::refresh(&app, &verified.refresh_token).await).await;
    assert_eq!(refreshed.session_id, verified.session_id);
    assert_eq!(refreshed.session_cookie, verified.session_cookie);
    expire_access_tokens(&app);
    let cookie = format!("chipflap_session={}", refreshed.session_cookie);
    assert_eq!(
        ably_client_id(ably_with_cookies(&app, &verified.user_id, &cookie).await).await,
        verified.user_id
    );
}
