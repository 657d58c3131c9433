//! `GET /healthz`: liveness plus a real database round trip.

use super::error::ApiError;
use super::{AppState, ok};
use axum::extract::State;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn healthz(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    state
        .store
        .read(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?))
        .await?;
    Ok(ok(json!({"status": "ok"})))
}
