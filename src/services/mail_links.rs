//! Mailed links: `GOTRUE_SITE_URL` with path `/` and `#<kind>_token=<token>` (spec §6.2), and the
//! per-user throttle (`GOTRUE_SMTP_MAX_FREQUENCY`).

use std::time::Duration;

use crate::domain::one_time_token::{SecretToken, TokenPurpose};
use crate::domain::timestamp::Timestamp;
use crate::domain::user::UserId;
use crate::state::AppState;
use crate::store::Conn;
use crate::store::StoreError;
use crate::store::prelude::*;

/// `fragment_key` is `confirmation_token`, `recovery_token`, `invite_token` or `email_change_token`.
pub fn link(state: &AppState, fragment_key: &str, token: &SecretToken) -> String {
    let mut url = state.settings.http.site_url.clone();
    // GoTrue resolves the default path "/" against SITE_URL, replacing any path it had.
    url.set_path("/");
    url.set_query(None);
    url.set_fragment(Some(&format!("{fragment_key}={}", token.expose())));
    url.to_string()
}

pub fn site_url(state: &AppState) -> String {
    state.settings.http.site_url.to_string()
}

/// Creates the token a mailed link carries and stores its digest, replacing any earlier link of
/// the same purpose for this user.
pub async fn store_link_token(
    conn: &mut Conn<'_>,
    user_id: UserId,
    purpose: TokenPurpose,
    new_email: Option<&str>,
    now: Timestamp,
    max_age: Duration,
) -> Result<SecretToken, StoreError> {
    let token = SecretToken::generate();
    conn.replace_token(
        user_id,
        purpose,
        &token.digest(),
        new_email,
        now,
        now.plus(max_age),
    )
    .await?;
    Ok(token)
}

/// Once the password or the address changes, links mailed earlier must stop working: an old
/// invite or recovery link would otherwise reset the new password.
pub async fn forget_password_links(conn: &mut Conn<'_>, id: UserId) -> Result<(), StoreError> {
    for purpose in [TokenPurpose::Recovery, TokenPurpose::Invite] {
        conn.delete_user_tokens(id, purpose).await?;
    }
    Ok(())
}

/// Which throttle stamp a mailed link set, so an unsent mail can put it back.
#[derive(Debug, Clone, Copy)]
pub enum SentStamp {
    /// `confirmation_sent_at` (confirmation links and account notices).
    Confirmation,
    /// `recovery_sent_at`.
    Recovery,
}

/// After a mail could not be sent: drop its link (if it carried one) and restore the throttle
/// stamp, so the user can be mailed again at once. Re-reads nothing: it writes only those two.
pub async fn forget_unsent_mail(
    state: &AppState,
    user_id: UserId,
    link: Option<TokenPurpose>,
    stamp: SentStamp,
    previous_sent_at: Option<Timestamp>,
) -> Result<(), StoreError> {
    let mut tx = state.store.begin_write().await?;
    if let Some(purpose) = link {
        tx.delete_user_tokens(user_id, purpose).await?;
    }
    match stamp {
        SentStamp::Confirmation => {
            tx.set_confirmation_sent_at(user_id, previous_sent_at)
                .await?
        }
        SentStamp::Recovery => tx.set_recovery_sent_at(user_id, previous_sent_at).await?,
    }
    tx.commit().await
}

/// After the transport accepted the mail carrying the user's `purpose` link: the link is no
/// longer pending, so a restart keeps it (see `one_time_tokens::forget_links_never_mailed`).
pub async fn record_mailed(
    state: &AppState,
    user_id: UserId,
    purpose: TokenPurpose,
) -> anyhow::Result<()> {
    use anyhow::Context;
    state
        .writer()
        .await
        .context("waiting to write")?
        .mark_mailed(user_id, purpose)
        .await
        .context("recording a sent mail")
}

/// True when a mail of this kind went out less than the throttle interval ago.
pub fn throttled(state: &AppState, last_sent: Option<Timestamp>, now: Timestamp) -> bool {
    last_sent.is_some_and(|sent| sent.plus(state.settings.mailer.max_frequency) > now)
}

/// "24 hours", "1 hour", "7 days", "15 minutes": how long a link stays valid, for the mail text.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = if s >= 86_400 && s.is_multiple_of(86_400) {
        (s / 86_400, "day")
    } else if s >= 3_600 && s.is_multiple_of(3_600) {
        (s / 3_600, "hour")
    } else if s >= 60 {
        (s / 60, "minute")
    } else {
        (s, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(86_400)), "1 day");
        assert_eq!(human_duration(Duration::from_secs(7 * 86_400)), "7 days");
        assert_eq!(human_duration(Duration::from_secs(3_600)), "1 hour");
        assert_eq!(human_duration(Duration::from_secs(24 * 3_600)), "1 day");
        assert_eq!(human_duration(Duration::from_secs(900)), "15 minutes");
    }
}
