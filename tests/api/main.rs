//! The one integration-test binary: a module per route family.

mod admin_users;
mod binary;
mod health;
mod helpers;
mod invite;
mod logout;
mod mail_smtp;
mod recover;
mod signup;
mod support;
mod token;
mod user;
mod verify;
