//! Workflow routes: apply, list, show, versions, status changes.

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::{Path, limit, parse_query};
use super::views::workflow_view;
use super::{AppState, ok, ok_list};
use crate::api::{ApplyResponse, ErrorDetail, ListMeta};
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
    who.require(&["workflows:write"])?;
    let compiled = compile(&def).map_err(invalid_definition)?;
    let outcome = state
        .store
        .apply_workflow(WorkflowApply {
            id: compiled.id.clone(),
            name: compiled.name.clone(),
            definition: compiled.definition.clone(),
            status: compiled.status.map(WorkflowStatus::as_str),
            concurrency: compiled.concurrency,
        })
        .await?;
    let id = compiled.id.clone();
    let warnings = compiled
        .warnings
        .iter()
        .map(|w| ErrorDetail {
            path: w.path.clone(),
            message: w.message.clone(),
        })
        .collect();
    state.catalog.remember(outcome.version, Arc::new(compiled));
    state.catalog.forget_head(&id);
    let status = if outcome.result == "created" {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        ok(ApplyResponse {
            id,
            version: outcome.version,
            status: outcome.status,
            changed: outcome.result != "unchanged",
            result: outcome.result.into(),
            warnings,
        }),
    ))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    RawQuery(q): RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&["workflows:read"])?;
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
    who.require(&["workflows:read"])?;
    let row = state.store.get_workflow(id.clone()).await?;
    let (definition, _) = state.store.workflow_version(id, row.latest_version).await?;
    let next = next_run_at(&state, &row).await;
    Ok(ok(workflow_view(&row, Some(definition), next)))
}

/// The schedule's next occurrence, if the workflow has a live schedule.
pub(crate) async fn next_run_at(state: &AppState, row: &WorkflowRow) -> Option<i64> {
    let wf = state
        .catalog
        .version(&row.id, row.latest_version)
        .await
        .ok()?;
    crate::schedule::next_run_at(&row.status, &wf.trigger, now_ms())
}

pub async fn version(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path((id, n)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&["workflows:read"])?;
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
    who.require(&["workflows:write"])?;
    let row = set_workflow_status(&state, id, status).await?;
    let next = next_run_at(&state, &row).await;
    Ok(ok(workflow_view(&row, None, next)))
}

/// A status change as a use case, shared by the API and the dashboard.
pub(crate) async fn set_workflow_status(
    state: &AppState,
    id: String,
    status: WorkflowStatus,
) -> Result<crate::store::WorkflowRow, ApiError> {
    let row = state
        .store
        .set_workflow_status(id.clone(), status.as_str())
        .await?;
    state.catalog.forget_head(&id);
    Ok(row)
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
