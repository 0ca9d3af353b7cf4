//! Database settings: which store (`DATABASE_URL`) and the auth cache's size.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

use super::{ConfigError, Source, invalid};

/// The store.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL` (default `sqlite://data/chipflap.db`): its scheme picks the backend.
    pub backend: DatabaseBackend,
    /// `CHIPFLAP_AUTH_CACHE_BYTES` (default 8 MiB; 0 disables it): the approximate bytes the
    /// in-memory copy of the rows the auth rules read may hold (`services::auth_cache`).
    pub auth_cache_bytes: u64,
}

/// The database `DATABASE_URL` names.
#[derive(Debug, Clone)]
pub enum DatabaseBackend {
    /// `sqlite://<path>` (also `sqlite:<path>`, `sqlite:///<absolute path>`): the SQLite file,
    /// created with its directory if missing. One process writes it (`docs/store.md`).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…` (libpq's URL form, as sqlx reads it): a PostgreSQL
    /// database that several chipflap nodes may share. Secret: it may hold a password.
    Postgres(SecretString),
}

impl DatabaseSettings {
    /// The SQLite file's path, when the store is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.backend {
            DatabaseBackend::Sqlite(path) => Some(path),
            DatabaseBackend::Postgres(_) => None,
        }
    }

    /// What to call the store in messages: the SQLite file's path, or "PostgreSQL at
    /// host:port/name" without the user or the password.
    pub fn describe(&self) -> String {
        match &self.backend {
            DatabaseBackend::Sqlite(path) => path.display().to_string(),
            DatabaseBackend::Postgres(url) => {
                use secrecy::ExposeSecret;
                match url::Url::parse(url.expose_secret()) {
                    Ok(u) => format!(
                        "PostgreSQL at {}:{}{}",
                        u.host_str().unwrap_or("localhost"),
                        u.port().unwrap_or(5432),
                        u.path()
                    ),
                    Err(_) => "PostgreSQL".to_owned(),
                }
            }
        }
    }
}

/// `DATABASE_URL`. Read before the other sections, which keep their files (development JWT
/// secret, outbox) in the data directory ([`data_dir`]).
pub(super) fn backend_from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<DatabaseBackend, ConfigError> {
    let database_url = env.string("DATABASE_URL", "sqlite://data/chipflap.db");
    if database_url.starts_with("postgres://") || database_url.starts_with("postgresql://") {
        return match url::Url::parse(&database_url) {
            Ok(u) if u.host_str().is_some_and(|h| !h.is_empty()) => {
                Ok(DatabaseBackend::Postgres(SecretString::from(database_url)))
            }
            // The value may hold a password: never echo it.
            _ => Err(invalid(
                "DATABASE_URL",
                "expected postgres://user:password@host:port/database, got an URL that does not parse or names no host",
            )),
        };
    }
    sqlite_path(&database_url)
        .map(DatabaseBackend::Sqlite)
        .ok_or_else(|| {
            invalid(
                "DATABASE_URL",
                format!("expected sqlite://<path to a file> or postgres://…, got {database_url:?}"),
            )
        })
}

/// The data directory: the SQLite file's directory (`.` for a bare file name), or `data` for
/// PostgreSQL.
pub(super) fn data_dir(backend: &DatabaseBackend) -> PathBuf {
    match backend {
        DatabaseBackend::Sqlite(db_path) => db_path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
        DatabaseBackend::Postgres(_) => PathBuf::from("data"),
    }
}

/// [`DatabaseSettings`] for `backend`, with `CHIPFLAP_AUTH_CACHE_BYTES`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    backend: DatabaseBackend,
) -> Result<DatabaseSettings, ConfigError> {
    Ok(DatabaseSettings {
        backend,
        auth_cache_bytes: env.parsed(
            "CHIPFLAP_AUTH_CACHE_BYTES",
            8 * 1024 * 1024,
            "a number of bytes (0 disables the cache)",
        )?,
    })
}

/// `sqlite://data/x.db`, `sqlite:data/x.db` and `sqlite:///abs/x.db` all name a file.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| PathBuf::from(path))
}
