//! Rule: every refused password login (API and console) is logged and audited with the client
//! IP, the user agent and the normalized account identifier, never the password; the answers
//! do not change, and throttled guesses add no rows.

use serde_json::Value;

use crate::console::{console_login, login_admin};
use crate::helpers::{OPERATOR_TOKEN, PASSWORD, TestApp, assert_oauth_error, spawn_app_with};
use chipflap::mail::Mailer;

const WRONG: &str = "not the password 7781";
const AGENT: &str = "attacker-agent/1.0";

async fn app_behind_a_proxy() -> TestApp {
    spawn_app_with(
        |s| s.rate_limits.header = Some("X-Forwarded-For".into()),
        Mailer::memory(crate::helpers::test_from()),
    )
    .await
}

async fn token_from(app: &TestApp, ip: &str, username: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.url("/token"))
        .header("x-forwarded-for", format!("{ip}, 10.0.0.1"))
        .header("user-agent", AGENT)
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

async fn audit(app: &TestApp, action: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/admin/audit?query=action:{action}"),
            Some(OPERATOR_TOKEN),
        )
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Vec<Value>>().await.unwrap()
}

#[tokio::test]
async fn failed_logins_are_audited_with_ip_user_agent_and_normalized_identifier() {
    let app = app_behind_a_proxy().await;
    let ada = app.confirmed_user("ada@example.org").await;
    let ada_id = app.user_id(ada["access_token"].as_str().unwrap()).await;

    // A wrong password for a real account, typed with other case and spaces.
    let wrong = token_from(&app, "203.0.113.7", "  ADA@Example.ORG ", WRONG).await;
    // An unknown address: the same answer, byte for byte.
    let unknown = token_from(&app, "203.0.113.8", "Nobody@Example.org", WRONG).await;
    let (wrong_status, wrong_body) = (wrong.status(), wrong.text().await.unwrap());
    let (unknown_status, unknown_body) = (unknown.status(), unknown.text().await.unwrap());
    assert_eq!(wrong_status, 400);
    assert_eq!((wrong_status, &wrong_body), (unknown_status, &unknown_body));

    let rows = audit(&app, "login_failed").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let for_ip = |ip: &str| {
        rows.iter()
            .find(|r| r["payload"]["traits"]["ip_address"] == ip)
            .unwrap_or_else(|| panic!("no row for {ip} in {rows:?}"))
            .clone()
    };
    let known = for_ip("203.0.113.7");
    let traits = &known["payload"]["traits"];
    assert_eq!(traits["identifier"], "ada@example.org");
    assert_eq!(traits["user_agent"], AGENT);
    assert_eq!(traits["provider"], "email");
    assert_eq!(traits["reason"], "invalid_credentials");
    assert_eq!(traits["user_id"], ada_id.as_str());
    let stranger = for_ip("203.0.113.8");
    assert_eq!(
        stranger["payload"]["traits"]["identifier"],
        "nobody@example.org"
    );
    assert!(stranger["payload"]["traits"].get("user_id").is_none());
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains(WRONG), "the password reached the audit log");

    // The refusal is only visible to admins: a user's own token cannot read the log.
    let t: Value = app
        .post_token_password("ada@example.org", PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let own = app
        .get(
            "/admin/audit?query=action:login_failed",
            t["access_token"].as_str(),
        )
        .await;
    assert!(own.status().is_client_error(), "{}", own.status());
}

#[tokio::test]
async fn successful_logins_are_audited_with_ip_and_user_agent() {
    let app = app_behind_a_proxy().await;
    app.confirmed_user("ada@example.org").await;
    let r = token_from(&app, "198.51.100.4", "ada@example.org", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let rows = audit(&app, "login").await;
    let traits = &rows[0]["payload"]["traits"];
    assert_eq!(traits["ip_address"], "198.51.100.4");
    assert_eq!(traits["user_agent"], AGENT);
    assert_eq!(traits["provider"], "email");

    // A login through a recovery link too.
    let r = app
        .post_json(
            "/recover",
            None,
            &serde_json::json!({"email": "ada@example.org"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    app.wait_for_emails(2).await;
    let token = app.token_in_last_email("ada@example.org", "recovery").await;
    let r = app
        .client
        .post(app.url("/verify"))
        .header("x-forwarded-for", "198.51.100.5")
        .header("user-agent", AGENT)
        .json(&serde_json::json!({"type": "recovery", "token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rows = audit(&app, "login").await;
    let traits = &rows[0]["payload"]["traits"];
    assert_eq!(traits["via"], "recovery");
    assert_eq!(traits["ip_address"], "198.51.100.5");
    assert_eq!(traits["user_agent"], AGENT);
}

#[tokio::test]
async fn a_right_password_refused_for_another_reason_is_audited_with_that_reason() {
    let app = app_behind_a_proxy().await;
    assert_eq!(
        app.post_signup("eve@example.org", PASSWORD).await.status(),
        200
    );
    let r = token_from(&app, "203.0.113.9", "eve@example.org", PASSWORD).await;
    assert_oauth_error(r, "invalid_grant", "Email not confirmed").await;
    let rows = audit(&app, "login_failed").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0]["payload"]["traits"]["reason"],
        "email_not_confirmed"
    );
    assert!(!serde_json::to_string(&rows).unwrap().contains(PASSWORD));
}

#[tokio::test]
async fn failed_console_logins_are_audited_with_ip_user_agent_and_normalized_identifier() {
    let app = app_behind_a_proxy().await;
    let ada = app.confirmed_user("ada@example.org").await;
    let ada_id = app.user_id(ada["access_token"].as_str().unwrap()).await;
    // The console login goes through the test client: give it the proxy headers per request.
    let page = app
        .client
        .get(format!("{}/console/login", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = crate::console::csrf_in(&page);
    let r = app
        .client
        .post(format!("{}/console/login", app.base))
        .header("x-forwarded-for", "192.0.2.33")
        .header("user-agent", AGENT)
        .form(&[
            ("email", " Ada@EXAMPLE.org"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    // The right password of a non-admin: the same page as a wrong one.
    assert_eq!(r.status(), 200);
    let r = console_login(&app, "ghost@example.org", WRONG).await;
    assert_eq!(r.status(), 200);

    let rows = audit(&app, "login_failed").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let known = rows
        .iter()
        .find(|r| r["payload"]["traits"]["ip_address"] == "192.0.2.33")
        .unwrap();
    let traits = &known["payload"]["traits"];
    assert_eq!(traits["identifier"], "ada@example.org");
    assert_eq!(traits["user_agent"], AGENT);
    assert_eq!(traits["provider"], "console");
    assert_eq!(traits["reason"], "not_admin");
    assert_eq!(traits["user_id"], ada_id.as_str());
    let ghost = rows
        .iter()
        .find(|r| r["payload"]["traits"]["identifier"] == "ghost@example.org")
        .unwrap();
    assert_eq!(ghost["payload"]["traits"]["reason"], "invalid_credentials");
    let all = serde_json::to_string(&rows).unwrap();
    assert!(!all.contains(WRONG) && !all.contains(PASSWORD));

    // A successful console login carries the IP and user agent too.
    login_admin(&app).await;
    let logins = audit(&app, "login").await;
    assert!(
        logins
            .iter()
            .any(|r| r["payload"]["traits"]["provider"] == "console"
                && r["payload"]["traits"].get("ip_address").is_some())
    );
}

#[tokio::test]
async fn throttled_guesses_add_no_audit_rows() {
    let app = app_behind_a_proxy().await;
    app.confirmed_user("ada@example.org").await;
    let mut refused = 0;
    let mut throttled = 0;
    // Many IPs, so only the per-account throttle stops them.
    for i in 0..40 {
        let r = token_from(&app, &format!("203.0.113.{i}"), "ada@example.org", WRONG).await;
        match r.status().as_u16() {
            400 => refused += 1,
            429 => throttled += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(throttled > 0, "the per-account throttle never refused");
    let rows = audit(&app, "login_failed").await;
    assert_eq!(rows.len(), refused, "one row per password check that ran");
}
