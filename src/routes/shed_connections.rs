//! A refused request (429, 503) closes its connection, so the places under
//! `CHIPFLAP_MAX_CONNECTIONS` go round to the clients waiting in the listen backlog.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;

/// Adds `Connection: close` to every 429 and 503 answer. The connections served at once are
/// bounded (memory bounded under a flood); without this, a flood that keeps its connections
/// alive holds every place while it is refused, and an honest client waiting in the backlog is
/// never served (scripts/bench: the Ably endpoint served 0 requests beside a 256-connection
/// login flood with 128 places). A refused client reconnects and queues behind the others.
pub async fn close_refused(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut response = next.call(request).await?;
    if matches!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        response
            .response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(response)
}
