//! Shared pieces of the OpenAPI document: wire schemas (`crate::api`),
//! parameters, headers, error responses and security schemes.

use super::{reference, schema};
use crate::api::codes;
use crate::engine::RunStatus;
use crate::store::TriggerType;
use serde_json::{Value, json};

pub(super) fn all() -> Value {
    let mut all_schemas = schemas();
    if let (Value::Object(a), Value::Object(more)) =
        (&mut all_schemas, super::wait_paths::schemas())
    {
        a.extend(more);
    }
    json!({
        "securitySchemes": {
            "ApiKey": {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "`wfk_` + 32 base62 characters"},
            "Bearer": {"type": "http", "scheme": "bearer",
                "description": "The same API key as `Authorization: Bearer wfk_…`"}
        },
        "schemas": all_schemas,
        "parameters": parameters(),
        "headers": headers(),
        "responses": responses(),
    })
}

const TIMESTAMP: &str = "RFC 3339 UTC with milliseconds";

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time", "description": TIMESTAMP})
}

fn nullable_timestamp() -> Value {
    json!({"type": ["string", "null"], "format": "date-time", "description": TIMESTAMP})
}

const WORKFLOW_STATUSES: [&str; 4] = ["draft", "active", "paused", "archived"];
const STEP_STATUSES: [&str; 7] = [
    "pending",
    "running",
    "retrying",
    "waiting",
    "completed",
    "failed",
    "skipped",
];

fn schemas() -> Value {
    json!({
        "ErrorEnvelope": {
            "type": "object",
            "required": ["success", "error"],
            "properties": {
                "success": {"const": false},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": all_codes()},
                        "message": {"type": "string"},
                        "details": {"type": "array", "items": schema("ErrorDetail")},
                        "decision": {"description": "ALREADY_DECIDED: the decision on record",
                            "allOf": [schema("DecisionRecord")]}
                    }
                }
            }
        },
        "ErrorDetail": {
            "type": "object",
            "required": ["path", "message"],
            "properties": {
                "path": {"type": "array", "items": {"type": ["string", "integer"]},
                    "description": "JSON path of the problem, e.g. [\"items\", 0, \"quantity\"]"},
                "message": {"type": "string"}
            }
        },
        "ListMeta": {
            "type": "object",
            "required": ["cursor", "hasMore"],
            "properties": {
                "cursor": {"type": ["string", "null"],
                    "description": "Pass as `cursor` to get the next page; null on the last page"},
                "hasMore": {"type": "boolean"}
            }
        },
        "TriggerRequest": {
            "type": "object",
            "description": "An empty body is `{}`. An unknown field is INVALID_REQUEST naming the nearest valid one.",
            "additionalProperties": false,
            "properties": {
                "input": {"type": ["object", "null"],
                    "description": "Checked against the workflow's inputSchema after defaults"},
                "connectionId": {"type": ["string", "null"], "minLength": 1, "maxLength": 128},
                "idempotencyKey": {"type": ["string", "null"], "minLength": 1, "maxLength": 255,
                    "pattern": "^[^\\u0000-\\u001f\\u007f-\\u009f]*$",
                    "description": "Scoped per workflow, remembered 24 hours"},
                "triggerType": {"type": ["string", "null"], "enum": ["api", "batch", null],
                    "description": "How the run is recorded: `api` (default) or `batch` (one input of a batch)"},
                "asSchedule": {"type": ["boolean", "null"],
                    "description": "Run a scheduled workflow as its schedule would: the trigger's static input (overridden by `input`) plus a `schedule` block with `manual: true`"}
            }
        },
        "TriggerResponse": {
            "type": "object",
            "required": ["runId", "status", "workflowId", "workflowVersion"],
            "properties": {
                "runId": {"type": "string"},
                "status": {"type": "string", "enum": RunStatus::ALL},
                "workflowId": {"type": "string"},
                "workflowVersion": {"type": "integer", "minimum": 1},
                "output": {"description": "Only with `?wait=` when the run finished in time"},
                "error": {"description": "Only with `?wait=` when the run finished in time"},
                "inputDiffers": {"type": "boolean",
                    "description": "Present (true) when a repeated idempotency key came with a different input: the first run is returned and nothing new started"}
            }
        },
        "Run": {
            "type": "object",
            "required": ["id", "status", "workflowId", "workflowVersion", "input", "output",
                "error", "idempotencyKey", "connectionId", "triggerType", "createdAt", "startedAt",
                "completedAt", "durationMs", "parentRunId", "rootRunId", "depth", "redriveCount"],
            "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": RunStatus::ALL},
                "workflowId": {"type": "string"},
                "workflowVersion": {"type": "integer", "minimum": 1},
                "input": {"type": "object"},
                "output": {"description": "The run's output (any JSON); null until completed"},
                "error": {"description": "null, or {code, message, stepId?} when the run failed"},
                "idempotencyKey": {"type": ["string", "null"]},
                "connectionId": {"type": ["string", "null"]},
                "triggerType": {"type": "string", "enum": TriggerType::ALL,
                    "description": "How the run started"},
                "createdAt": timestamp(),
                "startedAt": nullable_timestamp(),
                "completedAt": nullable_timestamp(),
                "durationMs": {"type": ["integer", "null"]},
                "parentRunId": {"type": ["string", "null"],
                    "description": "The run whose `workflow` step started this one"},
                "parentStepId": {"type": "string",
                    "description": "The parent's step that started this run (left out without a parent)"},
                "key": {"type": "string",
                    "description": "Under its parent's step: a loop item's index or a parallel branch's name"},
                "rootRunId": {"type": "string", "description": "The top of the run's tree (itself without a parent)"},
                "depth": {"type": "integer", "minimum": 0, "maximum": 25,
                    "description": "Hops from the root: 0 for a run started from outside"},
                "redriveCount": {"type": "integer", "minimum": 0,
                    "description": "How often the run was continued with `POST /api/v1/runs/{id}/redrive`"},
                "children": {"type": "object", "description": "Its child runs by status (on one run, not in lists)",
                    "properties": {"total": {"type": "integer"}, "completed": {"type": "integer"},
                        "failed": {"type": "integer"}, "running": {"type": "integer"}}},
                "steps": {"type": "array", "items": schema("Step"),
                    "description": "One entry per step of the definition; left out of run lists"}
            }
        },
        "Step": {
            "type": "object",
            "required": ["id", "name", "type", "status", "output", "error", "attempts",
                "startedAt", "completedAt"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": ["string", "null"]},
                "type": {"type": "string",
                    "enum": ["transform", "action", "email", "wait", "condition", "stop", "workflow",
                        "approval"]},
                "waitingFor": {"type": "string", "enum": ["approval", "callback", "children"],
                    "description": "What a `waiting` step waits for (left out otherwise)"},
                "status": {"type": "string", "enum": STEP_STATUSES},
                "output": {"description": "The step's output (any JSON). While a step is `waiting`: \
                    a `workflow` step's is `{waitingFor: \"children\", runId, progress: {total, running, \
                    completed, failed}}` (schema `ChildWait`), a `wait` step's `{resumeAt}`. A `condition`'s \
                    is `{result, branch}`; a `workflow` step's, once done, the child run's output \
                    (`{runId}` with `wait: false`)"},
                "error": {},
                "attempts": {"type": "integer", "minimum": 0},
                "warnings": {"type": "array", "items": {"type": "string"},
                    "description": "e.g. unresolved template paths; left out when empty"},
                "skipReason": {
                    "type": "object",
                    "description": "Why a skipped step did not run (left out otherwise): \
                        {condition, branch} when a condition took the other branch (branch \
                        null when the condition did not run), {stop} when a stop step ended \
                        the run, {if} when the step's own `if` was falsy",
                    "properties": {
                        "condition": {"type": "string"},
                        "branch": {"type": ["string", "null"], "enum": ["then", "else", null]},
                        "stop": {"type": "string"},
                        "if": {"type": "string"}
                    }
                },
                "startedAt": nullable_timestamp(),
                "completedAt": nullable_timestamp()
            }
        },
        "ChildWait": {
            "type": "object",
            "description": "The output of a `workflow` step while it waits for its child run",
            "required": ["waitingFor", "runId", "progress"],
            "properties": {
                "waitingFor": {"type": "string", "enum": ["children"]},
                "runId": {"type": "string", "description": "The child run"},
                "progress": {"type": "object", "required": ["total", "running", "completed", "failed"],
                    "properties": {"total": {"type": "integer", "minimum": 0},
                        "running": {"type": "integer", "minimum": 0},
                        "completed": {"type": "integer", "minimum": 0},
                        "failed": {"type": "integer", "minimum": 0}}}
            }
        },
        "WorkflowDefinition": super::more_paths::definition_schema(),
        "ApplyResult": {
            "type": "object",
            "required": ["id", "version", "status", "changed", "result"],
            "properties": {
                "id": {"type": "string"},
                "version": {"type": "integer", "minimum": 1},
                "status": {"type": "string", "enum": WORKFLOW_STATUSES},
                "changed": {"type": "boolean"},
                "result": {"type": "string", "enum": ["created", "updated", "unchanged"]},
                "warnings": {"type": "array", "items": schema("ErrorDetail"),
                    "description": "Problems that do not stop the definition from running \
                        (errors under `flowctl validate --strict`), e.g. a reference to a \
                        step that a condition may skip, or a connection it names that does \
                        not exist; left out when empty"}
            }
        },
        "Workflow": {
            "type": "object",
            "required": ["id", "name", "status", "version", "versions", "createdAt", "updatedAt",
                "nextRunAt"],
            "properties": {
                "id": {"type": "string"},
                "name": {"type": "string"},
                "status": {"type": "string", "enum": WORKFLOW_STATUSES},
                "version": {"type": "integer", "minimum": 1, "description": "Latest version"},
                "versions": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                "createdAt": timestamp(),
                "updatedAt": timestamp(),
                "nextRunAt": nullable_timestamp(),
                "definition": {"type": "object",
                    "description": "The latest definition; only on GET /api/v1/workflows/{id}"}
            }
        },
        "WorkflowVersion": {
            "type": "object",
            "required": ["workflowId", "version", "createdAt", "definition"],
            "properties": {
                "workflowId": {"type": "string"},
                "version": {"type": "integer"},
                "createdAt": timestamp(),
                "definition": {"type": "object"}
            }
        },
        "ConnectionRequest": {
            "type": "object",
            "required": ["provider", "name"],
            "properties": {
                "provider": {"type": "string", "enum": ["stripe", "smtp", "http", "webhook"]},
                "name": {"type": "string", "minLength": 1},
                "id": {"type": "string", "pattern": "^conn_[A-Za-z0-9_]{1,64}$"},
                "config": {"type": "object"},
                "secret": {"type": "string", "writeOnly": true,
                    "description": "Encrypted at rest, never returned"},
                "default": {"type": "boolean"},
                "status": {"type": "string", "enum": ["active", "inactive"]}
            }
        },
        "Connection": {
            "type": "object",
            "required": ["id", "provider", "name", "status", "default", "config", "hasSecret",
                "createdAt", "updatedAt"],
            "properties": {
                "id": {"type": "string"},
                "provider": {"type": "string", "enum": ["stripe", "smtp", "http", "webhook"]},
                "name": {"type": "string"},
                "status": {"type": "string", "enum": ["active", "inactive"]},
                "default": {"type": "boolean"},
                "config": {"type": "object"},
                "hasSecret": {"type": "boolean"},
                "createdAt": timestamp(),
                "updatedAt": timestamp()
            }
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"const": "ok"}}
        }
    })
}

fn all_codes() -> Vec<&'static str> {
    use codes::*;
    vec![
        UNAUTHORIZED,
        FORBIDDEN,
        NOT_FOUND,
        INVALID_STATUS,
        VALIDATION_ERROR,
        INVALID_REQUEST,
        CONNECTION_REQUIRED,
        INVALID_CONNECTION,
        PAYLOAD_TOO_LARGE,
        METHOD_NOT_ALLOWED,
        RATE_LIMITED,
        REQUEST_TIMEOUT,
        STORAGE_CORRUPT,
        SERVER_BUSY,
        INTERNAL,
        STORAGE_UNAVAILABLE,
        ALREADY_DECIDED,
        ALREADY_RECEIVED,
        EXPIRED,
        NOT_WAITING,
    ]
}

fn parameters() -> Value {
    let path_id = |description: &str, example: &str| {
        json!({"name": "id", "in": "path", "required": true, "description": description,
            "schema": {"type": "string", "minLength": 1}, "example": example})
    };
    json!({
        "WorkflowId": path_id("Workflow id (`wf_…`)", "wf_order_total"),
        "RunId": path_id("Run id", "run_3kTMd9P2xQ7vN1bZ8cW4yR6h"),
        "ConnectionId": path_id("Connection id (`conn_…`)", "conn_stripe_test"),
        "VersionNumber": {"name": "n", "in": "path", "required": true,
            "description": "Version number", "example": 1,
            "schema": {"type": "integer", "format": "int64", "minimum": 1}},
        "Wait": {"name": "wait", "in": "query", "required": false,
            "description": "Seconds (0 to 60) to wait for the run to finish before answering",
            "schema": {"type": "number", "minimum": 0, "maximum": 60}, "example": 5},
        "Limit": {"name": "limit", "in": "query", "required": false,
            "description": "Page size", "schema": {"type": "integer", "minimum": 1,
                "maximum": 100, "default": 20}},
        "Cursor": {"name": "cursor", "in": "query", "required": false,
            "description": "`meta.cursor` of the previous page", "schema": {"type": "string"}},
        "WorkflowIdFilter": {"name": "workflowId", "in": "query", "required": false,
            "description": "Only runs of this workflow", "schema": {"type": "string"}},
        "RunStatusFilter": {"name": "status", "in": "query", "required": false,
            "description": "Only runs in this status",
            "schema": {"type": "string", "enum": RunStatus::ALL}},
        "TriggerTypeFilter": {"name": "triggerType", "in": "query", "required": false,
            "description": "Only runs started this way",
            "schema": {"type": "string", "enum": TriggerType::ALL}},
        "ParentRunIdFilter": {"name": "parentRunId", "in": "query", "required": false,
            "description": "Only the child runs of this run", "schema": {"type": "string"}},
        "IncludeChildren": {"name": "includeChildren", "in": "query", "required": false,
            "description": "Also list child runs that are hidden by default (sub-workflow children \
                are always listed)", "schema": {"type": "boolean"}}
    })
}

fn headers() -> Value {
    let int = |description: &str, required: bool| {
        json!({"description": description, "required": required,
            "schema": {"type": "integer", "minimum": 0}})
    };
    json!({
        "X-RateLimit-Limit": int("Requests per minute allowed for this key and category", true),
        "X-RateLimit-Remaining": int("Requests left in the current window", true),
        "X-RateLimit-Reset": int("Seconds until the window is full again", true),
        "Retry-After": int("Seconds to wait before retrying", true),
        "Idempotent-Replayed": {"description": "The run already existed for this idempotency key",
            "required": true, "schema": {"type": "string", "const": "true"}},
        "Idempotent-Input-Differs": {"description": "The repeated idempotency key came with a different input than the first request",
            "required": false, "schema": {"type": "string", "const": "true"}}
    })
}

/// An error answer whose `error.code` is one of `codes`.
fn error_response(description: &str, codes: &[&str], headers: Value) -> Value {
    json!({
        "description": description,
        "headers": headers,
        "content": {"application/json": {"schema": {
            "allOf": [
                schema("ErrorEnvelope"),
                {"properties": {"error": {"properties": {"code": {"enum": codes}}}}}
            ]
        }}}
    })
}

/// The rate-limit headers of an error answer: there when the key was known.
fn optional_rate_limit_headers() -> Value {
    let h = headers();
    let mut out = serde_json::Map::new();
    for name in [
        "X-RateLimit-Limit",
        "X-RateLimit-Remaining",
        "X-RateLimit-Reset",
    ] {
        let mut header = h[name].clone();
        header["required"] = json!(false);
        out.insert(name.into(), header);
    }
    Value::Object(out)
}

fn responses() -> Value {
    use codes::*;
    let keyed = optional_rate_limit_headers();
    json!({
        "BadRequest": error_response(
            "Malformed JSON, wrong field types or bad parameters (`INVALID_REQUEST`), input \
             that breaks the workflow's schema or an invalid definition (`VALIDATION_ERROR`, \
             with `details`), a workflow that is not active (`INVALID_STATUS`), a missing or \
             unusable connection (`CONNECTION_REQUIRED`, `INVALID_CONNECTION`)",
            &[INVALID_REQUEST, VALIDATION_ERROR, INVALID_STATUS, CONNECTION_REQUIRED,
                INVALID_CONNECTION],
            keyed.clone()),
        "Unauthorized": error_response("Missing, unknown or revoked API key",
            &[UNAUTHORIZED], json!({})),
        "Forbidden": error_response("The key lacks the scope; the message names it",
            &[FORBIDDEN], keyed.clone()),
        "NotFound": error_response("No such resource", &[NOT_FOUND], keyed.clone()),
        "RouteNotFound": error_response("No such route (message \"Route not found\")",
            &[NOT_FOUND], json!({})),
        "MethodNotAllowed": error_response("The path exists but not with this method",
            &[METHOD_NOT_ALLOWED], json!({})),
        "Conflict": error_response(
            "Already decided (`ALREADY_DECIDED`, with the recorded `decision`), the callback came              already (`ALREADY_RECEIVED`), or the step does not wait for this (`NOT_WAITING`)",
            &[ALREADY_DECIDED, ALREADY_RECEIVED, NOT_WAITING], keyed.clone()),
        "Gone": error_response(
            "Past the wait's deadline, or its run no longer waits (cancelled, timed out)",
            &[EXPIRED], keyed.clone()),
        "MethodNotAllowed": error_response(
            "The path, with its parameters filled in, names a route that does not take this method",
            &[METHOD_NOT_ALLOWED], keyed.clone()),
        "PayloadTooLarge": error_response("The body is over the limit (default 1 MiB)",
            &[PAYLOAD_TOO_LARGE], keyed),
        "RateLimited": error_response(
            "Rate limit exceeded for this key and category (execute, read or write)",
            &[RATE_LIMITED],
            json!({
                "Retry-After": reference("headers", "Retry-After"),
                "X-RateLimit-Limit": reference("headers", "X-RateLimit-Limit"),
                "X-RateLimit-Remaining": reference("headers", "X-RateLimit-Remaining"),
                "X-RateLimit-Reset": reference("headers", "X-RateLimit-Reset"),
            })),
        "Internal": error_response("Unexpected server error; no internals in the body",
            &[INTERNAL], json!({})),
        "StorageUnavailable": error_response(
            "Storage cannot be written (disk full, read-only): nothing was changed; retry after Retry-After seconds. Or (STORAGE_CORRUPT, no Retry-After) the database file is corrupt; the server log names the file and the cause",
            &[STORAGE_UNAVAILABLE, STORAGE_CORRUPT],
            json!({"Retry-After": reference("headers", "Retry-After")})),
    })
}
