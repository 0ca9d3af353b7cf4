//! PostgreSQL twin of `src/db/sessions.rs`.
