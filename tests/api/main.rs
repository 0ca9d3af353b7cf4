//! The one integration-test binary: a module per route family.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed step should fail the test loudly"
)]

mod a_cancelled_list_never_leaves_a_transaction_in_the_pool;
mod a_full_hashing_queue_answers_busy_at_once;
mod a_login_always_starts_a_fresh_session;
mod a_lost_authenticator_is_reset_by_an_admin;
mod a_rotation_is_recorded_exactly;
mod ably;
mod addresses_are_deliverable;
mod admin_users;
mod asvs_checklist_is_current;
mod audiences_are_configured;
mod audit_names_changed_fields_never_values;
mod bad_input_gets_a_clear_error;
mod bans_are_decided_on_the_account_as_it_is;
mod binary;
mod cached_answers_never_outlive_the_change;
mod changes_are_confirmed_and_announced;
mod cli_passwords_never_come_from_arguments;
mod commits_reach_the_database_file_without_a_full_wal;
mod common_passwords_are_refused;
mod connections_beyond_the_bound_wait_their_turn;
mod console;
mod console_cookies_are_host_prefixed_on_https;
mod console_login_asks_for_the_second_factor;
mod context_words_are_refused;
mod credentials_never_come_from_the_url;
mod email_change_does_not_enumerate;
mod every_answer_carries_security_headers;
mod every_issued_token_is_audited;
mod every_refresh_counts_and_a_limited_one_changes_nothing;
mod failed_logins_are_audited;
mod fuzzed_input_never_fails_the_server;
mod health;
mod helpers;
mod invite;
mod jwt_secret_rotates_without_logging_anyone_out;
mod load_shedding_answers_are_logged_as_a_summary;
mod logout;
mod mail_smtp;
mod nf_jwt_fits_in_a_cookie;
mod no_secret_reaches_the_logs;
mod one_account_per_mailbox;
mod passwords_are_verified_exactly;
mod production_mail_is_encrypted;
mod recover;
mod refreshed_claims_are_the_rows_as_they_are;
mod refreshes_are_decided_on_the_session_as_it_is;
mod roles_are_string_lists;
mod row_versions_move_on_every_update;
mod second_factor_is_required_where_access_matters;
mod seed_page_keeps_ably_while_session_lives;
mod sessions_end_by_age_and_on_demand;
mod sessions_end_everywhere;
mod signup;
mod site;
mod support;
mod the_mailbox_owner_decides_the_password;
mod throttles;
mod token;
mod token_minting_never_fails;
mod tokens_are_valid_only_when_and_where_they_say;
mod totp_codes_are_single_use_and_throttled;
mod unsent_mail_can_be_retried;
mod user;
mod user_ids_are_parsed_once_where_they_arrive;
mod user_lists_show_exactly_the_users_the_rule_matches;
mod users_see_and_end_their_sessions;
mod verify;
mod weak_hashes_are_upgraded_at_login;
