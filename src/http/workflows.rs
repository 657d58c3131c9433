//! Workflow routes: apply, list, show, versions, status changes.

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::{Path, limit, parse_query};
use super::views::workflow_view;
use super::{AppState, ok, ok_list};
use crate::api::{ApplyResponse, ErrorDetail, ListMeta};
use crate::scope::Scope;
use crate::store::decisions::ApplyResult;
use crate::store::{WorkflowApply, WorkflowRow};
use crate::time::now_ms;
use crate::workflow::{Issue, WorkflowStatus, compile};
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::Value;
use std::sync::Arc;

pub fn invalid_definition(issues: Vec<Issue>) -> ApiError {
    ApiError::Validation {
        message: "Workflow definition is invalid".into(),
        details: issues
            .into_iter()
            .map(|i| ErrorDetail {
                path: i.path,
                message: i.message,
            })
            .collect(),
    }
}

pub async fn apply(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(def): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsWrite])?;
    let compiled = compile(&def).map_err(invalid_definition)?;
    check_webhook_path(&state, &compiled).await?;
    let (problems, target_warnings) =
        super::workflow_targets::check(&state.catalog, &compiled.id, &compiled.definition).await?;
    if !problems.is_empty() {
        return Err(ApiError::Validation {
            message: "Workflow definition is invalid".into(),
            details: problems,
        });
    }
    let outcome = state
        .store
        .apply_workflow(WorkflowApply {
            id: compiled.id.clone(),
            name: compiled.name.clone(),
            definition: compiled.definition.clone(),
            status: compiled.status,
            concurrency: compiled.concurrency,
        })
        .await?;
    let id = compiled.id.clone();
    let mut warnings: Vec<ErrorDetail> = compiled
        .warnings
        .iter()
        .map(|w| ErrorDetail {
            path: w.path.clone(),
            message: w.message.clone(),
        })
        .chain(target_warnings)
        .collect();
    warnings.extend(missing_connections(&state, &compiled.definition).await?);
    state.catalog.remember(outcome.version, Arc::new(compiled));
    if let Err(e) = state.catalog.workflow_changed(&id).await {
        // Done all the same: the index catches up within its refresh.
        tracing::warn!(workflow_id = %id, error = %e, "cannot refresh the webhook index");
    }
    let status = if outcome.result == ApplyResult::Created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        ok(ApplyResponse {
            id,
            version: outcome.version,
            status: outcome.status.as_str().into(),
            changed: outcome.result != ApplyResult::Unchanged,
            result: outcome.result.as_str().into(),
            warnings,
        }),
    ))
}

/// Workflows sharing a webhook path share one delivery, so they must agree
/// on how it is signed and where its event id is: one provider per path.
async fn check_webhook_path(
    state: &AppState,
    wf: &crate::workflow::CompiledWorkflow,
) -> Result<(), ApiError> {
    let crate::workflow::TriggerDef::Webhook(def) = &wf.trigger else {
        return Ok(());
    };
    let listeners = state.catalog.webhook_listeners(&def.path).await?;
    if let Some(other) = listeners
        .iter()
        .find(|l| l.workflow_id != wf.id && l.def.provider != def.provider)
    {
        return Err(invalid_definition(vec![Issue {
            path: vec!["trigger".into(), "provider".into()],
            message: format!(
                "workflow {} already receives webhooks at /webhooks/{} from provider {}: one path takes one provider (choose another path)",
                other.workflow_id,
                def.path,
                other.def.provider.as_str()
            ),
        }]));
    }
    Ok(())
}

/// Connections the definition names that do not exist: applied anyway (the
/// connection may be created next), but said now rather than at the first
/// run or delivery.
async fn missing_connections(state: &AppState, def: &Value) -> Result<Vec<ErrorDetail>, ApiError> {
    use serde_json::json;
    let mut named: Vec<(Vec<Value>, String)> = vec![];
    if let Some(c) = def["trigger"]["connection"].as_str() {
        named.push((vec![json!("trigger"), json!("connection")], c.to_string()));
    }
    for (i, step) in def["steps"].as_array().into_iter().flatten().enumerate() {
        if let Some(c) = step["connection"].as_str() {
            named.push((
                vec![json!("steps"), json!(i), json!("connection")],
                c.to_string(),
            ));
        }
    }
    if named.is_empty() {
        return Ok(vec![]);
    }
    let existing = state.store.list_connections().await?;
    Ok(named
        .into_iter()
        .filter(|(_, c)| !existing.iter().any(|e| &e.id == c))
        .map(|(path, c)| ErrorDetail {
            path,
            message: format!(
                "connection '{c}' does not exist; runs and deliveries that need it are refused until it is created (flowctl connections create --id {c} …)"
            ),
        })
        .collect())
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsRead])?;
    let q = parse_query(q.as_deref())?;
    let limit = limit(&q)?;
    let mut rows = state
        .store
        .list_workflows(q.get("cursor").cloned(), limit + 1)
        .await?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    let cursor = has_more
        .then(|| rows.last().map(|r| r.id.clone()))
        .flatten();
    let mut views = Vec::with_capacity(rows.len());
    for r in &rows {
        views.push(workflow_view(r, None, next_run_at(&state, r).await));
    }
    Ok(ok_list(views, ListMeta { cursor, has_more }))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsRead])?;
    let row = state.store.get_workflow(id.clone()).await?;
    let (definition, _) = state.store.workflow_version(id, row.latest_version).await?;
    let next = next_run_at(&state, &row).await;
    Ok(ok(workflow_view(&row, Some(definition), next)))
}

async fn next_run_at(state: &AppState, row: &WorkflowRow) -> Option<i64> {
    crate::workflows::next_run_at(&state.catalog, row, now_ms()).await
}

pub async fn version(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, n)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsRead])?;
    let n: i64 = n
        .parse()
        .map_err(|_| ApiError::InvalidRequest("version must be a positive integer".into()))?;
    let (definition, created_at) = state.store.workflow_version(id.clone(), n).await?;
    Ok(ok(crate::api::VersionView {
        workflow_id: id,
        version: n,
        created_at: crate::time::rfc3339(created_at),
        definition,
    }))
}

async fn set_status(
    state: AppState,
    who: Principal,
    id: String,
    status: WorkflowStatus,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::WorkflowsWrite])?;
    let row = crate::workflows::set_status(&state.store, &state.catalog, id, status).await?;
    let next = next_run_at(&state, &row).await;
    Ok(ok(workflow_view(&row, None, next)))
}

pub async fn activate(
    State(s): State<AppState>,
    Extension(w): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(s, w, id, WorkflowStatus::Active).await
}

pub async fn pause(
    State(s): State<AppState>,
    Extension(w): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(s, w, id, WorkflowStatus::Paused).await
}

pub async fn archive(
    State(s): State<AppState>,
    Extension(w): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    set_status(s, w, id, WorkflowStatus::Archived).await
}
