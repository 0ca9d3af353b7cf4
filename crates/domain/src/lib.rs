//! Pure types: no actix, no sqlx, no I/O. Each parses once and is then trusted.

pub mod duration;
pub mod email_address;
pub mod metadata;
pub mod mfa;
pub mod one_time_token;
pub mod password;
pub mod session;
pub mod store;
pub mod timestamp;
pub mod user;

/// Why a value was refused; `field` names the input, `reason` is safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}
