//! Deciding approvals and completing callbacks: the inbox
//! (`GET /api/v1/approvals`), decisions by API key
//! (`POST /api/v1/runs/{id}/steps/{stepId}/decision`, scope `runs:approve`),
//! callbacks by API key (`…/callback`) and by token (`POST /callbacks/{token}`,
//! no key: the token is the credential). The store makes each one conditional
//! write; this file maps its outcome to answers.

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::intake::{Refused, read_body};
use super::params::{Path, parse_query};
use super::{AppState, ok};
use crate::scope::Scope;
use crate::store::{
    ApprovalFilter, ApprovalRow, CallbackIn, CallbackOutcome, Decider, DecisionOutcome,
    DecisionRequest,
};
use crate::time::rfc3339;
use axum::body::Body;
use axum::extract::{ConnectInfo, Extension, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::net::SocketAddr;

/// An approval as the API shows it.
pub fn approval_view(a: &ApprovalRow) -> Value {
    json!({
        "runId": a.run_id,
        "stepId": a.step_id,
        "workflowId": a.workflow_id,
        "reason": a.reason,
        "approvers": a.approvers,
        "required": a.required,
        "status": a.status,
        "runStatus": a.run_status.as_str(),
        "createdAt": rfc3339(a.created_at),
        "expiresAt": rfc3339(a.expires_at),
        "decisions": a.decisions.iter().map(|d| d.to_value()).collect::<Vec<_>>(),
    })
}

/// `GET /api/v1/approvals?status=pending|all&runId=&limit=`
pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::RunsRead])?;
    let q = parse_query(q.as_deref())?;
    let pending_only = match q.get("status").map(String::as_str) {
        None | Some("pending") => true,
        Some("all") => false,
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!(
                "status must be pending or all (got '{other}')"
            )));
        }
    };
    let rows = state
        .store
        .list_approvals(ApprovalFilter {
            pending_only,
            run_id: q.get("runId").cloned(),
            limit: super::params::limit(&q)?,
        })
        .await?;
    Ok(ok(rows.iter().map(approval_view).collect::<Vec<_>>()))
}

/// The `{decision, comment?}` body.
pub fn decision_body(body: &Value) -> Result<(String, Option<String>), ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::InvalidRequest(
            "body must be {\"decision\": \"approve\" | \"reject\", \"comment\"?}".into(),
        ));
    };
    if let Some(k) = obj.keys().find(|k| *k != "decision" && *k != "comment") {
        return Err(ApiError::InvalidRequest(
            crate::workflow::fields::unknown_field(k, &["decision", "comment"]),
        ));
    }
    let decision = match obj.get("decision").and_then(Value::as_str) {
        Some(d @ ("approve" | "reject")) => d.to_string(),
        _ => {
            return Err(ApiError::InvalidRequest(
                "decision must be \"approve\" or \"reject\"".into(),
            ));
        }
    };
    let comment = match obj.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= 2000 => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "comment must be a string of at most 2000 characters".into(),
            ));
        }
    };
    Ok((decision, comment))
}

/// A decision's outcome as an answer: `200` (with `Idempotent-Replayed` for a
/// repeat), `409 ALREADY_DECIDED`, `410 EXPIRED`, `404`, `409 NOT_WAITING`.
pub fn decision_answer(state: &AppState, outcome: DecisionOutcome) -> Result<Response, ApiError> {
    let data = |run_id: &str, step_id: &str, rec: &crate::store::DecisionRecord, resolved: bool| {
        let mut v = rec.to_value();
        v["runId"] = json!(run_id);
        v["stepId"] = json!(step_id);
        v["resolved"] = json!(resolved);
        v
    };
    match outcome {
        DecisionOutcome::Decided {
            run_id,
            step_id,
            record,
            resolved,
        } => {
            if resolved {
                state.events.run_queued();
            }
            Ok(ok(data(&run_id, &step_id, &record, resolved)).into_response())
        }
        DecisionOutcome::Replayed {
            run_id,
            step_id,
            record,
        } => {
            let mut resp = ok(data(&run_id, &step_id, &record, true)).into_response();
            resp.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(resp)
        }
        DecisionOutcome::AlreadyDecided { recorded } => Err(ApiError::AlreadyDecided {
            message: format!(
                "already decided: {} by {} at {}",
                recorded.decision,
                recorded.by,
                rfc3339(recorded.at)
            ),
            recorded: recorded.to_value(),
        }),
        DecisionOutcome::Expired(m) => Err(ApiError::Expired(m)),
        DecisionOutcome::NotFound(m) => Err(ApiError::NotFound(m)),
        DecisionOutcome::NotWaiting(m) => Err(ApiError::NotWaiting(m)),
    }
}

/// `POST /api/v1/runs/{id}/steps/{stepId}/decision`: decide as the key (by its name).
pub async fn decide(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((run_id, step_id)): Path<(String, String)>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    who.require(&[Scope::RunsApprove])?;
    let (decision, comment) = decision_body(&body)?;
    let outcome = state
        .store
        .decide(DecisionRequest {
            by: Decider::Key {
                run_id,
                step_id,
                name: who.name.clone(),
            },
            decision,
            comment,
        })
        .await?;
    decision_answer(&state, outcome)
}

/// Request headers as a callback's output keeps them (credentials left out).
fn kept_headers(headers: &HeaderMap) -> Value {
    let mut out = Map::new();
    for (name, value) in headers {
        let n = name.as_str();
        if matches!(
            n,
            "authorization" | "cookie" | "x-api-key" | "proxy-authorization"
        ) {
            continue;
        }
        if let Ok(v) = value.to_str() {
            out.insert(n.to_string(), json!(v));
        }
    }
    Value::Object(out)
}

fn callback_answer(
    state: &AppState,
    run_id: &str,
    step_id: &str,
    outcome: CallbackOutcome,
) -> Result<Response, ApiError> {
    match outcome {
        CallbackOutcome::Received {
            queued,
            received_at,
        } => {
            if queued {
                state.events.run_queued();
            }
            Ok(ok(json!({
                "received": true,
                "runId": run_id,
                "stepId": step_id,
                "receivedAt": rfc3339(received_at),
            }))
            .into_response())
        }
        CallbackOutcome::AlreadyReceived => Err(ApiError::AlreadyReceived(format!(
            "step '{step_id}' of run {run_id} has received its callback already"
        ))),
        CallbackOutcome::Expired(m) => Err(ApiError::Expired(m)),
        CallbackOutcome::NotFound(m) => Err(ApiError::NotFound(m)),
    }
}

/// `POST /api/v1/runs/{id}/steps/{stepId}/callback`: the same as the token
/// route, for internal callers with a key.
pub async fn callback_by_key(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((run_id, step_id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Value>,
) -> Result<Response, ApiError> {
    who.require(&[Scope::RunsApprove])?;
    let run = state.store.get_run(run_id.clone()).await?;
    let wf = state
        .catalog
        .version(&run.workflow_id, run.workflow_version)
        .await?;
    if !wf
        .steps
        .iter()
        .any(|s| s.id == step_id && crate::workflow::waits::is_callback_wait(s))
    {
        return Err(ApiError::NotFound(format!(
            "run {run_id} has no callback wait step '{step_id}'"
        )));
    }
    let outcome = state
        .store
        .receive_callback(CallbackIn {
            run_id: run_id.clone(),
            step_id: step_id.clone(),
            body,
            headers: kept_headers(&headers),
        })
        .await?;
    callback_answer(&state, &run_id, &step_id, outcome)
}

/// `POST /callbacks/{token}`: no key; limited per client address and read
/// within the unauthenticated byte budget before the token is even checked.
pub async fn callback_by_token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let limit = state.intake.body_limit;
    let admitted = async {
        if let Some(d) = state
            .limits
            .check_webhook(&state.store, &peer.ip().to_string())
            .await
            && !d.allowed
        {
            return Err(Refused(ApiError::RateLimited {
                limit: d.limit,
                retry_after_secs: d.retry_after_secs,
            }));
        }
        let Some(target) = crate::waits::parse_callback_token(&state.secrets, &token) else {
            return Err(Refused(ApiError::NotFound(
                "this callback URL is not known".into(),
            )));
        };
        let admission = state.intake.admit(&headers, limit)?;
        Ok((target, admission))
    };
    let ((run_id, step_id), _admission) = match admitted.await {
        Ok(ok) => ok,
        Err(refused) => return refused.into_response(),
    };
    let result = async {
        let bytes = read_body(body, limit).await?;
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| ApiError::InvalidRequest("the callback body must be JSON".into()))?;
        let body: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            if crate::limits::text_depth(text) > crate::limits::MAX_JSON_DEPTH {
                return Err(ApiError::InvalidRequest(format!(
                    "the callback body nests deeper than {} levels",
                    crate::limits::MAX_JSON_DEPTH
                )));
            }
            serde_json::from_str(text).map_err(|e| {
                ApiError::InvalidRequest(format!("the callback body is not valid JSON: {e}"))
            })?
        };
        let outcome = state
            .store
            .receive_callback(CallbackIn {
                run_id: run_id.clone(),
                step_id: step_id.clone(),
                body,
                headers: kept_headers(&headers),
            })
            .await?;
        callback_answer(&state, &run_id, &step_id, outcome)
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}
