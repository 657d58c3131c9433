//! Outbound notification routes (docs/notifications.md): webhook endpoints,
//! their deliveries, redelivery. The signing secret is shown once, at
//! create; it is stored sealed by the secret key, like connection secrets.

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::Path;
use super::{AppState, ok};
use crate::notify::{EventType, Filter};
use crate::scope::Scope;
use crate::store::{DeliveryRow, EndpointRow, NewEndpoint};
use crate::time::rfc3339;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

const SCOPE: &[Scope] = &[Scope::WebhooksWrite];
/// Deliveries listed per endpoint unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 50;

pub fn view(e: &EndpointRow) -> Value {
    json!({
        "id": e.id,
        "url": e.url,
        "description": e.description,
        "events": e.filter.events,
        "workflowIds": e.filter.workflow_ids,
        "enabled": e.enabled,
        "createdAt": rfc3339(e.created_at),
        "disabledAt": e.disabled_at.map(rfc3339),
        "disabledReason": e.disabled_reason,
        "failingSince": e.failing_since.map(rfc3339),
    })
}

pub fn delivery_view(d: &DeliveryRow) -> Value {
    let last = d.attempt_log.last();
    json!({
        "id": d.id,
        "endpointId": d.endpoint_id,
        "eventId": d.event_id,
        "eventType": d.event_type,
        "runId": d.run_id,
        "sequence": d.sequence,
        "occurredAt": rfc3339(d.occurred_at),
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "nextAttemptAt": (d.status == crate::store::DeliveryStatus::Pending).then(|| rfc3339(d.next_at)),
        "lastStatusCode": last.and_then(|a| a.status_code),
        "lastAttemptAt": last.map(|a| rfc3339(a.at)),
        "deliveredAt": d.delivered_at.map(rfc3339),
        "createdAt": rfc3339(d.created_at),
        "attemptLog": d.attempt_log.iter().map(|a| json!({
            "at": rfc3339(a.at),
            "statusCode": a.status_code,
            "durationMs": a.duration_ms,
            "response": a.response,
            "error": a.error,
        })).collect::<Vec<_>>(),
    })
}

fn string_list(obj: &Map<String, Value>, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            let list = items
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    ApiError::InvalidRequest(format!("{name} must be an array of strings"))
                })?;
            if list.is_empty() {
                return Err(ApiError::InvalidRequest(format!(
                    "{name} must name at least one (leave it out for all)"
                )));
            }
            Ok(Some(list))
        }
        Some(_) => Err(ApiError::InvalidRequest(format!(
            "{name} must be an array of strings"
        ))),
    }
}

/// The endpoint as the body asks for it, checked.
fn parse(body: Value, own: &[String]) -> Result<(String, Option<String>, Filter), ApiError> {
    let Value::Object(obj) = body else {
        return Err(ApiError::InvalidRequest(
            "body must be a JSON object".into(),
        ));
    };
    let known = ["url", "events", "workflowIds", "description"];
    if let Some(k) = obj.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(ApiError::InvalidRequest(
            crate::workflow::fields::unknown_field(k, &known),
        ));
    }
    let url = match obj.get("url") {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => {
            return Err(ApiError::InvalidRequest(
                "url is required: the http(s) URL that receives the events".into(),
            ));
        }
    };
    let parsed = url::Url::parse(&url)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
        .ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "url must be an absolute http or https URL, got '{url}'"
            ))
        })?;
    if url.len() > 2048 {
        return Err(ApiError::InvalidRequest(
            "url is longer than 2048 characters".into(),
        ));
    }
    if crate::notify::loops_back(&parsed, own) {
        return Err(ApiError::InvalidRequest(format!(
            "url {url} is this server's own /webhooks/ path: a notification would start a workflow \
             on this server, whose events would notify it again (a loop); point it at another server"
        )));
    }
    let events = string_list(&obj, "events")?;
    if let Some(bad) = events
        .iter()
        .flatten()
        .find(|e| EventType::parse(e).is_none())
    {
        let all: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        return Err(ApiError::InvalidRequest(format!(
            "unknown event type '{bad}'; known: {}",
            all.join(", ")
        )));
    }
    let workflow_ids = string_list(&obj, "workflowIds")?;
    let description = match obj.get("description") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() <= 500 => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "description must be a string of at most 500 characters".into(),
            ));
        }
    };
    Ok((
        url,
        description,
        Filter {
            events,
            workflow_ids,
        },
    ))
}

pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    let own: Vec<String> = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(|h| vec![with_port(h)])
        .unwrap_or_default();
    let (url, description, filter) = parse(body, &own)?;
    let secret = crate::notify::new_secret();
    let row = state
        .store
        .create_endpoint(NewEndpoint {
            id: crate::notify::new_id("ep"),
            url,
            description,
            filter,
            secret: state.secrets.encrypt(&secret),
        })
        .await?;
    let mut v = view(&row);
    v["secret"] = json!(secret);
    Ok((StatusCode::CREATED, ok(v)))
}

/// A `Host` header without a port names port 80.
fn with_port(host: &str) -> String {
    let bracketed_v6 = host.starts_with('[') && host.ends_with(']');
    if bracketed_v6 || !host.contains(':') {
        format!("{}:80", host.trim_start_matches('[').trim_end_matches(']'))
    } else {
        host.replace(['[', ']'], "")
    }
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    let rows = state.store.list_endpoints().await?;
    Ok(ok(rows.iter().map(view).collect::<Vec<_>>()))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    Ok(ok(view(&state.store.get_endpoint(id).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    state.store.delete_endpoint(id.clone()).await?;
    Ok(ok(json!({"id": id, "deleted": true})))
}

pub async fn enable(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    Ok(ok(view(&state.store.enable_endpoint(id).await?)))
}

pub async fn deliveries(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    let q = super::params::parse_query(q.as_deref())?;
    let limit = match q.get("limit") {
        None => DEFAULT_LIMIT,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| ApiError::InvalidRequest("limit must be 1 to 500".into()))?,
    };
    let rows = state.store.list_deliveries(id, limit).await?;
    Ok(ok(rows.iter().map(delivery_view).collect::<Vec<_>>()))
}

pub async fn redeliver(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(SCOPE)?;
    let row = state.store.redeliver(id).await?;
    Ok((StatusCode::ACCEPTED, ok(delivery_view(&row))))
}
