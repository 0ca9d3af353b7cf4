//! PostgreSQL twin of `src/db/users.rs`.
