//! Signing a test delivery the way each provider would, so that
//! `flowctl webhook send` goes through the real verification path without
//! anyone handling the secret (the inverse of `verify`).

use super::DEFAULT_CUSTOM_HEADER;
use super::verify::SignatureError;
use crate::workflow::trigger::WebhookProvider;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

fn tag(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m =
        <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC accepts any key length");
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The headers that make `body` a correctly signed delivery at `now_secs`.
/// `delivery_id` becomes GitHub's and Standard Webhooks' delivery id.
pub fn sign(
    provider: WebhookProvider,
    secret: &str,
    body: &[u8],
    now_secs: i64,
    custom_header: Option<&str>,
    delivery_id: &str,
) -> Result<Vec<(String, String)>, SignatureError> {
    let t = now_secs.to_string();
    Ok(match provider {
        WebhookProvider::Stripe => {
            let sig = hex(&tag(secret.as_bytes(), &[t.as_bytes(), b".", body]));
            vec![("stripe-signature".into(), format!("t={t},v1={sig}"))]
        }
        WebhookProvider::Github => vec![
            (
                "x-hub-signature-256".into(),
                format!("sha256={}", hex(&tag(secret.as_bytes(), &[body]))),
            ),
            ("x-github-delivery".into(), delivery_id.into()),
        ],
        WebhookProvider::Standard => {
            let b64 = base64::engine::general_purpose::STANDARD;
            let key = b64
                .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
                .map_err(|_| SignatureError::BadSecret("expected whsec_ followed by base64"))?;
            let sig = tag(
                &key,
                &[delivery_id.as_bytes(), b".", t.as_bytes(), b".", body],
            );
            vec![
                ("webhook-id".into(), delivery_id.into()),
                ("webhook-timestamp".into(), t),
                (
                    "webhook-signature".into(),
                    format!("v1,{}", b64.encode(sig)),
                ),
            ]
        }
        WebhookProvider::Custom => vec![(
            custom_header
                .unwrap_or(DEFAULT_CUSTOM_HEADER)
                .to_ascii_lowercase(),
            format!("sha256={}", hex(&tag(secret.as_bytes(), &[body]))),
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderName, HeaderValue};

    /// What `sign` produces, `verify` accepts, for every provider.
    #[test]
    fn signed_deliveries_verify() {
        let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
        let secret = "whsec_c2VjcmV0LWJ5dGVz";
        for p in [
            WebhookProvider::Stripe,
            WebhookProvider::Github,
            WebhookProvider::Standard,
            WebhookProvider::Custom,
        ] {
            let mut h = HeaderMap::new();
            for (k, v) in sign(p, secret, body, 1_000, None, "msg_1").unwrap() {
                h.insert(
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(&v).unwrap(),
                );
            }
            assert_eq!(
                super::super::verify(p, secret, &h, body, 1_010, None),
                Ok(()),
                "{p:?}"
            );
        }
    }
}
