//! Rule: no input makes the server answer 500 or fall over. proptest generates at least 5,000
//! bad requests per run against every JSON and form endpoint (the GoTrue API, the Ably
//! endpoint, the console's forms): structured JSON with the endpoints' own field names and
//! values of every wrong type, raw bytes, truncated documents, hostile headers and query strings.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Value, json};

use crate::console::{console_login, csrf_in, get_page, user_id_of};
use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app_with};

/// At least this many generated requests per run (the floor).
const CASES: u32 = 5_000;

/// Every field name any endpoint reads, so generated bodies reach past "unknown field".
const FIELDS: &[&str] = &[
    "email",
    "password",
    "data",
    "app_metadata",
    "user_metadata",
    "role",
    "confirm",
    "ban_duration",
    "ban_reason",
    "type",
    "token",
    "redirect_to",
    "grant_type",
    "username",
    "refresh_token",
    "email_change_token",
    "id",
    "clientId",
    "format",
    "csrf",
    "duration",
    "reason",
    "roles",
    "confirmation",
    "aud",
    "provider",
    "roles[]",
    "full_name",
    "current_password",
    "code",
    "challenge_id",
    "factor_type",
    "friendly_name",
    "key",
];

#[derive(Debug, Clone, Copy)]
enum Auth {
    None,
    User,
    Operator,
    Garbage,
}

/// One endpoint: method, path (`{id}` is replaced by a real or a made-up id), body kind.
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    method: &'static str,
    path: &'static str,
    form: bool,
}

const fn json_ep(method: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        method,
        path,
        form: false,
    }
}

const fn form_ep(method: &'static str, path: &'static str) -> Endpoint {
    Endpoint {
        method,
        path,
        form: true,
    }
}

const ENDPOINTS: &[Endpoint] = &[
    json_ep("POST", "/.netlify/identity/signup"),
    form_ep("POST", "/.netlify/identity/token"),
    json_ep("POST", "/.netlify/identity/token"),
    json_ep("POST", "/.netlify/identity/verify"),
    json_ep("POST", "/.netlify/identity/recover"),
    json_ep("GET", "/.netlify/identity/user"),
    json_ep("PUT", "/.netlify/identity/user"),
    json_ep("POST", "/.netlify/identity/logout"),
    json_ep("POST", "/.netlify/identity/invite"),
    json_ep("GET", "/.netlify/identity/admin/users"),
    json_ep("POST", "/.netlify/identity/admin/users"),
    json_ep("GET", "/.netlify/identity/admin/users/{id}"),
    json_ep("PUT", "/.netlify/identity/admin/users/{id}"),
    json_ep("DELETE", "/.netlify/identity/admin/users/{id}"),
    json_ep("GET", "/.netlify/identity/admin/audit"),
    json_ep("GET", "/.netlify/identity/user/sessions"),
    json_ep("DELETE", "/.netlify/identity/user/sessions/{id}"),
    json_ep("POST", "/.netlify/identity/factors"),
    json_ep("POST", "/.netlify/identity/factors/{id}/challenge"),
    json_ep("POST", "/.netlify/identity/factors/{id}/verify"),
    json_ep("DELETE", "/.netlify/identity/factors/{id}"),
    json_ep("GET", "/.netlify/identity/admin/users/{id}/factors"),
    json_ep("DELETE", "/.netlify/identity/admin/users/{id}/factors/{id}"),
    json_ep("GET", "/.netlify/identity/settings"),
    form_ep("POST", "/.netlify/functions/ably-jwt"),
    form_ep("GET", "/.netlify/functions/ably-jwt"),
    form_ep("POST", "/console/login"),
    form_ep("POST", "/console/invite"),
    form_ep("POST", "/console/users/{id}/ban"),
    form_ep("POST", "/console/users/{id}/unban"),
    form_ep("POST", "/console/users/{id}/roles"),
    form_ep("POST", "/console/users/{id}/confirm"),
    form_ep("POST", "/console/users/{id}/resend-confirmation"),
    form_ep("POST", "/console/users/{id}/send-recovery"),
    form_ep("POST", "/console/users/{id}/delete"),
    form_ep("GET", "/console/users"),
    form_ep("GET", "/console/users/{id}"),
    form_ep("GET", "/console/audit"),
    form_ep("POST", "/console/login/mfa"),
    form_ep("POST", "/console/mfa/enroll"),
    form_ep("POST", "/console/mfa/confirm"),
    form_ep("POST", "/console/mfa/{id}/delete"),
    form_ep("POST", "/console/users/{id}/reset-mfa"),
    form_ep("POST", "/console/sessions/end-all"),
    form_ep("POST", "/console/throttles/clear"),
    form_ep("GET", "/console/sessions"),
    form_ep("GET", "/console/throttles"),
];

/// A generated request, before the live ids and tokens are filled in.
#[derive(Debug, Clone)]
struct Case {
    endpoint: Endpoint,
    real_id: bool,
    made_up_id: String,
    auth: Auth,
    content_type: Option<&'static str>,
    query: Vec<(String, String)>,
    body: Body,
    audience: Option<String>,
    with_csrf: bool,
}

#[derive(Debug, Clone)]
enum Body {
    Fields(Map<String, Value>),
    Json(Value),
    Bytes(Vec<u8>),
    Truncated(Map<String, Value>, usize),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,24}",
        "[a-zA-Z0-9._%+:@-]{0,40}",
        "[^\\x00]{0,8}@[a-zäöüßİı.]{0,12}",
        Just("18000000000000000000s18000000000000000000s".to_owned()),
        Just("a@b@example.test".to_owned()),
        Just("a:b@example.test".to_owned()),
        Just("none".to_owned()),
        Just("\u{0}".to_owned()),
        (0usize..3).prop_map(|n| "x".repeat(10usize.pow(n as u32 + 2))),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        any::<u64>().prop_map(Value::from),
        text().prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(FIELDS).prop_map(str::to_owned),
        1 => ".{0,8}",
    ]
}

fn fields() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(field_name(), json_value(), 0..8)
        .prop_map(|m| m.into_iter().collect())
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        6 => fields().prop_map(Body::Fields),
        1 => json_value().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Body::Bytes),
        1 => (fields(), any::<usize>()).prop_map(|(f, n)| Body::Truncated(f, n)),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(ENDPOINTS),
        any::<bool>(),
        ".{0,40}",
        prop::sample::select(&[Auth::None, Auth::User, Auth::Operator, Auth::Garbage][..]),
        prop::option::of(prop::sample::select(
            &[
                "application/json",
                "application/x-www-form-urlencoded",
                "APPLICATION/X-WWW-FORM-URLENCODED; charset=utf-8",
                "multipart/form-data; boundary=b",
                "multipart/form-data",
                "text/plain",
                "application/json; charset=\"",
                ";;;",
            ][..],
        )),
        prop::collection::vec((field_name(), text()), 0..4),
        body(),
        prop::option::of(text()),
        any::<bool>(),
    )
        .prop_map(
            |(
                endpoint,
                real_id,
                made_up_id,
                auth,
                content_type,
                query,
                body,
                audience,
                with_csrf,
            )| Case {
                endpoint,
                real_id,
                made_up_id,
                auth,
                content_type,
                query,
                body,
                audience,
                with_csrf,
            },
        )
}

/// What the cases need from the live server: a user, their token, the console's CSRF token.
struct Live {
    app: TestApp,
    user_id: String,
    user_token: String,
    csrf: String,
}

fn form_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn encode(case: &Case, live: &Live) -> Vec<u8> {
    let mut fields = match &case.body {
        Body::Fields(f) | Body::Truncated(f, _) => f.clone(),
        Body::Json(_) | Body::Bytes(_) => Map::new(),
    };
    if case.with_csrf {
        fields.insert("csrf".into(), json!(live.csrf));
    }
    match &case.body {
        Body::Bytes(bytes) => bytes.clone(),
        Body::Json(v) => v.to_string().into_bytes(),
        Body::Truncated(..) | Body::Fields(_) if !case.endpoint.form => {
            let full = Value::Object(fields).to_string().into_bytes();
            match &case.body {
                Body::Truncated(_, n) => full[..n % (full.len() + 1)].to_vec(),
                _ => full,
            }
        }
        _ => {
            let pairs: Vec<(String, String)> = fields
                .iter()
                .map(|(k, v)| (k.clone(), form_value(v)))
                .collect();
            serde_urlencoded::to_string(pairs)
                .unwrap_or_default()
                .into_bytes()
        }
    }
}

async fn send(case: &Case, live: &Live) -> (u16, String) {
    let id = if case.real_id {
        live.user_id.clone()
    } else {
        case.made_up_id.clone()
    };
    let path = case.endpoint.path.replace(
        "{id}",
        &percent_encoding::utf8_percent_encode(&id, percent_encoding::NON_ALPHANUMERIC).to_string(),
    );
    let mut url = reqwest::Url::parse(&format!("{}{path}", live.app.base)).unwrap();
    if !case.query.is_empty() {
        url.query_pairs_mut().extend_pairs(case.query.iter());
    }
    let method = reqwest::Method::from_bytes(case.endpoint.method.as_bytes()).unwrap();
    let mut request = live
        .app
        .client
        .request(method, url)
        .body(encode(case, live));
    if let Some(ct) = case.content_type {
        request = request.header("content-type", ct);
    }
    if let Some(aud) = case
        .audience
        .as_deref()
        .filter(|a| reqwest::header::HeaderValue::from_str(a).is_ok())
    {
        request = request.header("x-jwt-aud", aud);
    }
    request = match case.auth {
        Auth::None => request,
        Auth::User => request.bearer_auth(&live.user_token),
        Auth::Operator => request.bearer_auth(OPERATOR_TOKEN),
        Auth::Garbage => request.header("authorization", "Bearer a.b.c"),
    };
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

#[test]
fn no_generated_input_makes_the_server_answer_500_or_die() {
    // Arrange: a server with a user, a logged-in console admin, and generous request budgets.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let live = runtime.block_on(async {
        let app = spawn_app_with(
            |settings| {
                // The Ably endpoint answers tokens; no revocation leaves this machine.
                settings.ably.key =
                    Some(chipflap::auth::ably::AblyKey::parse("app.key:secret").unwrap());
                settings.ably.revoke_on_ban = false;
                // Budgets no run can spend, so cases reach past the throttles (tested on
                // their own in throttles.rs) into the handlers.
                let limits = &mut settings.rate_limits;
                for rate in [
                    &mut limits.token,
                    &mut limits.verify,
                    &mut limits.otp,
                    &mut limits.console_login,
                    &mut limits.password,
                    &mut limits.email_sent,
                ] {
                    rate.burst = 1_000_000;
                }
            },
            chipflap::mail::Mailer::memory(crate::helpers::test_from()),
        )
        .await;
        let token = app.confirmed_user("fuzz@example.org").await;
        app.admin_user("boss@example.org").await;
        assert_eq!(
            console_login(&app, "boss@example.org", PASSWORD)
                .await
                .status(),
            303
        );
        let (_, html) = get_page(&app, "/users").await;
        let csrf = csrf_in(&html);
        let user_id = user_id_of(&app, "fuzz@example.org").await;
        Live {
            user_token: token["access_token"].as_str().unwrap().to_owned(),
            app,
            user_id,
            csrf,
        }
    });
    let live = Arc::new(live);
    let sent = Arc::new(AtomicUsize::new(0));

    // Act: every generated request; a 5xx fails the case (and proptest shrinks it).
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        max_shrink_iters: 200,
        ..Config::default()
    });
    let result = runner.run(&case(), |case| {
        let (status, body) = runtime.block_on(send(&case, &live));
        sent.fetch_add(1, Ordering::Relaxed);
        prop_assert!(status < 500, "{status} {body} for {case:?}");
        Ok(())
    });

    // Assert: no case failed, at least CASES ran, and the server still answers.
    result.unwrap();
    assert!(sent.load(Ordering::Relaxed) >= CASES as usize);
    let alive = runtime.block_on(live.app.get("/health", None));
    assert_eq!(alive.status(), 200);
}
