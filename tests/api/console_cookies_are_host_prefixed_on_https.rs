//! Rule: on an https site every console cookie carries the `__Host-` prefix (Secure, `Path=/`,
//! no `Domain`), so a sibling subdomain or a plain-http page cannot plant or shadow it; the
//! unprefixed name is not accepted there.

use reqwest::Response;

use crate::console::csrf_in;
use crate::helpers::{PASSWORD, TestApp, spawn_app_with, test_from};
use chipflap::mail::Mailer;

fn set_cookies(r: &Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_named(r: &Response, name: &str) -> String {
    set_cookies(r)
        .into_iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", set_cookies(r)))
}

/// A cookie the browser keeps under the `__Host-` rules.
fn assert_host_cookie(cookie: &str) {
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attributes.iter().any(|a| a == "secure"), "{cookie}");
    assert!(attributes.iter().any(|a| a == "path=/"), "{cookie}");
    assert!(
        !attributes.iter().any(|a| a.starts_with("domain")),
        "{cookie}"
    );
    assert!(attributes.iter().any(|a| a == "httponly"), "{cookie}");
    assert!(
        attributes.iter().any(|a| a == "samesite=strict"),
        "{cookie}"
    );
}

fn value(cookie: &str) -> &str {
    cookie.split(';').next().unwrap().split_once('=').unwrap().1
}

async fn https_site() -> TestApp {
    spawn_app_with(
        |s| s.http.site_url = "https://site.test".parse().unwrap(),
        Mailer::memory(test_from()),
    )
    .await
}

#[tokio::test]
async fn console_cookies_are_host_prefixed_on_https_sites() {
    let app = https_site().await;
    app.admin_user("boss@example.org").await;
    // No cookie store: the test plays the browser and sends exactly the cookies it names.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = |path: &str| format!("{}/console{path}", app.base);

    let r = browser.get(page("/login")).send().await.unwrap();
    let csrf_cookie = cookie_named(&r, "__Host-chipflap_login_csrf");
    assert_host_cookie(&csrf_cookie);
    let csrf = csrf_in(&r.text().await.unwrap());

    let r = browser
        .post(page("/login"))
        .header(
            "cookie",
            format!("__Host-chipflap_login_csrf={}", value(&csrf_cookie)),
        )
        .form(&[
            ("email", "boss@example.org"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session_cookie = cookie_named(&r, "__Host-chipflap_console");
    assert_host_cookie(&session_cookie);
    assert!(
        !set_cookies(&r)
            .iter()
            .any(|c| c.starts_with("chipflap_console=")),
        "no unprefixed session cookie on https"
    );
    let session = value(&session_cookie).to_owned();

    let r = browser
        .get(page("/users"))
        .header("cookie", format!("__Host-chipflap_console={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // The attacker's side: a cookie under the unprefixed name (which a sibling subdomain or a
    // plain-http response could set) is not a session on an https site.
    let r = browser
        .get(page("/users"))
        .header("cookie", format!("chipflap_console={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/login");

    // Logging out clears the prefixed cookie with attributes the browser accepts.
    let r = browser
        .get(page("/users"))
        .header("cookie", format!("__Host-chipflap_console={session}"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_in(&r.text().await.unwrap());
    let r = browser
        .post(page("/logout"))
        .header("cookie", format!("__Host-chipflap_console={session}"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let gone = cookie_named(&r, "__Host-chipflap_console");
    assert_host_cookie(&gone);
    assert_eq!(value(&gone), "");
}
