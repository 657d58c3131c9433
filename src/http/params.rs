//! Path and query-string parameters, parsed so that bad values get the envelope.

use super::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::time::Duration;

/// Like `axum::extract::Path`, but a segment that cannot be decoded (e.g.
/// `%FF`, not UTF-8) is an `INVALID_REQUEST` envelope, not axum's plain text.
pub struct Path<T>(pub T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Path(value)),
            Err(e) if e.status().is_server_error() => Err(ApiError::Internal(e.body_text())),
            Err(e) => Err(ApiError::InvalidRequest(e.body_text())),
        }
    }
}

pub type QueryMap = HashMap<String, String>;

pub fn parse_query(raw: Option<&str>) -> Result<QueryMap, ApiError> {
    let mut out = HashMap::new();
    for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(decode(k)?, decode(v)?);
    }
    Ok(out)
}

fn decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let byte = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        ApiError::InvalidRequest(format!("bad percent-encoding in query: {s}"))
                    })?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map_err(|_| ApiError::InvalidRequest("query string is not valid UTF-8".into()))
}

/// `?wait=SECONDS`, 0 to 60.
pub fn wait(q: &QueryMap) -> Result<Option<Duration>, ApiError> {
    match q.get("wait") {
        None => Ok(None),
        Some(v) => match v.parse::<f64>() {
            Ok(s) if (0.0..=60.0).contains(&s) => Ok(Duration::try_from_secs_f64(s).ok()),
            _ => Err(ApiError::InvalidRequest(
                "wait must be a number of seconds from 0 to 60".into(),
            )),
        },
    }
}

pub fn limit(q: &QueryMap) -> Result<usize, ApiError> {
    match q.get("limit") {
        None => Ok(20),
        Some(v) => match v.parse::<usize>() {
            Ok(n @ 1..=100) => Ok(n),
            _ => Err(ApiError::InvalidRequest(
                "limit must be an integer from 1 to 100".into(),
            )),
        },
    }
}
