//! `/ui/endpoints`: outbound notification endpoints, each with its recent
//! deliveries (status, attempts, last answer) and a Redeliver button; a
//! disabled endpoint has an Enable button. The actions call the same store
//! port as `POST /api/v1/deliveries/{id}/redeliver` and `…/enable`.

use super::layout::{self, Shell, action_button, badge};
use super::session::{Session, check_csrf};
use super::{FormData, Page, PageError, PathId};
use crate::http::AppState;
use crate::scope::Scope;
use crate::store::DeliveryStatus;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

const SCOPE: &[Scope] = &[Scope::WebhooksWrite];
/// Deliveries shown per endpoint.
const RECENT: usize = 10;

pub async fn list(State(state): State<AppState>, session: Session) -> Result<Page, PageError> {
    session.principal.require(SCOPE)?;
    let endpoints = state.store.list_endpoints().await?;
    let mut sections = vec![];
    for e in endpoints {
        let deliveries = state.store.list_deliveries(e.id.clone(), RECENT).await?;
        sections.push((e, deliveries));
    }
    let body = html! {
        h1 { "Endpoints" }
        p.muted { "URLs notified of run events, signed as Standard Webhooks. Create them with "
            code { "flowctl endpoints create URL" } "." }
        @if sections.is_empty() {
            p { "No endpoints yet." }
        }
        @for (e, deliveries) in &sections {
            section aria-labelledby={ "ep-" (e.id) } {
                h2 id={ "ep-" (e.id) } { (e.url) }
                p {
                    @if e.enabled { (badge("completed")) " enabled" } @else { (badge("failed")) " disabled" }
                    " · " code { (e.id) }
                    " · events: " (e.filter.events.as_ref().map(|v| v.join(", ")).unwrap_or_else(|| "all".into()))
                    " · workflows: " (e.filter.workflow_ids.as_ref().map(|v| v.join(", ")).unwrap_or_else(|| "all".into()))
                    @if let Some(d) = &e.description { " · " (d) }
                }
                @if let Some(at) = e.disabled_at {
                    p { "Disabled " (layout::time(at)) ": " (e.disabled_reason.as_deref().unwrap_or("")) " "
                        (action_button(&session, &format!("/ui/endpoints/{}/enable", e.id), "Enable", &format!("enable-{}", e.id), "")) }
                } @else if let Some(since) = e.failing_since {
                    p { "Failing since " (layout::time(since)) "." }
                }
                @if deliveries.is_empty() {
                    p.muted { "No deliveries yet." }
                } @else {
                    table {
                        caption { "Recent deliveries, newest first" }
                        thead { tr {
                            th scope="col" { "Event" } th scope="col" { "Run" } th scope="col" { "Seq" }
                            th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { "Last answer" }
                            th scope="col" { "Last attempt" } th scope="col" { "" }
                        } }
                        tbody {
                            @for d in deliveries {
                                @let last = d.attempt_log.last();
                                tr {
                                    td { (d.event_type) br; code { (d.event_id) } }
                                    td { @if let Some(r) = &d.run_id { a href={ "/ui/runs/" (r) } { (r) } } @else { "—" } }
                                    td { (d.sequence) }
                                    td { (badge(match d.status {
                                        DeliveryStatus::Delivered => "completed",
                                        DeliveryStatus::Failed => "failed",
                                        DeliveryStatus::Pending => "pending",
                                    })) " " (d.status.as_str()) }
                                    td { (d.attempts) }
                                    td { @match last {
                                        Some(a) => {
                                            @if let Some(code) = a.status_code { (code) } @else { (a.error.as_deref().unwrap_or("—")) }
                                            " in " (layout::duration(a.duration_ms))
                                        }
                                        None => { "—" }
                                    } }
                                    td { (layout::opt_time(last.map(|a| a.at))) }
                                    td { (action_button(&session, &format!("/ui/deliveries/{}/redeliver", d.id), "Redeliver", &format!("redeliver-{}", d.id), "")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page::ok(layout::page(
        &Shell::new("Endpoints", "endpoints", &session),
        body,
    )))
}

pub async fn redeliver(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(SCOPE)?;
    state.store.redeliver(id).await?;
    Ok(Redirect::to("/ui/endpoints").into_response())
}

pub async fn enable(
    State(state): State<AppState>,
    session: Session,
    PathId(id): PathId,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(SCOPE)?;
    state.store.enable_endpoint(id).await?;
    Ok(Redirect::to("/ui/endpoints").into_response())
}
