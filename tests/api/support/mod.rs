pub mod ably_standin;
pub mod mfa;
pub mod sessions;
pub mod smtp_sink;
