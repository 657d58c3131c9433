//! `GET /healthz` (a real write through the store's write path, so a full
//! disk or a dead writer shows) and `GET /metrics`.

use super::error::ApiError;
use super::{AppState, ok};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state.store.check().await?;
    Ok(ok(json!({"status": "ok"})))
}

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let by_status = state.store.count_runs_by_status().await?;
    let depth = state.store.queue_depth().await?;
    state
        .metrics
        .set_outbox_backlog(state.store.outbox_backlog().await?);
    let text = state.metrics.render(&by_status, depth);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
