//! PostgreSQL twin of `src/db/console_sessions.rs`.
