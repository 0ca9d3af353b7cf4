//! The one integration-test binary: a module per route family.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should fail the test loudly"
)]

mod ably;
mod admin_users;
mod binary;
mod console;
mod health;
mod helpers;
mod invite;
mod logout;
mod mail_smtp;
mod nf_jwt_fits_in_a_cookie;
mod recover;
mod seed_page_keeps_ably_while_session_lives;
mod sessions_end_everywhere;
mod signup;
mod site;
mod support;
mod token;
mod token_minting_never_fails;
mod user;
mod verify;
