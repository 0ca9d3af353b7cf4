//! PostgreSQL twin of `src/db/one_time_tokens.rs`.
