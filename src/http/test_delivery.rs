//! `POST /api/v1/workflows/{id}/test-delivery`: the headers that make a body
//! a correctly signed delivery to the workflow's webhook, signed on the server
//! with the connection's secret (which never leaves it). `flowctl webhook
//! send` then posts the body to `/webhooks/…` itself, so the delivery goes
//! through the real verification, filtering and dedupe, like `stripe trigger`.

use super::auth::Principal;
use super::body::JsonBody;
use super::error::ApiError;
use super::params::Path;
use super::{AppState, ok};
use crate::scope::Scope;
use crate::workflow::TriggerDef;
use axum::extract::{Extension, State};
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

pub async fn sign(
    State(state): State<AppState>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Value>,
) -> Result<impl IntoResponse, ApiError> {
    // Whoever may run the workflow may send it a test event: same power.
    who.require(&[Scope::WorkflowsExecute])?;
    let Some(raw) = body.get("body").and_then(Value::as_str) else {
        return Err(ApiError::InvalidRequest(
            "body must be the exact text to deliver, as a string: {\"body\": \"{\\\"id\\\": …}\"}"
                .into(),
        ));
    };
    if let Some(key) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| k.as_str() != "body"))
    {
        return Err(ApiError::InvalidRequest(
            crate::workflow::fields::unknown_field(key, &["body"]),
        ));
    }
    let (_, wf) = state.catalog.head(&id).await?;
    let TriggerDef::Webhook(def) = &wf.trigger else {
        return Err(ApiError::InvalidRequest(format!(
            "workflow {id} has no webhook trigger; `flowctl run {id}` starts it directly"
        )));
    };
    let mut headers = Map::new();
    if def.verify_signature {
        let Some(conn_id) = &def.connection else {
            return Err(ApiError::InvalidRequest(format!(
                "workflow {id}'s webhook names no connection, so deliveries cannot be signed"
            )));
        };
        let conn = state
            .store
            .get_connection(conn_id.clone())
            .await
            .map_err(|_| {
                ApiError::InvalidRequest(format!(
                    "connection {conn_id} (named by workflow {id}'s webhook) does not exist"
                ))
            })?;
        let secret = conn
            .secret
            .as_deref()
            .and_then(|blob| state.secrets.decrypt(blob).ok())
            .ok_or_else(|| {
                ApiError::InvalidRequest(format!("connection {conn_id} has no usable secret"))
            })?;
        let custom = conn.config.get("header").and_then(Value::as_str);
        let delivery_id = format!("test_{}", crate::ids::base62(16));
        let signed = crate::webhook::sign(
            def.provider,
            &secret,
            raw.as_bytes(),
            crate::time::now_ms() / 1000,
            custom,
            &delivery_id,
        )
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
        for (k, v) in signed {
            headers.insert(k, json!(v));
        }
    }
    Ok(ok(json!({
        "path": format!("/webhooks/{}", def.path),
        "provider": def.provider.as_str(),
        "events": def.events,
        "headers": headers,
    })))
}
