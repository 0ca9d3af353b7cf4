//! Database settings: the SQLite file (`DATABASE_URL`) and the auth cache's size.

use std::path::{Path, PathBuf};

use super::{ConfigError, Source, invalid};

/// The store.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL` (default `sqlite://data/chipflap.db`): path of the SQLite file (created
    /// with its directory if missing).
    pub path: PathBuf,
    /// `CHIPFLAP_AUTH_CACHE_BYTES` (default 8 MiB; 0 disables it): the approximate bytes the
    /// in-memory copy of the rows the auth rules read may hold (`services::auth_cache`).
    pub auth_cache_bytes: u64,
}

/// `DATABASE_URL`: the SQLite file's path. Read before the other sections, which keep their
/// files (development JWT secret, outbox) in its directory.
pub(super) fn sqlite_path_from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
) -> Result<PathBuf, ConfigError> {
    let database_url = env.string("DATABASE_URL", "sqlite://data/chipflap.db");
    sqlite_path(&database_url).ok_or_else(|| {
        invalid(
            "DATABASE_URL",
            format!("expected sqlite://<path to a file>, got {database_url:?}"),
        )
    })
}

/// The directory of the database file (`.` for a bare file name): the data directory.
pub(super) fn data_dir(db_path: &Path) -> PathBuf {
    db_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// [`DatabaseSettings`] for the file at `path`, with `CHIPFLAP_AUTH_CACHE_BYTES`.
pub(super) fn from_source<F: Fn(&str) -> Option<String>>(
    env: &Source<F>,
    path: PathBuf,
) -> Result<DatabaseSettings, ConfigError> {
    Ok(DatabaseSettings {
        path,
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
