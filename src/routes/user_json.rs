//! The user object as GoTrue serialises it (spec §2): field order, omitted nulls, no secrets.

use serde::Serialize;

use crate::domain::metadata::Metadata;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::User;

#[derive(Debug, Serialize)]
pub struct UserJson<'a> {
    pub id: String,
    pub aud: &'a str,
    pub role: &'a str,
    pub email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invited_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confirmation_sent_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_sent_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_change_sent_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sign_in_at: Option<Timestamp>,
    /// chipflap's addition (DESIGN §5), shown only while set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub banned_until: Option<Timestamp>,
    pub app_metadata: &'a Metadata,
    pub user_metadata: &'a Metadata,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl<'a> From<&'a User> for UserJson<'a> {
    fn from(u: &'a User) -> Self {
        UserJson {
            id: u.id.to_string(),
            aud: &u.aud,
            role: &u.role,
            email: &u.email,
            confirmed_at: u.confirmed_at,
            invited_at: u.invited_at,
            confirmation_sent_at: u.confirmation_sent_at,
            recovery_sent_at: u.recovery_sent_at,
            new_email: u.new_email.as_deref().filter(|e| !e.is_empty()),
            email_change_sent_at: u.email_change_sent_at,
            last_sign_in_at: u.last_sign_in_at,
            banned_until: u.banned_until,
            app_metadata: &u.app_metadata,
            user_metadata: &u.user_metadata,
            created_at: u.created_at,
            updated_at: u.updated_at,
        }
    }
}
