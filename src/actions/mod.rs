//! Side-effect actions of workflow steps: `http.request`, `stripe.*` and `email`.
//!
//! The engine hands over an already rendered step `config`, the resolved connection
//! (with its decrypted secret) and an [`ActionContext`]; [`Actions::execute`] performs the
//! call and answers the step output or an [`ActionError`] that says whether a retry can help.
//! Depends on reqwest, lettre, tokio and serde_json only — never on the store, the engine or
//! the HTTP API.
//!
//! Cross-cutting decisions (details in each submodule):
//! * The whole call is bounded by `ctx.timeout` (for `http.request` also by a smaller
//!   `config.timeoutMs`); running out answers `TIMEOUT`, retryable. Dropping the future
//!   aborts the call in flight (the socket is closed), which is what cancellation relies on.
//! * A connection of another provider than the action's is refused (`INVALID_CONFIG`).
//! * Secrets never leave this module: [`ResolvedConnection`]'s `Debug` redacts them, nothing
//!   here logs configs or headers, and every error message and step output is scrubbed of
//!   the connection's secret (a server echoing the `Authorization` header back, for example,
//!   yields `[REDACTED]` in the step output).

mod dns;
mod email;
mod form;
mod http;
mod kind;
mod stripe;
mod transport;

use std::fmt;
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;

pub use kind::ActionKind;

/// Why an action failed, and whether trying again may help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ActionError {
    /// Machine-readable cause: `HTTP_STATUS`, `CONNECT`, `NETWORK`, `TIMEOUT`,
    /// `STRIPE_ERROR`, `SMTP`, `INVALID_CONFIG`, `RESPONSE_TOO_LARGE`.
    pub code: String,
    /// Human-readable message; never contains a secret.
    pub message: String,
    /// Transient failure (connect error, timeout, 429, 5xx, SMTP 4xx): retry per policy.
    pub retryable: bool,
    /// Server-requested delay before the next attempt (`Retry-After`).
    pub retry_after: Option<Duration>,
    /// The config field that rendered empty, so the caller can name the
    /// template that produced it.
    pub empty_field: Option<&'static str>,
}

impl ActionError {
    pub fn new(code: &str, message: impl Into<String>, retryable: bool) -> ActionError {
        ActionError {
            code: code.to_string(),
            message: message.into(),
            retryable,
            retry_after: None,
            empty_field: None,
        }
    }

    /// A required config field rendered empty: never retryable.
    pub fn empty(field: &'static str, message: impl Into<String>) -> ActionError {
        ActionError {
            empty_field: Some(field),
            ..ActionError::invalid_config(message)
        }
    }

    /// A configuration problem: never retryable.
    pub fn invalid_config(message: impl Into<String>) -> ActionError {
        ActionError::new("INVALID_CONFIG", message, false)
    }

    pub fn timeout(after: Duration) -> ActionError {
        ActionError::new(
            "TIMEOUT",
            format!("timed out after {} ms", after.as_millis()),
            true,
        )
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> ActionError {
        self.retry_after = retry_after;
        self
    }
}

/// A connection with its decrypted secret; `Debug` redacts `secret`.
#[derive(Clone)]
pub struct ResolvedConnection {
    pub id: String,
    pub provider: crate::store::ConnectionProvider,
    pub config: Value,
    pub secret: Option<String>,
}

impl fmt::Debug for ResolvedConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolvedConnection")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("config", &self.config)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// Who is calling: used for provider idempotency keys and log spans.
pub struct ActionContext<'a> {
    pub run_id: &'a str,
    pub step_id: &'a str,
    /// The step's time budget (docs/workflows.md, default 30 s).
    pub timeout: Duration,
}

/// The action executor: holds the shared HTTP clients; cheap to clone.
#[derive(Clone)]
pub struct Actions {
    clients: transport::Clients,
}

impl Default for Actions {
    fn default() -> Self {
        Actions::new()
    }
}

impl Actions {
    pub fn new() -> Actions {
        Actions {
            clients: transport::Clients::new(),
        }
    }

    /// Run one action. `config` is already rendered (templates evaluated).
    ///
    /// Honours `ctx.timeout` (→ `TIMEOUT`, retryable); dropping the future aborts the call.
    pub async fn execute(
        &self,
        kind: ActionKind,
        config: &Value,
        conn: Option<&ResolvedConnection>,
        ctx: &ActionContext<'_>,
    ) -> Result<Value, ActionError> {
        let span = tracing::debug_span!(
            "action",
            run_id = ctx.run_id,
            step_id = ctx.step_id,
            action = kind.as_str(),
            connection = conn.map(|c| c.id.as_str()),
        );
        let started = std::time::Instant::now();
        let result = self
            .execute_unscrubbed(kind, config, conn, ctx)
            .instrument(span.clone())
            .await;
        let secret = conn.and_then(|c| c.secret.as_deref());
        let result = match result {
            Ok(output) => Ok(scrub_value(output, secret)),
            Err(mut err) => {
                err.message = scrub_str(&err.message, secret);
                Err(err)
            }
        };
        let elapsed_ms = started.elapsed().as_millis() as u64;
        span.in_scope(|| match &result {
            Ok(_) => tracing::debug!(elapsed_ms, "action completed"),
            Err(e) => tracing::debug!(
                elapsed_ms,
                code = %e.code,
                retryable = e.retryable,
                message = %e.message,
                "action failed"
            ),
        });
        result
    }

    async fn execute_unscrubbed(
        &self,
        kind: ActionKind,
        config: &Value,
        conn: Option<&ResolvedConnection>,
        ctx: &ActionContext<'_>,
    ) -> Result<Value, ActionError> {
        if !config.is_object() && !config.is_null() {
            return Err(ActionError::invalid_config(format!(
                "{} config must be an object",
                kind.as_str()
            )));
        }
        if let Some(c) = conn
            && c.provider != kind.provider()
        {
            return Err(ActionError::invalid_config(format!(
                "{} needs a {} connection, but connection {} is for {}",
                kind.as_str(),
                kind.provider(),
                c.id,
                c.provider
            )));
        }
        let budget = match kind {
            ActionKind::HttpRequest => {
                http::timeout_override(config)?.map_or(ctx.timeout, |t| t.min(ctx.timeout))
            }
            _ => ctx.timeout,
        };
        let call = async {
            match kind {
                ActionKind::HttpRequest => http::request(&self.clients, config, conn).await,
                ActionKind::Email => email::send(config, conn, budget).await,
                _ => stripe::execute(&self.clients.no_redirects, kind, config, conn, ctx).await,
            }
        };
        match tokio::time::timeout(budget, call).await {
            Ok(result) => result,
            Err(_) => Err(ActionError::timeout(budget)),
        }
    }
}

const REDACTED: &str = "[REDACTED]";

/// Replace every occurrence of the secret. Secrets shorter than 4 characters are not
/// scrubbed: they would mangle unrelated text and protect nothing.
fn scrub_str(text: &str, secret: Option<&str>) -> String {
    match secret {
        Some(s) if s.len() >= 4 && text.contains(s) => text.replace(s, REDACTED),
        _ => text.to_string(),
    }
}

fn scrub_value(value: Value, secret: Option<&str>) -> Value {
    let Some(s) = secret.filter(|s| s.len() >= 4) else {
        return value;
    };
    match value {
        Value::String(text) if text.contains(s) => Value::String(text.replace(s, REDACTED)),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|v| scrub_value(v, Some(s))).collect())
        }
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (scrub_str(&k, Some(s)), scrub_value(v, Some(s))))
                .collect(),
        ),
        other => other,
    }
}

/// `config[key]` as a string; `null`/absent is `None`; numbers and booleans are rendered.
pub(crate) fn opt_string(config: &Value, key: &str) -> Result<Option<String>, ActionError> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(other) => Err(ActionError::invalid_config(format!(
            "'{key}' must be a string, got {}",
            type_name(other)
        ))),
    }
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_redacts_secret() {
        let conn = ResolvedConnection {
            id: "conn_1".into(),
            provider: crate::store::ConnectionProvider::Stripe,
            config: json!({}),
            secret: Some("sk_test_supersecret".into()),
        };
        let text = format!("{conn:?}");
        assert!(!text.contains("supersecret"), "{text}");
        assert!(text.contains("[REDACTED]"));
    }

    #[test]
    fn scrubbing_reaches_nested_values_and_keys() {
        let v = json!({"headers": {"authorization": "Bearer sk_live_123"}, "sk_live_123": [1, "x sk_live_123"]});
        let out = scrub_value(v, Some("sk_live_123"));
        assert!(!out.to_string().contains("sk_live_123"), "{out}");
        assert_eq!(out["headers"]["authorization"], "Bearer [REDACTED]");
        assert_eq!(scrub_str("abc", Some("ab")), "abc");
    }
}
