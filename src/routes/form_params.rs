//! Parameters from the query string and, for a form POST, the body: how `/token` (Go's
//! `FormValue`) and the Ably endpoint (ably-js `authMethod: POST`) receive theirs.

use std::collections::HashMap;

use actix_web::HttpRequest;

/// Body fields win over query fields. The parser is lenient, skipping a malformed pair
/// rather than dropping everything: one bad pair must not make a check vanish.
pub fn query_and_form(request: &HttpRequest, body: &[u8]) -> HashMap<String, String> {
    let mut params: HashMap<String, String> =
        url::form_urlencoded::parse(request.query_string().as_bytes())
            .into_owned()
            .collect();
    let is_form = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    params
}
