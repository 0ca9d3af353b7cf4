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

/// The request span: like tracing-actix-web's default, but with the path only. The default
/// records `http.target` with the query string, and `/token` accepts passwords there (spec §1.4).
pub struct RequestSpan;

impl tracing_actix_web::RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &actix_web::dev::ServiceRequest) -> tracing::Span {
        let request_id = uuid::Uuid::new_v4();
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.path = %request.path(),
            request_id = %request_id,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}
