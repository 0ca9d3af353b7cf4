//! The raw request body of the JSON and form endpoints, read with a size limit, whose failures
//! (too large, unreadable) render in the endpoint's own error shape instead of actix's plain text.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use actix_web::error::PayloadError;
use actix_web::{FromRequest, HttpRequest, ResponseError, dev::Payload, web};

/// Request bodies larger than this are refused with 413: nothing we accept comes close (the
/// largest, an admin update with metadata, is capped at 16 KiB per metadata object).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Why a body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over [`MAX_BODY_BYTES`] (by `Content-Length` or as it arrived): 413.
    TooLarge,
    /// The stream broke or was malformed (bad chunked encoding, a dropped connection): 400.
    Unreadable,
}

impl BodyError {
    /// The message each error shape carries.
    pub fn message(self) -> &'static str {
        match self {
            BodyError::TooLarge => "Request body too large: at most 64 KiB is accepted",
            BodyError::Unreadable => "Could not read the request body",
        }
    }

    fn from_actix(error: &actix_web::Error) -> Self {
        match error.as_error::<PayloadError>() {
            Some(PayloadError::Overflow) => BodyError::TooLarge,
            _ => BodyError::Unreadable,
        }
    }
}

/// The body as bytes; `E` is the endpoint's error type (GoTrue's `HttpError`, `/token`'s
/// `TokenEndpointError`, the Ably endpoint's `AblyError`), built from a [`BodyError`].
pub struct Body<E> {
    pub bytes: web::Bytes,
    shape: PhantomData<fn() -> E>,
}

impl<E> std::ops::Deref for Body<E> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl<E> FromRequest for Body<E>
where
    E: From<BodyError> + ResponseError + 'static,
{
    type Error = E;
    type Future = Pin<Box<dyn Future<Output = Result<Self, E>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = web::Bytes::from_request(request, payload);
        Box::pin(async move {
            match bytes.await {
                Ok(bytes) => Ok(Body {
                    bytes,
                    shape: PhantomData,
                }),
                Err(error) => Err(E::from(BodyError::from_actix(&error))),
            }
        })
    }
}
