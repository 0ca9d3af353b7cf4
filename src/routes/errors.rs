//! The only place that knows status codes: GoTrue's `{code,msg}` (HttpError) and `/token`'s
//! OAuth shape (OAuthError), built from the services' error enums.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;
use uuid::Uuid;

use super::cookies;
use super::request_body::BodyError;
use crate::auth::password_hasher::BUSY;
use crate::domain::session::SessionRefusal;
use crate::services::ably_token::AblyTokenError;
use crate::services::admin_users::AdminUserError;
use crate::services::invite::InviteError;
use crate::services::recover::RecoverError;
use crate::services::signup::SignupError;
use crate::services::throttle::ThrottleError;
use crate::services::token::{LogoutError, TokenError};
use crate::services::user::UserError;
use crate::services::user_sessions::UserSessionsError;
use crate::services::verify::{VerifyError, VerifyType};

/// The 401 message for an access token whose session has ended (logout, password change,
/// ban, an admin, refresh-token reuse).
pub const SESSION_ENDED: &str = "Invalid token: session has ended";

/// GoTrue's HTTPError. A 5xx says only "Internal server error" plus an `error_id` that is
/// also in the log line; the cause never reaches the body.
pub struct HttpError {
    status: StatusCode,
    msg: String,
    cause: Option<anyhow::Error>,
    /// Clear `nf_jwt` too (spec §3.4: on 401 for a bad token).
    clear_cookie: bool,
    /// `Retry-After` in seconds (429).
    retry_after: Option<std::time::Duration>,
}

impl HttpError {
    pub fn new(status: StatusCode, msg: impl Into<String>) -> Self {
        HttpError {
            status,
            msg: msg.into(),
            cause: None,
            clear_cookie: false,
            retry_after: None,
        }
    }

    /// 429 "Rate limit exceeded" with `Retry-After` (GoTrue's message, spec §1.4; the same
    /// shape on `/token`, spec §1.12).
    pub fn too_many_requests(retry_after: std::time::Duration) -> Self {
        HttpError {
            retry_after: Some(retry_after),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded")
        }
    }

    /// 503 with `Retry-After: 1`: every password-hashing thread is busy and the queue is full
    /// (`CHIPFLAP_HASH_QUEUE`). Nothing was checked; the client may simply retry.
    pub fn busy() -> Self {
        HttpError {
            retry_after: Some(std::time::Duration::from_secs(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, BUSY)
        }
    }

    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, msg)
    }

    pub fn unauthorized(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, msg)
    }

    pub fn forbidden(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, msg)
    }

    pub fn not_found(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, msg)
    }

    pub fn unprocessable(msg: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, msg)
    }

    /// A 500 whose public message is `msg` for GoTrue's documented mail failures, or the
    /// generic text otherwise.
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        Self::internal_with("Internal server error", cause)
    }

    pub fn internal_with(msg: &str, cause: impl Into<anyhow::Error>) -> Self {
        HttpError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            msg: msg.to_owned(),
            cause: Some(cause.into()),
            clear_cookie: false,
            retry_after: None,
        }
    }

    /// 401 for an access token whose session has ended, answered as any invalid token is
    /// (the `nf_jwt` cookie is cleared).
    pub fn session_ended() -> Self {
        Self::unauthorized(SESSION_ENDED).clearing_cookie()
    }

    pub fn clearing_cookie(mut self) -> Self {
        self.clear_cookie = true;
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    pub fn msg(&self) -> &str {
        &self.msg
    }
}

impl std::fmt::Debug for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.msg)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause:?}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl ResponseError for HttpError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.clear_cookie {
            response.cookie(cookies::cleared_nf_jwt());
        }
        if let Some(wait) = self.retry_after {
            response.insert_header(("retry-after", wait.as_secs().max(1).to_string()));
        }
        // A busy 503 is the overload answer working as meant: no error line per refused request
        // (a flood would fill the log) and nothing to look up by id.
        if self.status.is_server_error() && self.status != StatusCode::SERVICE_UNAVAILABLE {
            let error_id = Uuid::new_v4().to_string();
            tracing::error!(error_id = %error_id, error = ?self, "request failed");
            return response.json(json!({
                "code": self.status.as_u16(),
                "msg": self.msg,
                "error_id": error_id,
            }));
        }
        response.json(json!({"code": self.status.as_u16(), "msg": self.msg}))
    }
}

/// A body too large (413) or unreadable (400), in GoTrue's shape.
impl From<BodyError> for HttpError {
    fn from(e: BodyError) -> Self {
        let status = match e {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Unreadable => StatusCode::BAD_REQUEST,
        };
        HttpError::new(status, e.message())
    }
}

/// `/token`'s OAuth error: always 400, `error_description` left out when empty (spec §1.12).
pub struct OAuthError {
    error: &'static str,
    description: Option<String>,
    clear_cookie: bool,
}

impl OAuthError {
    pub fn new(error: &'static str, description: Option<&str>) -> Self {
        OAuthError {
            error,
            description: description.map(str::to_owned),
            clear_cookie: false,
        }
    }
}

impl std::fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {:?}", self.error, self.description)
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.error)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::BAD_REQUEST
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::BadRequest();
        if self.clear_cookie {
            response.cookie(cookies::cleared_nf_jwt());
        }
        match &self.description {
            Some(d) => response.json(json!({"error": self.error, "error_description": d})),
            None => response.json(json!({"error": self.error})),
        }
    }
}

/// `/token` answers either shape: OAuth for grant problems, HTTPError for 5xx.
pub enum TokenEndpointError {
    OAuth(OAuthError),
    Http(HttpError),
}

/// `/token` renders body failures in GoTrue's general shape, as it does its 5xx: they are not
/// grant problems.
impl From<BodyError> for TokenEndpointError {
    fn from(e: BodyError) -> Self {
        TokenEndpointError::Http(e.into())
    }
}

impl std::fmt::Debug for TokenEndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenEndpointError::OAuth(e) => e.fmt(f),
            TokenEndpointError::Http(e) => e.fmt(f),
        }
    }
}

impl std::fmt::Display for TokenEndpointError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenEndpointError::OAuth(e) => e.fmt(f),
            TokenEndpointError::Http(e) => e.fmt(f),
        }
    }
}

impl ResponseError for TokenEndpointError {
    fn status_code(&self) -> StatusCode {
        match self {
            TokenEndpointError::OAuth(e) => e.status_code(),
            TokenEndpointError::Http(e) => e.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            TokenEndpointError::OAuth(e) => e.error_response(),
            TokenEndpointError::Http(e) => e.error_response(),
        }
    }
}

/// Errors of the console's HTML pages: a missing or dead session redirects to the login page,
/// everything else renders `templates/console/error.html` (kanidm's `HtmxError`).
pub enum PageError {
    LoginRequired,
    /// `CHIPFLAP_CONSOLE_REQUIRE_MFA` and the admin has no verified factor: to the enrollment page.
    MfaEnrollmentRequired,
    NotFound,
    BadRequest(String),
    Forbidden(&'static str),
    /// 429 with `Retry-After` (the console login's throttles).
    TooManyRequests(std::time::Duration),
    /// 503 with `Retry-After: 1`: the password-hashing queue is full.
    Busy,
    Internal(anyhow::Error),
}

impl PageError {
    pub fn internal(cause: impl Into<anyhow::Error>) -> Self {
        PageError::Internal(cause.into())
    }
}

impl std::fmt::Debug for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PageError::LoginRequired => f.write_str("login required"),
            PageError::MfaEnrollmentRequired => f.write_str("MFA enrollment required"),
            PageError::NotFound => f.write_str("not found"),
            PageError::BadRequest(m) => write!(f, "bad request: {m}"),
            PageError::Forbidden(m) => write!(f, "forbidden: {m}"),
            PageError::TooManyRequests(d) => write!(f, "too many requests, retry after {d:?}"),
            PageError::Busy => f.write_str(BUSY),
            PageError::Internal(e) => write!(f, "internal: {e:?}"),
        }
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

#[derive(askama::Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    chrome: Option<crate::routes::console::Chrome>,
    section: &'a str,
    heading: &'a str,
    message: &'a str,
    error_id: Option<String>,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::LoginRequired | PageError::MfaEnrollmentRequired => StatusCode::SEE_OTHER,
            PageError::NotFound => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
            PageError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        use askama::Template;
        if let PageError::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header(("location", "/console/login"))
                .finish();
        }
        if let PageError::MfaEnrollmentRequired = self {
            return HttpResponse::SeeOther()
                .insert_header(("location", "/console/mfa"))
                .finish();
        }
        let wait;
        let (heading, message, error_id) = match self {
            PageError::LoginRequired | PageError::MfaEnrollmentRequired | PageError::NotFound => {
                ("Not found", "There is nothing at this address.", None)
            }
            PageError::BadRequest(m) => ("That did not work", m.as_str(), None),
            PageError::TooManyRequests(d) => {
                wait = format!(
                    "Too many attempts. Please try again in {}.",
                    crate::services::mail_links::human_duration(*d)
                );
                ("Slow down", wait.as_str(), None)
            }
            PageError::Forbidden(m) => ("Not allowed", *m, None),
            PageError::Busy => ("Busy", BUSY, None),
            PageError::Internal(cause) => {
                let error_id = Uuid::new_v4().to_string();
                tracing::error!(error_id = %error_id, error = ?cause, "console page failed");
                (
                    "Something went wrong",
                    "The server could not finish this request.",
                    Some(error_id),
                )
            }
        };
        let page = ErrorPage {
            chrome: None,
            section: "",
            heading,
            message,
            error_id,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "Internal server error".to_owned());
        let mut response = HttpResponse::build(self.status_code());
        if let PageError::TooManyRequests(d) = self {
            response.insert_header(("retry-after", d.as_secs().max(1).to_string()));
        }
        if let PageError::Busy = self {
            response.insert_header(("retry-after", "1"));
        }
        response.content_type("text/html; charset=utf-8").body(body)
    }
}

impl From<ThrottleError> for HttpError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Limited(wait) => HttpError::too_many_requests(wait),
            ThrottleError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<ThrottleError> for TokenEndpointError {
    fn from(e: ThrottleError) -> Self {
        TokenEndpointError::Http(e.into())
    }
}

impl From<ThrottleError> for PageError {
    fn from(e: ThrottleError) -> Self {
        match e {
            ThrottleError::Limited(wait) => PageError::TooManyRequests(wait),
            ThrottleError::Unexpected(e) => PageError::Internal(e),
        }
    }
}

impl From<TokenError> for TokenEndpointError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::InvalidGrant(d) => {
                let mut err = OAuthError::new("invalid_grant", Some(d));
                // A dead refresh token also clears the cookie (spec §3.4).
                err.clear_cookie = d != crate::services::token::BAD_CREDENTIALS;
                TokenEndpointError::OAuth(err)
            }
            TokenError::InvalidRequest(d) => {
                TokenEndpointError::OAuth(OAuthError::new("invalid_request", Some(d)))
            }
            TokenError::RateLimited(wait) => {
                TokenEndpointError::Http(HttpError::too_many_requests(wait))
            }
            // Like its 429 and 5xx, in GoTrue's shape (spec §1.12), so gotrue-js shows `msg`.
            TokenError::Busy => TokenEndpointError::Http(HttpError::busy()),
            TokenError::Unexpected(e) => TokenEndpointError::Http(HttpError::internal(e)),
        }
    }
}

impl From<SignupError> for HttpError {
    fn from(e: SignupError) -> Self {
        match e {
            SignupError::Disabled => HttpError::forbidden("Signups not allowed for this instance"),
            SignupError::Invalid(v) => HttpError::unprocessable(v.reason),
            SignupError::Mail(m) => HttpError::internal_with("Error sending confirmation mail", m),
            SignupError::Busy => HttpError::busy(),
            SignupError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<VerifyError> for HttpError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::NotFound => HttpError::not_found("User not found"),
            VerifyError::Expired(VerifyType::Signup) => {
                HttpError::unprocessable("Confirmation token expired")
            }
            VerifyError::Expired(VerifyType::Recovery) => {
                HttpError::unprocessable("Recovery token expired")
            }
            VerifyError::PasswordRequired => {
                HttpError::unprocessable("Invited users must specify a password")
            }
            VerifyError::Invalid(v) => HttpError::unprocessable(v.reason),
            VerifyError::Banned => HttpError::forbidden("User is banned"),
            VerifyError::Busy => HttpError::busy(),
            VerifyError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<RecoverError> for HttpError {
    fn from(e: RecoverError) -> Self {
        match e {
            RecoverError::EmailRequired => {
                HttpError::unprocessable("Password recovery requires an email")
            }
            RecoverError::Invalid(v) => HttpError::unprocessable(v.reason),
        }
    }
}

impl From<UserError> for HttpError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::NotFound => HttpError::not_found("User not found"),
            UserError::Banned => HttpError::forbidden("User is banned"),
            UserError::SessionEnded => HttpError::session_ended(),
            UserError::Invalid(v) => HttpError::unprocessable(v.reason),
            UserError::AppMetadataNotAllowed => {
                HttpError::unauthorized("Updating app_metadata requires admin privileges")
            }
            UserError::EmailChangeTokenMismatch => {
                HttpError::unauthorized("Email Change Token didn't match token on file")
            }
            UserError::EmailChangeTokenExpired => {
                HttpError::unprocessable("Email change token expired")
            }
            UserError::EmailTaken => {
                HttpError::unprocessable("Email address already registered by another user")
            }
            UserError::RateLimited(wait) => HttpError::too_many_requests(wait),
            UserError::Mail(m) => HttpError::internal_with("Error sending change email", m),
            UserError::WrongCurrentPassword => {
                HttpError::bad_request(crate::services::user::WRONG_CURRENT_PASSWORD)
            }
            UserError::PasswordRateLimited(wait) => HttpError::too_many_requests(wait),
            UserError::PasswordReauthenticationNeeded => {
                HttpError::bad_request("Password update requires reauthentication")
            }
            UserError::EmailReauthenticationNeeded => {
                HttpError::bad_request("Email update requires reauthentication")
            }
            UserError::Busy => HttpError::busy(),
            UserError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<UserSessionsError> for HttpError {
    fn from(e: UserSessionsError) -> Self {
        match e {
            UserSessionsError::Refused(SessionRefusal::UnknownUser) => {
                HttpError::not_found("User not found")
            }
            UserSessionsError::Refused(SessionRefusal::Banned) => {
                HttpError::forbidden("User is banned")
            }
            UserSessionsError::Refused(SessionRefusal::Ended) => HttpError::session_ended(),
            UserSessionsError::NotFound => HttpError::not_found("Session not found"),
            UserSessionsError::PasswordRequired => HttpError::bad_request(
                "Ending another session requires current_password (re-authentication)",
            ),
            UserSessionsError::WrongPassword => {
                HttpError::bad_request("current_password is not the account's password")
            }
            UserSessionsError::RateLimited(wait) => HttpError::too_many_requests(wait),
            UserSessionsError::Busy => HttpError::busy(),
            UserSessionsError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

/// supabase/auth's statuses and messages (`internal/api/mfa.go`).
impl From<crate::services::mfa::MfaError> for HttpError {
    fn from(e: crate::services::mfa::MfaError) -> Self {
        use crate::domain::session::SessionRefusal;
        use crate::services::mfa::MfaError;
        use crate::services::sessions::SessionError;
        match e {
            MfaError::Session(SessionError::Refused(SessionRefusal::UnknownUser)) => {
                HttpError::not_found("User not found")
            }
            MfaError::Session(SessionError::Refused(SessionRefusal::Banned)) => {
                HttpError::forbidden("User is banned")
            }
            MfaError::Session(SessionError::Refused(SessionRefusal::Ended)) => {
                HttpError::session_ended()
            }
            MfaError::Session(SessionError::Unexpected(e)) | MfaError::Unexpected(e) => {
                HttpError::internal(e)
            }
            MfaError::UserNotFound => HttpError::not_found("User not found"),
            MfaError::FactorNotFound => HttpError::not_found("Factor not found"),
            MfaError::TooManyFactors => HttpError::unprocessable(
                "Maximum number of verified factors reached, unenroll to continue",
            ),
            MfaError::FriendlyNameTaken => HttpError::unprocessable(
                "A factor with this friendly name already exists for this user",
            ),
            // Enrolling answers 403, unenrolling 422, as supabase/auth does.
            MfaError::InsufficientAal(m) if m.contains("unenroll") => HttpError::unprocessable(m),
            MfaError::InsufficientAal(m) => HttpError::forbidden(m),
            MfaError::ChallengeNotFound => {
                HttpError::unprocessable("MFA factor with the provided challenge ID not found")
            }
            MfaError::ChallengeExpired(id) => HttpError::unprocessable(format!(
                "MFA challenge {id} has expired, verify against another challenge or create a new challenge."
            )),
            MfaError::IpMismatch => {
                HttpError::unprocessable("Challenge and verify IP addresses mismatch.")
            }
            MfaError::InvalidCode => HttpError::unprocessable("Invalid TOTP code entered"),
            MfaError::Invalid(m) => HttpError::bad_request(m),
            MfaError::RateLimited(wait) => HttpError::too_many_requests(wait),
        }
    }
}

/// An aal1 session of a user with a verified factor, where access matters (403, supabase/auth's
/// `insufficient_aal`).
impl From<crate::services::mfa::RequireAssuranceError> for HttpError {
    fn from(e: crate::services::mfa::RequireAssuranceError) -> Self {
        use crate::services::mfa::RequireAssuranceError;
        match e {
            RequireAssuranceError::Insufficient(e) => HttpError::forbidden(e.to_string()),
            RequireAssuranceError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<LogoutError> for HttpError {
    fn from(e: LogoutError) -> Self {
        match e {
            LogoutError::Refused(SessionRefusal::UnknownUser) => {
                HttpError::unauthorized("Invalid user")
            }
            LogoutError::Refused(SessionRefusal::Banned) => HttpError::forbidden("User is banned"),
            LogoutError::Refused(SessionRefusal::Ended) => HttpError::session_ended(),
            LogoutError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<InviteError> for HttpError {
    fn from(e: InviteError) -> Self {
        match e {
            InviteError::Invalid(v) => HttpError::unprocessable(v.reason),
            InviteError::EmailTaken => {
                HttpError::unprocessable("Email address already registered by another user")
            }
            InviteError::Mail(m) => HttpError::internal_with("Error inviting user", m),
            InviteError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

impl From<AdminUserError> for HttpError {
    fn from(e: AdminUserError) -> Self {
        match e {
            AdminUserError::NotFound => HttpError::not_found("User not found"),
            AdminUserError::Invalid(v) => HttpError::unprocessable(v.reason),
            AdminUserError::EmailTaken => {
                HttpError::unprocessable("Email address already registered by another user")
            }
            AdminUserError::Busy => HttpError::busy(),
            AdminUserError::Unexpected(e) => HttpError::internal(e),
        }
    }
}

/// Why an aal1 session of a user with a verified factor gets no Ably token.
pub const MFA_REQUIRED: &str = "Multi-factor authentication required: verify a code from your authenticator app (POST /.netlify/identity/factors/{id}/verify), then reconnect";

/// `{"error":{"code","statusCode","message"}}` with `Content-Type: application/json` exactly
/// (ably-js in Node compares it exactly) and `x-ably-errorcode` (browsers need it to read the body).
pub struct AblyError {
    status: StatusCode,
    code: u32,
    message: String,
    cause: Option<anyhow::Error>,
}

impl AblyError {
    /// 401 (40100): ably-js keeps retrying.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        AblyError {
            status: StatusCode::UNAUTHORIZED,
            code: 40100,
            message: message.into(),
            cause: None,
        }
    }

    /// 403 (40300): ably-js stops.
    pub fn forbidden(message: impl Into<String>) -> Self {
        AblyError {
            status: StatusCode::FORBIDDEN,
            code: 40300,
            message: message.into(),
            cause: None,
        }
    }

    /// 400 with Ably's generic bad-request code.
    pub fn bad_request(message: impl Into<String>) -> Self {
        AblyError {
            status: StatusCode::BAD_REQUEST,
            code: 40000,
            message: message.into(),
            cause: None,
        }
    }
}

/// Ably's shape with the HTTP status as its code's first three digits (40000, 41300).
impl From<BodyError> for AblyError {
    fn from(e: BodyError) -> Self {
        let (status, code) = match e {
            BodyError::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, 41300),
            BodyError::Unreadable => (StatusCode::BAD_REQUEST, 40000),
        };
        AblyError {
            status,
            code,
            message: e.message().to_owned(),
            cause: None,
        }
    }
}

impl From<AblyTokenError> for AblyError {
    fn from(e: AblyTokenError) -> Self {
        match e {
            AblyTokenError::NotConfigured => AblyError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: 50300,
                message: "Ably is not configured on this server (ABLY_APIKEY is not set)".into(),
                cause: None,
            },
            AblyTokenError::UnknownUser => AblyError::forbidden("User not found"),
            AblyTokenError::Banned => AblyError::forbidden("User is banned"),
            AblyTokenError::Unconfirmed => AblyError::forbidden("Email not confirmed"),
            AblyTokenError::SessionEnded => AblyError::unauthorized(SESSION_ENDED),
            // 403, not 401: ably-js retries a 401 with the same aal1 token forever, while a
            // 403 stops it; the user must verify a code in the app and reconnect.
            AblyTokenError::InsufficientAal => AblyError::forbidden(MFA_REQUIRED),
            AblyTokenError::Unexpected(cause) => AblyError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: 50000,
                message: "Internal server error".into(),
                cause: Some(cause),
            },
        }
    }
}

impl std::fmt::Debug for AblyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code, self.message)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause:?}")?;
        }
        Ok(())
    }
}

impl std::fmt::Display for AblyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ResponseError for AblyError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = json!({"error": {
            "code": self.code,
            "statusCode": self.status.as_u16(),
            "message": self.message,
        }});
        if self.status.is_server_error() && self.cause.is_some() {
            let error_id = Uuid::new_v4().to_string();
            tracing::error!(error_id = %error_id, error = ?self, "Ably token request failed");
            body["error"]["error_id"] = json!(error_id);
        }
        HttpResponse::build(self.status)
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-ably-errorcode", self.code.to_string()))
            .insert_header(("cache-control", "no-store"))
            .body(body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn body(e: &impl ResponseError) -> (u16, serde_json::Value) {
        let r = e.error_response();
        let status = r.status().as_u16();
        let bytes = to_bytes(r.into_body()).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[actix_web::test]
    async fn internal_errors_hide_the_cause_and_carry_an_error_id() {
        let (status, json) = body(&HttpError::internal(anyhow::anyhow!(
            "disk I/O error at /var/db"
        )))
        .await;
        assert_eq!(status, 500);
        assert_eq!(json["msg"], "Internal server error");
        assert!(json["error_id"].as_str().unwrap().len() == 36);
        assert!(!json.to_string().contains("disk"));
    }

    #[actix_web::test]
    async fn oauth_errors_omit_an_empty_description() {
        let (status, json) = body(&OAuthError::new("unsupported_grant_type", None)).await;
        assert_eq!(
            (status, json),
            (400, json!({"error": "unsupported_grant_type"}))
        );
    }

    #[actix_web::test]
    async fn throttled_requests_answer_429_with_retry_after_in_each_shape() {
        let wait = std::time::Duration::from_secs(42);
        let r = HttpError::from(ThrottleError::Limited(wait)).error_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers().get("retry-after").unwrap(), "42");
        let bytes = to_bytes(r.into_body()).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json, json!({"code": 429, "msg": "Rate limit exceeded"}));

        let r = TokenEndpointError::from(TokenError::RateLimited(wait)).error_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers().get("retry-after").unwrap(), "42");

        let r = PageError::from(ThrottleError::Limited(wait)).error_response();
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers().get("retry-after").unwrap(), "42");
        assert!(
            r.headers()
                .get("content-type")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    #[actix_web::test]
    async fn a_full_hashing_queue_answers_503_with_retry_after_in_each_shape() {
        use crate::services::admin_users::AdminUserError;
        use crate::services::user_sessions::UserSessionsError;
        let api: Vec<HttpError> = vec![
            SignupError::Busy.into(),
            VerifyError::Busy.into(),
            UserError::Busy.into(),
            UserSessionsError::Busy.into(),
            AdminUserError::Busy.into(),
        ];
        let mut responses: Vec<HttpResponse> = api.iter().map(|e| e.error_response()).collect();
        responses.push(TokenEndpointError::from(TokenError::Busy).error_response());
        for r in responses {
            assert_eq!(r.status(), 503);
            assert_eq!(r.headers().get("retry-after").unwrap(), "1");
            let bytes = to_bytes(r.into_body()).await.unwrap();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(json, json!({"code": 503, "msg": BUSY}));
        }
        let r = PageError::Busy.error_response();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers().get("retry-after").unwrap(), "1");
        let bytes = to_bytes(r.into_body()).await.unwrap();
        assert!(String::from_utf8_lossy(&bytes).contains(BUSY));
    }

    #[actix_web::test]
    async fn each_service_error_maps_to_its_documented_status() {
        let cases: Vec<(HttpError, u16, &str)> = vec![
            (
                SignupError::Disabled.into(),
                403,
                "Signups not allowed for this instance",
            ),
            (VerifyError::NotFound.into(), 404, "User not found"),
            (
                VerifyError::Expired(VerifyType::Signup).into(),
                422,
                "Confirmation token expired",
            ),
            (
                VerifyError::Expired(VerifyType::Recovery).into(),
                422,
                "Recovery token expired",
            ),
            (
                VerifyError::PasswordRequired.into(),
                422,
                "Invited users must specify a password",
            ),
            (
                RecoverError::EmailRequired.into(),
                422,
                "Password recovery requires an email",
            ),
            (UserError::NotFound.into(), 404, "User not found"),
            (UserError::Banned.into(), 403, "User is banned"),
            (
                UserError::AppMetadataNotAllowed.into(),
                401,
                "Updating app_metadata requires admin privileges",
            ),
            (
                UserError::EmailChangeTokenMismatch.into(),
                401,
                "Email Change Token didn't match token on file",
            ),
            (
                UserError::EmailChangeTokenExpired.into(),
                422,
                "Email change token expired",
            ),
            (
                UserError::EmailTaken.into(),
                422,
                "Email address already registered by another user",
            ),
            (
                LogoutError::Refused(SessionRefusal::UnknownUser).into(),
                401,
                "Invalid user",
            ),
            (
                LogoutError::Refused(SessionRefusal::Ended).into(),
                401,
                SESSION_ENDED,
            ),
            (UserError::SessionEnded.into(), 401, SESSION_ENDED),
            (
                InviteError::EmailTaken.into(),
                422,
                "Email address already registered by another user",
            ),
            (AdminUserError::NotFound.into(), 404, "User not found"),
        ];
        for (error, status, msg) in cases {
            let (s, json) = body(&error).await;
            assert_eq!((s, json["msg"].as_str().unwrap()), (status, msg));
            assert_eq!(json["code"], status);
        }
    }
}
