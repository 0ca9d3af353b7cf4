//! Multi-factor authentication (supabase/auth's names): factors, assurance levels and the rule
//! that says when a session's level is too low.

use serde::Serialize;
use uuid::Uuid;

use super::timestamp::Timestamp;
use super::user::UserId;

/// Authenticator assurance level (NIST SP 800-63B; supabase/auth's `aal` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Aal {
    /// One factor: a password or a one-time link.
    Aal1,
    /// A second factor (a TOTP code) was verified in this session.
    Aal2,
}

impl Aal {
    pub fn as_str(self) -> &'static str {
        match self {
            Aal::Aal1 => "aal1",
            Aal::Aal2 => "aal2",
        }
    }

    /// The stored name back; anything unknown reads as the lower level.
    pub fn parse(name: &str) -> Self {
        if name == "aal2" { Aal::Aal2 } else { Aal::Aal1 }
    }
}

/// `unverified` until a code from it has been accepted once (supabase/auth's factor states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorStatus {
    Unverified,
    Verified,
}

impl FactorStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorStatus::Unverified => "unverified",
            FactorStatus::Verified => "verified",
        }
    }

    pub fn parse(name: &str) -> Self {
        if name == "verified" {
            FactorStatus::Verified
        } else {
            FactorStatus::Unverified
        }
    }
}

/// The only factor type: RFC 6238 TOTP (SHA-1, 6 digits, 30 s).
pub const TOTP: &str = "totp";

/// One row of `mfa_factors`, without its secret (which never leaves `services::mfa`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Factor {
    pub id: Uuid,
    pub user_id: UserId,
    pub friendly_name: Option<String>,
    pub factor_type: String,
    pub status: FactorStatus,
    /// The last TOTP time step (unix seconds / 30) a code was accepted for.
    pub last_used_step: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Factor {
    pub fn is_verified(&self) -> bool {
        self.status == FactorStatus::Verified
    }
}

/// One entry of the `amr` claim (RFC 8176 methods, supabase/auth's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AmrEntry {
    pub method: String,
    /// Unix seconds.
    pub timestamp: i64,
}

/// What a session has proved: its level and the methods behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assurance {
    pub aal: Aal,
    /// The first factor (`password`, or the one-time link that started the session) and when.
    pub sign_in_method: String,
    pub signed_in_at: Timestamp,
    /// When a TOTP code raised the session to aal2.
    pub aal2_at: Option<Timestamp>,
}

impl Assurance {
    /// A fresh session at aal1.
    pub fn first_factor(method: &str, at: Timestamp) -> Self {
        Assurance {
            aal: Aal::Aal1,
            sign_in_method: method.to_owned(),
            signed_in_at: at,
            aal2_at: None,
        }
    }

    /// The `amr` claim, most recent first (as supabase/auth orders it).
    pub fn amr(&self) -> Vec<AmrEntry> {
        let mut amr = Vec::with_capacity(2);
        if let (Aal::Aal2, Some(at)) = (self.aal, self.aal2_at) {
            amr.push(AmrEntry {
                method: TOTP.to_owned(),
                timestamp: at.unix(),
            });
        }
        amr.push(AmrEntry {
            method: self.sign_in_method.clone(),
            timestamp: self.signed_in_at.unix(),
        });
        amr
    }
}

/// Refused because the user has a verified factor and the session has not used it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("AAL2 required: verify your second factor (multi-factor authentication) first")]
pub struct InsufficientAal;

/// The rule for every path where access matters (Ably tokens, the admin API, the console, and
/// removing a verified factor): a user with a verified factor needs an aal2 session. A user
/// without one is unaffected (MFA is opt-in per user; ASVS 5.0 V6.3.3), unless the operator
/// requires MFA of everyone (`CHIPFLAP_MFA_REQUIRED`: the caller passes true).
pub fn check_assurance(session_aal: Aal, has_verified_factor: bool) -> Result<(), InsufficientAal> {
    if has_verified_factor && session_aal < Aal::Aal2 {
        Err(InsufficientAal)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_users_with_a_verified_factor_need_aal2() {
        assert_eq!(check_assurance(Aal::Aal1, false), Ok(()));
        assert_eq!(check_assurance(Aal::Aal2, false), Ok(()));
        assert_eq!(check_assurance(Aal::Aal1, true), Err(InsufficientAal));
        assert_eq!(check_assurance(Aal::Aal2, true), Ok(()));
    }

    #[test]
    fn amr_lists_the_second_factor_first() {
        let mut a = Assurance::first_factor("password", Timestamp::from_unix(10));
        assert_eq!(
            a.amr(),
            [AmrEntry {
                method: "password".into(),
                timestamp: 10
            }]
        );
        a.aal = Aal::Aal2;
        a.aal2_at = Some(Timestamp::from_unix(20));
        let methods: Vec<_> = a.amr().into_iter().map(|e| e.method).collect();
        assert_eq!(methods, ["totp", "password"]);
        assert_eq!(Aal::parse("aal2"), Aal::Aal2);
        assert_eq!(Aal::parse("junk"), Aal::Aal1);
    }
}
