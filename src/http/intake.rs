//! What a request that has not authenticated may cost before it does: the
//! routes that read a body before they know who is asking (inbound webhooks,
//! the dashboard login form) take an intake slot and a share of one global
//! byte budget first, or are answered `503` at once without reading a byte of
//! body. The slots are a share of the connection cap, so however many slow
//! bodies a stranger sends, the rest of the connections stay for API clients
//! with keys and `/healthz`; the budget bounds the memory such bodies can hold.

use super::error::ApiError;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The dashboard login form: a key and a path fit in far less.
pub const LOGIN_BODY_LIMIT: usize = 16 * 1024;

/// Default of `--unauthenticated-body-budget`.
pub const DEFAULT_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// How long a refused client should wait before trying again.
const RETRY_AFTER_SECS: u64 = 1;

/// Requests still waiting for a body or being handled without credentials
/// may hold this share of the connection cap (three quarters); the rest is
/// reserved for everyone else.
pub fn unauthenticated_slots(max_connections: usize) -> usize {
    (max_connections.saturating_mul(3) / 4).max(1)
}

#[derive(Clone)]
pub struct Intake {
    slots: Arc<Semaphore>,
    bytes: Arc<Semaphore>,
    budget: usize,
    /// The largest body any route takes (`--body-limit`).
    pub body_limit: usize,
}

/// Held while an unauthenticated request is read and handled.
pub struct Admission {
    _slot: OwnedSemaphorePermit,
    _bytes: OwnedSemaphorePermit,
}

impl Intake {
    pub fn new(slots: usize, budget_bytes: usize, body_limit: usize) -> Intake {
        let budget = budget_bytes.clamp(1, u32::MAX as usize);
        Intake {
            slots: Arc::new(Semaphore::new(slots.max(1))),
            bytes: Arc::new(Semaphore::new(budget)),
            budget,
            body_limit,
        }
    }

    /// A slot and room in the budget for a body of at most `limit` bytes
    /// (`Content-Length` when the client declared one), or `503` at once.
    pub fn admit(&self, headers: &HeaderMap, limit: usize) -> Result<Admission, Refused> {
        let declared = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(n) = declared
            && n > limit as u64
        {
            return Err(Refused(ApiError::PayloadTooLarge(format!(
                "Request body is too large: Content-Length {n} is over the limit of {limit} bytes"
            ))));
        }
        let want = declared.map_or(limit, |n| n as usize).clamp(1, self.budget);
        let busy = || {
            Refused(ApiError::Unavailable(
                "The server is busy with other unauthenticated requests; retry shortly".into(),
                RETRY_AFTER_SECS,
            ))
        };
        let slot = self.slots.clone().try_acquire_owned().map_err(|_| busy())?;
        let bytes = self
            .bytes
            .clone()
            .try_acquire_many_owned(want as u32)
            .map_err(|_| busy())?;
        Ok(Admission {
            _slot: slot,
            _bytes: bytes,
        })
    }
}

/// An answer given without reading the body: the connection is closed after
/// it (the unread body is never buffered), and the client is told so.
pub struct Refused(pub ApiError);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        let mut resp = self.0.into_response();
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        resp
    }
}

impl From<ApiError> for Refused {
    fn from(e: ApiError) -> Self {
        Refused(e)
    }
}

/// Read a whole body of at most `limit` bytes: `413` beyond it, `408` when it
/// does not arrive within the server's body timeout, `400` otherwise.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        use std::error::Error;
        let source = e.source();
        if e.to_string().contains("length limit exceeded") {
            ApiError::PayloadTooLarge(format!(
                "Request body is too large: over the limit of {limit} bytes"
            ))
        } else if let Some(t) = source.and_then(super::server::body_timeout_in) {
            ApiError::RequestTimeout(format!("{t}; send the whole body at once"))
        } else if let Some(t) = super::server::body_timeout_in(&e) {
            ApiError::RequestTimeout(format!("{t}; send the whole body at once"))
        } else {
            ApiError::InvalidRequest(format!("cannot read request body: {e}"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_length(n: u64) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
        h
    }

    #[test]
    fn slots_and_bytes_are_bounded_and_given_back() {
        let intake = Intake::new(2, 1000, 1000);
        let a = intake.admit(&with_length(600), 1000).ok().unwrap();
        assert!(
            intake.admit(&with_length(600), 1000).is_err(),
            "over the byte budget"
        );
        let b = intake.admit(&with_length(100), 1000).ok().unwrap();
        assert!(intake.admit(&with_length(1), 1000).is_err(), "out of slots");
        drop((a, b));
        assert!(intake.admit(&HeaderMap::new(), 1000).is_ok());
        assert!(matches!(
            intake.admit(&with_length(1001), 1000),
            Err(Refused(ApiError::PayloadTooLarge(_)))
        ));
        assert_eq!(unauthenticated_slots(64), 48);
        assert_eq!(unauthenticated_slots(1), 1);
    }
}
