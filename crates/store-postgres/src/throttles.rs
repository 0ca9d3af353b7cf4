//! PostgreSQL twin of `src/db/throttles.rs`.
