//! The Ably token endpoint `/.netlify/functions/ably-jwt` and revocation on ban.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, spawn_app_with, test_from};
use crate::support::ably_standin::{AblyStandIn, Answer};
use chipflap::auth::ably::{AblyKey, Capability};
use chipflap::config::Settings;
use chipflap::mail::Mailer;

const KEY: &str = "appId1.keyId1:s3cr3tKeyValue_ForTests-0123";
const SECRET: &str = "s3cr3tKeyValue_ForTests-0123";

fn with_ably(settings: &mut Settings, rest_url: &str) {
    settings.ably.key = Some(AblyKey::parse(KEY).unwrap());
    settings.ably.revoke_on_ban = true;
    settings.ably.rest_url = rest_url.parse().unwrap();
    settings.ably.role_capabilities.insert(
        "editor".into(),
        Capability::parse(r#"{"chat:*":["publish"],"user:{clientId}":["presence","subscribe"]}"#)
            .unwrap(),
    );
}

async fn app_with_ably(answer: Answer) -> (TestApp, AblyStandIn) {
    let standin = AblyStandIn::start(answer).await;
    let url = standin.url.clone();
    let app = spawn_app_with(move |s| with_ably(s, &url), Mailer::memory(test_from())).await;
    (app, standin)
}

fn endpoint(app: &TestApp, query: &str) -> String {
    format!("{}/.netlify/functions/ably-jwt{query}", app.base)
}

/// Checks the signature with the key secret and answers the claims.
fn verify_ably_jwt(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{}.{}", parts[0], parts[1]).as_bytes());
    mac.verify_slice(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .expect("signature verifies");
    let decode =
        |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (decode(parts[0]), decode(parts[1]))
}

async fn logged_in(app: &TestApp, email: &str) -> (String, String) {
    let t = app.confirmed_user(email).await;
    let token = t["access_token"].as_str().unwrap().to_owned();
    let id = app.user_id(&token).await;
    (token, id)
}

async fn assert_ably_error(response: reqwest::Response, status: u16, code: u32) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert_eq!(response.headers()["x-ably-errorcode"], code.to_string());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], code);
    assert_eq!(body["error"]["statusCode"], status);
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_confirmed_user_gets_a_signed_ably_jwt() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (token, id) = logged_in(&app, "ada@example.org").await;
    let r = app
        .client
        .get(endpoint(&app, ""))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/jwt");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let jwt = r.text().await.unwrap();
    assert!(jwt.len() < 4096);
    let (header, claims) = verify_ably_jwt(&jwt);
    assert_eq!(
        header,
        json!({"typ": "JWT", "alg": "HS256", "kid": "appId1.keyId1"})
    );
    let now = crate::helpers::START;
    assert_eq!(claims["iat"], now - 5);
    assert_eq!(claims["exp"], now - 5 + 3600);
    assert_eq!(claims["x-ably-capability"], r#"{"*":["subscribe"]}"#);
    assert_eq!(claims["x-ably-clientId"], id.as_str());
    let keys: Vec<&String> = claims.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["iat", "exp", "x-ably-capability", "x-ably-clientId"]);
    // Each issue is audited, without the token.
    let r = app
        .get(
            "/admin/audit?query=action:ably_token_issued",
            Some(OPERATOR_TOKEN),
        )
        .await;
    let entries: Value = r.json().await.unwrap();
    assert_eq!(entries[0]["payload"]["traits"]["user_id"], id.as_str());
    assert!(!entries.to_string().contains(&jwt));
}

#[tokio::test]
async fn the_nf_jwt_cookie_the_id_parameter_and_form_posts_work() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (token, id) = logged_in(&app, "ada@example.org").await;
    let r = app
        .client
        .get(endpoint(
            &app,
            &format!("?id={id}&rnd=123&ttl=99999999&capability=%7B%22*%22%3A%5B%22*%22%5D%7D"),
        ))
        .header("cookie", format!("nf_jwt={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, claims) = verify_ably_jwt(&r.text().await.unwrap());
    assert_eq!(
        claims["x-ably-capability"], r#"{"*":["subscribe"]}"#,
        "client capability ignored"
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600,
        "client ttl ignored"
    );
    let r = app
        .client
        .post(endpoint(&app, ""))
        .bearer_auth(&token)
        .form(&[("clientId", id.as_str()), ("format", "jwt")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn refusals_distinguish_no_session_from_not_allowed() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (token, _) = logged_in(&app, "ada@example.org").await;
    assert_ably_error(
        app.client.get(endpoint(&app, "")).send().await.unwrap(),
        401,
        40100,
    )
    .await;
    assert_ably_error(
        app.client
            .get(endpoint(&app, ""))
            .bearer_auth("garbage")
            .send()
            .await
            .unwrap(),
        401,
        40100,
    )
    .await;
    let other = uuid::Uuid::new_v4();
    let message = assert_ably_error(
        app.client
            .get(endpoint(&app, &format!("?id={other}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        403,
        40300,
    )
    .await;
    assert_eq!(message, "id does not match the logged-in user");
    assert_ably_error(
        app.client
            .get(endpoint(&app, "?clientId=someone-else"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        403,
        40300,
    )
    .await;
    // Expired access token.
    app.advance(Duration::from_secs(3601));
    assert_ably_error(
        app.client
            .get(endpoint(&app, ""))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
        401,
        40100,
    )
    .await;
}

#[tokio::test]
async fn banned_unconfirmed_and_deleted_users_get_403() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (token, id) = logged_in(&app, "ada@example.org").await;
    let ask = |token: String| {
        let url = endpoint(&app, "");
        let client = app.client.clone();
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    };
    // Banned by role: the still-unexpired access token no longer gets an Ably token.
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": ["banned"]}}),
    )
    .await;
    assert_eq!(
        assert_ably_error(ask(token.clone()).await, 403, 40300).await,
        "User is banned"
    );
    // Banned by banned_until.
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": []}, "ban_duration": "2h"}),
    )
    .await;
    assert_ably_error(ask(token.clone()).await, 403, 40300).await;
    app.advance(Duration::from_secs(2 * 3600));
    let fresh: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        ask(fresh["access_token"].as_str().unwrap().to_owned())
            .await
            .status(),
        200
    );

    // Unconfirmed: a valid token for a user who never confirmed.
    app.post_signup("new@example.org", PASSWORD).await;
    let pending: Value = app
        .get("/admin/users?filter=new@", Some(OPERATOR_TOKEN))
        .await
        .json()
        .await
        .unwrap();
    let pending_id: chipflap::domain::user::UserId =
        pending["users"][0]["id"].as_str().unwrap().parse().unwrap();
    let user = chipflap::services::admin_users::get_user(&app.state, pending_id)
        .await
        .unwrap();
    // Unconfirmed users cannot log in, so the live session is made in the store directly.
    let session_id = uuid::Uuid::new_v4();
    chipflap::db::sessions::insert_session(app.db(), session_id, user.id, app.clock.now())
        .await
        .unwrap();
    let unconfirmed_token = app
        .state
        .jwt
        .issue(&chipflap::auth::jwt::AccessClaims {
            aud: "",
            exp: app.clock.now().unix() + 600,
            sub: user.id,
            email: &user.email,
            app_metadata: &user.app_metadata,
            user_metadata: &user.user_metadata,
            session_id,
            aal: "aal1",
            amr: &[],
        })
        .unwrap();
    assert_eq!(
        assert_ably_error(ask(unconfirmed_token).await, 403, 40300).await,
        "Email not confirmed"
    );

    // Deleted.
    let fresh = fresh["access_token"].as_str().unwrap().to_owned();
    app.delete(&format!("/admin/users/{id}"), OPERATOR_TOKEN)
        .await;
    assert_eq!(
        assert_ably_error(ask(fresh).await, 403, 40300).await,
        "User not found"
    );
}

#[tokio::test]
async fn role_capabilities_are_added_and_client_id_substituted() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (_, id) = logged_in(&app, "ada@example.org").await;
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"app_metadata": {"roles": ["editor", "unknown"]}}),
    )
    .await;
    let t: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let r = app
        .client
        .get(endpoint(&app, ""))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (_, claims) = verify_ably_jwt(&r.text().await.unwrap());
    assert_eq!(
        claims["x-ably-capability"],
        format!(
            r#"{{"*":["subscribe"],"chat:*":["publish"],"user:{id}":["presence","subscribe"]}}"#
        )
    );
}

#[tokio::test]
async fn format_token_request_answers_a_token_request_whose_mac_verifies() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (token, id) = logged_in(&app, "ada@example.org").await;
    let r = app
        .client
        .get(endpoint(&app, "?format=token_request"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let tr: Value = r.json().await.unwrap();
    assert_eq!(tr["keyName"], "appId1.keyId1");
    assert_eq!(tr["ttl"], 3_600_000);
    assert_eq!(tr["clientId"], id.as_str());
    assert_eq!(tr["timestamp"], crate::helpers::START * 1000);
    let nonce = tr["nonce"].as_str().unwrap();
    assert_eq!(nonce.len(), 32);
    let sign_text = format!(
        "appId1.keyId1\n3600000\n{}\n{id}\n{}\n{nonce}\n",
        tr["capability"].as_str().unwrap(),
        tr["timestamp"]
    );
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(sign_text.as_bytes());
    assert_eq!(tr["mac"], STANDARD.encode(mac.finalize().into_bytes()));
    // The form-body variant.
    let r = app
        .client
        .post(endpoint(&app, ""))
        .bearer_auth(&token)
        .form(&[("format", "token_request")])
        .send()
        .await
        .unwrap();
    assert!(r.json::<Value>().await.unwrap().get("mac").is_some());
}

#[tokio::test]
async fn without_a_key_the_endpoint_answers_503_and_the_rest_runs() {
    let app = crate::helpers::spawn_app().await;
    let (token, _) = logged_in(&app, "ada@example.org").await;
    let r = app
        .client
        .get(endpoint(&app, ""))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ABLY_APIKEY")
    );
}

#[tokio::test]
async fn a_ban_sends_exactly_one_revocation() {
    for answer in [Answer::List, Answer::Batch] {
        let (app, standin) = app_with_ably(answer).await;
        let (_, id) = logged_in(&app, "ada@example.org").await;
        // A change that is not a ban revokes nothing.
        app.put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"user_metadata": {"x": 1}}),
        )
        .await;
        app.put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"app_metadata": {"roles": ["banned"]}}),
        )
        .await;
        app.settle().await;
        let requests = standin.requests();
        assert_eq!(requests.len(), 1, "{answer:?}: {requests:?}");
        let r = &requests[0];
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/keys/appId1.keyId1/revokeTokens");
        assert_eq!(r.authorization, format!("Basic {}", STANDARD.encode(KEY)));
        assert_eq!(r.content_type, "application/json");
        assert_eq!(
            serde_json::from_str::<Value>(&r.body).unwrap(),
            json!({"targets": [format!("clientId:{id}")]})
        );
        let audit: Value = app
            .get(
                "/admin/audit?query=action:ably_tokens_revoked",
                Some(OPERATOR_TOKEN),
            )
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(
            audit[0]["payload"]["traits"]["user_id"],
            id.as_str(),
            "{answer:?}"
        );
    }
}

#[tokio::test]
async fn a_failed_revocation_is_audited_and_the_ban_holds() {
    let (app, standin) = app_with_ably(Answer::Failure).await;
    let (token, id) = logged_in(&app, "ada@example.org").await;
    let r = app
        .put_json(
            &format!("/admin/users/{id}"),
            OPERATOR_TOKEN,
            &json!({"ban_duration": "24h"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.settle().await;
    assert_eq!(standin.requests().len(), 1);
    let audit: Value = app
        .get(
            "/admin/audit?query=action:ably_revocation_failed",
            Some(OPERATOR_TOKEN),
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit[0]["payload"]["traits"]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    let r = app
        .client
        .get(endpoint(&app, ""))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn revocation_can_be_turned_off() {
    let standin = AblyStandIn::start(Answer::List).await;
    let url = standin.url.clone();
    let app = spawn_app_with(
        move |s| {
            with_ably(s, &url);
            s.ably.revoke_on_ban = false;
        },
        Mailer::memory(test_from()),
    )
    .await;
    let (_, id) = logged_in(&app, "ada@example.org").await;
    app.put_json(
        &format!("/admin/users/{id}"),
        OPERATOR_TOKEN,
        &json!({"ban_duration": "1h"}),
    )
    .await;
    app.settle().await;
    assert!(standin.requests().is_empty());
}

#[tokio::test]
async fn a_malformed_parameter_does_not_switch_the_checks_off() {
    let (app, _) = app_with_ably(Answer::List).await;
    let (token, _) = logged_in(&app, "ada@example.org").await;
    let r = app
        .client
        .get(endpoint(&app, "?clientId=bob&x=%FF%FE"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_ably_error(r, 403, 40300).await;
}

#[tokio::test]
async fn deleting_a_user_revokes_their_live_ably_tokens() {
    let (app, standin) = app_with_ably(Answer::List).await;
    let (_, id) = logged_in(&app, "ada@example.org").await;
    app.delete(&format!("/admin/users/{id}"), OPERATOR_TOKEN)
        .await;
    app.settle().await;
    let requests = standin.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].body.contains(&format!("clientId:{id}")));
}
