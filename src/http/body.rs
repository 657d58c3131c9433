//! Request bodies: JSON parsed by hand so that every rejection (malformed,
//! wrong type, wrong content type, too large) answers with the envelope.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

/// JSON, or what clients send JSON as without saying so: `curl -d` declares a
/// form body (the seed's cron example relies on it) and some tools send text.
fn json_compatible(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty()
        || essence == "application/json"
        || essence.ends_with("+json")
        || essence == "application/x-www-form-urlencoded"
        || essence == "text/plain"
}

/// Like `axum::Json`, but an empty body is `{}` and errors are `ApiError`s.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE)
            && !json_compatible(ct.to_str().unwrap_or(""))
        {
            return Err(ApiError::InvalidRequest(format!(
                "Content-Type {} is not supported: send JSON with Content-Type: application/json",
                ct.to_str().unwrap_or("(not text)")
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("Request body is too large".into())
            } else if let Some(t) = super::server::body_timeout_in(&e) {
                ApiError::RequestTimeout(format!("{t}; send the whole body at once"))
            } else {
                ApiError::InvalidRequest(format!("cannot read request body: {e}"))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::InvalidRequest("Request body is not valid UTF-8".into()))?;
        serde_json::from_str(text)
            .map(JsonBody)
            .map_err(|e| ApiError::InvalidRequest(format!("Invalid JSON body: {e}")))
    }
}
