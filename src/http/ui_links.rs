//! `POST /api/v1/ui-links`: a one-time dashboard login link for the calling
//! key (`flowctl open`). The session it starts has that key's scopes.

use super::auth::Principal;
use super::error::ApiError;
use super::{AppState, ok};
use crate::scope::Scope;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<impl IntoResponse, ApiError> {
    // The dashboard shows nothing to a key that cannot read runs.
    who.require(&[Scope::RunsRead])?;
    let (path, expires) = crate::http::dashboard::link::create(&state, who.key_id.clone()).await?;
    Ok((
        StatusCode::CREATED,
        ok(json!({"path": path, "expiresAt": crate::time::rfc3339(expires)})),
    ))
}
