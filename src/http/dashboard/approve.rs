//! The approver's page behind an emailed link: `GET /approve/{token}` shows
//! the reason, the deadline and the decisions so far, with Approve and Reject
//! buttons, and **changes nothing** (mail scanners fetch links before people
//! do); `POST /approve/{token}` with the page's form token decides as that
//! approver. Plain HTML, no script needed, the dashboard's CSP. Also the
//! dashboard's `/ui/approvals` inbox and the waits shown on a run's page.

use super::FormData;
use super::layout::{self, Shell, csrf_field};
use super::session::{Session, check_csrf};
use super::{Page, PageError};
use crate::api::{RunView, StepView};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::intake::read_body;
use crate::scope::Scope;
use crate::store::ApprovalFilter;
use crate::store::{Decider, DecisionOutcome, DecisionRequest, TokenApproval};
use crate::time::rfc3339;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Redirect;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};
use std::net::SocketAddr;

const FORM_LIMIT: usize = 16 * 1024;

fn shell(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · flowctl" }
                link rel="icon" type="image/svg+xml" href=(super::icon_url());
                link rel="stylesheet" href=(super::css_url());
            }
            body {
                main #main.approve { (body) }
            }
        }
    }
}

fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let body = html! {
        h1 { (title) }
        p role="status" { (text) }
    };
    Page::new(status, shell(title, body)).into_response()
}

async fn limited(state: &AppState, peer: &SocketAddr) -> Option<Response> {
    let d = state
        .limits
        .check_webhook(&state.store, &peer.ip().to_string())
        .await?;
    (!d.allowed).then(|| {
        ApiError::RateLimited {
            limit: d.limit,
            retry_after_secs: d.retry_after_secs,
        }
        .into_response()
    })
}

fn not_found() -> Response {
    message(
        StatusCode::NOT_FOUND,
        "Link not found",
        "This approval link is not known: it may be mistyped, or its run was deleted.",
    )
}

fn view(t: &TokenApproval, form_token: &str, now: i64) -> Markup {
    let a = &t.approval;
    let open = a.open(now);
    html! {
        h1 { "Approval requested" }
        p.reason { (a.reason) }
        dl {
            dt { "Workflow" } dd { (a.workflow_id) }
            dt { "Run" } dd { code { (a.run_id) } " (step " code { (a.step_id) } ")" }
            dt { "You" } dd { (t.approver) }
            dt { "Needed" } dd { (a.required) " of " (a.approvers.len()) " approvers" }
            dt { "Decide by" } dd { time datetime=(rfc3339(a.expires_at)) { (rfc3339(a.expires_at)) } }
            dt { "Status" } dd { (a.status) " (run " (a.run_status.as_str()) ")" }
        }
        @if !a.decisions.is_empty() {
            h2 { "Decisions" }
            ul {
                @for d in &a.decisions {
                    li { (d.by) ": " strong { (d.decision) } " at " (rfc3339(d.at))
                        @if let Some(c) = &d.comment { " — " (c) } }
                }
            }
        }
        @if open {
            form method="post" {
                input type="hidden" name="csrf" value=(form_token);
                label for="comment" { "Comment (optional)" }
                textarea #comment name="comment" rows="3" maxlength="2000" {}
                p {
                    button type="submit" name="decision" value="approve" { "Approve" }
                    " "
                    button type="submit" name="decision" value="reject" { "Reject" }
                }
            }
        } @else {
            p role="status" { "This approval takes no decision any more." }
        }
    }
}

/// `GET /approve/{token}`: the page. Reads only.
pub async fn page(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::PathId(token): super::PathId,
) -> Result<Response, PageError> {
    if let Some(r) = limited(&state, &peer).await {
        return Ok(r);
    }
    let hash = crate::waits::hash_token(&token);
    let Some(t) = state
        .store
        .approval_by_token(hash.clone())
        .await
        .map_err(ApiError::from)?
    else {
        return Ok(not_found());
    };
    let form = crate::waits::form_token(&state.secrets, &hash);
    let markup = shell("Approval", view(&t, &form, crate::time::now_ms()));
    Ok(Page::ok(markup).into_response())
}

/// `POST /approve/{token}` (form: `decision`, `comment`, `csrf`): decide as this approver.
pub async fn decide(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    super::PathId(token): super::PathId,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    if let Some(r) = limited(&state, &peer).await {
        return Ok(r);
    }
    // A form posted from another site is refused (the page posts to itself).
    if headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|s| s == "cross-site")
    {
        return Ok(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "A decision must come from this approval page.",
        ));
    }
    let _admission = match state.intake.admit(&headers, FORM_LIMIT) {
        Ok(a) => a,
        Err(refused) => return Ok(refused.into_response()),
    };
    let bytes = read_body(body, FORM_LIMIT).await?;
    let text = String::from_utf8_lossy(&bytes);
    let form = crate::http::params::parse_query(Some(&text))?;
    let hash = crate::waits::hash_token(&token);
    let csrf = form.get("csrf").map(String::as_str).unwrap_or("");
    if !crate::waits::form_token_ok(&state.secrets, &hash, csrf) {
        // Unknown tokens get the same answer as known ones without a form token.
        return Ok(message(
            StatusCode::FORBIDDEN,
            "Refused",
            "Missing or wrong form token: open the link again and use its buttons.",
        ));
    }
    let decision = match form.get("decision").map(String::as_str) {
        Some(d @ ("approve" | "reject")) => d.to_string(),
        _ => {
            return Ok(message(
                StatusCode::BAD_REQUEST,
                "No decision",
                "Press Approve or Reject.",
            ));
        }
    };
    let comment = form
        .get("comment")
        .map(|c| c.trim().chars().take(2000).collect::<String>())
        .filter(|c| !c.is_empty());
    let outcome = state
        .store
        .decide(DecisionRequest {
            by: Decider::Token(hash),
            decision,
            comment,
        })
        .await
        .map_err(ApiError::from)?;
    Ok(match outcome {
        DecisionOutcome::Decided {
            record, resolved, ..
        } => {
            if resolved {
                state.events.run_queued();
            }
            let what = if record.decision == "approve" {
                "Approved"
            } else {
                "Rejected"
            };
            let more = if resolved {
                "The run goes on."
            } else {
                "The run waits for more approvers."
            };
            message(
                StatusCode::OK,
                what,
                &format!("Your decision ({}) is recorded. {more}", record.decision),
            )
        }
        DecisionOutcome::Replayed { record, .. } => {
            let mut r = message(
                StatusCode::OK,
                "Already recorded",
                &format!(
                    "Your decision ({}) was recorded at {}.",
                    record.decision,
                    rfc3339(record.at)
                ),
            );
            r.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            r
        }
        DecisionOutcome::AlreadyDecided { recorded } => message(
            StatusCode::CONFLICT,
            "Already decided",
            &format!(
                "This approval was already decided: {} by {} at {}.",
                recorded.decision,
                recorded.by,
                rfc3339(recorded.at)
            ),
        ),
        DecisionOutcome::Expired(m) => message(StatusCode::GONE, "Expired", &m),
        DecisionOutcome::NotFound(_) => not_found(),
        DecisionOutcome::NotWaiting(m) => message(StatusCode::CONFLICT, "Not waiting", &m),
    })
}

// ---- The dashboard's side: `/ui/approvals` and the waits on a run's page.

/// One decision in words: `ana approved at … — "ok"`.
fn decision_line(d: &serde_json::Value) -> Markup {
    let by = d["by"].as_str().unwrap_or("?");
    let what = match d["decision"].as_str() {
        Some("approve") => "approved",
        Some("reject") => "rejected",
        _ => "decided",
    };
    html! {
        li { strong { (by) } " " (what) " at " (d["at"].as_str().unwrap_or(""))
            @if let Some(c) = d["comment"].as_str() { " — “" (c) "”" } }
    }
}

/// Approve and Reject for a key with `runs:approve` (a comment travels with either).
fn decide_form(session: &Session, run_id: &str, step_id: &str) -> Markup {
    html! {
        form.decide method="post" action={ "/ui/approvals/" (run_id) "/" (step_id) } {
            (csrf_field(session))
            label for={ "comment-" (run_id) "-" (step_id) } { "Comment (optional)" }
            input id={ "comment-" (run_id) "-" (step_id) } type="text" name="comment" maxlength="2000";
            button type="submit" name="decision" value="approve" { "Approve" }
            " "
            button.danger type="submit" name="decision" value="reject" { "Reject" }
        }
    }
}

/// What the run waits for, and the decisions of its approval steps (on the run page).
pub fn run_waits(view: &RunView, session: &Session) -> Markup {
    let waits: Vec<&StepView> = view
        .steps
        .iter()
        .filter(|s| s.waiting_for.as_deref().is_some_and(|w| w != "children"))
        .collect();
    let decided: Vec<&StepView> = view
        .steps
        .iter()
        .filter(|s| s.step_type == "approval" && s.status != "waiting")
        .filter(|s| {
            s.output["decisions"]
                .as_array()
                .is_some_and(|d| !d.is_empty())
                || s.output.get("decision").is_some()
        })
        .collect();
    if waits.is_empty() && decided.is_empty() {
        return html! {};
    }
    html! {
        section.waits aria-labelledby="waits-title" {
            h2 #waits-title { "Waiting for people and callbacks" }
            @for s in &waits {
                article.wait {
                    h3 { a href={ "#step-" (s.id) } { (s.id) } ": waiting for " (s.waiting_for.as_deref().unwrap_or("")) }
                    @if let Some(r) = s.output["reason"].as_str() { p.reason { (r) } }
                    p { "Until " (s.output["expiresAt"].as_str().unwrap_or("—"))
                        @if let Some(n) = s.output["required"].as_i64() {
                            " · " (s.output["decisions"].as_array().map_or(0, Vec::len)) " of " (n) " needed"
                        } }
                    @if let Some(ds) = s.output["decisions"].as_array().filter(|d| !d.is_empty()) {
                        ul { @for d in ds { (decision_line(d)) } }
                    }
                    @if s.waiting_for.as_deref() == Some("approval") && view.status == "suspended" && session.can(Scope::RunsApprove) {
                        (decide_form(session, &view.id, &s.id))
                    }
                }
            }
            @for s in &decided {
                article.wait {
                    h3 { a href={ "#step-" (s.id) } { (s.id) } ": "
                        (s.output["decision"].as_str().unwrap_or(&s.status)) }
                    @if let Some(ds) = s.output["decisions"].as_array() {
                        ul { @for d in ds { (decision_line(d)) } }
                    }
                }
            }
        }
    }
}

/// `/ui/approvals`: pending approvals, with Approve and Reject for keys with `runs:approve`.
pub async fn inbox(State(state): State<AppState>, session: Session) -> Result<Page, PageError> {
    session.principal.require(&[Scope::RunsRead])?;
    let rows = state
        .store
        .list_approvals(ApprovalFilter {
            pending_only: true,
            run_id: None,
            limit: 100,
        })
        .await
        .map_err(ApiError::from)?;
    let can_decide = session.can(Scope::RunsApprove);
    let body = html! {
        h1 { "Approvals" }
        @if rows.is_empty() {
            p.muted { "No run waits for a decision." }
        } @else {
            @if !can_decide {
                p.muted { "Your key can read approvals but not decide them (it needs runs:approve)." }
            }
            @for a in &rows {
                article.approval {
                    h2 { a href={ "/ui/runs/" (a.run_id) } { span.mono { (a.run_id) } } " · " (a.step_id) }
                    p.reason { (a.reason) }
                    p { (a.workflow_id) " · approvers: " (a.approvers.join(", "))
                        " · " (a.decisions.len()) " of " (a.required) " needed"
                        " · decide by " (rfc3339(a.expires_at)) }
                    @if !a.decisions.is_empty() {
                        ul { @for d in &a.decisions { (decision_line(&d.to_value())) } }
                    }
                    @if can_decide { (decide_form(&session, &a.run_id, &a.step_id)) }
                }
            }
        }
    };
    Ok(Page::ok(layout::page(
        &Shell::new("Approvals", "approvals", &session),
        body,
    )))
}

/// `POST /ui/approvals/{run}/{step}` (form: `decision`, `comment`, `csrf`): decide as the
/// session's key, then back to the inbox.
pub async fn decide_ui(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Path((run_id, step_id)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
    FormData(form): FormData,
) -> Result<Response, PageError> {
    check_csrf(&headers, &session, &form)?;
    session.principal.require(&[Scope::RunsApprove])?;
    let decision = match form.get("decision").map(String::as_str) {
        Some(d @ ("approve" | "reject")) => d.to_string(),
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Press Approve or Reject",
            ));
        }
    };
    let comment = form
        .get("comment")
        .map(|c| c.trim().chars().take(2000).collect::<String>())
        .filter(|c| !c.is_empty());
    let outcome = state
        .store
        .decide(DecisionRequest {
            by: Decider::Key {
                run_id,
                step_id,
                name: session.key_name.clone(),
            },
            decision,
            comment,
        })
        .await
        .map_err(ApiError::from)?;
    // The same answers as the API's, as pages: a conflict or expiry is shown, not hidden.
    crate::http::approvals::decision_answer(&state, outcome).map_err(PageError::from)?;
    Ok(Redirect::to("/ui/approvals").into_response())
}
