//! The store interface: what the services ask of the database, in domain types only.
//!
//! Each backend (SQLite in the app crate, PostgreSQL in `chipflap-store-postgres`) answers
//! these shapes with the same semantics (`docs/store.md`, "Semantics both backends keep").

mod records;

pub use records::*;

/// Why a store call failed, whatever the backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; `constraint` names it when the driver says which
    /// (PostgreSQL does; SQLite gives the columns, e.g. `users.aud, users.email_key`).
    #[error("unique constraint violated: {constraint}")]
    Conflict { constraint: String },
    /// The write lock or a connection was not had in time (SQLite's write gate or busy
    /// timeout, PostgreSQL's lock timeout, the pool's acquire timeout): answered 503.
    #[error("the store is busy")]
    Busy,
    /// Anything else the driver reported, kept as the source.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl StoreError {
    /// Whether a unique constraint refused the write.
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. })
    }
}
