//! The approver's page behind an emailed link: `GET /approve/{token}` shows
//! the reason, the deadline and the decisions so far, with Approve and Reject
//! buttons, and **changes nothing** (mail scanners fetch links before people
//! do); `POST /approve/{token}` with the page's form token decides as that
//! approver. Plain HTML, no script needed, the dashboard's CSP.

use super::{Page, PageError};
use crate::http::AppState;
use crate::http::error::ApiError;
use crate::http::intake::read_body;
use crate::store::{Decider, DecisionOutcome, DecisionRequest, TokenApproval};
use crate::time::rfc3339;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
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
