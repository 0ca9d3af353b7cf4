pub mod ably_standin;
pub mod mfa;
pub mod sent_email;
pub mod sessions;
pub mod smtp_sink;
