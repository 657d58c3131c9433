//! Paths and schemas of the outbound notification routes
//! (`/api/v1/webhook-endpoints…`, `/api/v1/deliveries/{id}/redeliver`;
//! docs/notifications.md).

use super::{Op, json_body, reference, schema, success};
use serde_json::{Value, json};

const SCOPE: &[&str] = &["webhooks:write"];

pub(super) fn paths() -> Value {
    let id_param = reference("parameters", "EndpointId");
    json!({
        "/api/v1/webhook-endpoints": {
            "get": Op {
                id: "listWebhookEndpoints",
                tag: "notifications",
                summary: "List notification endpoints (their secrets are never returned again)",
                scopes: Some(SCOPE),
                params: vec![],
                body: None,
                ok: vec![("200", success("All endpoints",
                    json!({"type": "array", "items": schema("WebhookEndpoint")})))],
                errors: &[401, 403, 429, 500],
            }.build(),
            "post": Op {
                id: "createWebhookEndpoint",
                tag: "notifications",
                summary: "Register a URL notified of run events; the answer holds its signing secret, shown only here",
                scopes: Some(SCOPE),
                params: vec![],
                body: Some(json_body(
                    true,
                    "The endpoint; `events` and `workflowIds` left out mean all",
                    schema("WebhookEndpointRequest"),
                    json!({"url": "https://example.com/flowctl-events", "events": ["run.failed"]}),
                )),
                ok: vec![("201", success("The new endpoint, with `secret`",
                    schema("WebhookEndpointCreated")))],
                errors: &[400, 401, 403, 413, 429, 500],
            }.build()
        },
        "/api/v1/webhook-endpoints/{id}": {
            "parameters": [id_param],
            "get": Op {
                id: "getWebhookEndpoint",
                tag: "notifications",
                summary: "One notification endpoint",
                scopes: Some(SCOPE),
                params: vec![],
                body: None,
                ok: vec![("200", success("The endpoint", schema("WebhookEndpoint")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build(),
            "delete": Op {
                id: "deleteWebhookEndpoint",
                tag: "notifications",
                summary: "Delete an endpoint with its deliveries",
                scopes: Some(SCOPE),
                params: vec![],
                body: None,
                ok: vec![("200", success("The endpoint is gone", json!({
                    "type": "object",
                    "required": ["id", "deleted"],
                    "properties": {"id": {"type": "string"}, "deleted": {"const": true}}
                })))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
        "/api/v1/webhook-endpoints/{id}/enable": {
            "parameters": [id_param],
            "post": Op {
                id: "enableWebhookEndpoint",
                tag: "notifications",
                summary: "Enable a disabled endpoint; its held deliveries are due now",
                scopes: Some(SCOPE),
                params: vec![],
                body: None,
                ok: vec![("200", success("The endpoint", schema("WebhookEndpoint")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
        "/api/v1/webhook-endpoints/{id}/deliveries": {
            "parameters": [id_param],
            "get": Op {
                id: "listDeliveries",
                tag: "notifications",
                summary: "An endpoint's deliveries, newest first, each with every attempt",
                scopes: Some(SCOPE),
                params: vec![json!({"name": "limit", "in": "query", "required": false,
                    "description": "How many (1 to 500, default 50)",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500}})],
                body: None,
                ok: vec![("200", success("Deliveries",
                    json!({"type": "array", "items": schema("Delivery")})))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
        "/api/v1/deliveries/{id}/redeliver": {
            "parameters": [reference("parameters", "DeliveryId")],
            "post": Op {
                id: "redeliver",
                tag: "notifications",
                summary: "Send a delivery's event again (a new delivery, the same event id)",
                scopes: Some(SCOPE),
                params: vec![],
                body: None,
                ok: vec![("202", success("The new delivery, due now", schema("Delivery")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        }
    })
}

fn timestamp(nullable: bool) -> Value {
    if nullable {
        json!({"type": ["string", "null"], "format": "date-time"})
    } else {
        json!({"type": "string", "format": "date-time"})
    }
}

pub(super) fn schemas() -> Value {
    let strings = json!({"type": ["array", "null"], "items": {"type": "string"}});
    let endpoint_props = json!({
        "id": {"type": "string"},
        "url": {"type": "string"},
        "description": {"type": ["string", "null"]},
        "events": strings,
        "workflowIds": strings,
        "enabled": {"type": "boolean"},
        "createdAt": timestamp(false),
        "disabledAt": timestamp(true),
        "disabledReason": {"type": ["string", "null"]},
        "failingSince": timestamp(true),
    });
    let required = json!([
        "id",
        "url",
        "description",
        "events",
        "workflowIds",
        "enabled",
        "createdAt",
        "disabledAt",
        "disabledReason",
        "failingSince"
    ]);
    let mut created_props = endpoint_props.clone();
    created_props["secret"] = json!({"type": "string", "pattern": "^whsec_",
        "description": "The Standard Webhooks signing secret, shown only in this answer"});
    let mut created_required = required.clone();
    if let Some(r) = created_required.as_array_mut() {
        r.push(json!("secret"));
    }
    let events: Vec<&str> = crate::notify::EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect();
    json!({
        "WebhookEndpoint": {"type": "object", "required": required, "properties": endpoint_props},
        "WebhookEndpointCreated": {"type": "object", "required": created_required, "properties": created_props},
        "WebhookEndpointRequest": {
            "type": "object",
            "required": ["url"],
            "additionalProperties": false,
            "properties": {
                "url": {"type": "string", "description": "http(s); not this server's own /webhooks/ path"},
                "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": events}},
                "workflowIds": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "description": {"type": "string", "maxLength": 500}
            }
        },
        "Delivery": {
            "type": "object",
            "required": ["id", "endpointId", "eventId", "eventType", "runId", "sequence", "occurredAt",
                "status", "attempts", "nextAttemptAt", "lastStatusCode", "lastAttemptAt", "deliveredAt",
                "createdAt", "attemptLog"],
            "properties": {
                "id": {"type": "string"},
                "endpointId": {"type": "string"},
                "eventId": {"type": "string", "description": "The `webhook-id` of every attempt"},
                "eventType": {"type": "string", "enum": events},
                "runId": {"type": ["string", "null"]},
                "sequence": {"type": "integer"},
                "occurredAt": timestamp(false),
                "status": {"type": "string", "enum": ["pending", "delivered", "failed"]},
                "attempts": {"type": "integer"},
                "nextAttemptAt": timestamp(true),
                "lastStatusCode": {"type": ["integer", "null"]},
                "lastAttemptAt": timestamp(true),
                "deliveredAt": timestamp(true),
                "createdAt": timestamp(false),
                "attemptLog": {"type": "array", "items": {
                    "type": "object",
                    "required": ["at", "statusCode", "durationMs", "response", "error"],
                    "properties": {
                        "at": timestamp(false),
                        "statusCode": {"type": ["integer", "null"]},
                        "durationMs": {"type": "integer"},
                        "response": {"type": ["string", "null"], "description": "The answer's first 1024 bytes"},
                        "error": {"type": ["string", "null"]}
                    }
                }}
            }
        }
    })
}

pub(super) fn parameters() -> Value {
    let path_id = |description: &str, example: &str| {
        json!({"name": "id", "in": "path", "required": true, "description": description,
            "schema": {"type": "string", "minLength": 1}, "example": example})
    };
    json!({
        "EndpointId": path_id("Endpoint id (`ep_…`)", "ep_0VdASa8dBZQHRzxB86GhNlsW"),
        "DeliveryId": path_id("Delivery id (`msg_…`)", "msg_0VdASa8dBZQHRzxB86GhNlsW"),
    })
}
