//! `GET /api/v1/openapi.json`: the OpenAPI 3.1 description of this API, built
//! once from `serde_json::json!` pieces. Paths live in `openapi/paths.rs` and
//! `openapi/more_paths.rs`, shared schemas, parameters, headers and error
//! responses in `openapi/components.rs`. `tests/it/openapi.rs` keeps it true:
//! every route served is documented and real answers match their schemas.
//! Depends on serde_json, and axum for the handler.

mod components;
mod more_paths;
mod notify_paths;
mod paths;
mod trigger_paths;
mod wait_paths;

use axum::Json;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};
use std::sync::OnceLock;

/// The handler: the same document on every call, no authentication.
pub async fn document() -> impl IntoResponse {
    static DOC: OnceLock<Value> = OnceLock::new();
    Json(DOC.get_or_init(spec).clone())
}

/// The whole document.
pub fn spec() -> Value {
    let mut paths = Map::new();
    for group in [
        paths::runs(),
        paths::workflows(),
        more_paths::others(),
        trigger_paths::webhooks(),
        notify_paths::paths(),
        wait_paths::waits(),
    ] {
        if let Value::Object(m) = group {
            paths.extend(m);
        }
    }
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "info": {
            "title": "flowctl API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": concat!(
                "Workflow server API (docs/api.md). JSON in, JSON out: every answer is an envelope, ",
                "`{\"success\": true, \"data\": …}` or `{\"success\": false, \"error\": {\"code\", ",
                "\"message\", \"details\"?}}` (except `/metrics`, Prometheus text, and this ",
                "document). Authenticate with `x-api-key: wfk_…` or `Authorization: Bearer wfk_…`; ",
                "each operation names the scope it needs (`x-required-scopes`, any one suffices; ",
                "`admin` grants all). Every authenticated answer carries `X-RateLimit-Limit`, ",
                "`X-RateLimit-Remaining` and `X-RateLimit-Reset` (unless that category's limit ",
                "is configured to 0); a 429 also `Retry-After`. Every answer carries an ",
                "`x-request-id` (the one sent, or a new UUID) that also appears in the logs. ",
                "A path that does not exist answers 404 `NOT_FOUND` (\"Route not found\") and a ",
                "method a path does not list answers 405 `METHOD_NOT_ALLOWED`, both with the ",
                "error envelope (`components.responses.RouteNotFound` / `MethodNotAllowed`)."
            )
        },
        "servers": [{"url": "/", "description": "this server"}],
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "tags": [
            {"name": "runs", "description": "Trigger, inspect and cancel runs"},
            {"name": "webhooks", "description": "Inbound webhook triggers, authenticated by signature"},
            {"name": "workflows", "description": "Workflow definitions, versions and status"},
            {"name": "connections", "description": "Stored provider credentials (secrets are write-only)"},
            {"name": "notifications", "description": "Outbound run events: endpoints and their deliveries"},
            {"name": "operations", "description": "Health, metrics and this document"}
        ],
        "paths": paths,
        "components": with_notifications(components::all()),
    })
}

/// The notification routes' schemas and parameters, kept beside their paths.
fn with_notifications(mut components: Value) -> Value {
    for (kind, more) in [
        ("schemas", notify_paths::schemas()),
        ("parameters", notify_paths::parameters()),
    ] {
        if let (Some(Value::Object(m)), Value::Object(more)) = (components.get_mut(kind), more) {
            m.extend(more);
        }
    }
    components
}

/// `{"$ref": "#/components/<kind>/<name>"}`
fn reference(kind: &str, name: &str) -> Value {
    json!({"$ref": format!("#/components/{kind}/{name}")})
}

fn schema(name: &str) -> Value {
    reference("schemas", name)
}

fn param(name: &str) -> Value {
    reference("parameters", name)
}

/// The rate-limit headers every authenticated answer carries.
fn rate_limit_headers() -> Value {
    json!({
        "X-RateLimit-Limit": reference("headers", "X-RateLimit-Limit"),
        "X-RateLimit-Remaining": reference("headers", "X-RateLimit-Remaining"),
        "X-RateLimit-Reset": reference("headers", "X-RateLimit-Reset"),
    })
}

/// The success envelope around `data`.
fn envelope(data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["success", "data"],
        "properties": {"success": {"const": true}, "data": data}
    })
}

/// A 2xx answer of an authenticated route: envelope + rate-limit headers.
fn success(description: &str, data: Value) -> Value {
    json!({
        "description": description,
        "headers": rate_limit_headers(),
        "content": {"application/json": {"schema": envelope(data)}}
    })
}

/// A 2xx list answer: `data` is an array of `item`, plus `meta` for paging.
fn success_list(description: &str, item: Value) -> Value {
    json!({
        "description": description,
        "headers": rate_limit_headers(),
        "content": {"application/json": {"schema": {
            "type": "object",
            "required": ["success", "data", "meta"],
            "properties": {
                "success": {"const": true},
                "data": {"type": "array", "items": item},
                "meta": schema("ListMeta")
            }
        }}}
    })
}

/// The shared error responses (`components/responses`) for these statuses.
/// Every route that can answer 500 touches the store, so it can also answer
/// 503 when storage is unavailable.
fn error_refs(statuses: &[u16]) -> Vec<(String, Value)> {
    let with_storage: Vec<u16> = statuses
        .iter()
        .copied()
        .chain(statuses.contains(&500).then_some(503))
        // A path parameter left empty (`/workflows//pause`) makes the path
        // another route's, which may not take this method.
        .chain(statuses.contains(&404).then_some(405))
        .collect();
    with_storage
        .iter()
        .map(|s| {
            let name = match s {
                400 => "BadRequest",
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                409 => "Conflict",
                410 => "Gone",
                405 => "MethodNotAllowed",
                413 => "PayloadTooLarge",
                429 => "RateLimited",
                500 => "Internal",
                503 => "StorageUnavailable",
                other => panic!("no shared error response for {other}"),
            };
            (s.to_string(), reference("responses", name))
        })
        .collect()
}

/// One operation. `scopes` None means the route needs no key.
struct Op<'a> {
    id: &'a str,
    tag: &'a str,
    summary: &'a str,
    scopes: Option<&'a [&'a str]>,
    params: Vec<Value>,
    body: Option<Value>,
    ok: Vec<(&'a str, Value)>,
    errors: &'a [u16],
}

impl Op<'_> {
    fn build(self) -> Value {
        let mut responses = Map::new();
        for (status, resp) in self.ok {
            responses.insert(status.into(), resp);
        }
        responses.extend(error_refs(self.errors));
        let mut op = json!({
            "operationId": self.id,
            "tags": [self.tag],
            "summary": self.summary,
            "responses": responses,
        });
        match self.scopes {
            Some(scopes) => {
                op["x-required-scopes"] = json!(scopes);
                op["description"] = json!(format!(
                    "{}. Scope: {} (or `admin`).",
                    self.summary,
                    scopes
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(" or ")
                ));
            }
            None => op["security"] = json!([]),
        }
        if !self.params.is_empty() {
            op["parameters"] = json!(self.params);
        }
        if let Some(body) = self.body {
            op["requestBody"] = body;
        }
        op
    }
}

/// A JSON request body.
fn json_body(required: bool, description: &str, schema: Value, example: Value) -> Value {
    json!({
        "required": required,
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}}
    })
}
