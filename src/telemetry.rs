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

    /// Records the outcome as tracing-actix-web's default does, and logs an `ERROR` line per
    /// 5xx and a `WARN` line per 4xx (what its `emit_event_on_error` feature, turned off in
    /// Cargo.toml, logged), except for the answers that shed load, 429 (throttled) and 503
    /// (busy): those get no line of their own, since a flood of them became a flood of log
    /// writes (30,000 lines a second under `scripts/bench`'s login flood, each costing more
    /// than the refusal). `refusals` counts them into one summary line instead.
    fn on_request_end<B: actix_web::body::MessageBody>(
        span: tracing::Span,
        outcome: &Result<actix_web::dev::ServiceResponse<B>, actix_web::Error>,
    ) {
        let failed = match outcome {
            Ok(response) => response
                .response()
                .error()
                .map(|e| (response.status(), e.as_response_error())),
            Err(e) => Some((e.as_response_error().status_code(), e.as_response_error())),
        };
        if let Some((status, _)) = failed
            && let Some(kind) = refusals::Refusal::of(status)
        {
            span.record("http.status_code", i32::from(status.as_u16()));
            refusals::count(kind);
            return;
        }
        tracing_actix_web::DefaultRootSpanBuilder::on_request_end(span, outcome);
        // Called inside the request span, so the line carries its fields.
        if let Some((status, error)) = failed {
            const FAILED: &str = "Error encountered while processing the incoming HTTP request";
            if status.is_client_error() {
                tracing::warn!("{FAILED}: {error:?}");
            } else {
                tracing::error!("{FAILED}: {error:?}");
            }
        }
    }
}

/// Load-shedding answers, counted and logged as one `WARN` summary at most every
/// `SUMMARY_EVERY` (with the first refusal after a quiet spell), never one line per request.
pub mod refusals {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    /// At most one summary line per this long.
    pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);

    /// A load-shedding answer.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Refusal {
        /// 429: a throttle refused the request (README "Throttles").
        Throttled,
        /// 503: the password-hashing queue was full (`CHIPFLAP_HASH_QUEUE`).
        Busy,
    }

    impl Refusal {
        pub fn of(status: actix_web::http::StatusCode) -> Option<Self> {
            match status.as_u16() {
                429 => Some(Refusal::Throttled),
                503 => Some(Refusal::Busy),
                _ => None,
            }
        }
    }

    struct Tally {
        throttled: u64,
        busy: u64,
        /// When the last summary was logged (`None`: never).
        last_summary: Option<Instant>,
    }

    static TALLY: Mutex<Tally> = Mutex::new(Tally {
        throttled: 0,
        busy: 0,
        last_summary: None,
    });

    /// Counts one refusal, and logs the counts when no summary was logged for
    /// `SUMMARY_EVERY` (so the first refusal after a quiet spell is reported at once).
    pub fn count(kind: Refusal) {
        let now = Instant::now();
        let summary = {
            let mut tally = TALLY.lock().unwrap_or_else(|e| e.into_inner());
            match kind {
                Refusal::Throttled => tally.throttled += 1,
                Refusal::Busy => tally.busy += 1,
            }
            let over = tally.last_summary.map(|last| now.duration_since(last));
            if over.is_some_and(|over| over < SUMMARY_EVERY) {
                None
            } else {
                let summary = (tally.throttled, tally.busy, over.unwrap_or_default());
                *tally = Tally {
                    throttled: 0,
                    busy: 0,
                    last_summary: Some(now),
                };
                Some(summary)
            }
        };
        if let Some((throttled, busy, over)) = summary {
            tracing::warn!(
                throttled,
                busy,
                seconds = over.as_secs(),
                "requests refused to shed load: {throttled} throttled (429), {busy} busy (503)"
            );
        }
    }
}
