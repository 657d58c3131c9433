//! The one place where errors become HTTP statuses and the documented error codes.
//! 5xx answers hide internals; the real cause is logged once, here.

use crate::api::{ErrorBody, ErrorDetail, ErrorEnvelope, codes};
use crate::store::StoreError;
use crate::trigger::TriggerError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug)]
pub enum ApiError {
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    InvalidStatus(String),
    Validation {
        message: String,
        details: Vec<ErrorDetail>,
    },
    InvalidRequest(String),
    ConnectionRequired(String),
    InvalidConnection(String),
    PayloadTooLarge(String),
    MethodNotAllowed,
    RateLimited {
        limit: u32,
        retry_after_secs: u64,
    },
    /// Disk full or unreachable storage: nothing changed, retry later.
    StorageUnavailable(String),
    /// The database file is damaged; the real cause is logged by the store.
    StorageCorrupt,
    /// A request body did not arrive within the server's body timeout.
    RequestTimeout(String),
    /// Too many unauthenticated requests at once: retry after the seconds given.
    Unavailable(String, u64),
    /// `409`: another decision is on record (it travels in the error's `decision`).
    AlreadyDecided {
        message: String,
        recorded: serde_json::Value,
    },
    /// `409`: the callback came already.
    AlreadyReceived(String),
    /// `410`: past its deadline, or its run no longer waits.
    Expired(String),
    /// `409`: the step does not wait for this (yet).
    NotWaiting(String),
    Internal(String),
}

/// How long a client should wait before retrying on unavailable storage.
const STORAGE_RETRY_AFTER_SECS: u64 = 5;

impl ApiError {
    /// Status, code and the message a caller may see (the dashboard renders these too).
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError::*;
        match self {
            Unauthorized(m) => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, m.clone()),
            Forbidden(m) => (StatusCode::FORBIDDEN, codes::FORBIDDEN, m.clone()),
            NotFound(m) => (StatusCode::NOT_FOUND, codes::NOT_FOUND, m.clone()),
            InvalidStatus(m) => (StatusCode::BAD_REQUEST, codes::INVALID_STATUS, m.clone()),
            Validation { message, .. } => (
                StatusCode::BAD_REQUEST,
                codes::VALIDATION_ERROR,
                message.clone(),
            ),
            InvalidRequest(m) => (StatusCode::BAD_REQUEST, codes::INVALID_REQUEST, m.clone()),
            ConnectionRequired(m) => (
                StatusCode::BAD_REQUEST,
                codes::CONNECTION_REQUIRED,
                m.clone(),
            ),
            InvalidConnection(m) => (
                StatusCode::BAD_REQUEST,
                codes::INVALID_CONNECTION,
                m.clone(),
            ),
            PayloadTooLarge(m) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                codes::PAYLOAD_TOO_LARGE,
                m.clone(),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                codes::METHOD_NOT_ALLOWED,
                "Method not allowed for this route".into(),
            ),
            RateLimited { limit, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                codes::RATE_LIMITED,
                format!("Rate limit exceeded. Limit: {limit} requests per minute."),
            ),
            StorageCorrupt => (
                StatusCode::SERVICE_UNAVAILABLE,
                codes::STORAGE_CORRUPT,
                "The database file is corrupt; the server log names the file and the cause".into(),
            ),
            RequestTimeout(m) => (
                StatusCode::REQUEST_TIMEOUT,
                codes::REQUEST_TIMEOUT,
                m.clone(),
            ),
            Unavailable(m, _) => (
                StatusCode::SERVICE_UNAVAILABLE,
                codes::SERVER_BUSY,
                m.clone(),
            ),
            StorageUnavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                codes::STORAGE_UNAVAILABLE,
                "Storage is unavailable (disk full or unwritable); nothing was changed, retry later"
                    .into(),
            ),
            AlreadyDecided { message, .. } => {
                (StatusCode::CONFLICT, codes::ALREADY_DECIDED, message.clone())
            }
            AlreadyReceived(m) => (StatusCode::CONFLICT, codes::ALREADY_RECEIVED, m.clone()),
            Expired(m) => (StatusCode::GONE, codes::EXPIRED, m.clone()),
            NotWaiting(m) => (StatusCode::CONFLICT, codes::NOT_WAITING, m.clone()),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "Internal server error".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = self.parts();
        match &self {
            ApiError::Internal(cause) => tracing::error!(%cause, "internal error"),
            ApiError::StorageUnavailable(cause) => tracing::warn!(%cause, "storage unavailable"),
            _ => {}
        }
        let retry_after = match &self {
            ApiError::RateLimited {
                retry_after_secs, ..
            } => Some(*retry_after_secs),
            ApiError::StorageUnavailable(_) => Some(STORAGE_RETRY_AFTER_SECS),
            ApiError::Unavailable(_, secs) => Some(*secs),
            _ => None,
        };
        let (details, decision) = match self {
            ApiError::Validation { details, .. } => (Some(details), None),
            ApiError::AlreadyDecided { recorded, .. } => (None, Some(recorded)),
            _ => (None, None),
        };
        let body = ErrorEnvelope {
            success: false,
            error: ErrorBody {
                code: code.into(),
                message,
                details,
                decision,
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(capitalized_not_found(what)),
            // Logged (once, naming the file) by the store.
            StoreError::Corrupt(_) => ApiError::StorageCorrupt,
            other if other.is_unavailable() => ApiError::StorageUnavailable(other.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<TriggerError> for ApiError {
    fn from(e: TriggerError) -> Self {
        match e {
            TriggerError::InvalidStatus(_) => ApiError::InvalidStatus(e.to_string()),
            TriggerError::Validation(details) => ApiError::Validation {
                message: "Input validation failed".into(),
                details,
            },
            TriggerError::ConnectionRequired(m) => ApiError::ConnectionRequired(m),
            TriggerError::InvalidConnection(m) => ApiError::InvalidConnection(m),
            TriggerError::TooDeep => ApiError::InvalidRequest(e.to_string()),
            TriggerError::Store(s) => s.into(),
        }
    }
}

impl From<crate::runs::CancelError> for ApiError {
    fn from(e: crate::runs::CancelError) -> Self {
        match e {
            crate::runs::CancelError::Store(s) => s.into(),
        }
    }
}

impl From<crate::runs::ReplayError> for ApiError {
    fn from(e: crate::runs::ReplayError) -> Self {
        match e {
            crate::runs::ReplayError::Original(s) => s.into(),
            crate::runs::ReplayError::Trigger(t) => t.into(),
            e @ crate::runs::ReplayError::PartOfParent(..) => {
                ApiError::InvalidRequest(e.to_string())
            }
        }
    }
}

impl From<crate::workflows::StatusError> for ApiError {
    fn from(e: crate::workflows::StatusError) -> Self {
        match e {
            crate::workflows::StatusError::Store(s) => s.into(),
        }
    }
}

impl From<crate::delivery::DeliveryError> for ApiError {
    fn from(e: crate::delivery::DeliveryError) -> Self {
        use crate::delivery::DeliveryError::*;
        match e {
            NoListener(_) | Paused(_) => ApiError::NotFound(e.to_string()),
            Unverified(_) => ApiError::Unauthorized(e.to_string()),
            Refused(t) => t.into(),
            TooDeep(_) => ApiError::InvalidRequest(e.to_string()),
            Store(s) => s.into(),
        }
    }
}

/// "workflow" → "Workflow not found" (the seed's wording).
fn capitalized_not_found(what: &str) -> String {
    let mut chars = what.chars();
    match chars.next() {
        Some(first) => format!("{}{} not found", first.to_uppercase(), chars.as_str()),
        None => "Not found".into(),
    }
}

/// Envelope for routes that do not exist.
pub async fn not_found_fallback() -> ApiError {
    ApiError::NotFound("Route not found".into())
}

pub async fn method_not_allowed_fallback() -> ApiError {
    ApiError::MethodNotAllowed
}
