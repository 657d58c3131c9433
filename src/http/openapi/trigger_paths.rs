//! The inbound webhook route (`http/webhooks.rs`) and the `trigger` part of
//! the workflow definition schema.

use super::{Op, reference, schema, success};
use serde_json::{Value, json};

pub(super) fn webhooks() -> Value {
    let answer = json!({
        "type": "object",
        "required": ["received", "eventId", "workflowsTriggered"],
        "properties": {
            "received": {"const": true},
            "eventId": {"type": ["string", "null"],
                "description": "The provider's event id: Stripe's `id`, `X-GitHub-Delivery`, `webhook-id`"},
            "workflowsTriggered": {"type": "integer", "minimum": 0,
                "description": "Runs started by this delivery (0 for a repeated delivery or a filtered event)"}
        }
    });
    let mut op = Op {
        id: "receiveWebhook",
        tag: "webhooks",
        summary: "Inbound webhook: verified by the provider's signature over the raw body \
            (no API key), then one run per active workflow listening on the path",
        scopes: None,
        params: vec![],
        body: Some(json!({"required": false,
            "description": "The provider's payload, exactly as it signed it",
            "content": {"application/json": {"schema": {}}}})),
        ok: vec![(
            "200",
            success("The event was received; its runs are committed", answer),
        )],
        errors: &[400, 401, 404, 413, 500],
    }
    .build();
    op["responses"]["429"] = json!({
        "description": "More than the per-IP limit of webhook requests per minute",
        "headers": {"Retry-After": reference("headers", "Retry-After")},
        "content": {"application/json": {"schema": {"allOf": [schema("ErrorEnvelope"),
            {"properties": {"error": {"properties": {"code": {"enum": ["RATE_LIMITED"]}}}}}]}}}
    });
    json!({
        "/webhooks/{path}": {
            "parameters": [{"name": "path", "in": "path", "required": true,
                "description": "The `trigger.path` of the listening workflows",
                "schema": {"type": "string", "minLength": 1}, "example": "stripe-orders"}],
            "post": op
        }
    })
}

/// `trigger` of a definition: `api`, `schedule` or `webhook`.
pub(super) fn trigger_schema() -> Value {
    json!({"type": "object", "required": ["type"], "oneOf": [
        {"properties": {"type": {"const": "api"}}, "additionalProperties": false},
        {"properties": {
            "type": {"const": "schedule"},
            "cron": {"type": "string", "description": "5 fields: minute hour day-of-month month day-of-week"},
            "interval": {"type": "object", "required": ["value", "unit"], "properties": {
                "value": {"type": "integer", "minimum": 1, "maximum": 525600},
                "unit": {"enum": ["seconds", "minutes", "hours", "days", "weeks"]}}},
            "timezone": {"type": "string", "description": "IANA zone, default UTC"},
            "enabled": {"type": "boolean"},
            "overlap": {"enum": ["skip", "queue", "allow"]},
            "catchUp": {"enum": ["latest", "none", "all"]},
            "jitterMs": {"type": "integer", "minimum": 0, "maximum": 3600000},
            "input": {"type": "object"}
        }, "additionalProperties": false},
        {"required": ["path"], "properties": {
            "type": {"const": "webhook"},
            "path": {"type": "string", "pattern": "^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", "maxLength": 128},
            "provider": {"enum": ["stripe", "github", "standard", "custom"]},
            "events": {"type": "array", "items": {"type": "string", "minLength": 1}},
            "connection": {"type": "string", "description": "A `webhook` connection holding the signing secret"},
            "verifySignature": {"type": "boolean"}
        }, "additionalProperties": false}
    ]})
}
