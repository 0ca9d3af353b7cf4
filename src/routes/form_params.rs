//! Form parameters: `/token` reads its fields from the body only (urlencoded or multipart, as
//! Go's `FormValue` reads them), the Ably endpoint from the query string and the body (ably-js
//! `authMethod: GET` or `POST`).

use std::collections::HashMap;

use actix_web::{HttpMessage, HttpRequest};
use futures_util::stream;

use super::request_body::BodyError;

/// Body fields win over query fields. See [`body_fields`] for the body.
pub async fn query_and_form(
    request: &HttpRequest,
    body: &[u8],
) -> Result<HashMap<String, String>, BodyError> {
    let mut params: HashMap<String, String> =
        url::form_urlencoded::parse(request.query_string().as_bytes())
            .into_owned()
            .collect();
    params.extend(body_fields(request, body).await?);
    Ok(params)
}

/// The fields of a form body. Media types match case-insensitively, with any parameters
/// (`charset`), as Go's `mime.ParseMediaType` does; any other media type has no fields.
///
/// An urlencoded body is parsed leniently, skipping a malformed pair rather than dropping
/// everything (one bad pair must not make a check vanish). A multipart body that cannot be
/// parsed is refused as [`BodyError::Unreadable`] for the same reason: a field hidden in it
/// must not be silently ignored. Multipart file parts are skipped.
pub async fn body_fields(
    request: &HttpRequest,
    body: &[u8],
) -> Result<HashMap<String, String>, BodyError> {
    let mut fields = HashMap::new();
    let Ok(Some(media_type)) = request.mime_type() else {
        return Ok(fields);
    };
    match (media_type.type_(), media_type.subtype()) {
        (mime::APPLICATION, mime::WWW_FORM_URLENCODED) => {
            fields.extend(url::form_urlencoded::parse(body).into_owned());
        }
        (mime::MULTIPART, mime::FORM_DATA) => {
            let boundary = media_type
                .get_param(mime::BOUNDARY)
                .ok_or(BodyError::Unreadable)?;
            fields.extend(multipart_fields(boundary.as_str(), body).await?);
        }
        _ => {}
    }
    Ok(fields)
}

/// True when the query string names any of `names`: secrets there end up in proxy access logs
/// and browser history, so endpoints that take them refuse such a URL (ASVS 5.0 V14.2.1).
pub fn query_names_any(request: &HttpRequest, names: &[&str]) -> bool {
    url::form_urlencoded::parse(request.query_string().as_bytes())
        .any(|(name, _)| names.contains(&name.as_ref()))
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
