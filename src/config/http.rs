//! HTTP settings: listen address, site URL, CORS origins, the static site and the connection bound.

use std::path::PathBuf;

use url::Url;

use super::{ConfigError, Source, invalid};

/// Where the server listens and what it serves.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `GOTRUE_API_HOST` (default `127.0.0.1`): the listen address.
    pub host: String,
    /// `PORT`, else `GOTRUE_API_PORT` (default 9999; 0 picks a free port): the listen port.
    pub port: u16,
    /// `GOTRUE_SITE_URL` (default `http://localhost:<port>`; https in production): base of
    /// every link in mail; never taken from the request's Host.
    pub site_url: Url,
    /// `CHIPFLAP_CORS_ORIGINS` (comma-separated; default the site URL's origin): origins allowed
    /// to call the API cross-origin (exact `scheme://host[:port]`).
    pub cors_origins: Vec<String>,
    /// `CHIPFLAP_SITE_DIR`, canonical: the static site served at `/`.
    pub site_dir: Option<PathBuf>,
    /// `CHIPFLAP_DEMO_VENDOR_DIR`: where the demo page loads the widget and ably-js from,
    /// instead of their public CDNs (offline use and tests).
    pub demo_vendor_dir: Option<PathBuf>,
    /// `CHIPFLAP_SITE_FRAME_ANCESTORS`: the CSP `frame-ancestors` sources for files from the
    /// site directory (e.g. `'none'` or `'self'`); unset sends none (framing is the site's call).
    pub site_frame_ancestors: Option<String>,
    /// actix workers; `None` means one per core. Not read from the environment.
    pub workers: Option<usize>,
    /// `CHIPFLAP_MAX_CONNECTIONS`: client connections served at once, across all workers
    /// (default [`DEFAULT_MAX_CONNECTIONS_PER_CORE`] per core). Each worker takes its share;
    /// further connections wait in the listen backlog until one closes (not refused), so a
    /// connection flood cannot grow the workers' buffers without bound (nginx's
    /// `worker_connections`).
    pub max_connections: usize,
}

/// Connections per core served at once when `CHIPFLAP_MAX_CONNECTIONS` is unset. Chosen by
/// measurement (release build, 2 cores, `CHIPFLAP_HASH_CONCURRENCY=2`, a wrong-password flood
/// of 1,024 keep-alive connections): peak RSS 67 MiB at 64 per core, 74 at 128, 83-86 at 256,
/// 105 unbounded, against a bound of 30 + 2 × 19 = 68 MiB. Each connection served costs about
/// 50 KiB at peak. A refused answer (429, 503) closes its connection (`shed_connections`), so a
/// flood cannot hold the places: a `/health` client beside a 256-connection flood got 0 req/s
/// without that and 40k req/s (p99 4.8 ms) with it.
pub const DEFAULT_MAX_CONNECTIONS_PER_CORE: usize = 64;

/// The part of [`HttpSettings`] read first, because later sections take defaults from the
/// site URL (the mail sender, the password policy's context words).
pub(super) struct Site {
    host: String,
    port: u16,
    pub(super) site_url: Url,
    cors_origins: Vec<String>,
}

/// `GOTRUE_API_HOST`, `PORT` (or `GOTRUE_API_PORT`), `GOTRUE_SITE_URL` and
/// `CHIPFLAP_CORS_ORIGINS`. A plain-http site URL is an error in production, else a warning.
pub(super) fn site<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    production: bool,
    warnings: &mut Vec<String>,
) -> Result<Site, ConfigError> {
    let host = env.string("GOTRUE_API_HOST", "127.0.0.1");
    let port: u16 = match env.get("PORT") {
        Some(_) => env.parsed("PORT", 9999, "a TCP port number")?,
        None => env.parsed("GOTRUE_API_PORT", 9999, "a TCP port number")?,
    };
    let site_url_text = env.string("GOTRUE_SITE_URL", &format!("http://localhost:{port}"));
    let site_url = Url::parse(&site_url_text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            invalid(
                "GOTRUE_SITE_URL",
                format!("expected an absolute http(s) URL, got {site_url_text:?}"),
            )
        })?;
    if site_url.scheme() != "https" {
        if production {
            return Err(invalid(
                "GOTRUE_SITE_URL",
                "must be an https URL when CHIPFLAP_ENV=production",
            ));
        }
        warnings.push(format!(
            "GOTRUE_SITE_URL is {site_url} (plain http): fine for development, cookies are not Secure"
        ));
    }
    let cors_origins = match env.get("CHIPFLAP_CORS_ORIGINS") {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                Url::parse(s)
                    .ok()
                    .filter(|u| u.host().is_some())
                    .map(|u| u.origin().ascii_serialization())
                    .ok_or_else(|| {
                        invalid(
                            "CHIPFLAP_CORS_ORIGINS",
                            format!("expected comma-separated origins such as https://example.org, got {s:?}"),
                        )
                    })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => vec![site_url.origin().ascii_serialization()],
    };
    Ok(Site {
        host,
        port,
        site_url,
        cors_origins,
    })
}

/// The rest of [`HttpSettings`] beside `site`: `CHIPFLAP_SITE_DIR`, `CHIPFLAP_DEMO_VENDOR_DIR`,
/// `CHIPFLAP_SITE_FRAME_ANCESTORS` and `CHIPFLAP_MAX_CONNECTIONS` (default `cores` ×
/// [`DEFAULT_MAX_CONNECTIONS_PER_CORE`]).
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    site: Site,
    cores: usize,
) -> Result<HttpSettings, ConfigError> {
    let http = HttpSettings {
        host: site.host,
        port: site.port,
        site_url: site.site_url,
        cors_origins: site.cors_origins,
        site_dir: existing_dir(env, "CHIPFLAP_SITE_DIR")?,
        demo_vendor_dir: existing_dir(env, "CHIPFLAP_DEMO_VENDOR_DIR")?,
        site_frame_ancestors: frame_ancestors(env)?,
        workers: None,
        max_connections: env.parsed(
            "CHIPFLAP_MAX_CONNECTIONS",
            cores.saturating_mul(DEFAULT_MAX_CONNECTIONS_PER_CORE),
            "a count (at least 1)",
        )?,
    };
    if http.max_connections == 0 {
        return Err(invalid("CHIPFLAP_MAX_CONNECTIONS", "must be at least 1"));
    }
    Ok(http)
}

/// A directory that must exist, made canonical so path checks compare like with like.
fn existing_dir<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    name: &'static str,
) -> Result<Option<PathBuf>, ConfigError> {
    env.get(name)
        .map(|dir| {
            std::fs::canonicalize(dir.trim())
                .ok()
                .filter(|p| p.is_dir())
                .ok_or_else(|| {
                    invalid(name, format!("expected an existing directory, got {dir:?}"))
                })
        })
        .transpose()
}

/// `CHIPFLAP_SITE_FRAME_ANCESTORS`: CSP source expressions, which must fit in a header value.
fn frame_ancestors<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<Option<String>, ConfigError> {
    const NAME: &str = "CHIPFLAP_SITE_FRAME_ANCESTORS";
    match env
        .get(NAME)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
    {
        Some(v)
            if v.chars().all(|c| c.is_ascii_graphic() || c == ' ') && !v.contains([';', ',']) =>
        {
            Ok(Some(v))
        }
        Some(_) => Err(invalid(
            NAME,
            "expected CSP frame-ancestors sources such as 'none' or 'self' https://example.org",
        )),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{error_names, settings};
    use super::*;

    #[test]
    fn the_connection_bound_comes_from_the_environment() {
        let s = settings(&[("CHIPFLAP_MAX_CONNECTIONS", " 300 ")]).unwrap();
        assert_eq!(s.http.max_connections, 300);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        assert_eq!(
            settings(&[]).unwrap().http.max_connections,
            cores * DEFAULT_MAX_CONNECTIONS_PER_CORE
        );
        for value in ["0", "-1", "many"] {
            assert!(
                error_names(&[("CHIPFLAP_MAX_CONNECTIONS", value)])
                    .contains("CHIPFLAP_MAX_CONNECTIONS"),
                "{value:?}"
            );
        }
    }
}
