//! Rule (ASVS 5.0 V7.2.4): a login always starts a new session and ends the one presented with
//! it, so a console cookie planted in the admin's browser before they log in (session fixation)
//! or left from an earlier login is dead afterwards.

use crate::console::{console, console_login};
use crate::helpers::{PASSWORD, TestApp, spawn_app};

fn console_cookie_of(response: &reqwest::Response) -> String {
    response
        .cookies()
        .find(|c| c.name() == "chipflap_console")
        .map(|c| c.value().to_owned())
        .expect("a console session cookie")
}

async fn page_with_cookie(app: &TestApp, value: &str) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(console(app, "/users"))
        .header("cookie", format!("chipflap_console={value}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_second_console_login_ends_the_session_it_was_sent_with() {
    let app = spawn_app().await;
    app.admin_user("boss@example.org").await;
    let first = console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(first.status(), 303);
    let first = console_cookie_of(&first);
    assert_eq!(page_with_cookie(&app, &first).await, 200);

    // The same browser logs in again: its cookie jar sends the first session along.
    let second = console_login(&app, "boss@example.org", PASSWORD).await;
    assert_eq!(second.status(), 303);
    let second = console_cookie_of(&second);
    assert_ne!(first, second);
    assert_eq!(
        page_with_cookie(&app, &first).await,
        303,
        "the earlier session ended"
    );
    assert_eq!(page_with_cookie(&app, &second).await, 200);
}
