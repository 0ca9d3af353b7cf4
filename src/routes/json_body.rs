//! GoTrue decodes JSON bodies whatever the Content-Type says (spec §0); an empty body is `{}`,
//! because gotrue-js 0.9 sends `Content-Type: application/json` on bodiless requests too.

use serde::de::DeserializeOwned;

use super::errors::HttpError;

/// `context` starts the 400 message, e.g. "Could not read Signup params".
pub fn parse_json<T: DeserializeOwned>(body: &[u8], context: &str) -> Result<T, HttpError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| HttpError::bad_request(format!("{context}: {e}")))
}

/// Metadata fields accept `null` as "not given".
pub fn object(
    value: Option<serde_json::Value>,
    field: &str,
) -> Result<Option<crate::domain::metadata::Metadata>, HttpError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(HttpError::unprocessable(format!(
            "{field} must be a JSON object"
        ))),
    }
}
