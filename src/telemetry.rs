//! Logging: `RUST_LOG` filter; human-readable in development, JSON lines in production.

use tracing_subscriber::EnvFilter;

use crate::config::Environment;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(environment: Environment) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,actix_server=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match environment {
        Environment::Production => builder.json().try_init(),
        Environment::Development | Environment::Test => builder.compact().try_init(),
    };
}
