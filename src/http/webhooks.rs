//! `POST /webhooks/{path}`: inbound webhook triggers. No API key: each
//! workflow listening on the path verifies the signature over the raw body
//! with the secret of its `webhook` connection, before anything is stored.
//! The provider's event id is every run's idempotency key, so a redelivery
//! starts nothing; the answer comes once the runs are committed.

use super::error::ApiError;
use super::params::{Path, parse_query};
use super::{AppState, ok};
use crate::store::StoreError;
use crate::store::TriggerType;
use crate::time::now_ms;
use crate::trigger::{TriggerError, TriggerRequest};
use crate::webhook::{SignatureError, event_id, event_type, signature_headers, verify};
use crate::workflow::trigger::WebhookDef;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, RawQuery, Request, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// The body exactly as received; errors are envelopes.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(RawBody)
            .map_err(|e| {
                if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge("Request body is too large".into())
                } else {
                    ApiError::InvalidRequest(format!("cannot read request body: {e}"))
                }
            })
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAnswer {
    pub received: bool,
    pub event_id: Option<String>,
    pub workflows_triggered: usize,
}

/// Headers never copied into a run's input, whatever the provider.
const PRIVATE_HEADERS: [&str; 3] = ["authorization", "cookie", "x-api-key"];

pub async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(path): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<impl IntoResponse, ApiError> {
    if let Some(d) = state.limits.check_webhook(&peer.ip().to_string())
        && !d.allowed
    {
        return Err(ApiError::RateLimited {
            limit: d.limit,
            retry_after_secs: d.retry_after_secs,
        });
    }
    let listeners = listeners(&state, &path).await?;
    if listeners.is_empty() {
        return Err(ApiError::NotFound(format!(
            "No active workflow receives webhooks at /webhooks/{path}"
        )));
    }
    let now_secs = now_ms() / 1000;
    let mut hidden: Vec<String> = PRIVATE_HEADERS.map(String::from).to_vec();
    for (wf_id, def) in &listeners {
        let custom_header = check_signature(&state, wf_id, def, &headers, &body, now_secs).await?;
        hidden.extend(signature_headers(custom_header.as_deref()));
    }
    let query = parse_query(q.as_deref())?;
    let parsed: Value = serde_json::from_slice(&body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    let provider = listeners[0].1.provider;
    let id = event_id(provider, &headers, &parsed);
    let kind = event_type(provider, &headers, &parsed);
    let input = json!({
        "body": parsed,
        "headers": visible_headers(&headers, &hidden),
        "query": query.into_iter().map(|(k, v)| (k, Value::String(v))).collect::<Map<String, Value>>(),
    });
    // The run's input wraps the body one level deeper; all of it must stay readable.
    if crate::limits::deeper_than(&input, crate::limits::MAX_JSON_DEPTH) {
        return Err(ApiError::InvalidRequest(format!(
            "webhook body is nested deeper than {} levels, the limit for run state",
            crate::limits::MAX_JSON_DEPTH - 1
        )));
    }
    let mut started = 0;
    let mut first_error = None;
    for (wf_id, def) in &listeners {
        if let Some(events) = &def.events
            && !kind.as_ref().is_some_and(|k| events.contains(k))
        {
            continue;
        }
        let mut req = TriggerRequest::new(wf_id.clone(), input.clone(), TriggerType::Webhook);
        req.idempotency_key = id.clone();
        match state.triggers().trigger_run(req).await {
            Ok(crate::store::TriggerOutcome::Created(_)) => started += 1,
            Ok(crate::store::TriggerOutcome::Replayed(_)) => {}
            Err(TriggerError::Store(e)) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(workflow_id = %wf_id, error = %e, "webhook run not started");
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e.into());
    }
    Ok(ok(WebhookAnswer {
        received: true,
        event_id: id,
        workflows_triggered: started,
    }))
}

/// Active workflows whose latest version listens on `path`.
async fn listeners(state: &AppState, path: &str) -> Result<Vec<(String, WebhookDef)>, StoreError> {
    let mut out = vec![];
    let mut after = None;
    loop {
        let page = state.store.list_workflows(after.clone(), 500).await?;
        for row in page
            .iter()
            .filter(|r| r.status == crate::workflow::WorkflowStatus::Active)
        {
            let Ok(wf) = state.catalog.version(&row.id, row.latest_version).await else {
                continue;
            };
            if let crate::workflow::TriggerDef::Webhook(def) = &wf.trigger
                && def.path == path
            {
                out.push((row.id.clone(), def.clone()));
            }
        }
        if page.len() < 500 {
            return Ok(out);
        }
        after = page.last().map(|r| r.id.clone());
    }
}

/// `401` unless the request is signed with this workflow's secret; returns
/// the custom signature header, if the connection names one.
async fn check_signature(
    state: &AppState,
    wf_id: &str,
    def: &WebhookDef,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: i64,
) -> Result<Option<String>, ApiError> {
    if !def.verify_signature {
        return Ok(None);
    }
    let refuse = |why: String| {
        ApiError::Unauthorized(format!("Webhook signature verification failed: {why}"))
    };
    let Some(conn_id) = &def.connection else {
        return Err(refuse("no signing secret is configured".into()));
    };
    let conn = match state.store.get_connection(conn_id.clone()).await {
        Ok(c) if c.provider == "webhook" && c.status == crate::store::ConnectionStatus::Active => c,
        Ok(_) | Err(StoreError::NotFound(_)) => {
            tracing::warn!(workflow_id = %wf_id, connection = %conn_id,
                "webhook connection is missing, inactive or not of provider webhook");
            return Err(refuse("the signing secret is not available".into()));
        }
        Err(e) => return Err(e.into()),
    };
    let secret = conn
        .secret
        .as_deref()
        .and_then(|blob| state.secrets.decrypt(blob).ok())
        .ok_or_else(|| {
            tracing::warn!(connection = %conn_id, "webhook connection has no usable secret");
            refuse("the signing secret is not available".into())
        })?;
    let custom_header = conn
        .config
        .get("header")
        .and_then(Value::as_str)
        .map(str::to_ascii_lowercase);
    verify(
        def.provider,
        &secret,
        headers,
        body,
        now_secs,
        custom_header.as_deref(),
    )
    .map_err(|e: SignatureError| {
        tracing::info!(workflow_id = %wf_id, error = %e, "webhook refused");
        refuse(e.to_string())
    })?;
    Ok(custom_header)
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
