//! Notices to the account's address when its password or email changes (issue 9, "changes are confirmed and announced").
//!
//! supabase/auth's `password_changed_notification` and `email_changed_notification`, switched by
//! `GOTRUE_MAILER_NOTIFICATIONS_PASSWORD_CHANGED_ENABLED` / `…_EMAIL_CHANGED_ENABLED` (our
//! default: on). They carry no token, count against the address's mail limit
//! (`throttle::mail_allowed`), and go out in the background: a slow or failing mail server never
//! delays or fails the change itself.

use crate::mail::{
    EmailChangeRequestedNotificationEmail, EmailChangedNotificationEmail, EmailMessage,
    PasswordChangedNotificationEmail,
};
use crate::state::AppState;

/// Who made the change, as the notice names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangedBy {
    /// The account's own session (`PUT /user`).
    User,
    /// The admin API or the console.
    Admin,
}

impl ChangedBy {
    fn describe(self) -> String {
        match self {
            ChangedBy::User => "you (or someone signed in as you)".to_owned(),
            ChangedBy::Admin => "an administrator".to_owned(),
        }
    }
}

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Password,
    /// A change to this address was requested (its link went to that address).
    EmailChangeRequested {
        new_email: String,
    },
    /// The account's address is now this one.
    EmailChanged {
        new_email: String,
    },
}

/// Mails `address` (the account's address before the change) about `change`, in the background.
/// Returns at once; failures and the mail limit are logged, never reported to the caller.
pub fn announce(state: &AppState, address: &str, change: Change, by: ChangedBy) {
    let mailer = &state.settings.mailer;
    let enabled = match change {
        Change::Password => mailer.notify_password_changed,
        Change::EmailChangeRequested { .. } | Change::EmailChanged { .. } => {
            mailer.notify_email_changed
        }
    };
    if !enabled {
        return;
    }
    let site_url = super::mail_links::site_url(state);
    let email = address.to_owned();
    let mail: Box<dyn EmailMessage + Send + Sync> = match change {
        Change::Password => Box::new(PasswordChangedNotificationEmail {
            action_url: site_url.clone(),
            site_url,
            email: email.clone(),
            changed_by: by.describe(),
        }),
        Change::EmailChangeRequested { new_email } => {
            Box::new(EmailChangeRequestedNotificationEmail {
                action_url: site_url.clone(),
                site_url,
                email: email.clone(),
                new_email,
            })
        }
        Change::EmailChanged { new_email } => Box::new(EmailChangedNotificationEmail {
            action_url: site_url.clone(),
            site_url,
            email: email.clone(),
            new_email,
            changed_by: by.describe(),
        }),
    };
    let state = state.clone();
    let tracker = state.background.clone();
    tracker.spawn(async move {
        match super::throttle::mail_allowed(&state, &email).await {
            Ok(true) => {
                if let Err(e) = state.mailer.send(&email, mail.as_ref()).await {
                    tracing::warn!(kind = mail.kind(), error = ?e, "change notification not sent");
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(kind = mail.kind(), error = ?e, "change notification not sent")
            }
        }
    });
}
