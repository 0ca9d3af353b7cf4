//! Shared by the session tests: a server with an Ably key, logins that keep the cookies the
//! server sets, and one probe per path that authenticates a user.

use reqwest::Response;
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, TestApp, spawn_app_with, test_from};
use chipflap::auth::ably::AblyKey;
use chipflap::mail::Mailer;

pub const ABLY_KEY: &str = "appId1.keyId1:s3cr3tKeyValue_ForTests-0123";

/// A server whose Ably endpoint is configured (no revocation calls leave the machine).
pub async fn spawn_app_with_ably() -> TestApp {
    spawn_app_with(
        |s| {
            s.ably.key = Some(AblyKey::parse(ABLY_KEY).unwrap());
            s.ably.revoke_on_ban = false;
        },
        Mailer::memory(test_from()),
    )
    .await
}

/// A client without a cookie jar: every cookie a request carries is written by the test.
pub fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// One login as the seed page's widget makes it (`X-Use-Cookie: 1`), with what it left behind.
#[derive(Debug, Clone)]
pub struct Login {
    pub access_token: String,
    pub refresh_token: String,
    pub user_id: String,
    pub session_id: String,
    /// The `nf_jwt` and session cookies' values.
    pub nf_jwt: String,
    pub session_cookie: String,
    /// The raw `Set-Cookie` headers.
    pub set_cookies: Vec<String>,
}

pub fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `name`'s value in the response's `Set-Cookie` headers.
pub fn cookie_in(set_cookies: &[String], name: &str) -> Option<String> {
    set_cookies.iter().find_map(|c| {
        let (pair, _) = c.split_once(';').unwrap_or((c, ""));
        let (n, v) = pair.split_once('=')?;
        (n == name).then(|| v.to_owned())
    })
}

pub fn set_cookies(response: &Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// A token response read as a `Login` (cookies may be absent: then empty strings).
pub async fn read_login(response: Response) -> Login {
    assert_eq!(response.status(), 200);
    let set_cookies = set_cookies(&response);
    let body: Value = response.json().await.unwrap();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&access_token);
    Login {
        refresh_token: body["refresh_token"].as_str().unwrap().to_owned(),
        user_id: c["sub"].as_str().unwrap().to_owned(),
        session_id: c["session_id"].as_str().unwrap().to_owned(),
        nf_jwt: cookie_in(&set_cookies, "nf_jwt").unwrap_or_default(),
        session_cookie: cookie_in(&set_cookies, "chipflap_session").unwrap_or_default(),
        access_token,
        set_cookies,
    }
}

/// The password grant with `X-Use-Cookie` (`1`, or `session` for browser-session cookies).
pub async fn login_as(app: &TestApp, email: &str, password: &str, use_cookie: &str) -> Response {
    bare_client()
        .post(app.url("/token"))
        .header("x-use-cookie", use_cookie)
        .form(&[
            ("grant_type", "password"),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

pub async fn login(app: &TestApp, email: &str) -> Login {
    read_login(login_as(app, email, PASSWORD, "1").await).await
}

/// The refresh grant with `X-Use-Cookie: 1`.
pub async fn refresh(app: &TestApp, refresh_token: &str) -> Response {
    bare_client()
        .post(app.url("/token"))
        .header("x-use-cookie", "1")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
}

pub fn ably_url(app: &TestApp, user_id: &str) -> String {
    format!("{}/.netlify/functions/ably-jwt?id={user_id}", app.base)
}

/// The Ably endpoint with exactly this `Cookie` header (as the seed page sends it).
pub async fn ably_with_cookies(app: &TestApp, user_id: &str, cookies: &str) -> Response {
    bare_client()
        .get(ably_url(app, user_id))
        .header("cookie", cookies)
        .send()
        .await
        .unwrap()
}

/// Status and, for refusals, the message (GoTrue's `msg` or Ably's `error.message`).
pub async fn outcome(response: Response) -> (u16, String) {
    let status = response.status().as_u16();
    if status < 400 {
        return (status, String::new());
    }
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let msg = body["msg"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .unwrap_or("")
        .to_owned();
    (status, msg)
}

/// Every path that authenticates a user with something from `login`, each with its outcome;
/// `/logout` last, and only `with_logout` (when it succeeds it ends the sessions).
pub async fn probe_paths(
    app: &TestApp,
    login: &Login,
    with_logout: bool,
) -> Vec<(&'static str, u16, String)> {
    let client = bare_client();
    let token = &login.access_token;
    let mut seen = Vec::new();
    let r = client
        .get(app.url("/user"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, m) = outcome(r).await;
    seen.push(("GET /user", s, m));
    let r = client
        .put(app.url("/user"))
        .bearer_auth(token)
        .json(&json!({"data": {"probe": true}}))
        .send()
        .await
        .unwrap();
    let (s, m) = outcome(r).await;
    seen.push(("PUT /user", s, m));
    let r = client
        .get(app.url("/admin/users"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, m) = outcome(r).await;
    seen.push(("GET /admin/users", s, m));
    let r = client
        .get(ably_url(app, &login.user_id))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, m) = outcome(r).await;
    seen.push(("Ably, Bearer", s, m));
    let r = ably_with_cookies(app, &login.user_id, &format!("nf_jwt={}", login.nf_jwt)).await;
    let (s, m) = outcome(r).await;
    seen.push(("Ably, nf_jwt", s, m));
    let r = ably_with_cookies(
        app,
        &login.user_id,
        &format!("chipflap_session={}", login.session_cookie),
    )
    .await;
    let (s, m) = outcome(r).await;
    seen.push(("Ably, session cookie", s, m));
    if !with_logout {
        return seen;
    }
    let r = client
        .post(app.url("/logout"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let (s, m) = outcome(r).await;
    seen.push(("POST /logout", s, m));
    seen
}

/// `probe_paths` with `/logout`.
pub async fn probe_every_path(app: &TestApp, login: &Login) -> Vec<(&'static str, u16, String)> {
    probe_paths(app, login, true).await
}
