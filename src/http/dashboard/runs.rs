//! `/ui/runs` (filters, search, keyset paging, live) and `/ui/runs/{id}`
//! (status, input, output, error, step timeline, live while in flight) with
//! the "Cancel" and "Replay" actions, which call the API's own use cases.

use super::layout::{self, Shell, badge, error_line, json_block, opt_duration, opt_time};
use super::session::{Session, check_csrf, urlencode};
use super::{FormData, Page, PageError, PathId, family, query_map, timeline};
use crate::engine::RunStatus;
use crate::http::AppState;
use crate::http::views::run_view;
use crate::scope::Scope;
use crate::store::{RunSearch, RunSummary, TriggerOutcome, TriggerType};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use std::collections::HashMap;

const PAGE_SIZE: usize = 50;
/// Filters no index serves in order stop searching after this long (the page
/// then says so and links on), so the list answers fast on any history.
const SEARCH_BUDGET: std::time::Duration = std::time::Duration::from_millis(25);
const TRIGGER_TYPES: [&str; 8] = TriggerType::ALL;
/// How often a live region asks for fresh content (SPEC: within 2 s).
const LIVE_MS: u32 = 1000;

fn pick(q: &HashMap<String, String>, name: &str) -> Option<String> {
    q.get(name)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn search_from(q: &HashMap<String, String>) -> Result<RunSearch, PageError> {
    let bad = |m: String| PageError::new(StatusCode::BAD_REQUEST, &m);
    let status = pick(q, "status");
    if let Some(s) = &status
        && !RunStatus::ALL.contains(&s.as_str())
    {
        return Err(bad(format!(
            "status must be one of {}",
            RunStatus::ALL.join(", ")
        )));
    }
    let trigger_type = pick(q, "triggerType");
    if let Some(t) = &trigger_type
        && !TRIGGER_TYPES.contains(&t.as_str())
    {
        return Err(bad(format!(
            "triggerType must be one of {}",
            TRIGGER_TYPES.join(", ")
        )));
    }
    let before_seq = match pick(q, "cursor") {
        None => None,
        Some(c) => Some(
            c.parse::<i64>()
                .map_err(|_| bad("cursor is not one this server returned".into()))?,
        ),
    };
    Ok(RunSearch {
        status,
        workflow_id: pick(q, "workflowId"),
        trigger_type,
        q: pick(q, "q"),
        before_seq,
        limit: PAGE_SIZE + 1,
        budget: SEARCH_BUDGET,
    })
}

/// The filters as a query string (without the cursor), for paging links.
fn filter_query(f: &RunSearch) -> String {
    let mut parts = vec![];
    for (k, v) in [
        ("status", &f.status),
        ("workflowId", &f.workflow_id),
        ("triggerType", &f.trigger_type),
        ("q", &f.q),
    ] {
        if let Some(v) = v {
            parts.push(format!("{k}={}", urlencode(v)));
        }
    }
    parts.join("&")
}

pub async fn list(
    State(state): State<AppState>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Result<Page, PageError> {
    session.principal.require(&[Scope::RunsRead])?;
    let q = query_map(raw.as_deref())?;
    let search = search_from(&q)?;
    let found = state.store.search_runs(search.clone()).await?;
    let mut rows = found.runs;
    let has_more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let partial = found.resume_before;
    // The workflow filter offers the known workflows (first 100 by id).
    let workflows = if session.can(Scope::WorkflowsRead) {
        state.store.list_workflows(None, 100).await?
    } else {
        vec![]
    };
    let first_page = search.before_seq.is_none();
    let base = filter_query(&search);
    let next_cursor = if has_more {
        rows.last().map(|r| r.seq)
    } else {
        partial
    };
    let older = next_cursor.map(|seq| {
        let sep = if base.is_empty() { "" } else { "&" };
        format!("/ui/runs?{base}{sep}cursor={seq}")
    });
    let body = html! {
        h1 { "Runs" }
        form.filters method="get" action="/ui/runs" role="search" aria-label="Filter runs" {
            div.field {
                label for="f-status" { "Status" }
                select #f-status name="status" {
                    option value="" { "Any status" }
                    @for s in RunStatus::ALL {
                        option value=(s) selected[search.status.as_deref() == Some(s)] { (s.replace('_', " ")) }
                    }
                }
            }
            div.field {
                label for="f-workflow" { "Workflow" }
                @if workflows.is_empty() {
                    input #f-workflow name="workflowId" value=[search.workflow_id.as_deref()];
                } @else {
                    select #f-workflow name="workflowId" {
                        option value="" { "Any workflow" }
                        @for w in &workflows {
                            option value=(w.id) selected[search.workflow_id.as_deref() == Some(w.id.as_str())] { (w.name) " (" (w.id) ")" }
                        }
                    }
                }
            }
            div.field {
                label for="f-trigger" { "Trigger type" }
                select #f-trigger name="triggerType" {
                    option value="" { "Any trigger" }
                    @for t in TRIGGER_TYPES {
                        option value=(t) selected[search.trigger_type.as_deref() == Some(t)] { (t) }
                    }
                }
            }
            div.field.grow {
                label for="f-q" { "Run id or idempotency key" }
                input #f-q type="search" name="q" value=[search.q.as_deref()] spellcheck="false";
            }
            div.field.buttons {
                button type="submit" { "Filter" }
                a.button.secondary href="/ui/runs" { "Clear" }
            }
        }
        div #live data-live-interval=[first_page.then_some(LIVE_MS * 2)] aria-live="polite" {
            (runs_table(&rows))
            @if partial.is_some() {
                p.notice role="status" {
                    "No index covers this combination of filters, so the search stopped early: "
                    "these are the matches among the newest runs. “Older →” searches further back."
                }
            }
        }
        nav.paging aria-label="Pages" {
            @if !first_page {
                a href={ "/ui/runs" @if !base.is_empty() { "?" (base) } } { "← Newest" }
            }
            @if let Some(href) = older {
                a href=(href) rel="next" { "Older →" }
            }
        }
    };
    Ok(Page::ok(layout::page(
        &Shell::new("Runs", "runs", &session),
        body,
    )))
}

fn runs_table(rows: &[RunSummary]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No runs match these filters." }
        } @else {
            table.runs {
                caption.visually-hidden { "Runs, newest first" }
                thead {
                    tr {
                        th scope="col" { "Run" }
                        th scope="col" { "Workflow" }
                        th scope="col" { "Status" }
                        th scope="col" { "Trigger" }
                        th scope="col" { "Created" }
                        th scope="col" { "Duration" }
                        th scope="col" { "Error" }
                    }
                }
                tbody {
                    @for r in rows {
                        tr {
                            td { a.mono href={ "/ui/runs/" (r.id) } { (r.id) } }
                            td { (r.workflow_id) span.muted { " v" (r.workflow_version) } }
                            td { (badge(&r.status)) }
                            td { (r.trigger_type.as_deref().unwrap_or("api")) }
                            td { (layout::time(r.created_at)) }
                            td { (opt_duration(r.started_at, r.completed_at)) }
                            td.error-cell { (layout::clamped(&error_line(&r.error))) }
                        }
                    }
                }
            }
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    RawQuery(q): RawQuery,
) -> Result<Page, PageError> {
    session
        .principal
        .require(&[Scope::RunsRead, Scope::WorkflowsExecute])?;
    let run = state.store.get_run(id).await?;
    let tree = family::fetch(&state.store, &run).await?;
    let wf = state
        .catalog
        .version(&run.workflow_id, run.workflow_version)
        .await
        .ok();
    let finished = run.is_finished();
    let (created, started, completed) = (run.created_at, run.started_at, run.completed_at);
    let view = run_view(run, wf.as_deref(), true);
    let items_before = query_map(q.as_deref())?
        .get("itemsBefore")
        .and_then(|v| v.parse().ok());
    let items = super::blocks::item_page(&state.store, &view.id, &view.steps, items_before).await;
    let now = crate::time::now_ms();
    let can_cancel = !finished && session.can(Scope::RunsWrite);
    let can_replay = session.can(Scope::WorkflowsExecute);
    let body = html! {
        div #live data-live-interval=[(!finished).then_some(LIVE_MS)] {
            header.run-head {
                h1 { "Run " span.mono { (view.id) } }
                p.run-status { "Status: " (badge(&view.status)) }
                div.actions {
                    @if can_cancel {
                        (layout::action_button(&session, &format!("/ui/runs/{}/cancel", view.id), "Cancel", "cancel-run", "danger"))
                    }
                    @if can_replay {
                        (layout::action_button(&session, &format!("/ui/runs/{}/replay", view.id), "Replay", "replay-run", ""))
                    }
                }
            }
            (super::blocks::parent_line(&view.trigger_type, view.parent_run_id.as_deref(), view.parent_step_id.as_deref()))
            dl.facts {
                dt { "Workflow" }
                dd { a href={ "/ui/workflows/" (view.workflow_id) } { (view.workflow_id) } " v" (view.workflow_version) }
                dt { "Trigger" } dd { (view.trigger_type) }
                @if let Some(parent) = &view.parent_run_id {
                    dt { "Parent run" }
                    dd #parent-run {
                        a.mono href={ "/ui/runs/" (parent) } { (parent) }
                        @if let Some(step) = &view.parent_step_id {
                            " (step " a href={ "/ui/runs/" (parent) "#step-" (step) } { (step) } ")"
                        }
                    }
                    @if &view.root_run_id != parent {
                        dt { "Root run" }
                        dd #root-run { a.mono href={ "/ui/runs/" (view.root_run_id) } { (view.root_run_id) } " (depth " (view.depth) ")" }
                    }
                }
                @if view.redrive_count > 0 {
                    dt { "Redriven" } dd { (view.redrive_count) @if view.redrive_count == 1 { " time" } @else { " times" } }
                }
                dt { "Idempotency key" } dd.mono { (view.idempotency_key.as_deref().unwrap_or("—")) }
                dt { "Connection" } dd.mono { (view.connection_id.as_deref().unwrap_or("—")) }
                dt { "Created" } dd { (layout::time(created)) }
                dt { "Started" } dd { (opt_time(started)) }
                dt { "Completed" } dd { (opt_time(completed)) }
                dt { "Duration" } dd { (opt_duration(started, completed)) }
            }
            @if !view.error.is_null() {
                section.run-error role="alert" aria-labelledby="err-title" {
                    h2 #err-title { "Error" }
                    p { (layout::clamped(&error_line(&view.error))) }
                    @if let Some(step) = view.error.get("stepId").and_then(|v| v.as_str()) {
                        p { "In step " a href={ "#step-" (step) } { (step) } }
                    }
                }
            }
            (super::approve::run_waits(&view, &session))
            @if !tree.is_empty() {
                section #children aria-labelledby="children-title" {
                    h2 #children-title { "Child runs" }
                    @if let Some(c) = &view.children {
                        p.muted {
                            (c["total"]) " in all: " (c["completed"]) " completed, "
                            (c["failed"]) " failed, " (c["running"]) " running"
                        }
                    }
                    (family::render(&tree, &view.id))
                }
            }
            section aria-labelledby="tl-title" {
                h2 #tl-title { "Timeline" }
                (timeline::render(&view.steps, started.unwrap_or(created), completed.unwrap_or(now)))
            }
            section aria-labelledby="steps-title" {
                h2 #steps-title { "Steps" }
                @if view.steps.is_empty() { p.muted { "This run's workflow version could not be loaded." } }
                ol.steps {
                    @for s in &view.steps {
                        li.step id={ "step-" (s.id) } {
                            h3 {
                                span.mono { (s.id) }
                                @if let Some(n) = &s.name { " — " (n) }
                                " " (badge(&s.status))
                            }
                            p.step-meta {
                                "Type " (s.step_type) " · attempts " (s.attempts)
                                @if let (Some(a), Some(b)) = (s.started_at.as_deref(), s.completed_at.as_deref()) {
                                    @if let (Some(a), Some(b)) = (crate::time::parse_rfc3339(a), crate::time::parse_rfc3339(b)) {
                                        " · " (layout::duration(b - a))
                                    }
                                }
                            }
                            @if !s.error.is_null() {
                                p.step-error { "Error (last attempt): " (layout::clamped(&error_line(&s.error))) }
                            }
                            @if s.status == "waiting" {
                                @if let Some(at) = s.output.get("resumeAt").and_then(|v| v.as_str()).and_then(crate::time::parse_rfc3339) {
                                    p.resumes { "Resumes " (layout::time(at)) }
                                }
                            }
                            @for child in tree.started_by(&view.id, &s.id) {
                                p.step-child {
                                    "Child run " a.mono href={ "/ui/runs/" (child.id) } { (child.id) }
                                    " (" (child.workflow_id) ") " (badge(child.status.as_str()))
                                }
                            }
                            @if let Some(branch) = s.branch_taken() {
                                p.step-branch { "Took branch " strong { (branch) } }
                            }
                            @if let Some(why) = s.skip_text() {
                                p.step-skip { "Skipped: " (why) }
                            }
                            (super::blocks::block_section(&view.id, s, &items))
                            @for w in &s.warnings { p.warning { "Warning: " (w) } }
                            @if !s.output.is_null() {
                                h4 { "Output" }
                                (json_block(&format!("Output of step {}", s.id), &s.output))
                            }
                        }
                    }
                }
            }
            div.io {
                section aria-labelledby="in-title" { h2 #in-title { "Input" } (json_block("Input", &view.input)) }
                section aria-labelledby="out-title" { h2 #out-title { "Output" } (json_block("Output", &view.output)) }
            }
        }
    };
    let title = format!("Run {}", view.id);
    Ok(Page::ok(layout::page(
        &Shell::new(&title, "runs", &session),
        body,
    )))
}

pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(&[Scope::RunsWrite])?;
    let run = crate::runs::cancel(&state.store, &state.events, id)
        .await
        .map_err(crate::http::ApiError::from)?;
    Ok(Redirect::to(&format!("/ui/runs/{}", run.id)).into_response())
}

pub async fn replay(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(&[Scope::WorkflowsExecute])?;
    // The same use case as `POST /api/v1/runs/{id}/replay`.
    let outcome = crate::runs::replay(&state.triggers(), &id)
        .await
        .map_err(crate::http::ApiError::from)?;
    let (TriggerOutcome::Created(run) | TriggerOutcome::Replayed(run)) = outcome;
    Ok(Redirect::to(&format!("/ui/runs/{}", run.id)).into_response())
}
