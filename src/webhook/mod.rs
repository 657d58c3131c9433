//! Inbound webhook signatures (pure): each provider's scheme, checked over the
//! raw request bytes with constant-time comparison, and where each provider
//! puts its event id and event type. No I/O; time comes in as an argument.

mod sign;
mod verify;

pub use sign::sign;
pub use verify::{SignatureError, signature_headers, verify};

use crate::workflow::trigger::WebhookProvider;
use axum::http::HeaderMap;
use serde_json::Value;

/// Tolerance for signed timestamps (Stripe, Standard Webhooks).
pub const TOLERANCE_SECS: i64 = 300;

/// Header carrying a `custom` signature when the connection names none.
pub const DEFAULT_CUSTOM_HEADER: &str = "x-webhook-signature";

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|s| !s.is_empty())
}

/// The provider's event id: Stripe's body `id`, GitHub's `X-GitHub-Delivery`,
/// Standard Webhooks' `webhook-id`; `custom`: an `Idempotency-Key` or
/// `X-Webhook-Id` header, else the body's `id`.
pub fn event_id(provider: WebhookProvider, h: &HeaderMap, body: &Value) -> Option<String> {
    let body_id = || body.get("id").and_then(Value::as_str).map(String::from);
    match provider {
        WebhookProvider::Stripe => body_id(),
        WebhookProvider::Github => header(h, "x-github-delivery").map(String::from),
        WebhookProvider::Standard => header(h, "webhook-id").map(String::from),
        WebhookProvider::Custom => header(h, "idempotency-key")
            .or_else(|| header(h, "x-webhook-id"))
            .map(String::from)
            .or_else(body_id),
    }
    .filter(|id| !id.is_empty() && id.chars().count() <= 255 && !id.chars().any(char::is_control))
}

/// The event type: the body's `type`, or GitHub's `X-GitHub-Event` header.
pub fn event_type(provider: WebhookProvider, h: &HeaderMap, body: &Value) -> Option<String> {
    match provider {
        WebhookProvider::Github => header(h, "x-github-event").map(String::from),
        _ => body.get("type").and_then(Value::as_str).map(String::from),
    }
}
