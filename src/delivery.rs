//! The webhook delivery use case: one inbound delivery fanned out to every
//! workflow listening on its path. `prepare` works from the headers alone
//! (who listens, is the signature header there, is the secret usable), so
//! the HTTP layer can refuse before reading a body; `deliver` verifies each
//! listener's signature over the raw bytes, builds the run input once, and
//! starts one run per listener through `Triggers`, keyed by what the
//! provider signed (see `webhook::dedupe_key`) and remembered for the
//! webhook dedupe window. The report says, per workflow, why nothing
//! started (filtered, duplicate, paused, refused). Knows nothing of axum.

use crate::catalog::Listener;
use crate::secrets::SecretBox;
use crate::store::{StoreError, TriggerOutcome, TriggerType};
use crate::trigger::{TriggerError, TriggerRequest, Triggers};
use crate::webhook::{dedupe_key, event_type, missing_header, signature_headers, verify};
use axum::http::HeaderMap;
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Default of `serve --webhook-dedupe-hours`: longer than any provider
/// retries (Stripe: 3 days; Standard Webhooks: about 27 hours).
pub const DEFAULT_DEDUPE_HOURS: u64 = 72;

/// Headers never copied into a run's input, whatever the provider.
const PRIVATE_HEADERS: [&str; 3] = ["authorization", "cookie", "x-api-key"];

/// Paths are at most 128 characters (apply checks it); an answer never
/// echoes more of what a client sent.
const PATH_ECHO: usize = 128;

#[derive(Clone)]
pub struct Deliveries {
    pub triggers: Triggers,
    pub secrets: SecretBox,
    pub dedupe_ttl_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("No active workflow receives webhooks at /webhooks/{0}")]
    NoListener(String),
    #[error("Webhook signature verification failed: {0}")]
    Unverified(String),
    /// Every listener is paused: nothing can start until one is activated.
    #[error("{0}")]
    Paused(String),
    /// No run started and every listener refused the delivery.
    #[error(transparent)]
    Refused(TriggerError),
    /// The run's input (the body wrapped one level deeper) would nest past
    /// the limit for run state.
    #[error("webhook body is nested deeper than {0} levels, the limit for run state")]
    TooDeep(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A listener whose signing secret is known: ready to verify a body.
pub struct Ready {
    listener: Listener,
    /// The secret and the custom signature header (signed paths only).
    key: Option<(String, Option<String>)>,
}

/// One delivery as received.
pub struct Delivery<'a> {
    pub headers: &'a HeaderMap,
    pub query: Vec<(String, String)>,
    pub body: &'a [u8],
    pub now_secs: i64,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowOutcome {
    pub workflow_id: String,
    /// `started`, `duplicate`, `filtered`, `paused` or `refused`.
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryReport {
    pub received: bool,
    pub event_id: Option<String>,
    pub workflows_triggered: usize,
    pub workflows: Vec<WorkflowOutcome>,
}

pub fn echo_path(path: &str) -> String {
    match path.char_indices().nth(PATH_ECHO) {
        Some((i, _)) => format!("{}…", &path[..i]),
        None => path.to_string(),
    }
}

impl Deliveries {
    /// From the headers alone: refuse a path nobody listens on, and a signed
    /// path whose signature header is missing or whose secret is unusable.
    pub async fn prepare(
        &self,
        path: &str,
        listeners: Vec<Listener>,
        headers: &HeaderMap,
    ) -> Result<Vec<Ready>, DeliveryError> {
        if listeners.is_empty() {
            return Err(DeliveryError::NoListener(echo_path(path)));
        }
        let mut ready = Vec::with_capacity(listeners.len());
        for listener in listeners {
            let key = if listener.def.verify_signature {
                let (secret, custom) = self.secret(&listener).await?;
                if let Some(e) = missing_header(listener.def.provider, headers, custom.as_deref()) {
                    tracing::info!(workflow_id = %listener.workflow_id, error = %e, "webhook refused");
                    return Err(DeliveryError::Unverified(e.to_string()));
                }
                Some((secret, custom))
            } else {
                None
            };
            ready.push(Ready { listener, key });
        }
        Ok(ready)
    }

    async fn secret(&self, l: &Listener) -> Result<(String, Option<String>), DeliveryError> {
        let unavailable =
            || DeliveryError::Unverified("the signing secret is not available".into());
        let Some(conn_id) = &l.def.connection else {
            return Err(DeliveryError::Unverified(
                "no signing secret is configured".into(),
            ));
        };
        let conn = match self.triggers.store.get_connection(conn_id.clone()).await {
            Ok(c)
                if c.provider == crate::store::ConnectionProvider::Webhook
                    && c.status == crate::store::ConnectionStatus::Active =>
            {
                c
            }
            Ok(_) | Err(StoreError::NotFound(_)) => {
                tracing::warn!(workflow_id = %l.workflow_id, connection = %conn_id,
                    "webhook connection is missing, inactive or not of provider webhook");
                return Err(unavailable());
            }
            Err(e) => return Err(e.into()),
        };
        let secret = conn
            .secret
            .as_deref()
            .and_then(|blob| self.secrets.decrypt(blob).ok())
            .ok_or_else(|| {
                tracing::warn!(connection = %conn_id, "webhook connection has no usable secret");
                unavailable()
            })?;
        let custom = conn
            .config
            .get("header")
            .and_then(Value::as_str)
            .map(str::to_ascii_lowercase);
        Ok((secret, custom))
    }

    /// Verify every listener's signature, then start one run per listener
    /// that wants this event.
    pub async fn deliver(
        &self,
        path: &str,
        ready: Vec<Ready>,
        d: Delivery<'_>,
    ) -> Result<DeliveryReport, DeliveryError> {
        let mut hidden: Vec<String> = PRIVATE_HEADERS.map(String::from).to_vec();
        for r in &ready {
            if let Some((secret, custom)) = &r.key {
                let l = &r.listener;
                verify(
                    l.def.provider,
                    secret,
                    d.headers,
                    d.body,
                    d.now_secs,
                    custom.as_deref(),
                )
                .map_err(|e| {
                    tracing::info!(workflow_id = %l.workflow_id, error = %e, "webhook refused");
                    DeliveryError::Unverified(e.to_string())
                })?;
                hidden.extend(signature_headers(custom.as_deref()));
            }
        }
        let parsed: Value = serde_json::from_slice(d.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(d.body).into_owned()));
        let input = json!({
            "body": parsed,
            "headers": visible_headers(d.headers, &hidden),
            "query": d.query.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<String, Value>>(),
        });
        // The run's input wraps the body one level deeper; all of it must stay readable.
        if crate::limits::deeper_than(&input, crate::limits::MAX_JSON_DEPTH) {
            return Err(DeliveryError::TooDeep(crate::limits::MAX_JSON_DEPTH - 1));
        }
        let mut report = DeliveryReport {
            received: true,
            event_id: None,
            workflows_triggered: 0,
            workflows: Vec::with_capacity(ready.len()),
        };
        let mut first_error = None;
        for r in ready {
            let l = r.listener;
            let key = dedupe_key(
                l.def.provider,
                l.def.verify_signature,
                d.headers,
                d.body,
                &input["body"],
            );
            if report.event_id.is_none() {
                report.event_id = key.clone();
            }
            let mut outcome = WorkflowOutcome {
                workflow_id: l.workflow_id.clone(),
                outcome: "started",
                run_id: None,
                reason: None,
            };
            let kind = event_type(l.def.provider, d.headers, &input["body"]);
            if !l.active {
                outcome.outcome = "paused";
                outcome.reason =
                    Some("the workflow is paused: activate it to receive deliveries".into());
            } else if let Some(events) = &l.def.events
                && !kind.as_ref().is_some_and(|k| events.contains(k))
            {
                outcome.outcome = "filtered";
                outcome.reason = Some(match &kind {
                    Some(k) => format!("event type '{k}' is not in the workflow's events"),
                    None => {
                        "the delivery names no event type and the workflow filters events".into()
                    }
                });
            } else {
                let mut req =
                    TriggerRequest::new(l.workflow_id.clone(), input.clone(), TriggerType::Webhook);
                req.idempotency_key = key.clone();
                req.idempotency_ttl_ms = self.dedupe_ttl_ms;
                match self.triggers.trigger_run(req).await {
                    Ok(TriggerOutcome::Created(run)) => {
                        report.workflows_triggered += 1;
                        outcome.run_id = Some(run.id);
                    }
                    Ok(TriggerOutcome::Replayed(run)) => {
                        outcome.outcome = "duplicate";
                        outcome.run_id = Some(run.id);
                        outcome.reason = Some(format!(
                            "event {} was delivered before; its run is {}",
                            key.as_deref().unwrap_or("-"),
                            outcome.run_id.as_deref().unwrap_or("-")
                        ));
                    }
                    Err(TriggerError::Store(e)) => return Err(e.into()),
                    Err(e) => {
                        outcome.outcome = "refused";
                        outcome.reason = Some(e.to_string());
                        first_error.get_or_insert(e);
                    }
                }
            }
            match &outcome.reason {
                None => {
                    tracing::info!(workflow_id = %l.workflow_id, run_id = ?outcome.run_id, path = %echo_path(path), "webhook delivery started a run")
                }
                Some(why) => {
                    tracing::info!(workflow_id = %l.workflow_id, outcome = outcome.outcome, reason = %why, path = %echo_path(path), "webhook delivery started nothing")
                }
            }
            report.workflows.push(outcome);
        }
        let took = |o: &WorkflowOutcome| matches!(o.outcome, "started" | "duplicate");
        if !report.workflows.iter().any(took) {
            // Nothing will ever run for this delivery: say why with an error
            // status only when a retry could change it (a refusal, a pause).
            if let Some(e) = first_error {
                return Err(DeliveryError::Refused(e));
            }
            let paused: Vec<&str> = report
                .workflows
                .iter()
                .filter(|o| o.outcome == "paused")
                .map(|o| o.workflow_id.as_str())
                .collect();
            if !paused.is_empty() && report.workflows.iter().all(|o| o.outcome != "filtered") {
                return Err(DeliveryError::Paused(format!(
                    "No active workflow receives webhooks at /webhooks/{}: {} paused (activate to receive deliveries)",
                    echo_path(path),
                    paused.join(", ")
                )));
            }
        }
        Ok(report)
    }
}

fn visible_headers(headers: &HeaderMap, hidden: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for name in headers.keys() {
        if hidden.iter().any(|h| h == name.as_str()) {
            continue;
        }
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect();
        out.insert(name.as_str().to_string(), Value::String(values.join(", ")));
    }
    out
}
