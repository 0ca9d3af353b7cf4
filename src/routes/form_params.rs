//! Parameters from the query string and, for a form POST, the body: how `/token` (Go's
//! `FormValue`, which reads urlencoded and multipart bodies) and the Ably endpoint (ably-js
//! `authMethod: POST`) receive theirs.

use std::collections::HashMap;

use actix_web::{HttpMessage, HttpRequest};
use futures_util::stream;

use super::request_body::BodyError;

/// Body fields win over query fields. Media types match case-insensitively, with any
/// parameters (`charset`), as Go's `mime.ParseMediaType` does.
///
/// An urlencoded body is parsed leniently, skipping a malformed pair rather than dropping
/// everything (one bad pair must not make a check vanish). A multipart body that cannot be
/// parsed is refused as [`BodyError::Unreadable`] for the same reason: a field hidden in it
/// must not be silently ignored. Multipart file parts are skipped.
pub async fn query_and_form(
    request: &HttpRequest,
    body: &[u8],
) -> Result<HashMap<String, String>, BodyError> {
    let mut params: HashMap<String, String> =
        url::form_urlencoded::parse(request.query_string().as_bytes())
            .into_owned()
            .collect();
    let Ok(Some(media_type)) = request.mime_type() else {
        return Ok(params);
    };
    match (media_type.type_(), media_type.subtype()) {
        (mime::APPLICATION, mime::WWW_FORM_URLENCODED) => {
            params.extend(url::form_urlencoded::parse(body).into_owned());
        }
        (mime::MULTIPART, mime::FORM_DATA) => {
            let boundary = media_type
                .get_param(mime::BOUNDARY)
                .ok_or(BodyError::Unreadable)?;
            params.extend(multipart_fields(boundary.as_str(), body).await?);
        }
        _ => {}
    }
    Ok(params)
}

/// The text fields of a `multipart/form-data` body (RFC 7578), parsed by `multer`.
async fn multipart_fields(boundary: &str, body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    let chunk = bytes::Bytes::copy_from_slice(body);
    let source = stream::once(async move { Ok::<_, std::convert::Infallible>(chunk) });
    let mut multipart = multer::Multipart::new(source, boundary);
    let mut fields = Vec::new();
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|_| BodyError::Unreadable)?
    {
        let name = field.name().map(str::to_owned);
        let is_file = field.file_name().is_some();
        let value = field.text().await.map_err(|_| BodyError::Unreadable)?;
        if let (Some(name), false) = (name, is_file) {
            fields.push((name, value));
        }
    }
    Ok(fields)
}
