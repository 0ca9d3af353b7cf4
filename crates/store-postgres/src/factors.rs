//! PostgreSQL twin of `src/db/factors.rs`.
