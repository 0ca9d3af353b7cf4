//! Use cases: one public async fn per GoTrue action. Each owns its transaction and returns an
//! error enum with exactly the outcomes its caller must tell apart.

pub mod ably_issuance_tally;
pub mod ably_revocation;
pub mod ably_token;
pub mod admin_users;
pub mod audit;
pub mod audit_queue;
pub mod auth_cache;
pub mod console_session;
pub mod credentials;
pub mod invite;
pub mod mail_links;
pub mod mfa;
pub mod notifications;
pub mod recover;
pub mod sessions;
pub mod signup;
pub mod throttle;
pub mod token;
pub mod user;
pub mod user_sessions;
pub mod verify;

use crate::domain::user::User;

/// Who did something, as the audit log records it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub email: String,
}

impl Actor {
    pub fn user(user: &User) -> Self {
        Actor {
            id: user.id.to_string(),
            email: user.email.clone(),
        }
    }

    /// The `sub: "0"` token Netlify hands to functions (spec §4).
    pub fn system() -> Self {
        Actor {
            id: "0".into(),
            email: "system".into(),
        }
    }

    /// A bearer equal to `GOTRUE_OPERATOR_TOKEN`; GoTrue names it `operator@netlify.com`.
    pub fn operator() -> Self {
        Actor {
            id: "operator".into(),
            email: "operator".into(),
        }
    }

    /// Someone not logged in, such as the sender of a refused login.
    pub fn anonymous() -> Self {
        Actor {
            id: "anonymous".into(),
            email: "anonymous".into(),
        }
    }

    /// The command line (`chipflap users …`).
    pub fn command_line() -> Self {
        Actor {
            id: "cli".into(),
            email: "command line".into(),
        }
    }
}

/// Whether a failure came from the store or the mailer matters to nobody but the log.
pub type Unexpected = anyhow::Error;
