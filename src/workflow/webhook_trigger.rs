//! The `webhook` trigger of a definition: path, provider, events filter and
//! the connection holding the signing secret, checked at apply time.

use super::compile::Checker;
use super::trigger::{TriggerDef, flag};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookProvider {
    Stripe,
    Github,
    Standard,
    Custom,
}

impl WebhookProvider {
    pub const ALL: [&'static str; 4] = ["stripe", "github", "standard", "custom"];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookProvider::Stripe => "stripe",
            WebhookProvider::Github => "github",
            WebhookProvider::Standard => "standard",
            WebhookProvider::Custom => "custom",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookProvider> {
        Some(match s {
            "stripe" => WebhookProvider::Stripe,
            "github" => WebhookProvider::Github,
            "standard" => WebhookProvider::Standard,
            "custom" => WebhookProvider::Custom,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct WebhookDef {
    pub path: String,
    pub provider: WebhookProvider,
    /// Absent: every event starts a run.
    pub events: Option<Vec<String>>,
    /// The `webhook` connection holding the signing secret.
    pub connection: Option<String>,
    pub verify_signature: bool,
}

pub const WEBHOOK_FIELDS: &[&str] = &[
    "type",
    "path",
    "provider",
    "events",
    "connection",
    "verifySignature",
];

pub(super) fn parse_webhook(
    ck: &mut Checker,
    t: &Map<String, Value>,
    at: &dyn Fn(&[&str]) -> Vec<Value>,
) -> TriggerDef {
    let path = match t.get("path").and_then(Value::as_str) {
        Some(p) if valid_webhook_path(p) => Some(p.to_string()),
        _ => {
            ck.add(
                at(&["path"]),
                "required: 1 to 128 characters of A-Z a-z 0-9 - _ . / (the URL is /webhooks/{path})",
            );
            None
        }
    };
    let provider = match t.get("provider") {
        None => Some(WebhookProvider::Custom),
        Some(Value::String(s)) if WebhookProvider::parse(s).is_some() => WebhookProvider::parse(s),
        Some(_) => {
            ck.add(
                at(&["provider"]),
                format!("must be one of {}", WebhookProvider::ALL.join(", ")),
            );
            None
        }
    };
    let events = match t.get("events") {
        None => None,
        Some(Value::Array(a)) if a.iter().all(|e| e.as_str().is_some_and(|s| !s.is_empty())) => {
            Some(
                a.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect(),
            )
        }
        Some(_) => {
            ck.add(
                at(&["events"]),
                "must be an array of event types like [\"invoice.paid\"]",
            );
            None
        }
    };
    let connection = match t.get("connection") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            ck.add(at(&["connection"]), "must be a connection id (conn_…)");
            None
        }
    };
    let verify_signature = flag(ck, t.get("verifySignature"), at(&["verifySignature"]), true);
    if verify_signature && connection.is_none() {
        ck.add(
            at(&["connection"]),
            "required: the webhook connection that holds the signing secret (or \"verifySignature\": false to accept unsigned calls)",
        );
    }
    match (path, provider) {
        (Some(path), Some(provider)) => TriggerDef::Webhook(WebhookDef {
            path,
            provider,
            events,
            connection,
            verify_signature,
        }),
        _ => TriggerDef::Api,
    }
}

pub fn valid_webhook_path(p: &str) -> bool {
    (1..=128).contains(&p.len())
        && !p.starts_with('/')
        && !p.ends_with('/')
        && !p.contains("//")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}
