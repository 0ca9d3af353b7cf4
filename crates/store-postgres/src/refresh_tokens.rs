//! PostgreSQL twin of `src/db/refresh_tokens.rs`.
