//! Paths of the approval and callback routes (`http/approvals.rs`): the
//! inbox, decisions and callbacks by key, and callbacks by token.

use super::{Op, json_body, param, schema, success};
use serde_json::{Value, json};

const RUNS_READ: &[&str] = &["runs:read"];
const RUNS_APPROVE: &[&str] = &["runs:approve"];

fn step_param() -> Value {
    json!({"name": "step", "in": "path", "required": true,
        "description": "The waiting step's id", "schema": {"type": "string", "minLength": 1},
        "example": "ask-finance"})
}

pub(super) fn waits() -> Value {
    let mut replayed = success(
        "The same decision by the same decider again: nothing changed",
        schema("Decision"),
    );
    replayed["headers"] =
        json!({"Idempotent-Replayed": super::reference("headers", "Idempotent-Replayed")});
    json!({
        "/api/v1/approvals": {
            "get": Op {
                id: "listApprovals",
                tag: "runs",
                summary: "The approval inbox: approvals waiting for a decision (status=pending, the default) or all",
                scopes: Some(RUNS_READ),
                params: vec![
                    json!({"name": "status", "in": "query", "required": false,
                        "schema": {"type": "string", "enum": ["pending", "all"], "default": "pending"}}),
                    json!({"name": "runId", "in": "query", "required": false,
                        "description": "Only this run's approvals", "schema": {"type": "string"}}),
                    param("Limit"),
                ],
                body: None,
                ok: vec![("200", success("Approvals, newest first",
                    json!({"type": "array", "items": schema("Approval")})))],
                errors: &[400, 401, 403, 429, 500],
            }.build()
        },
        "/api/v1/runs/{id}/steps/{step}/decision": {
            "parameters": [param("RunId"), step_param()],
            "post": Op {
                id: "decideApproval",
                tag: "runs",
                summary: "Approve or reject a waiting approval step as this key (its name is recorded); \
                    the first decision wins: a different later one is 409 ALREADY_DECIDED, one past \
                    the deadline or of a run that no longer waits 410 EXPIRED",
                scopes: Some(RUNS_APPROVE),
                params: vec![],
                body: Some(json_body(true, "The decision", json!({"type": "object",
                    "required": ["decision"], "additionalProperties": false,
                    "properties": {"decision": {"type": "string", "enum": ["approve", "reject"]},
                        "comment": {"type": ["string", "null"], "maxLength": 2000}}}),
                    json!({"decision": "approve", "comment": "ok, within budget"}))),
                ok: vec![("200", success("The decision recorded (or, with Idempotent-Replayed, the same one before)",
                    schema("Decision")))],
                errors: &[400, 401, 403, 404, 409, 410, 413, 429, 500],
            }.build()
        },
        "/api/v1/runs/{id}/steps/{step}/callback": {
            "parameters": [param("RunId"), step_param()],
            "post": Op {
                id: "completeCallback",
                tag: "runs",
                summary: "Complete a callback wait step with this JSON body, as the callback URL would \
                    (for internal callers); a second callback is 409 ALREADY_RECEIVED",
                scopes: Some(RUNS_APPROVE),
                params: vec![],
                body: Some(json_body(false, "Any JSON: the step's output `body`", json!({}),
                    json!({"pdf": "https://files.example.com/inv_1.pdf"}))),
                ok: vec![("200", success("The callback is stored", schema("CallbackReceipt")))],
                errors: &[400, 401, 403, 404, 409, 410, 413, 429, 500],
            }.build()
        },
        "/callbacks/{token}": {
            "parameters": [{"name": "token", "in": "path", "required": true,
                "description": "The token of a `{{callbacks.<stepId>.url}}`",
                "schema": {"type": "string"}}],
            "post": Op {
                id: "receiveCallback",
                tag: "runs",
                summary: "Complete a callback wait step (no key: the token is the credential); \
                    stored even before the run reaches the step",
                scopes: None,
                params: vec![],
                body: Some(json_body(false, "Any JSON (at most 1 MiB): the step's output `body`",
                    json!({}), json!({"status": "signed"}))),
                ok: vec![("200", success("The callback is stored", schema("CallbackReceipt")))],
                errors: &[400, 404, 409, 410, 413, 429, 500],
            }.build()
        }
    })
}

/// The schemas of these routes' answers.
pub(super) fn schemas() -> Value {
    let decision = json!({"type": "object", "required": ["by", "decision", "at"],
        "properties": {"by": {"type": "string"},
            "decision": {"type": "string", "enum": ["approve", "reject"]},
            "at": {"type": "string", "format": "date-time"},
            "comment": {"type": ["string", "null"]}}});
    let mut with_run = decision.clone();
    with_run["properties"]["runId"] = json!({"type": "string"});
    with_run["properties"]["stepId"] = json!({"type": "string"});
    with_run["properties"]["resolved"] = json!({"type": "boolean",
        "description": "This decision settled the approval (and queued the run)"});
    json!({
        "Decision": with_run,
        "DecisionRecord": decision,
        "Approval": {"type": "object",
            "required": ["runId", "stepId", "workflowId", "reason", "approvers", "required",
                "status", "runStatus", "createdAt", "expiresAt", "decisions"],
            "properties": {
                "runId": {"type": "string"}, "stepId": {"type": "string"},
                "workflowId": {"type": "string"}, "reason": {"type": "string"},
                "approvers": {"type": "array", "items": {"type": "string"}},
                "required": {"type": "integer", "minimum": 1},
                "status": {"type": "string", "enum": ["pending", "approved", "rejected"]},
                "runStatus": {"type": "string"},
                "createdAt": {"type": "string", "format": "date-time"},
                "expiresAt": {"type": "string", "format": "date-time"},
                "decisions": {"type": "array", "items": super::schema("DecisionRecord")}
            }},
        "CallbackReceipt": {"type": "object", "required": ["received", "runId", "stepId", "receivedAt"],
            "properties": {"received": {"const": true}, "runId": {"type": "string"},
                "stepId": {"type": "string"}, "receivedAt": {"type": "string", "format": "date-time"}}}
    })
}
