//! The four signature schemes. Every comparison is constant-time
//! (`Mac::verify_slice` or `subtle`), and always over the bytes as received.

use super::{DEFAULT_CUSTOM_HEADER, TOLERANCE_SECS, header};
use crate::workflow::trigger::WebhookProvider;
use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing signature header {0}")]
    Missing(&'static str),
    #[error("malformed signature header {0}")]
    Malformed(&'static str),
    #[error("the signature does not match")]
    Mismatch,
    #[error("the signed timestamp is more than 300 seconds from now")]
    Stale,
    #[error("the webhook connection's secret is not usable for this provider: {0}")]
    BadSecret(&'static str),
}

/// Header names that carry signatures, removed from the run's input.
pub fn signature_headers(custom_header: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = [
        "stripe-signature",
        "x-hub-signature",
        "x-hub-signature-256",
        "webhook-signature",
        DEFAULT_CUSTOM_HEADER,
    ]
    .map(String::from)
    .to_vec();
    if let Some(h) = custom_header {
        names.push(h.to_ascii_lowercase());
    }
    names
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length.
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length")
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn fresh(timestamp: i64, now_secs: i64) -> Result<(), SignatureError> {
    if (now_secs - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

/// The signature header a delivery lacks, told from the headers alone, so
/// that an unsigned request is refused before its body is read.
pub fn missing_header(
    provider: WebhookProvider,
    headers: &HeaderMap,
    custom_header: Option<&str>,
) -> Option<SignatureError> {
    let needed: &[&'static str] = match provider {
        WebhookProvider::Stripe => &["stripe-signature"],
        WebhookProvider::Github => &["x-hub-signature-256"],
        WebhookProvider::Standard => &["webhook-id", "webhook-timestamp", "webhook-signature"],
        WebhookProvider::Custom => {
            let name = custom_header.unwrap_or(DEFAULT_CUSTOM_HEADER);
            return headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .is_none()
                .then_some(SignatureError::Missing(
                    "named by the connection's config.header",
                ));
        }
    };
    needed
        .iter()
        .find(|h| header(headers, h).is_none())
        .map(|h| SignatureError::Missing(h))
}

/// Verify `body` as signed by `provider` with `secret`, at `now_secs`.
/// `custom_header` is the header a `custom` signature is in.
pub fn verify(
    provider: WebhookProvider,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
    custom_header: Option<&str>,
) -> Result<(), SignatureError> {
    match provider {
        WebhookProvider::Stripe => stripe(secret, headers, body, now_secs),
        WebhookProvider::Github => {
            const H: &str = "x-hub-signature-256";
            let sig = header(headers, H).ok_or(SignatureError::Missing(H))?;
            let hex = sig
                .strip_prefix("sha256=")
                .ok_or(SignatureError::Malformed(H))?;
            let tag = hex_decode(hex).ok_or(SignatureError::Malformed(H))?;
            let mut m = mac(secret.as_bytes());
            m.update(body);
            m.verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
        }
        WebhookProvider::Standard => standard(secret, headers, body, now_secs),
        WebhookProvider::Custom => {
            let name = custom_header.unwrap_or(DEFAULT_CUSTOM_HEADER);
            let sig =
                headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(SignatureError::Missing(
                        "named by the connection's config.header",
                    ))?;
            let hex = sig.strip_prefix("sha256=").unwrap_or(sig);
            let tag = hex_decode(hex).ok_or(SignatureError::Malformed("(custom)"))?;
            let mut m = mac(secret.as_bytes());
            m.update(body);
            m.verify_slice(&tag).map_err(|_| SignatureError::Mismatch)
        }
    }
}

/// `Stripe-Signature: t=…,v1=…[,v1=…]`, HMAC-SHA256 of `{t}.{body}`; any `v1` may match.
fn stripe(secret: &str, h: &HeaderMap, body: &[u8], now: i64) -> Result<(), SignatureError> {
    const H: &str = "stripe-signature";
    let value = header(h, H).ok_or(SignatureError::Missing(H))?;
    let mut timestamp = None;
    let mut candidates = vec![];
    for part in value.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => candidates.push(sig),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed(H))?;
    if candidates.is_empty() {
        return Err(SignatureError::Malformed(H));
    }
    let mut m = mac(secret.as_bytes());
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    let expected = m.finalize().into_bytes();
    let mut matched = subtle::Choice::from(0);
    for c in candidates {
        if let Some(tag) = hex_decode(c) {
            matched |= subtle::ConstantTimeEq::ct_eq(expected.as_slice(), tag.as_slice());
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    fresh(t, now)
}

/// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature:
/// v1,<base64> …` over `{id}.{timestamp}.{body}` with the `whsec_` secret's bytes.
fn standard(secret: &str, h: &HeaderMap, body: &[u8], now: i64) -> Result<(), SignatureError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let key = b64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|_| SignatureError::BadSecret("expected whsec_ followed by base64"))?;
    let id = header(h, "webhook-id").ok_or(SignatureError::Missing("webhook-id"))?;
    let ts = header(h, "webhook-timestamp").ok_or(SignatureError::Missing("webhook-timestamp"))?;
    let t: i64 = ts
        .parse()
        .map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
    let sigs =
        header(h, "webhook-signature").ok_or(SignatureError::Missing("webhook-signature"))?;
    let mut m = mac(&key);
    m.update(id.as_bytes());
    m.update(b".");
    m.update(ts.as_bytes());
    m.update(b".");
    m.update(body);
    let expected = m.finalize().into_bytes();
    let mut matched = subtle::Choice::from(0);
    for sig in sigs.split(' ') {
        if let Some(("v1", tag)) = sig.split_once(',')
            && let Ok(tag) = b64.decode(tag)
        {
            matched |= subtle::ConstantTimeEq::ct_eq(expected.as_slice(), tag.as_slice());
        }
    }
    if !bool::from(matched) {
        return Err(SignatureError::Mismatch);
    }
    fresh(t, now)
}
