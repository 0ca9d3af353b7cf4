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
mod email_change_does_not_enumerate;
mod health;
mod helpers;
mod invite;
mod logout;
mod mail_smtp;
mod recover;
mod signup;
mod site;
mod support;
mod throttles;
mod token;
mod user;
mod verify;
