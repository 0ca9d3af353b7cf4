//! Everything outside the API and the console: the site from `CHIPFLAP_SITE_DIR`, or the built-in
//! demo page (the seed application) when none is set (DESIGN §1).

use std::path::{Path, PathBuf};

use actix_files::NamedFile;
use actix_web::http::Method;
use actix_web::http::header::{ALLOW, CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use percent_encoding::percent_decode_str;

use crate::state::AppState;

/// Serves `GET`/`HEAD` for any path no other service took; any other method is a 405 with
/// `Allow` (RFC 9110 §15.5.6), never the page.
pub async fn site(state: web::Data<AppState>, request: HttpRequest) -> HttpResponse {
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        return HttpResponse::MethodNotAllowed()
            .insert_header((ALLOW, "GET, HEAD"))
            .finish();
    }
    let settings = &state.settings.http;
    let mut response = match &settings.site_dir {
        Some(root) => serve_file(root, &request).await,
        None => demo(&state, &request).await,
    };
    super::security_headers::add_site_headers(
        response.headers_mut(),
        settings.site_dir.is_none(),
        settings.site_frame_ancestors.as_deref(),
    );
    response
}

/// A file from the site directory: index files for directories, content types by extension,
/// validators (ETag, Last-Modified) and caching headers, no listings, nothing outside the root.
async fn serve_file(root: &Path, request: &HttpRequest) -> HttpResponse {
    // Path checks touch the disk (canonicalize), so they run on the blocking pool.
    let lookup = {
        let root = root.to_path_buf();
        let path = request.path().to_owned();
        web::block(move || lookup(&root, &path)).await
    };
    match lookup {
        Ok(Lookup::File(path)) => match NamedFile::open_async(&path).await {
            Ok(file) => respond(file, request),
            Err(_) => not_found(root, request).await,
        },
        Ok(Lookup::AddSlash) => {
            // Relative links in an index page need the trailing slash. Exactly one leading
            // slash, so `//host` can never become the target.
            let mut location = format!("/{}/", request.path().trim_start_matches('/'));
            if !request.query_string().is_empty() {
                location = format!("{location}?{}", request.query_string());
            }
            HttpResponse::MovedPermanently()
                .insert_header(("location", location))
                .finish()
        }
        Ok(Lookup::Missing) | Err(_) => not_found(root, request).await,
    }
}

enum Lookup {
    File(PathBuf),
    AddSlash,
    Missing,
}

fn lookup(root: &Path, request_path: &str) -> Lookup {
    let Some(path) = resolve(root, request_path) else {
        return Lookup::Missing;
    };
    if !path.is_dir() {
        return Lookup::File(path);
    }
    if !request_path.ends_with('/') {
        return Lookup::AddSlash;
    }
    // The index file is checked like any other path: it may be a link out of the root too.
    match resolve(root, &format!("{request_path}index.html")) {
        Some(index) if index.is_file() => Lookup::File(index),
        _ => Lookup::Missing,
    }
}

fn respond(file: NamedFile, request: &HttpRequest) -> HttpResponse {
    let is_html = file
        .path()
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"));
    // Pages revalidate every time (so a deploy shows at once); assets may be reused briefly.
    let cache = if is_html {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let mut response = file
        .use_etag(true)
        .use_last_modified(true)
        .into_response(request);
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

/// The site's own `404.html` when it has one (checked like any other path).
async fn not_found(root: &Path, request: &HttpRequest) -> HttpResponse {
    let page = {
        let root = root.to_path_buf();
        web::block(move || resolve(&root, "/404.html").filter(|p| p.is_file())).await
    };
    let Ok(Some(page)) = page else {
        return super::not_found().await;
    };
    match NamedFile::open_async(page).await {
        Ok(file) => {
            let mut response = file.into_response(request);
            *response.status_mut() = actix_web::http::StatusCode::NOT_FOUND;
            response
        }
        Err(_) => super::not_found().await,
    }
}

/// Maps a request path to a file under `root`, or `None` for anything that could leave it:
/// `..`, hidden names (`.env`, `.git`), backslashes, NULs, invalid UTF-8, and symlinks that
/// point outside the root or at a hidden name. `root` is canonical (config made it so).
/// Blocking: it asks the file system.
fn resolve(root: &Path, request_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode_str(request_path).decode_utf8().ok()?;
    let mut path = root.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if is_hidden_or_odd(segment) {
            return None;
        }
        path.push(segment);
    }
    let canonical = path.canonicalize().ok()?;
    let inside = canonical.strip_prefix(root).ok()?;
    // The resolved path is checked again: a link may lead to `.env` or `.git/…`.
    let clean = inside.components().all(|c| {
        c.as_os_str()
            .to_str()
            .is_some_and(|name| !is_hidden_or_odd(name))
    });
    clean.then_some(canonical)
}

fn is_hidden_or_odd(name: &str) -> bool {
    name.starts_with('.') || name.contains(['\\', '\0', ':', '~'])
}

/// Where the demo page loads a script from.
struct Script {
    src: String,
    integrity: Option<&'static str>,
}

#[derive(Template)]
#[template(path = "site/demo.html")]
struct DemoPage {
    widget: Script,
    ably: Script,
}

/// The vendored scripts, by the name the demo page asks for, and their pinned CDN copies.
const VENDOR: [(&str, &str, &str); 2] = [
    (
        "netlify-identity-widget.js",
        "https://cdn.jsdelivr.net/npm/netlify-identity-widget@2.0.3/build/netlify-identity-widget.js",
        "sha384-MDUpeNysRoXS3J89jBylG2fdrQQ0dwDBTXhXGt3XQCgsFF92tnRKZS5vCKNs3XhD",
    ),
    (
        "ably.min.js",
        "https://cdn.jsdelivr.net/npm/ably@2.28.0/build/ably.min.js",
        "sha384-SQa/bifsOXACnC9lqGmIdevHOESao90qevm3OLDnCJg1NAuq7Yccvt6H4JT1VIfc",
    ),
];

async fn demo(state: &AppState, request: &HttpRequest) -> HttpResponse {
    let vendor = state.settings.http.demo_vendor_dir.as_deref();
    match request.path() {
        "/" | "/index.html" => {
            let script = |(name, cdn, integrity): (&str, &str, &'static str)| match vendor {
                Some(_) => Script {
                    src: format!("/vendor/{name}"),
                    integrity: None,
                },
                None => Script {
                    src: cdn.to_owned(),
                    integrity: Some(integrity),
                },
            };
            let page = DemoPage {
                widget: script(VENDOR[0]),
                ably: script(VENDOR[1]),
            };
            match page.render() {
                Ok(body) => HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .insert_header(("cache-control", "no-cache"))
                    .body(body),
                Err(e) => {
                    tracing::error!(error = ?e, "rendering the demo page");
                    HttpResponse::InternalServerError().finish()
                }
            }
        }
        "/demo.js" => HttpResponse::Ok()
            .content_type("text/javascript; charset=utf-8")
            .insert_header(("cache-control", "no-cache"))
            .body(include_str!("../../static/demo.js")),
        "/demo.css" => HttpResponse::Ok()
            .content_type("text/css; charset=utf-8")
            .insert_header(("cache-control", "no-cache"))
            .body(include_str!("../../static/demo.css")),
        path => match (vendor, path.strip_prefix("/vendor/")) {
            (Some(dir), Some(name)) if VENDOR.iter().any(|(n, _, _)| *n == name) => {
                match NamedFile::open_async(dir.join(name)).await {
                    Ok(file) => file.into_response(request),
                    Err(_) => super::not_found().await,
                }
            }
            _ => super::not_found().await,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_stays_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/page.html"), "x").unwrap();
        std::fs::write(root.join(".env"), "SECRET=1").unwrap();
        assert_eq!(
            resolve(&root, "/sub/page.html"),
            Some(root.join("sub/page.html"))
        );
        assert_eq!(
            resolve(&root, "/sub/%70age.html"),
            Some(root.join("sub/page.html"))
        );
        assert_eq!(resolve(&root, "/"), Some(root.clone()));
        for bad in [
            "/../etc/passwd",
            "/sub/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E%2Fetc%2Fpasswd",
            "/sub/..%2f..%2fetc/passwd",
            "/..%5c..%5cetc",
            "/.env",
            "/%2eenv",
            "/sub/page.html%00.png",
            "/%ff",
            "/missing.html",
        ] {
            assert_eq!(resolve(&root, bad), None, "{bad}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "s").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        assert_eq!(resolve(&root, "/link/secret.txt"), None);
    }
}
