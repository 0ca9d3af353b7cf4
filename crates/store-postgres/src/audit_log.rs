//! PostgreSQL twin of `src/db/audit_log.rs`.
