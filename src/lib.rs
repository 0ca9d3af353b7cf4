//! chipflap: a GoTrue-compatible identity server with an Ably token endpoint, in one process.
//!
//! Modules, from the inside out. Dependencies point inwards: `domain` uses nothing; `db` and
//! `auth` use `domain`; `services` use `domain`, `db`, `auth`, `mail` and `clock`, never actix;
//! `routes` use everything but hold no SQL (their request guards, `routes::extractors`, are the
//! HTTP edge).

/// Password hashing, access tokens, refresh rotation, Ably credentials: no HTTP.
pub mod auth;
/// The command line (`serve`, `migrate`, `users`, `token`).
pub mod cli;
/// The one reader of wall time.
pub mod clock;
/// Settings from the environment (GoTrue's names), validated at start.
pub mod config;
/// The SQLite backend of the store: its pool, write gate, migrations and every SQLite statement.
pub mod db;
/// Pure types that parse once: email, password, tokens, durations, the user and its rules.
pub use chipflap_domain as domain;
/// Mail: SMTP, `.eml` outbox or memory transports, and the typed messages.
pub mod mail;
/// HTTP: the route table, handlers, error rendering.
pub mod routes;
/// Scheduling hints (short slices) for the threads a request waits on.
pub mod scheduling;
/// Use cases, one function per GoTrue action; they own the transactions.
pub mod services;
/// Building and running the server.
pub mod startup;
/// What handlers share.
pub mod state;
/// The store seam: the handles services reach the database through (`docs/store.md`).
pub mod store;
/// Logging setup.
pub mod telemetry;
