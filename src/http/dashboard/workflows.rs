//! `/ui/workflows` and `/ui/workflows/{id}`: status, version, trigger, the
//! definition, its versions and a line diff between two of them (the latest
//! two by default), with "Activate" / "Pause" through the API's use case.

use super::layout::{self, Shell, badge, json_block};
use super::session::{Session, check_csrf};
use super::{FormData, Page, PageError, PathId, query_map};
use crate::http::AppState;
use crate::scope::Scope;
use crate::workflow::WorkflowStatus;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

fn trigger_text(def: &Value) -> String {
    let t = &def["trigger"];
    let kind = t["type"].as_str().unwrap_or("api");
    match kind {
        "schedule" => match (t["cron"].as_str(), t.get("interval")) {
            (Some(c), _) => format!("schedule (cron {c})"),
            (None, Some(i)) => format!(
                "schedule (every {} {})",
                i["value"],
                i["unit"].as_str().unwrap_or("")
            ),
            _ => "schedule".into(),
        },
        "webhook" => format!("webhook (/webhooks/{})", t["path"].as_str().unwrap_or("?")),
        other => other.to_string(),
    }
}

pub async fn list(State(state): State<AppState>, session: Session) -> Result<Page, PageError> {
    session.principal.require(&[Scope::WorkflowsRead])?;
    let rows = state.store.list_workflows(None, 100).await?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let def = state
            .store
            .workflow_version(row.id.clone(), row.latest_version)
            .await
            .map(|(d, _)| d)
            .unwrap_or(Value::Null);
        let next = crate::workflows::next_run_at(&state.catalog, &row, crate::time::now_ms()).await;
        items.push((row, def, next));
    }
    let body = html! {
        h1 { "Workflows" }
        @if items.is_empty() {
            p.empty { "No workflows yet: apply one with " code { "flowctl apply FILE" } "." }
        } @else {
            table.workflows {
                caption.visually-hidden { "Workflows by id" }
                thead { tr {
                    th scope="col" { "Workflow" } th scope="col" { "Status" } th scope="col" { "Version" }
                    th scope="col" { "Trigger" } th scope="col" { "Next schedule" } th scope="col" { "Updated" }
                } }
                tbody {
                    @for (w, def, next) in &items {
                        tr {
                            td { a href={ "/ui/workflows/" (w.id) } { (w.name) } br; span.mono.muted { (w.id) } }
                            td { (badge(w.status.as_str())) }
                            td { "v" (w.latest_version) }
                            td { (trigger_text(def)) }
                            td { (next_schedule(*next, def)) }
                            td { (layout::time(w.updated_at)) }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::ok(layout::page(
        &Shell::new("Workflows", "workflows", &session),
        body,
    )))
}

/// Only a live schedule has a next occurrence (the API's `nextRunAt`); it is
/// shown in the schedule's own time zone.
fn next_schedule(next: Option<i64>, def: &Value) -> Markup {
    match next {
        Some(at) => layout::zoned_time(at, def["trigger"]["timezone"].as_str()),
        None => html! { span.muted { "—" } },
    }
}

/// What the Run-now editor starts with: for a schedule, the trigger's static
/// input (the server adds the `schedule` block); then every `default` of the
/// input schema's top-level properties that is not set yet.
fn prefilled_input(def: &Value) -> Value {
    let mut input = match &def["trigger"] {
        t if t["type"] == "schedule" => t["input"].as_object().cloned().unwrap_or_default(),
        _ => Default::default(),
    };
    for (k, p) in def["inputSchema"]["properties"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if let Some(d) = p.get("default") {
            input.entry(k.clone()).or_insert_with(|| d.clone());
        }
    }
    Value::Object(input)
}

/// `POST /ui/workflows/{id}/run`: start a run from the editor (as the
/// schedule would, for a scheduled workflow) and show it.
pub async fn run_now(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(&[Scope::WorkflowsExecute])?;
    let text = form.get("input").map(String::as_str).unwrap_or("{}");
    let input: Value = match serde_json::from_str(if text.trim().is_empty() { "{}" } else { text })
    {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "The input must be a JSON object like {\"key\": \"value\"}",
            ));
        }
        Err(e) => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                &format!("The input is not valid JSON: {e}"),
            ));
        }
    };
    let input = if form.get("as_schedule").is_some_and(|v| v == "true") {
        crate::http::runs::as_schedule_input(&state, &id, &input).await?
    } else {
        input
    };
    let req = crate::trigger::TriggerRequest::new(id, input, crate::store::TriggerType::Api);
    let outcome = state
        .triggers()
        .trigger_run(req)
        .await
        .map_err(crate::http::ApiError::from)?;
    let run_id = match outcome {
        crate::store::TriggerOutcome::Created(r) | crate::store::TriggerOutcome::Replayed(r) => {
            r.id
        }
    };
    Ok(Redirect::to(&format!("/ui/runs/{run_id}")).into_response())
}

fn version_param(
    q: &std::collections::HashMap<String, String>,
    name: &str,
    latest: i64,
) -> Result<Option<i64>, PageError> {
    match q.get(name).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => match v.trim_start_matches('v').parse::<i64>() {
            Ok(n) if (1..=latest).contains(&n) => Ok(Some(n)),
            _ => Err(PageError::new(
                StatusCode::BAD_REQUEST,
                &format!("{name} must be a version from 1 to {latest}"),
            )),
        },
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(raw): RawQuery,
) -> Result<Page, PageError> {
    session.principal.require(&[Scope::WorkflowsRead])?;
    let q = query_map(raw.as_deref())?;
    let row = state.store.get_workflow(id.clone()).await?;
    let latest = row.latest_version;
    let shown = version_param(&q, "version", latest)?.unwrap_or(latest);
    let to = version_param(&q, "to", latest)?.unwrap_or(latest);
    let from = version_param(&q, "from", latest)?.unwrap_or((to - 1).max(1));
    let (def, def_at) = state.store.workflow_version(id.clone(), shown).await?;
    let diff = if from != to {
        let (a, _) = state.store.workflow_version(id.clone(), from).await?;
        let (b, _) = state.store.workflow_version(id.clone(), to).await?;
        Some(diff_markup(&a, &b))
    } else {
        None
    };
    let can_write = session.can(Scope::WorkflowsWrite);
    let can_run = session.can(Scope::WorkflowsExecute)
        && row.status == crate::workflow::WorkflowStatus::Active;
    let next = crate::workflows::next_run_at(&state.catalog, &row, crate::time::now_ms()).await;
    let (latest_def, _) = state.store.workflow_version(id.clone(), latest).await?;
    let is_schedule = latest_def["trigger"]["type"] == "schedule";
    let prefill = serde_json::to_string_pretty(&prefilled_input(&latest_def)).unwrap_or_default();
    let recent = if session.can(Scope::RunsRead) {
        state
            .store
            .list_runs(crate::store::RunFilter {
                workflow_id: Some(id.clone()),
                status: None,
                trigger_type: None,
                before_seq: None,
                limit: 10,
                parent_run_id: None,
                include_children: false,
            })
            .await?
    } else {
        vec![]
    };
    let body = html! {
        header.run-head {
            h1 { (row.name) " " span.mono.muted { (row.id) } }
            p.run-status { "Status: " (badge(row.status.as_str())) }
            div.actions {
                @if can_write && row.status != WorkflowStatus::Active {
                    (layout::action_button(&session, &format!("/ui/workflows/{}/activate", row.id), "Activate", "activate", ""))
                }
                @if can_write && row.status == WorkflowStatus::Active {
                    (layout::action_button(&session, &format!("/ui/workflows/{}/pause", row.id), "Pause", "pause", "secondary"))
                }
            }
        }
        dl.facts {
            dt { "Latest version" } dd { "v" (latest) }
            dt { "Trigger" } dd { (trigger_text(&def)) }
            dt { "Next schedule" } dd { (next_schedule(next, &def)) }
            dt { "Created" } dd { (layout::time(row.created_at)) }
            dt { "Updated" } dd { (layout::time(row.updated_at)) }
            dt { "Runs" } dd { a href={ "/ui/runs?workflowId=" (super::session::urlencode(&row.id)) } { "Runs of this workflow" } }
        }
        @if can_run {
            section.run-now aria-labelledby="run-now-title" {
                h2 #run-now-title { "Run now" }
                p.muted {
                    @if is_schedule {
                        "Starts a run as the schedule would: this input (the trigger's static input) plus a "
                        code { "schedule" } " block with the current time."
                    } @else {
                        "Starts a run with this input (prefilled from the input schema's defaults)."
                    }
                }
                form.run-now method="post" action={ "/ui/workflows/" (row.id) "/run" } {
                    (layout::csrf_field(&session))
                    @if is_schedule { input type="hidden" name="as_schedule" value="true"; }
                    label for="run-input" { "Input (JSON)" }
                    textarea #run-input name="input" spellcheck="false" { (prefill) }
                    button #run-now type="submit" { "Run now" }
                }
            }
        }
        @if session.can(Scope::RunsRead) {
            section aria-labelledby="recent-title" {
                h2 #recent-title { "Recent runs" }
                @if recent.is_empty() {
                    p.muted { "No runs yet." }
                } @else {
                    table.recent-runs {
                        thead { tr {
                            th scope="col" { "Run" } th scope="col" { "Status" } th scope="col" { "Trigger" }
                            th scope="col" { "Created" } th scope="col" { "Duration" }
                        } }
                        tbody {
                            @for r in &recent {
                                tr {
                                    td { a.mono href={ "/ui/runs/" (r.id) } { (r.id) } span.muted { " v" (r.workflow_version) } }
                                    td { (badge(r.status.as_str())) }
                                    td { (r.trigger_type.as_str()) }
                                    td { (layout::time(r.created_at)) }
                                    td { (layout::opt_duration(r.started_at, r.completed_at)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="versions-title" {
            h2 #versions-title { "Versions" }
            ul.versions {
                @for n in (1..=latest).rev() {
                    li {
                        @if n == shown {
                            a href={ "?version=" (n) } aria-current="true" { "v" (n) }
                        } @else {
                            a href={ "?version=" (n) } { "v" (n) }
                        }
                    }
                }
            }
        }
        @if latest > 1 {
            section aria-labelledby="diff-title" {
                h2 #diff-title { "Diff v" (from) " → v" (to) }
                form.filters method="get" {
                    input type="hidden" name="version" value=(shown);
                    div.field {
                        label for="d-from" { "From version" }
                        select #d-from name="from" { @for n in 1..=latest { option value=(n) selected[n == from] { "v" (n) } } }
                    }
                    div.field {
                        label for="d-to" { "To version" }
                        select #d-to name="to" { @for n in 1..=latest { option value=(n) selected[n == to] { "v" (n) } } }
                    }
                    div.field.buttons { button type="submit" { "Compare" } }
                }
                @match diff {
                    Some(d) => (d),
                    None => p.muted { "Choose two different versions to compare." },
                }
            }
        }
        section aria-labelledby="def-title" {
            h2 #def-title { "Definition v" (shown) " " span.muted { "(stored " (layout::time(def_at)) ")" } }
            (json_block(&format!("Definition v{shown}"), &def))
        }
    };
    Ok(Page::ok(layout::page(
        &Shell::new(&row.name, "workflows", &session),
        body,
    )))
}

/// A unified line diff of the two definitions, pretty-printed; each changed
/// line starts with `+` or `-` so the change does not rest on colour.
fn diff_markup(a: &Value, b: &Value) -> Markup {
    let a = serde_json::to_string_pretty(a).unwrap_or_default();
    let b = serde_json::to_string_pretty(b).unwrap_or_default();
    let diff = TextDiff::from_lines(&a, &b);
    html! {
        @if a == b {
            p.muted { "The two versions are identical." }
        } @else {
            pre.diff tabindex="0" aria-label="Differences between the versions" {
                @for group in diff.grouped_ops(3) {
                    span.hunk { "…\n" }
                    @for op in group {
                        @for change in diff.iter_changes(&op) {
                            @match change.tag() {
                                ChangeTag::Delete => span.del { "- " (change.value()) },
                                ChangeTag::Insert => span.ins { "+ " (change.value()) },
                                ChangeTag::Equal => span { "  " (change.value()) },
                            }
                        }
                    }
                }
            }
        }
    }
}

async fn set_status(
    state: AppState,
    session: Session,
    id: String,
    headers: HeaderMap,
    form: std::collections::HashMap<String, String>,
    status: WorkflowStatus,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(&[Scope::WorkflowsWrite])?;
    let row = crate::workflows::set_status(&state.store, &state.catalog, id, status)
        .await
        .map_err(crate::http::ApiError::from)?;
    Ok(Redirect::to(&format!("/ui/workflows/{}", row.id)).into_response())
}

pub async fn activate(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    set_status(state, session, id, headers, form, WorkflowStatus::Active).await
}

pub async fn pause(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    set_status(state, session, id, headers, form, WorkflowStatus::Paused).await
}
