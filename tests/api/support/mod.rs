pub mod ably_standin;
pub mod sessions;
pub mod smtp_sink;
