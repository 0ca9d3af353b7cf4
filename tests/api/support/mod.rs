pub mod ably_standin;
pub mod smtp_sink;
