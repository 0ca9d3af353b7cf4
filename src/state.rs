//! What every request handler and service can reach; built once in `startup`.

use std::sync::Arc;

use sqlx::SqlitePool;
use tokio_util::task::TaskTracker;

use crate::auth::jwt::JwtKeys;
use crate::auth::password_hasher::PasswordHasher;
use crate::auth::refresh_rotation::RotationKey;
use crate::auth::session_cookie::SessionCookieKey;
use crate::clock::Clock;
use crate::config::Settings;
use crate::mail::Mailer;

#[derive(Clone)]
pub struct AppState {
    pub db: SqlitePool,
    /// Moves at every committed write (`db::begin_write`), invalidating `auth_cache`.
    pub write_epoch: Arc<crate::db::WriteEpoch>,
    /// The rows the session and aal2 rules read, kept while no write has committed since.
    pub auth_cache: Arc<crate::services::auth_cache::AuthSnapshotCache>,
    pub mailer: Mailer,
    pub jwt: JwtKeys,
    pub rotation: RotationKey,
    /// Signs the seed page's session cookie.
    pub session_cookie: SessionCookieKey,
    /// Encrypts TOTP keys at rest.
    pub factor_secret: crate::auth::factor_secret::FactorSecretKey,
    pub hasher: PasswordHasher,
    pub clock: Clock,
    pub settings: Arc<Settings>,
    /// Outgoing HTTP (Ably's REST API).
    pub http: reqwest::Client,
    /// Work that continues after a response (mail, Ably revocations); the command line waits
    /// for it before exiting.
    pub background: TaskTracker,
    /// Audit entries committed in groups off the request path (`services::audit_queue`);
    /// `startup::drain_background` closes and drains it.
    pub audit: crate::services::audit_queue::AuditQueue,
    /// When throttle checks sweep expired rows (`services::throttle::SweepSchedule`).
    pub throttle_sweeps: Arc<crate::services::throttle::SweepSchedule>,
}

impl AppState {
    /// A connection for autocommit writes, once this process's write gate is ours
    /// (`db::writer`): every write outside `db::begin_write` goes through it.
    pub async fn writer(&self) -> sqlx::Result<crate::db::Writer> {
        crate::db::writer(&self.db, &self.write_epoch).await
    }
}
