//! Credentials and token mechanics; no HTTP responses are built here.

pub mod ably;
pub mod factor_secret;
pub mod hmac_sha256;
pub mod jwt;
pub mod password_hasher;
pub mod refresh_rotation;
pub mod session_cookie;
pub mod totp;
