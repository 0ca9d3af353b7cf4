//! Builds the application: store, migrations, mailer, keys, HTTP server. Tests and `main` share it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_cors::Cors;
use actix_web::dev::Server;
use actix_web::http::Method;
use actix_web::{App, HttpServer, web};
use anyhow::Context;
use lettre::message::Mailbox;
use tracing_actix_web::TracingLogger;

use crate::auth::jwt::JwtKeys;
use crate::auth::password_hasher::PasswordHasher;
use crate::auth::refresh_rotation::RotationKey;
use crate::auth::session_cookie::SessionCookieKey;
use crate::clock::Clock;
use crate::config::{JwtSettings, Settings};
use crate::mail::Mailer;
use crate::routes;
use crate::state::AppState;
use crate::store::Store;
use crate::store::prelude::*;

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

impl Application {
    /// Connects and migrates the store, then binds `host:port` (port 0: the OS picks one).
    pub async fn build(settings: Settings, mailer: Mailer, clock: Clock) -> anyhow::Result<Self> {
        let state = build_state(settings, mailer, clock).await?;
        forget_links_never_mailed(&state).await?;
        let settings = state.settings.clone();
        let listener = TcpListener::bind((settings.http.host.as_str(), settings.http.port))
            .with_context(|| {
                format!(
                    "binding {}:{} (GOTRUE_API_HOST, PORT)",
                    settings.http.host, settings.http.port
                )
            })?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state.clone());
        let server_settings = settings.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .wrap(routes::security_headers::everywhere(&server_settings))
                .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(
                    routes::request_body::MAX_BODY_BYTES,
                ))
                .service(
                    web::scope("/.netlify/identity")
                        .wrap(actix_web::middleware::from_fn(
                            routes::audience_guard::identity,
                        ))
                        .wrap(routes::security_headers::api())
                        .wrap(cors(&server_settings))
                        .configure(routes::identity)
                        .default_service(web::to(routes::not_found)),
                )
                .configure(routes::console::configure)
                .service(
                    web::scope("/.netlify/functions")
                        .wrap(actix_web::middleware::from_fn(
                            routes::audience_guard::functions,
                        ))
                        .wrap(routes::security_headers::api())
                        .wrap(cors(&server_settings))
                        .configure(routes::functions)
                        .default_service(web::to(routes::not_found)),
                )
                .default_service(web::to(routes::site::site))
                // Outermost, so it sees every refusal, whichever layer made it.
                .wrap(actix_web::middleware::from_fn(
                    routes::shed_connections::close_refused,
                ))
        })
        .listen(listener)?;
        // actix's default worker count is the same `available_parallelism`; `max_connections`
        // is per worker, so each takes its share of `CHIPFLAP_MAX_CONNECTIONS`.
        let workers = settings
            .http
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        server = server
            .workers(workers)
            .max_connections(settings.http.max_connections.div_ceil(workers).max(1));
        Ok(Application {
            port,
            server: server.run(),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until a shutdown signal, then lets work started after responses (mail, Ably
    /// revocations) finish, for at most 30 seconds.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        // Changes other processes make reach the auth cache through this watcher.
        let maintenance = self
            .state
            .store
            .spawn_maintenance(self.state.write_epoch.clone());
        let served = self.server.await;
        for task in maintenance {
            task.abort();
        }
        served?;
        drain_background(&self.state).await;
        Ok(())
    }
}

/// Waits for background work (mail, Ably revocations) before the process exits, then
/// commits every queued audit entry (background work may still queue some). Every path that
/// built the state calls it last, so no queued entry is dropped.
pub async fn drain_background(state: &AppState) {
    state.background.close();
    if tokio::time::timeout(std::time::Duration::from_secs(30), state.background.wait())
        .await
        .is_err()
    {
        tracing::warn!("background work still running at exit was abandoned");
    }
    // Not timed out: the writer gives a failing batch up after a few retries (audit_queue).
    state.audit.close().await;
}

/// A server that starts knows no mail of an earlier run is still on its way: links a dead
/// process stored but never mailed are forgotten with their throttle stamps, so those users can
/// ask again at once. Only the server does this (a CLI command may run beside a live server).
async fn forget_links_never_mailed(state: &AppState) -> anyhow::Result<()> {
    let mut tx = state
        .store
        .begin_write()
        .await
        .context("starting a transaction")?;
    let forgotten = tx
        .forget_links_never_mailed()
        .await
        .context("forgetting links whose mail never went out")?;
    tx.commit().await.context("committing")?;
    if forgotten > 0 {
        tracing::warn!(
            forgotten,
            "forgot mailed links whose mail an earlier run never sent; those users can ask again"
        );
    }
    Ok(())
}

/// Everything but the HTTP server: used by the command line too.
pub async fn build_state(
    settings: Settings,
    mailer: Mailer,
    clock: Clock,
) -> anyhow::Result<AppState> {
    let write_epoch = Arc::new(crate::store::WriteEpoch::new());
    let store = Store::open(&settings.database, write_epoch.clone()).await?;
    warn_about_unserved_audiences(&store, &settings).await?;
    let hasher = PasswordHasher::new(&settings.hashing).context("configuring argon2")?;
    let jwt = &settings.jwt;
    let secret = jwt.secret_bytes();
    Ok(AppState {
        auth_cache: Arc::new(crate::services::auth_cache::AuthSnapshotCache::new(
            settings.database.auth_cache_bytes,
            write_epoch.clone(),
        )),
        audit: crate::services::audit_queue::AuditQueue::start(store.clone()),
        write_epoch,
        store,
        mailer,
        jwt: jwt_keys(jwt),
        rotation: RotationKey::from_secret(secret).with_previous(jwt.previous_secret_bytes()),
        session_cookie: SessionCookieKey::from_secret(secret)
            .with_previous(jwt.previous_secret_bytes()),
        // Factor secrets sealed under a previous JWT secret still open after a rotation.
        factor_secret: jwt.previous_secret_bytes().fold(
            crate::auth::factor_secret::FactorSecretKey::from_secret(secret),
            crate::auth::factor_secret::FactorSecretKey::with_previous,
        ),
        hasher,
        clock,
        settings: Arc::new(settings),
        http: reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("chipflap/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")?,
        background: tokio_util::task::TaskTracker::new(),
        throttle_sweeps: Arc::default(),
        store_runtime: tokio::runtime::Handle::current(),
    })
}

/// The keys that sign and verify access tokens: the current secret (its `kid` derived or
/// `GOTRUE_JWT_KEY_ID`), the previous ones, and the issuer when configured.
pub fn jwt_keys(jwt: &JwtSettings) -> JwtKeys {
    let mut keys = JwtKeys::new(jwt.secret_bytes())
        .verifying_previous(jwt.previous_secret_bytes())
        .allowing_audiences(jwt.audiences());
    if let Some(kid) = &jwt.key_id {
        keys = keys.with_key_id(kid.clone());
    }
    if let Some(issuer) = &jwt.issuer {
        keys = keys.with_issuer(issuer.clone());
    }
    keys
}

/// Accounts an older version let in under audiences that are not configured can no longer log
/// in or use their tokens, and the console does not list them: say so at every start.
async fn warn_about_unserved_audiences(store: &Store, settings: &Settings) -> anyhow::Result<()> {
    let counts = store
        .pool()
        .count_by_audience()
        .await
        .context("counting accounts per audience")?;
    for (aud, accounts) in counts {
        if !settings.jwt.serves_audience(&aud) {
            tracing::warn!(
                aud = %aud,
                accounts,
                "accounts in an audience that is neither GOTRUE_JWT_AUD nor in GOTRUE_JWT_ALLOWED_AUDIENCES: they cannot log in; add the audience to GOTRUE_JWT_ALLOWED_AUDIENCES to manage them through the admin API with X-JWT-AUD, or delete them"
            );
        }
    }
    Ok(())
}

/// The mailer the settings ask for: SMTP when a host is set, else the `.eml` outbox.
pub fn mailer_from_settings(settings: &Settings) -> anyhow::Result<Mailer> {
    let mailer = &settings.mailer;
    let from: Mailbox = mailer.admin_email.parse().with_context(|| {
        format!(
            "GOTRUE_SMTP_ADMIN_EMAIL {:?} is not an address",
            mailer.admin_email
        )
    })?;
    match &mailer.smtp {
        Some(smtp) => {
            let credentials = match (&smtp.user, &smtp.pass) {
                (Some(user), Some(pass)) => Some((user.clone(), pass.clone())),
                _ => None,
            };
            Mailer::smtp(
                from,
                &smtp.host,
                smtp.port,
                credentials,
                smtp.tls,
                mailer.send_timeout,
            )
            .map_err(|e| anyhow::anyhow!("GOTRUE_SMTP_HOST: {e}"))
        }
        None => Mailer::file(from, &mailer.mail_dir)
            .map_err(|e| anyhow::anyhow!("CHIPFLAP_MAIL_DIR {}: {e}", mailer.mail_dir.display())),
    }
}

/// Only the configured origins, never `*` with credentials (DESIGN §1).
fn cors(settings: &Settings) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
        .allowed_headers([
            "accept",
            "authorization",
            "content-type",
            "x-jwt-aud",
            "x-use-cookie",
            "x-nf-client",
        ])
        .expose_headers(["x-total-count", "link", "x-ably-errorcode", "retry-after"])
        .supports_credentials()
        .max_age(3600);
    for origin in &settings.http.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
