//! The site at `/`: a static directory, or the built-in demo page.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{spawn_app, spawn_app_with, test_from};
use chipflap::mail::Mailer;

fn site_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("site/docs/empty")).unwrap();
    std::fs::write(root.join("site/index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(root.join("site/docs/index.html"), "<h1>docs</h1>").unwrap();
    std::fs::write(root.join("site/app.js"), "console.log(1)").unwrap();
    std::fs::write(root.join("site/style.css"), "body{}").unwrap();
    std::fs::write(root.join("site/.env"), "SECRET=hidden").unwrap();
    std::fs::write(root.join("secret.txt"), "outside the site").unwrap();
    dir
}

async fn site_app(dir: &tempfile::TempDir) -> crate::helpers::TestApp {
    let site = dir.path().join("site").canonicalize().unwrap();
    spawn_app_with(
        move |s| s.http.site_dir = Some(site),
        Mailer::memory(test_from()),
    )
    .await
}

/// Sends the request line exactly as written: HTTP clients would normalise `..` away.
async fn raw_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response[9..12].parse().unwrap();
    (status, response)
}

#[tokio::test]
async fn the_site_directory_is_served_with_types_and_caching() {
    let dir = site_fixture();
    let app = site_app(&dir).await;
    let r = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert!(r.headers().contains_key("etag"));
    assert_eq!(r.text().await.unwrap(), "<h1>home</h1>");
    let r = app
        .client
        .get(format!("{}/app.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    assert_eq!(r.headers()["cache-control"], "public, max-age=300");
    let r = app
        .client
        .get(format!("{}/style.css", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    // Directories: redirect to the slash form, then the index; no listings.
    let r = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 301);
    assert_eq!(r.headers()["location"], "/docs/");
    let r = app
        .client
        .get(format!("{}/docs/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "<h1>docs</h1>");
    let r = app
        .client
        .get(format!("{}/docs/empty/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The API and the console still win over the site.
    assert_eq!(app.get("/health", None).await.status(), 200);
    // A HEAD works too.
    let r = app
        .client
        .head(format!("{}/app.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn path_traversal_attempts_answer_404_and_read_nothing() {
    let dir = site_fixture();
    let app = site_app(&dir).await;
    for path in [
        "/../secret.txt",
        "/docs/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/docs/..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/%252e%252e/secret.txt",
        "/.env",
        "/%2eenv",
        "/app.js%00.html",
        "//secret.txt",
    ] {
        let (status, body) = raw_get(&app.base, path).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
        assert!(
            !body.contains("outside the site") && !body.contains("SECRET"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn without_a_site_directory_the_demo_page_is_served() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("data-netlify-identity-menu") && html.contains("id=\"authenticate\""));
    // By default the scripts come from the CDN, pinned with Subresource Integrity.
    assert!(html.contains("https://cdn.jsdelivr.net/npm/netlify-identity-widget@2.0.3/build/netlify-identity-widget.js"));
    assert!(html.contains("integrity=\"sha384-"));
    assert!(!html.contains("<script>"), "no inline scripts");
    let r = app
        .client
        .get(format!("{}/demo.js", app.base))
        .send()
        .await
        .unwrap();
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("/.netlify/functions/ably-jwt?id=")
    );
    assert_eq!(
        app.client
            .get(format!("{}/vendor/ably.min.js", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
}

#[tokio::test]
async fn the_vendor_setting_serves_the_scripts_locally() {
    let vendor = tempfile::tempdir().unwrap();
    std::fs::write(
        vendor.path().join("netlify-identity-widget.js"),
        "/* widget */",
    )
    .unwrap();
    std::fs::write(vendor.path().join("ably.min.js"), "/* ably */").unwrap();
    std::fs::write(vendor.path().join("other.js"), "/* not served */").unwrap();
    let dir = vendor.path().canonicalize().unwrap();
    let app = spawn_app_with(
        move |s| s.http.demo_vendor_dir = Some(dir),
        Mailer::memory(test_from()),
    )
    .await;
    let html = app
        .client
        .get(format!("{}/", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("src=\"/vendor/netlify-identity-widget.js\"")
            && !html.contains("cdn.jsdelivr")
    );
    let r = app
        .client
        .get(format!("{}/vendor/ably.min.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "/* ably */");
    assert_eq!(
        app.client
            .get(format!("{}/vendor/other.js", app.base))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let (status, _) = raw_get(&app.base, "/vendor/../vendor/other.js").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn directory_redirects_never_leave_the_host() {
    let dir = site_fixture();
    let app = site_app(&dir).await;
    let (status, response) = raw_get(&app.base, "//docs").await;
    assert_eq!(status, 301);
    assert!(response.contains("location: /docs/\r\n"), "{response}");
}

#[cfg(unix)]
#[tokio::test]
async fn links_to_hidden_files_or_out_of_the_root_are_not_followed() {
    let dir = site_fixture();
    let site = dir.path().join("site");
    std::fs::create_dir(site.join("linked")).unwrap();
    std::os::unix::fs::symlink(
        dir.path().join("secret.txt"),
        site.join("linked/index.html"),
    )
    .unwrap();
    std::os::unix::fs::symlink(site.join(".env"), site.join("cfg")).unwrap();
    let app = site_app(&dir).await;
    for path in ["/linked/", "/cfg"] {
        let (status, body) = raw_get(&app.base, path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            !body.contains("outside the site") && !body.contains("SECRET"),
            "{path}"
        );
    }
}
