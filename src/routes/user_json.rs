//! The user object as GoTrue serialises it (spec §2): field order, omitted nulls, no secrets.

use serde::Serialize;

use crate::domain::metadata::Metadata;
use crate::domain::mfa::Factor;
use crate::domain::timestamp::Timestamp;
use crate::domain::user::{User, UserId};

#[derive(Debug, Serialize)]
pub struct UserJson<'a> {
    pub id: UserId,
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
    /// supabase/auth's `factors` (no secrets), only when the user has one, so users without
    /// MFA see GoTrue's object unchanged.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub factors: Vec<FactorJson>,
}

/// One MFA factor as supabase/auth serialises it.
#[derive(Debug, Serialize)]
pub struct FactorJson {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    pub factor_type: String,
    pub status: &'static str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Factor> for FactorJson {
    fn from(f: &Factor) -> Self {
        FactorJson {
            id: f.id.to_string(),
            friendly_name: f.friendly_name.clone(),
            factor_type: f.factor_type.clone(),
            status: f.status.as_str(),
            created_at: f.created_at,
            updated_at: f.updated_at,
        }
    }
}

impl UserJson<'_> {
    /// The object with the user's factors listed.
    pub fn with_factors(mut self, factors: &[Factor]) -> Self {
        self.factors = factors.iter().map(FactorJson::from).collect();
        self
    }
}

impl<'a> From<&'a User> for UserJson<'a> {
    fn from(u: &'a User) -> Self {
        UserJson {
            id: u.id,
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
            factors: Vec::new(),
        }
    }
}
