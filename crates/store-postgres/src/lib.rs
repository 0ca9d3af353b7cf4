//! chipflap's PostgreSQL store (`docs/store.md`): one module per table group, each function the
//! PostgreSQL twin of the SQLite store's function of the same name (`src/db/`), answering the
//! same `chipflap_domain` types with the same semantics.

pub mod audit_log;
pub mod console_sessions;
pub mod factors;
pub mod one_time_tokens;
pub mod refresh_tokens;
pub mod sessions;
pub mod throttles;
pub mod users;

/// This crate's migrations (`crates/store-postgres/migrations/`), embedded at compile time.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!();
