//! Connection routes. Secrets are write-only: encrypted on the way in, never
//! returned (views say only `hasSecret`).

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::Path;
use super::{AppState, ok};
use crate::scope::Scope;
use crate::store::{ConnectionProvider, ConnectionRow, ConnectionStatus, ConnectionWrite};
use crate::time::rfc3339;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

/// `config` fields each provider reads, and the ones it cannot do without
/// (docs/workflows.md → Connections). Anything else is a typo caught here,
/// not at the first run.
fn config_fields(
    provider: ConnectionProvider,
) -> (&'static [&'static str], &'static [&'static str]) {
    match provider {
        ConnectionProvider::Smtp => (
            &[
                "host",
                "port",
                "tls",
                "username",
                "from",
                "heloName",
                "acceptInvalidCerts",
            ],
            &["host"],
        ),
        ConnectionProvider::Http => (&["baseUrl", "headers", "authHeader"], &[]),
        ConnectionProvider::Stripe => (&["baseUrl", "apiVersion"], &[]),
        ConnectionProvider::Webhook => (&["header"], &[]),
    }
}

fn check_config(provider: ConnectionProvider, config: &Value) -> Result<(), ApiError> {
    let (known, required) = config_fields(provider);
    let mut details = vec![];
    if let Value::Object(m) = config {
        for key in m.keys().filter(|k| !known.contains(&k.as_str())) {
            details.push(crate::api::ErrorDetail {
                path: vec![json!("config"), json!(key)],
                message: crate::workflow::fields::unknown_field(key, known),
            });
        }
        for key in required.iter().filter(|k| !m.contains_key(**k)) {
            details.push(crate::api::ErrorDetail {
                path: vec![json!("config"), json!(key)],
                message: format!("required for a {provider} connection"),
            });
        }
    }
    if details.is_empty() {
        return Ok(());
    }
    Err(ApiError::Validation {
        message: format!("Connection config is invalid for provider {provider}"),
        details,
    })
}

/// Active workflows whose latest definition names `conn_id` (a step's
/// `connection` or a webhook trigger's), as `wf_… (Name)`.
pub(crate) async fn workflows_using(
    state: &AppState,
    conn_id: &str,
) -> Result<Vec<String>, ApiError> {
    let mut users = vec![];
    let mut after = None;
    loop {
        let page = state.store.list_workflows(after.clone(), 100).await?;
        let last = page.last().map(|w| w.id.clone());
        for w in page
            .iter()
            .filter(|w| w.status == crate::workflow::WorkflowStatus::Active)
        {
            let Ok((_, wf)) = state.catalog.head(&w.id).await else {
                continue;
            };
            let def = &wf.definition;
            let named = |v: &Value| v.get("connection").and_then(Value::as_str) == Some(conn_id);
            let in_steps = def["steps"]
                .as_array()
                .is_some_and(|steps| steps.iter().any(named));
            if in_steps || named(&def["trigger"]) {
                users.push(format!("{} ({})", w.id, w.name));
            }
        }
        match last {
            Some(l) if page.len() == 100 => after = Some(l),
            _ => return Ok(users),
        }
    }
}

pub fn view(c: &ConnectionRow) -> Value {
    json!({
        "id": c.id,
        "provider": c.provider.as_str(),
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
    who.require(&[Scope::ConnectionsWrite])?;
    let Value::Object(obj) = body else {
        return Err(ApiError::InvalidRequest(
            "body must be a JSON object".into(),
        ));
    };
    let provider = field(&obj, "provider")?.unwrap_or_default();
    let Some(provider) = ConnectionProvider::parse(provider) else {
        return Err(ApiError::InvalidRequest(format!(
            "provider must be one of {}",
            ConnectionProvider::names().join(", ")
        )));
    };
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
    check_config(provider, &config)?;
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
        provider,
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
    who.require(&[Scope::ConnectionsRead])?;
    let rows = state.store.list_connections().await?;
    Ok(ok(rows.iter().map(view).collect::<Vec<_>>()))
}

pub async fn show(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::ConnectionsRead])?;
    Ok(ok(view(&state.store.get_connection(id).await?)))
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<impl IntoResponse, ApiError> {
    who.require(&[Scope::ConnectionsWrite])?;
    let q = super::params::parse_query(q.as_deref())?;
    let force = match q.get("force").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "force must be true or false".into(),
            ));
        }
    };
    // Deleting what an active workflow needs breaks its next run: refuse
    // unless asked, and name the workflows.
    state.store.get_connection(id.clone()).await?;
    if !force {
        let users = workflows_using(&state, &id).await?;
        if !users.is_empty() {
            return Err(ApiError::InvalidRequest(format!(
                "connection {id} is used by active workflow(s): {}; pause or change them first, or delete anyway with force=true",
                users.join(", ")
            )));
        }
    }
    state.store.delete_connection(id.clone()).await?;
    Ok(ok(json!({"id": id, "deleted": true})))
}
