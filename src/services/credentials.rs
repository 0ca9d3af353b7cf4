//! Checking an email and password: the one path `/token` and the console login share.

use anyhow::Context;

use crate::db::users;
use crate::domain::password::Password;
use crate::domain::user::User;
use crate::state::AppState;

/// The user whose password this is, or `None`. Unknown addresses, accounts without a password
/// and wrong passwords cost the same argon2 work and give the same answer (DESIGN §4.4).
pub async fn check_password(
    state: &AppState,
    aud: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<Option<User>> {
    let user = users::find_user_by_email(&state.db, aud, email.trim())
        .await
        .context("looking up the user")?;
    // Over-long input is refused before hashing, so a huge body cannot buy a long hash.
    let Some(password) = Password::for_login(password) else {
        return Ok(None);
    };
    let hash = user.as_ref().and_then(|u| u.password_hash.as_ref());
    let matched = state
        .hasher
        .verify(&password, hash)
        .await
        .context("verifying a password")?;
    Ok(user.filter(|_| matched))
}
