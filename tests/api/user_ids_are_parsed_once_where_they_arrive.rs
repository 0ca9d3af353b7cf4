//! Rule: a user id that arrives from outside (a path segment, a token's `sub`, a console query
//! field) is read as a UUID where it arrives: anything else gets that endpoint's documented
//! answer, never a 500, and any accepted spelling of a UUID names the same user, whose id is
//! always answered hyphenated and lower-case (as GoTrue prints it).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::console::{get_page, login_admin, post_form};
use crate::helpers::{OPERATOR_TOKEN, assert_gotrue_error, spawn_app};

/// Not UUIDs, each in a form a path segment or a claim can carry.
const NOT_USER_IDS: &[&str] = &[
    "not-a-uuid",
    "123",
    "7d0e4b5a-1c2d-4e3f-8a9b",
    "7d0e4b5a-1c2d-4e3f-8a9b-0c1d2e3f4a5bff",
    "zz0e4b5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
];

/// An HS256 token signed with the test server's secret, with these claims.
fn signed_by_us(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(b"test-secret-test-secret-test-secret!").unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

#[tokio::test]
async fn admin_paths_refuse_a_user_id_that_is_not_a_uuid() {
    let app = spawn_app().await;
    for bad in NOT_USER_IDS {
        let path = format!("/admin/users/{bad}");
        for response in [
            app.get(&path, Some(OPERATOR_TOKEN)).await,
            app.put_json(&path, OPERATOR_TOKEN, &json!({"role": "x"}))
                .await,
            app.delete(&path, OPERATOR_TOKEN).await,
        ] {
            assert_gotrue_error(response, 400, "user_id must be an UUID").await;
        }
        assert_gotrue_error(
            app.get(&format!("{path}/factors"), Some(OPERATOR_TOKEN))
                .await,
            404,
            "User not found",
        )
        .await;
        assert_gotrue_error(
            app.delete(
                &format!("{path}/factors/7d0e4b5a-1c2d-4e3f-8a9b-0c1d2e3f4a5b"),
                OPERATOR_TOKEN,
            )
            .await,
            404,
            "User not found",
        )
        .await;
    }
}

#[tokio::test]
async fn any_spelling_of_a_users_uuid_names_that_user_and_is_answered_lower_case() {
    let app = spawn_app().await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    assert_eq!(id, id.to_lowercase());
    for spelling in [
        id.to_uppercase(),
        id.replace('-', ""),
        format!("{{{id}}}"),
        format!("urn:uuid:{id}"),
    ] {
        let r = app
            .get(&format!("/admin/users/{spelling}"), Some(OPERATOR_TOKEN))
            .await;
        assert_eq!(r.status(), 200, "{spelling}");
        let user: Value = r.json().await.unwrap();
        assert_eq!(user["id"], id.as_str(), "{spelling}");
    }
}

#[tokio::test]
async fn a_token_whose_subject_is_not_a_user_id_acts_for_nobody() {
    let app = spawn_app().await;
    let exp = app.clock.now().unix() + 600;
    for bad in NOT_USER_IDS
        .iter()
        .copied()
        .chain(["00000000-0000-0000-0000-000000000001x"])
    {
        let token = signed_by_us(&json!({"exp": exp, "sub": bad}));
        assert_gotrue_error(
            app.get("/user", Some(&token)).await,
            400,
            "Could not read User ID claim",
        )
        .await;
        assert_gotrue_error(
            app.get("/admin/users", Some(&token)).await,
            401,
            "Invalid admin user",
        )
        .await;
        let r = app
            .client
            .get(format!("{}/.netlify/functions/ably-jwt", app.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            body["error"]["message"], "This token does not belong to a user",
            "{bad}"
        );
    }
}

#[tokio::test]
async fn console_pages_and_actions_answer_not_found_for_a_user_id_that_is_not_a_uuid() {
    let app = spawn_app().await;
    let csrf = login_admin(&app).await;
    for bad in NOT_USER_IDS {
        assert_eq!(get_page(&app, &format!("/users/{bad}")).await.0, 404);
        assert_eq!(get_page(&app, &format!("/users/{bad}/delete")).await.0, 404);
        for action in [
            "ban",
            "unban",
            "confirm",
            "resend-confirmation",
            "send-recovery",
            "roles",
            "end-sessions",
            "reset-mfa",
            "delete",
        ] {
            let r = post_form(&app, &format!("/users/{bad}/{action}"), &[("csrf", &csrf)]).await;
            assert_eq!(r.status(), 404, "{action} {bad}");
        }
    }
}

/// The "N entries" count an audit page shows.
fn entries_shown(html: &str) -> u64 {
    let end = html
        .find(" entr")
        .unwrap_or_else(|| panic!("no count in {html}"));
    let digits: String = html[..end]
        .chars()
        .rev()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.chars().rev().collect::<String>().parse().unwrap()
}

#[tokio::test]
async fn the_console_audit_filter_reads_a_user_id_or_filters_nothing() {
    let app = spawn_app().await;
    login_admin(&app).await;
    let t = app.confirmed_user("ada@example.org").await;
    let id = app.user_id(t["access_token"].as_str().unwrap()).await;
    let (_, everything) = get_page(&app, "/audit").await;
    let (_, about_ada) = get_page(&app, &format!("/audit?user={id}")).await;
    assert!(about_ada.contains("user_signedup"), "{about_ada}");
    assert!(entries_shown(&about_ada) < entries_shown(&everything));
    // Another spelling of the id filters to the same entries; the form shows it lower-case.
    let (status, html) = get_page(&app, &format!("/audit?user={}", id.to_uppercase())).await;
    assert_eq!(status, 200);
    assert_eq!(entries_shown(&html), entries_shown(&about_ada));
    assert!(
        html.contains(&format!(r#"name="user" value="{id}""#)),
        "{html}"
    );
    // Text that is not a user id filters nothing and is not echoed back.
    let (status, html) = get_page(&app, "/audit?user=not-a-uuid").await;
    assert_eq!(status, 200);
    assert_eq!(entries_shown(&html), entries_shown(&everything));
    assert!(!html.contains("not-a-uuid"), "{html}");
}
