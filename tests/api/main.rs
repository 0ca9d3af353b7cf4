//! The one integration-test binary: a module per route family.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should fail the test loudly"
)]

mod ably;
mod addresses_are_deliverable;
mod admin_users;
mod audiences_are_configured;
mod binary;
mod console;
mod health;
mod helpers;
mod invite;
mod logout;
mod mail_smtp;
mod one_account_per_mailbox;
mod recover;
mod roles_are_string_lists;
mod signup;
mod site;
mod support;
mod token;
mod user;
mod verify;
