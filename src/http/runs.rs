//! Run routes: trigger (the seed's endpoint), replay, status with long-poll,
//! list, cancel. Triggering itself is the use case in `crate::trigger`.

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::{Path, QueryMap, limit, parse_query, wait};
use super::views::run_view;
use super::{AppState, ok, ok_list};
use crate::api::{ListMeta, TriggerResponse};
use crate::engine::{RunError, RunStatus};
use crate::scope::Scope;
use crate::store::{RunFilter, RunRow, TriggerOutcome, TriggerType};
use crate::trigger::TriggerRequest;
use axum::extract::{Extension, RawQuery, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The trigger body, checked field by field for precise messages.
struct TriggerBody {
    input: Value,
    connection_id: Option<String>,
    idempotency_key: Option<String>,
    trigger_type: TriggerType,
    as_schedule: bool,
}

fn trigger_body(body: Value) -> Result<TriggerBody, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::InvalidRequest(
            "Request body must be a JSON object like {\"input\": {...}}".into(),
        ));
    };
    // A misspelled field would silently lose what it carries (e.g. the idempotency).
    let fields = crate::api::TriggerRequest::FIELDS;
    if let Some(key) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(ApiError::InvalidRequest(
            crate::workflow::fields::unknown_field(key, fields),
        ));
    }
    let input = match obj.remove("input") {
        None | Some(Value::Null) => Value::Object(Default::default()),
        Some(v @ Value::Object(_)) => v,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "input must be a JSON object".into(),
            ));
        }
    };
    let text_field = |obj: &mut serde_json::Map<String, Value>, name: &str| match obj.remove(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::InvalidRequest(format!("{name} must be a string"))),
    };
    let connection_id = text_field(&mut obj, "connectionId")?;
    let idempotency_key = text_field(&mut obj, "idempotencyKey")?;
    if let Some(k) = &idempotency_key
        && (k.is_empty() || k.chars().count() > 255 || k.chars().any(|c| c.is_control()))
    {
        return Err(ApiError::InvalidRequest(
            "idempotencyKey must be 1 to 255 printable characters".into(),
        ));
    }
    if let Some(c) = &connection_id
        && (c.is_empty() || c.len() > 128)
    {
        return Err(ApiError::InvalidRequest(
            "connectionId must be 1 to 128 characters".into(),
        ));
    }
    let as_schedule = match obj.remove("asSchedule") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => b,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "asSchedule must be true or false".into(),
            ));
        }
    };
    let trigger_type = match text_field(&mut obj, "triggerType")?.as_deref() {
        None | Some("api") => TriggerType::Api,
        Some("batch") => TriggerType::Batch,
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "triggerType: {}",
                crate::workflow::fields::unknown_name(
                    "trigger type",
                    other,
                    crate::api::TriggerRequest::TRIGGER_TYPES
                )
            )));
        }
    };
    Ok(TriggerBody {
        input,
        connection_id,
        idempotency_key,
        trigger_type,
        as_schedule,
    })
}

pub async fn trigger(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsExecute])?;
    let accepted_from = Instant::now();
    let q = parse_query(q.as_deref())?;
    let wait_for = wait(&q)?;
    let mut body = trigger_body(body)?;
    // The `Idempotency-Key` header (which spares a known replay the execute
    // limit) and the body's key must agree; the header alone is the key.
    if let Some(h) = headers.get("idempotency-key") {
        let h = h.to_str().map_err(|_| {
            ApiError::InvalidRequest("the Idempotency-Key header must be printable text".into())
        })?;
        match &body.idempotency_key {
            Some(k) if k != h => {
                return Err(ApiError::InvalidRequest(
                    "the Idempotency-Key header and the body's idempotencyKey differ".into(),
                ));
            }
            Some(_) => {}
            None => {
                if h.is_empty() || h.chars().count() > 255 {
                    return Err(ApiError::InvalidRequest(
                        "idempotencyKey must be 1 to 255 printable characters".into(),
                    ));
                }
                body.idempotency_key = Some(h.to_string());
            }
        }
    }
    if body.as_schedule {
        body.input = as_schedule_input(&state, &id, &body.input).await?;
    }
    let mut req = TriggerRequest::new(id, body.input, body.trigger_type);
    req.connection_id = body.connection_id;
    req.idempotency_key = body.idempotency_key;
    let (outcome, input_differs) = state.triggers().trigger_run_checked(req).await?;
    state
        .metrics
        .observe_trigger(accepted_from.elapsed().as_secs_f64());
    let mut resp = trigger_answer(&state, outcome, wait_for).await?;
    if input_differs {
        // The first run stands (the key's promise); the caller learns its
        // key was reused for a different input.
        tracing::info!(
            idempotency_key_reused = true,
            "idempotency key reused with a different input; the first run was returned"
        );
        resp = mark_input_differs(resp).await;
    }
    Ok(resp)
}

/// `asSchedule`: the input the workflow's schedule would give, `input` on top.
pub(crate) async fn as_schedule_input(
    state: &AppState,
    id: &str,
    input: &Value,
) -> Result<Value, ApiError> {
    let (_, wf) = state.catalog.head(id).await?;
    crate::trigger::schedule_input(&wf, input, crate::time::now_ms()).ok_or_else(|| {
        ApiError::InvalidRequest(format!(
            "asSchedule: workflow {id} has no schedule trigger (its trigger is {})",
            wf.definition["trigger"]["type"].as_str().unwrap_or("api")
        ))
    })
}

/// Set `inputDiffers: true` in a trigger answer and add the header
/// `Idempotent-Input-Differs: true`.
async fn mark_input_differs(resp: axum::response::Response) -> axum::response::Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 24).await else {
        return axum::response::Response::from_parts(parts, axum::body::Body::empty());
    };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) => {
            v["data"]["inputDiffers"] = Value::Bool(true);
            serde_json::to_vec(&v).unwrap_or_else(|_| bytes.to_vec())
        }
        Err(_) => bytes.to_vec(),
    };
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts
        .headers
        .insert("idempotent-input-differs", HeaderValue::from_static("true"));
    axum::response::Response::from_parts(parts, axum::body::Body::from(body))
}

/// `POST /api/v1/runs/{id}/replay`: the same input and connection, a new run
/// on the workflow's latest version; answered like a trigger.
pub async fn replay(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsExecute])?;
    let outcome = crate::runs::replay(&state.triggers(), &id).await?;
    trigger_answer(&state, outcome, None).await
}

/// `202` with the new run, or `200` + `Idempotent-Replayed` for an existing
/// one; with `?wait=`, once it finished or the time is up.
async fn trigger_answer(
    state: &AppState,
    outcome: TriggerOutcome,
    wait_for: Option<Duration>,
) -> Result<axum::response::Response, ApiError> {
    let (mut run, replayed) = match outcome {
        TriggerOutcome::Created(run) => (run, false),
        TriggerOutcome::Replayed(run) => (run, true),
    };
    if let Some(max) = wait_for {
        run = wait_until_finished(state, &run.id, max).await?;
    }
    let finished = wait_for.is_some() && run.is_finished();
    let data = TriggerResponse {
        run_id: run.id,
        status: run.status.as_str().into(),
        workflow_id: run.workflow_id,
        workflow_version: run.workflow_version,
        output: finished.then_some(run.output),
        error: finished.then(|| RunError::to_value(&run.error)),
        input_differs: false,
    };
    let status = if replayed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let mut resp = (status, ok(data)).into_response();
    if replayed {
        resp.headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(resp)
}

/// Long-poll: register for the finish signal, then read, so no finish is missed.
async fn wait_until_finished(
    state: &AppState,
    run_id: &str,
    max: Duration,
) -> Result<RunRow, ApiError> {
    let deadline = Instant::now() + max;
    loop {
        let signal = state.events.on_finished(run_id);
        let run = state.store.get_run(run_id.to_string()).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        if run.is_finished() || left.is_zero() {
            drop(signal);
            state.events.prune_waiters(run_id);
            return Ok(run);
        }
        // The signal may come from another node, or never (a lost
        // notification): read again at least once a second.
        tokio::select! {
            _ = tokio::time::timeout(left.min(Duration::from_secs(1)), signal) => {}
            // On shutdown a long-poll answers at once with the run as it is.
            _ = state.events.stopped() => {
                state.events.prune_waiters(run_id);
                return state.store.get_run(run_id.to_string()).await.map_err(Into::into);
            }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::RunsRead, Scope::WorkflowsExecute])?;
    let q = parse_query(q.as_deref())?;
    let run = match wait(&q)? {
        Some(max) => wait_until_finished(&state, &id, max).await?,
        None => state.store.get_run(id).await?,
    };
    let wf = state
        .catalog
        .version(&run.workflow_id, run.workflow_version)
        .await
        .ok();
    Ok(ok(run_view(run, wf.as_deref(), true)))
}

fn run_filter(q: &QueryMap) -> Result<RunFilter, ApiError> {
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "status must be one of {}",
                RunStatus::ALL.join(", ")
            ))
        })?),
    };
    let before_seq = match q.get("cursor") {
        None => None,
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::InvalidRequest("cursor is not one this server returned".into())
        })?),
    };
    let trigger_type = match q.get("triggerType") {
        None => None,
        Some(t) => Some(TriggerType::parse(t).ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "triggerType must be one of {}",
                TriggerType::ALL.join(", ")
            ))
        })?),
    };
    let include_children = match q.get("includeChildren").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "includeChildren must be true or false".into(),
            ));
        }
    };
    Ok(RunFilter {
        workflow_id: q.get("workflowId").cloned(),
        status,
        trigger_type,
        before_seq,
        limit: limit(q)?,
        // Sub-workflow children are listed anyway; the children that run a
        // block's body only with `parentRunId` or `includeChildren=true`.
        parent_run_id: q.get("parentRunId").cloned(),
        include_children,
    })
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::RunsRead])?;
    let mut filter = run_filter(&parse_query(q.as_deref())?)?;
    let limit = filter.limit;
    filter.limit += 1;
    let mut rows = state.store.list_runs(filter).await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let cursor = has_more
        .then(|| rows.last().map(|r| r.seq.to_string()))
        .flatten();
    let views: Vec<_> = rows.into_iter().map(|r| run_view(r, None, false)).collect();
    Ok(ok_list(views, ListMeta { cursor, has_more }))
}

pub async fn cancel(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::RunsWrite])?;
    let run = crate::runs::cancel(&state.store, &state.events, id).await?;
    let wf = state
        .catalog
        .version(&run.workflow_id, run.workflow_version)
        .await
        .ok();
    Ok(ok(run_view(run, wf.as_deref(), true)))
}

/// Redrive: continue a failed, timed-out or cancelled run as the same run.
pub async fn redrive(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::RunsWrite])?;
    let Some(run) = state.store.redrive_run(id.clone()).await? else {
        let run = state.store.get_run(id).await?;
        return Err(ApiError::InvalidStatus(format!(
            "run {} is {}; only a failed, timed_out or cancelled run can be redriven",
            run.id,
            run.status.as_str()
        )));
    };
    state.events.run_queued();
    let wf = state
        .catalog
        .version(&run.workflow_id, run.workflow_version)
        .await
        .ok();
    Ok(ok(run_view(run, wf.as_deref(), true)))
}
