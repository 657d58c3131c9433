//! Inbound webhook signatures (pure): each provider's scheme, checked over the
//! raw request bytes with constant-time comparison, and where each provider
//! puts its event id and event type. No I/O; time comes in as an argument.

mod sign;
mod verify;

pub use sign::sign;
pub use verify::{SignatureError, missing_header, signature_headers, verify};

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

/// The provider's event id as it sends it: Stripe's body `id`, GitHub's
/// `X-GitHub-Delivery`, Standard Webhooks' `webhook-id`; `custom`: an
/// `Idempotency-Key` or `X-Webhook-Id` header, else the body's `id`.
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
    .filter(|id| usable(id))
}

fn usable(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= 255 && !id.chars().any(char::is_control)
}

/// The key a delivery is deduplicated by. A signed delivery is keyed only by
/// what its signature covers, so a captured delivery replayed with a fresh
/// unsigned id starts nothing: Stripe's body `id` and Standard Webhooks'
/// `webhook-id` are signed; GitHub signs only the body, so its key is the
/// body's SHA-256; `custom` uses the signed body's `id`, else the body's
/// SHA-256. An unsigned path (`verifySignature: false`) has nothing signed
/// and keeps the provider's event id.
pub fn dedupe_key(
    provider: WebhookProvider,
    signed: bool,
    h: &HeaderMap,
    raw: &[u8],
    body: &Value,
) -> Option<String> {
    if !signed {
        return event_id(provider, h, body);
    }
    let digest = || {
        use sha2::Digest;
        let hash = sha2::Sha256::digest(raw);
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    };
    let body_id = body
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| usable(id))
        .map(String::from);
    Some(match provider {
        WebhookProvider::Stripe | WebhookProvider::Custom => body_id.unwrap_or_else(digest),
        WebhookProvider::Standard => event_id(provider, h, body).unwrap_or_else(digest),
        WebhookProvider::Github => digest(),
    })
}

/// The event type: the body's `type`, or GitHub's `X-GitHub-Event` header.
pub fn event_type(provider: WebhookProvider, h: &HeaderMap, body: &Value) -> Option<String> {
    match provider {
        WebhookProvider::Github => header(h, "x-github-event").map(String::from),
        _ => body.get("type").and_then(Value::as_str).map(String::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn signed_deliveries_are_keyed_by_what_is_signed() {
        let mut h = HeaderMap::new();
        h.insert("x-github-delivery", HeaderValue::from_static("d-1"));
        h.insert("idempotency-key", HeaderValue::from_static("fresh-1"));
        let raw = br#"{"id":"ord_1"}"#;
        let body: Value = serde_json::from_slice(raw).unwrap();
        let gh = dedupe_key(WebhookProvider::Github, true, &h, raw, &body).unwrap();
        assert!(gh.starts_with("sha256:") && gh.len() == 71, "{gh}");
        let custom = dedupe_key(WebhookProvider::Custom, true, &h, raw, &body);
        assert_eq!(custom.as_deref(), Some("ord_1"), "the signed body id wins");
        let none = dedupe_key(WebhookProvider::Custom, true, &h, b"[]", &Value::Null).unwrap();
        assert!(none.starts_with("sha256:"));
        let unsigned = dedupe_key(WebhookProvider::Custom, false, &h, raw, &body);
        assert_eq!(unsigned.as_deref(), Some("fresh-1"));
    }
}
