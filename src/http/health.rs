//! `GET /healthz` (liveness plus a real database round trip) and `GET /metrics`.

use super::error::ApiError;
use super::{AppState, ok};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    // Once any query met a corrupt page the answer stays 503 until a restart:
    // a `SELECT 1` would not touch the damaged page.
    if state.store.corruption().is_some() {
        return Err(ApiError::StorageCorrupt);
    }
    state.store.ping().await?;
    Ok(ok(json!({"status": "ok"})))
}

pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let by_status = state.store.count_runs_by_status().await?;
    let depth = state.store.queue_depth(crate::time::now_ms()).await?;
    let text = state.metrics.render(&by_status, depth);
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    ))
}
