//! Request bodies: JSON parsed by hand so that every rejection (malformed,
//! wrong type, wrong content type, too large) answers with the envelope.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

/// Like `axum::Json`, but an empty body is `{}` and errors are `ApiError`s.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge("Request body is too large".into())
            } else {
                ApiError::InvalidRequest(format!("cannot read request body: {e}"))
            }
        })?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // `curl -d` declares a form body; the seed's cron example relies on it,
        // so the declared content type is not checked: the body must be JSON.
        let text = std::str::from_utf8(bytes)
            .map_err(|_| ApiError::InvalidRequest("Request body is not valid UTF-8".into()))?;
        serde_json::from_str(text)
            .map(JsonBody)
            .map_err(|e| ApiError::InvalidRequest(format!("Invalid JSON body: {e}")))
    }
}
