//! Paths of the connection routes and the unauthenticated operational routes
//! (`/healthz`, `/metrics`, this document), and the workflow definition schema
//! (docs/workflows.md).

use super::{Op, envelope, json_body, param, schema, success};
use crate::actions::ActionKind;
use serde_json::{Value, json};

const CONN_READ: &[&str] = &["connections:read"];
const CONN_WRITE: &[&str] = &["connections:write"];

pub(super) fn others() -> Value {
    let mut paths = connections();
    if let (Value::Object(p), Value::Object(more)) = (&mut paths, operations()) {
        p.extend(more);
    }
    paths
}

fn connections() -> Value {
    let links = json!({
        "GetConnection": {"operationId": "getConnection",
            "parameters": {"id": "$response.body#/data/id"}},
        "DeleteConnection": {"operationId": "deleteConnection",
            "parameters": {"id": "$response.body#/data/id"}},
    });
    let mut created = success("A new connection", schema("Connection"));
    created["links"] = links.clone();
    let mut replaced = success(
        "The connection with this `id`, replaced",
        schema("Connection"),
    );
    replaced["links"] = links;
    json!({
        "/api/v1/connections": {
            "get": Op {
                id: "listConnections",
                tag: "connections",
                summary: "List connections (secrets are never returned)",
                scopes: Some(CONN_READ),
                params: vec![],
                body: None,
                ok: vec![("200", success("All connections",
                    json!({"type": "array", "items": schema("Connection")})))],
                errors: &[401, 403, 429, 500],
            }.build(),
            "post": Op {
                id: "createConnection",
                tag: "connections",
                summary: "Create a connection, or replace the one with the same `id`",
                scopes: Some(CONN_WRITE),
                params: vec![],
                body: Some(json_body(
                    true,
                    "The connection; `secret` is encrypted at rest and never returned",
                    schema("ConnectionRequest"),
                    json!({"provider": "stripe", "name": "Stripe (test)",
                        "secret": "sk_test_123", "default": true}),
                )),
                ok: vec![("201", created), ("200", replaced)],
                errors: &[400, 401, 403, 413, 429, 500],
            }.build()
        },
        "/api/v1/connections/{id}": {
            "parameters": [param("ConnectionId")],
            "get": Op {
                id: "getConnection",
                tag: "connections",
                summary: "One connection (without its secret)",
                scopes: Some(CONN_READ),
                params: vec![],
                body: None,
                ok: vec![("200", success("The connection", schema("Connection")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build(),
            "delete": Op {
                id: "deleteConnection",
                tag: "connections",
                summary: "Delete a connection (refused while an active workflow names it, unless force=true)",
                scopes: Some(CONN_WRITE),
                params: vec![json!({"name": "force", "in": "query", "required": false,
                    "description": "Delete even if active workflows name this connection",
                    "schema": {"type": "string", "enum": ["true", "false"]}})],
                body: None,
                ok: vec![("200", success("The connection is gone", json!({
                    "type": "object",
                    "required": ["id", "deleted"],
                    "properties": {"id": {"type": "string"}, "deleted": {"const": true}}
                })))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        }
    })
}

fn operations() -> Value {
    let unauthenticated =
        |description: &str, content: Value| json!({"description": description, "content": content});
    json!({
        "/healthz": {
            "get": Op {
                id: "healthz",
                tag: "operations",
                summary: "Health: a real write through the store (503 STORAGE_UNAVAILABLE while writes fail)",
                scopes: None,
                params: vec![],
                body: None,
                ok: vec![("200", unauthenticated("The server and its database answer",
                    json!({"application/json": {"schema": envelope(schema("Health"))}})))],
                errors: &[500, 503],
            }.build()
        },
        "/metrics": {
            "get": Op {
                id: "metrics",
                tag: "operations",
                summary: "Prometheus metrics: runs by status, queue depth, step durations, \
                          trigger latency, rate-limit rejections",
                scopes: None,
                params: vec![],
                body: None,
                ok: vec![("200", unauthenticated("Prometheus text exposition format",
                    json!({"text/plain": {"schema": {"type": "string"}}})))],
                errors: &[401, 403, 500],
            }.build()
        },
        "/api/v1/openapi.json": {
            "get": Op {
                id: "openapi",
                tag: "operations",
                summary: "This OpenAPI 3.1 document",
                scopes: None,
                params: vec![],
                body: None,
                ok: vec![("200", unauthenticated("The document (not wrapped in an envelope)",
                    json!({"application/json": {"schema": {
                        "type": "object", "required": ["openapi", "info", "paths"]}}})))],
                errors: &[],
            }.build()
        }
    })
}

/// A workflow definition (docs/workflows.md). Checked in full at apply time; every
/// problem comes back in one `VALIDATION_ERROR` with its path. What JSON
/// Schema cannot say (unique step ids, templates that parse, references to
/// earlier steps only, a name an id can be derived from) is only checked there.
pub(super) fn definition_schema() -> Value {
    let millis = json!({"type": "integer", "minimum": 1, "maximum": u64::MAX});
    json!({
        "type": "object",
        "required": ["name", "steps"],
        "additionalProperties": false,
        "properties": {
            "id": {"type": "string", "pattern": "^wf_[A-Za-z0-9_]{1,64}$",
                "description": "Absent: `wf_` + the name in lower snake case"},
            "name": {"type": "string", "pattern": "\\S"},
            "description": {"type": "string"},
            "status": {"type": "string", "enum": ["draft", "active", "paused", "archived"],
                "description": "Absent: `active` for a new workflow, unchanged otherwise"},
            "trigger": super::trigger_paths::trigger_schema(),
            "inputSchema": {"type": ["object", "boolean", "null"],
                "description": "JSON Schema (2020-12 or draft 7) for the run input; defaults are applied"},
            "variables": {"type": "object", "description": "Constants visible as `variables.*`"},
            "timeoutMs": millis,
            "output": {"description": "Any JSON, templates allowed; becomes the run's output"},
            "steps": {"type": "array", "minItems": 1, "maxItems": 100, "items": {"oneOf": [
                step("transform", json!({"type": "object", "required": ["mapping"],
                    "properties": {"mapping": {"description": "Any JSON with templates"}}})),
                step("wait", json!({"type": "object", "oneOf": [
                    {"required": ["durationMs"]}, {"required": ["until"]}],
                    "properties": {
                        "durationMs": {"type": ["integer", "string"], "minimum": 0,
                            "description": "Milliseconds, or a template giving them"},
                        "until": {"type": "string", "description": "RFC 3339, templates allowed"}
                    }})),
                step("condition", json!({"type": "object", "required": ["conditions"],
                    "additionalProperties": false,
                    "properties": {
                        "conditions": {"type": "object", "description": "{left, operator, right} \
                            (operators eq ne gt gte lt lte contains startsWith endsWith exists \
                            isEmpty matches), or {all: [...]}, {any: [...]}, {not: {...}}, nested \
                            at most 4 deep"},
                        "then": {"type": "array", "items": {"type": "string"},
                            "description": "Ids of later steps that run only when the result is true"},
                        "else": {"type": "array", "items": {"type": "string"},
                            "description": "Ids of later steps that run only when the result is false"}
                    }})),
                step("stop", json!({"type": "object", "required": ["status"],
                    "additionalProperties": false,
                    "properties": {
                        "status": {"type": "string", "enum": ["completed", "failed"]},
                        "output": {"description": "The run's output (completed)"},
                        "error": {"type": "object", "required": ["code", "message"],
                            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                            "description": "The run's error (failed)"}
                    }})),
                step("workflow", json!({"type": "object", "required": ["workflowId"],
                    "additionalProperties": false,
                    "properties": {
                        "workflowId": {"type": "string", "description": "The workflow to run as a \
                            child run; it must be active"},
                        "input": {"description": "The child's input (templates allowed), validated \
                            against its inputSchema when the child is created"},
                        "version": {"type": "integer", "minimum": 1,
                            "description": "The target's version (default: its latest)"},
                        "wait": {"type": "boolean", "default": true, "description": "true: the step's \
                            output is the child's output (CHILD_FAILED when it does not complete); \
                            false: the step completes at once with {runId}"}
                    }})),
                step("action", json!({"type": "object"})),
                step("email", json!({"type": "object", "required": ["to", "subject"]})),
            ]}}
        }
    })
}

/// One step of `type`; `config` as that type needs it.
fn step(step_type: &str, config: Value) -> Value {
    let millis = json!({"type": "integer", "minimum": 1, "maximum": u64::MAX});
    let mut s = json!({
        "type": "object",
        "required": ["id", "type", "config"],
        "properties": {
            "id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"},
            "type": {"const": step_type},
            "name": {"type": "string"},
            "config": config,
            "if": {"type": "string", "description": "Template; falsy → the step is skipped"},
            "errorHandling": {"type": "string", "enum": ["fail", "continue", "retry"]},
            "retryConfig": {"type": "object", "properties": {
                "maxAttempts": {"type": "integer", "minimum": 1, "maximum": 100},
                "initialDelayMs": {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                "maxDelayMs": {"type": "integer", "minimum": 0, "maximum": u64::MAX},
                "backoffMultiplier": {"type": "number", "minimum": 1, "maximum": 10}
            }},
            "timeoutMs": millis,
            "connection": {"type": "string", "description": "Connection id for this step"}
        }
    });
    if step_type == "action" {
        s["required"] = json!(["id", "type", "action"]);
        s["properties"]["action"] = json!({"type": "string", "enum": ActionKind::known_actions(),
            "description": "Required config: `http.request` url; `stripe.createInvoice` and \
                `stripe.retrieveCustomer` customerId; `stripe.finalizeInvoice` invoiceId; \
                `email.send` to, subject"});
    }
    s
}
