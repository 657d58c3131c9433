//! Paths of the run and workflow routes (`http/runs.rs`, `http/workflows.rs`).

use super::{Op, json_body, param, schema, success, success_list};
use serde_json::{Value, json};

const EXECUTE: &[&str] = &["workflows:execute"];
const RUNS_READ: &[&str] = &["runs:read"];
const RUN_STATUS: &[&str] = &["runs:read", "workflows:execute"];
const RUNS_WRITE: &[&str] = &["runs:write"];
const WF_READ: &[&str] = &["workflows:read"];
const WF_WRITE: &[&str] = &["workflows:write"];

/// Follow-up operations on the run a trigger created (for stateful testing).
fn run_links() -> Value {
    let run_id = json!({"id": "$response.body#/data/runId"});
    json!({
        "GetRun": {"operationId": "getRun", "parameters": run_id},
        "CancelRun": {"operationId": "cancelRun", "parameters": run_id}
    })
}

pub(super) fn runs() -> Value {
    let mut created = success("A new run was queued", schema("TriggerResponse"));
    created["links"] = run_links();
    let mut replayed = success(
        "The idempotency key was seen before: the existing run, nothing started",
        schema("TriggerResponse"),
    );
    replayed["headers"]["Idempotent-Replayed"] =
        json!({"$ref": "#/components/headers/Idempotent-Replayed"});
    replayed["headers"]["Idempotent-Input-Differs"] =
        json!({"$ref": "#/components/headers/Idempotent-Input-Differs"});
    replayed["links"] = run_links();
    let mut replay_created = success("The new run was queued", schema("TriggerResponse"));
    replay_created["links"] = run_links();
    json!({
        "/api/v1/workflows/{id}/run": {
            "parameters": [param("WorkflowId")],
            "post": Op {
                id: "triggerRun",
                tag: "runs",
                summary: "Trigger a run of an active workflow",
                scopes: Some(EXECUTE),
                params: vec![param("Wait"), json!({"name": "Idempotency-Key", "in": "header", "required": false,
                    "description": "The same as the body's idempotencyKey (which must agree with it); a trigger whose key already names a run is not charged to the execute rate limit",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255}})],
                body: Some(json_body(
                    false,
                    "Run input and options; an empty body is `{}`",
                    schema("TriggerRequest"),
                    json!({"input": {"customerId": "cus_123",
                        "items": [{"product": "widget", "quantity": 2, "price": 19.99}]},
                        "idempotencyKey": "order-1001"}),
                )),
                ok: vec![("202", created), ("200", replayed)],
                errors: &[400, 401, 403, 404, 413, 429, 500],
            }.build()
        },
        "/api/v1/workflows/{id}/test-delivery": {
            "parameters": [param("WorkflowId")],
            "post": Op {
                id: "signTestDelivery",
                tag: "workflows",
                summary: "Sign a test delivery for a webhook workflow with its connection's secret (which stays on the server); post the body with these headers to `path`",
                scopes: Some(EXECUTE),
                params: vec![],
                body: Some(json_body(
                    true,
                    "The exact text to deliver",
                    json!({"type": "object", "required": ["body"], "additionalProperties": false,
                        "properties": {"body": {"type": "string"}}}),
                    json!({"body": "{\"id\": \"evt_test_1\", \"type\": \"invoice.paid\"}"}),
                )),
                ok: vec![("200", success("Where to post the body, and the headers that sign it", json!({
                    "type": "object",
                    "required": ["path", "provider", "headers"],
                    "properties": {
                        "path": {"type": "string"},
                        "provider": {"type": "string", "enum": ["stripe", "github", "standard", "custom"]},
                        "events": {"type": ["array", "null"], "items": {"type": "string"}},
                        "headers": {"type": "object", "additionalProperties": {"type": "string"}}
                    }
                })))],
                errors: &[400, 401, 403, 404, 413, 429, 500],
            }.build()
        },
        "/api/v1/ui-links": {
            "post": Op {
                id: "createUiLink",
                tag: "workflows",
                summary: "A one-time dashboard login link for the calling key, valid for 2 minutes (`flowctl open`)",
                scopes: Some(RUNS_READ),
                params: vec![],
                body: None,
                ok: vec![("201", success("The link's path (append it to the server's URL) and its expiry", json!({
                    "type": "object",
                    "required": ["path", "expiresAt"],
                    "properties": {
                        "path": {"type": "string"},
                        "expiresAt": {"type": "string", "format": "date-time"}
                    }
                })))],
                errors: &[401, 403, 429, 500],
            }.build()
        },
        "/api/v1/runs": {
            "get": Op {
                id: "listRuns",
                tag: "runs",
                summary: "List runs, newest first",
                scopes: Some(RUNS_READ),
                params: vec![param("WorkflowIdFilter"), param("RunStatusFilter"),
                    param("TriggerTypeFilter"), param("ParentRunIdFilter"), param("IncludeChildren"),
                    param("Limit"), param("Cursor")],
                body: None,
                ok: vec![("200", success_list("One page of runs (without steps)", schema("Run")))],
                errors: &[400, 401, 403, 429, 500],
            }.build()
        },
        "/api/v1/runs/{id}": {
            "parameters": [param("RunId")],
            "get": Op {
                id: "getRun",
                tag: "runs",
                summary: "A run's status, output and steps; `?wait=` long-polls until it finishes",
                scopes: Some(RUN_STATUS),
                params: vec![param("Wait")],
                body: None,
                ok: vec![("200", success("The run", schema("Run")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
        "/api/v1/runs/{id}/replay": {
            "parameters": [param("RunId")],
            "post": Op {
                id: "replayRun",
                tag: "runs",
                summary: "Start a new run of the same workflow (latest version, which must be active) \
                    with the same input and connection",
                scopes: Some(EXECUTE),
                params: vec![],
                body: None,
                ok: vec![("202", replay_created)],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
        "/api/v1/runs/{id}/cancel": {
            "parameters": [param("RunId")],
            "post": Op {
                id: "cancelRun",
                tag: "runs",
                summary: "Cancel a run: a pending run never starts, a running one stops before its next step",
                scopes: Some(RUNS_WRITE),
                params: vec![],
                body: None,
                ok: vec![("200", success("The run after the cancel request", schema("Run")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
        "/api/v1/runs/{id}/redrive": {
            "parameters": [param("RunId")],
            "post": Op {
                id: "redriveRun",
                tag: "runs",
                summary: "Continue a failed, timed_out or cancelled run as the same run: completed \
                    steps are kept, failed and unfinished ones run again (INVALID_STATUS otherwise)",
                scopes: Some(RUNS_WRITE),
                params: vec![],
                body: None,
                ok: vec![("200", success("The run, queued again", schema("Run")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
    })
}

/// The answer of a status change: the workflow without its definition.
fn status_change(id: &'static str, summary: &'static str) -> Value {
    Op {
        id,
        tag: "workflows",
        summary,
        scopes: Some(WF_WRITE),
        params: vec![],
        body: None,
        ok: vec![(
            "200",
            success("The workflow with its new status", schema("Workflow")),
        )],
        errors: &[400, 401, 403, 404, 429, 500],
    }
    .build()
}

pub(super) fn workflows() -> Value {
    let id = json!({"id": "$response.body#/data/id"});
    let workflow_link = json!({
        "GetWorkflow": {"operationId": "getWorkflow", "parameters": id},
        "GetVersion": {"operationId": "getWorkflowVersion", "parameters":
            {"id": "$response.body#/data/id", "n": "$response.body#/data/version"}},
        "TriggerRun": {"operationId": "triggerRun", "parameters": id},
        "PauseWorkflow": {"operationId": "pauseWorkflow", "parameters": id},
    });
    let mut created = success("A new workflow (version 1)", schema("ApplyResult"));
    created["links"] = workflow_link.clone();
    let mut updated = success(
        "An existing workflow: a new version (`updated`) or identical content (`unchanged`)",
        schema("ApplyResult"),
    );
    updated["links"] = workflow_link;
    json!({
        "/api/v1/workflows": {
            "get": Op {
                id: "listWorkflows",
                tag: "workflows",
                summary: "List workflows by id",
                scopes: Some(WF_READ),
                params: vec![param("Limit"), param("Cursor")],
                body: None,
                ok: vec![("200", success_list("One page of workflows (without definitions)",
                    schema("Workflow")))],
                errors: &[400, 401, 403, 429, 500],
            }.build(),
            "post": Op {
                id: "applyWorkflow",
                tag: "workflows",
                summary: "Apply one workflow definition (create, or store a new version)",
                scopes: Some(WF_WRITE),
                params: vec![],
                body: Some(json_body(
                    true,
                    "A workflow definition (docs/workflows.md)",
                    schema("WorkflowDefinition"),
                    json!({"id": "wf_echo", "name": "Echo", "trigger": {"type": "api"},
                        "steps": [{"id": "echo", "type": "transform",
                            "config": {"mapping": {"got": "{{input}}"}}}]}),
                )),
                ok: vec![("201", created), ("200", updated)],
                errors: &[400, 401, 403, 413, 429, 500],
            }.build()
        },
        "/api/v1/workflows/{id}": {
            "parameters": [param("WorkflowId")],
            "get": Op {
                id: "getWorkflow",
                tag: "workflows",
                summary: "One workflow with its latest definition, status and versions",
                scopes: Some(WF_READ),
                params: vec![],
                body: None,
                ok: vec![("200", success("The workflow", schema("Workflow")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build(),
            "delete": status_change("archiveWorkflow", "Archive a workflow (its runs are kept)")
        },
        "/api/v1/workflows/{id}/activate": {
            "parameters": [param("WorkflowId")],
            "post": status_change("activateWorkflow", "Set a workflow's status to active")
        },
        "/api/v1/workflows/{id}/pause": {
            "parameters": [param("WorkflowId")],
            "post": status_change("pauseWorkflow", "Set a workflow's status to paused")
        },
        "/api/v1/workflows/{id}/versions/{n}": {
            "parameters": [param("WorkflowId"), param("VersionNumber")],
            "get": Op {
                id: "getWorkflowVersion",
                tag: "workflows",
                summary: "One stored version of a workflow's definition",
                scopes: Some(WF_READ),
                params: vec![],
                body: None,
                ok: vec![("200", success("The version", schema("WorkflowVersion")))],
                errors: &[400, 401, 403, 404, 429, 500],
            }.build()
        },
    })
}
