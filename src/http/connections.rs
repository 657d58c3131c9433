//! Connection routes. Secrets are write-only: encrypted on the way in, never
//! returned (views say only `hasSecret`).

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::Path;
use super::{AppState, ok};
use crate::store::{ConnectionRow, ConnectionStatus, ConnectionWrite};
use crate::time::rfc3339;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

pub const PROVIDERS: [&str; 4] = ["stripe", "smtp", "http", "webhook"];

pub fn view(c: &ConnectionRow) -> Value {
    json!({
        "id": c.id,
        "provider": c.provider,
        "name": c.name,
        "status": c.status.as_str(),
        "default": c.is_default,
        "config": c.config,
        "hasSecret": c.secret.is_some(),
        "createdAt": rfc3339(c.created_at),
        "updatedAt": rfc3339(c.updated_at),
    })
}

fn valid_id(id: &str) -> bool {
    id.strip_prefix("conn_").is_some_and(|rest| {
        (1..=64).contains(&rest.len())
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::InvalidRequest(format!("{name} must be a string"))),
    }
}

/// Create, or replace by `id` (so re-running a set-up script is harmless).
pub async fn create(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&["connections:write"])?;
    let Value::Object(obj) = body else {
        return Err(ApiError::InvalidRequest(
            "body must be a JSON object".into(),
        ));
    };
    let provider = field(&obj, "provider")?.unwrap_or_default();
    if !PROVIDERS.contains(&provider) {
        return Err(ApiError::InvalidRequest(format!(
            "provider must be one of {}",
            PROVIDERS.join(", ")
        )));
    }
    let name = field(&obj, "name")?.filter(|n| !n.trim().is_empty() && n.len() <= 200);
    let Some(name) = name else {
        return Err(ApiError::InvalidRequest(
            "name is required (1 to 200 characters)".into(),
        ));
    };
    let id = match field(&obj, "id")? {
        Some(id) if valid_id(id) => id.to_string(),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "id must match ^conn_[A-Za-z0-9_]{1,64}$".into(),
            ));
        }
        None => format!("conn_{}", crate::ids::base62(16)),
    };
    let status = field(&obj, "status")?.unwrap_or("active");
    let Some(status) = ConnectionStatus::parse(status) else {
        return Err(ApiError::InvalidRequest(
            "status must be active or inactive".into(),
        ));
    };
    let config = match obj.get("config") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "config must be a JSON object".into(),
            ));
        }
    };
    let is_default = match obj.get("default") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "default must be true or false".into(),
            ));
        }
    };
    let secret = field(&obj, "secret")?.map(|s| state.secrets.encrypt(s));
    let write = ConnectionWrite {
        id,
        provider: provider.into(),
        name: name.into(),
        status,
        is_default,
        config,
        secret,
    };
    let (row, created) = state.store.put_connection(write).await?;
    let code = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((code, ok(view(&row))))
}

pub async fn list(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&["connections:read"])?;
    let rows = state.store.list_connections().await?;
    Ok(ok(rows.iter().map(view).collect::<Vec<_>>()))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&["connections:read"])?;
    Ok(ok(view(&state.store.get_connection(id).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&["connections:write"])?;
    state.store.delete_connection(id.clone()).await?;
    Ok(ok(json!({"id": id, "deleted": true})))
}
