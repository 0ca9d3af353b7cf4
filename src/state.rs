//! What every request handler and service can reach; built once in `startup`.

use std::sync::Arc;

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
    /// The database, through the store seam (`store`).
    pub store: crate::store::Store,
    /// Moves at every committed write (`db::begin_write`), invalidating `auth_cache`.
    pub write_epoch: Arc<crate::store::WriteEpoch>,
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
    /// The runtime that runs a request's store work (`AppState::store_work`): the one the
    /// process started on, whose threads serve no HTTP connection.
    pub store_runtime: tokio::runtime::Handle,
}

impl AppState {
    /// A connection for autocommit writes (`store::Store::writer`): every write outside a
    /// write transaction goes through it.
    pub async fn writer(&self) -> Result<crate::store::Writer, crate::store::StoreError> {
        self.store.writer().await
    }

    /// Runs `work` on `store_runtime` and answers its output.
    ///
    /// Why: an HTTP worker thread serves every connection it accepted, and a flood of cheap
    /// refusals (503s from a full hashing queue) keeps a hundred of them ready at once. A
    /// transaction run there waits behind that queue after each of its statements, while it
    /// holds the write gate that every other writer waits for (measured: the refresh grant's
    /// hold tripled under a login flood). Run there, it waits only for its statements.
    ///
    /// A panic in `work` resumes in the caller; work cancelled by the runtime shutting down
    /// is an error.
    pub async fn store_work<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> anyhow::Result<T> {
        match self.store_runtime.spawn(work).await {
            Ok(output) => Ok(output),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(anyhow::anyhow!("store work cancelled: {e}")),
        }
    }
}
