//! Wire types shared by the server and the client: request bodies, response
//! `data` objects and error codes. Domain types are converted to these
//! explicitly so storage and engine can change without breaking clients.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{"success": false, "error": {...}}`
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    pub success: bool,
    pub error: ErrorBody,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub details: Option<Vec<ErrorDetail>>,
    /// `ALREADY_DECIDED`: the decision on record `{by, decision, at, comment}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub decision: Option<Value>,
}

/// One problem with a JSON path, e.g. `{path: ["items", 0, "quantity"], message}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub path: Vec<Value>,
    pub message: String,
}

impl ErrorDetail {
    /// `steps[1].config.amount` — how the CLI prints a path.
    pub fn dotted_path(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Value::Number(n) => out.push_str(&format!("[{n}]")),
                Value::String(s) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(s);
                }
                other => out.push_str(&other.to_string()),
            }
        }
        out
    }
}

/// `POST /api/v1/workflows/{id}/run` body. Every field is optional; an empty body is `{}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerRequest {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub input: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub connection_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idempotency_key: Option<String>,
    /// `api` (the default) or `batch`: how the run is recorded (`flowctl run --batch` sends `batch`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub trigger_type: Option<String>,
    /// Run a scheduled workflow now as its schedule would: the trigger's static
    /// `input` (overridden by `input`) plus a `schedule` block.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub as_schedule: bool,
}

impl TriggerRequest {
    /// The body's fields as sent; any other field is rejected, naming the nearest of these.
    pub const FIELDS: &'static [&'static str] = &[
        "input",
        "connectionId",
        "idempotencyKey",
        "triggerType",
        "asSchedule",
    ];
    /// The trigger types a client may ask for.
    pub const TRIGGER_TYPES: &'static [&'static str] = &["api", "batch"];
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TriggerResponse {
    pub run_id: String,
    pub status: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    /// Present when the request asked `?wait=` and the run finished in time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<Value>,
    /// True on a repeated idempotency key whose input differs from the first
    /// request's: the first run is returned and nothing new started.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub input_differs: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: String,
    pub status: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub input: Value,
    pub output: Value,
    pub error: Value,
    pub idempotency_key: Option<String>,
    pub connection_id: Option<String>,
    /// How the run started: `api`, `schedule`, `webhook`, `replay`, `batch` or `workflow`.
    pub trigger_type: String,
    pub created_at: String,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
    pub duration_ms: Option<i64>,
    /// The run whose `workflow` step started this one (`null` for a run started from outside).
    #[serde(default)]
    pub parent_run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_step_id: Option<String>,
    /// A child run's key under its parent's step: a loop item's index, a branch's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The top of this run's tree (itself when it has no parent).
    #[serde(default)]
    pub root_run_id: String,
    /// 0 for a run started from outside; a child is one deeper than its parent.
    #[serde(default)]
    pub depth: i64,
    /// How often the run was continued with redrive.
    #[serde(default)]
    pub redrive_count: i64,
    /// `{total, completed, failed, running}` of its child runs (on one run, not in lists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub children: Option<Value>,
    /// Left out of run lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepView {
    pub id: String,
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub step_type: String,
    pub status: String,
    pub output: Value,
    pub error: Value,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
    /// Why a skipped step did not run: `{condition, branch}` (the branch the condition
    /// took), `{stop}` or `{if}`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub skip_reason: Option<Value>,
    /// What a `waiting` step waits for: `approval`, `callback` or `children`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub waiting_for: Option<String>,
    pub started_at: Option<String>,
    pub completed_at: Option<String>,
}

impl StepView {
    /// The branch a `condition` step took (`then` / `else`), once it ran.
    pub fn branch_taken(&self) -> Option<&str> {
        if self.step_type != "condition" || self.status != "completed" {
            return None;
        }
        self.output.get("branch").and_then(Value::as_str)
    }

    /// Why the step was skipped, in words (`check-amount took else`), for people.
    pub fn skip_text(&self) -> Option<String> {
        let reason = self.skip_reason.as_ref()?;
        let text = |k: &str| reason.get(k).and_then(Value::as_str);
        Some(if let Some(c) = text("condition") {
            match text("branch") {
                Some(b) => format!("{c} took {b}"),
                None => format!("{c} did not run"),
            }
        } else if let Some(stop) = text("stop") {
            format!("{stop} stopped the run")
        } else if let Some(t) = text("if") {
            format!("if {t} was false")
        } else {
            reason.to_string()
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyResponse {
    pub id: String,
    pub version: i64,
    pub status: String,
    pub changed: bool,
    /// `created`, `updated` or `unchanged`
    pub result: String,
    /// What `flowctl validate --strict` would refuse, e.g. a reference a condition may
    /// leave unset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowView {
    pub id: String,
    pub name: String,
    pub status: String,
    pub version: i64,
    pub versions: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
    /// The schedule's next occurrence; null when the workflow has no live schedule.
    #[serde(default)]
    pub next_run_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub definition: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionView {
    pub workflow_id: String,
    pub version: i64,
    pub created_at: String,
    pub definition: Value,
}

/// A stored connection; the secret is write-only, `hasSecret` says whether one is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionView {
    pub id: String,
    pub provider: String,
    pub name: String,
    pub status: String,
    pub default: bool,
    pub config: Value,
    pub has_secret: bool,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    pub cursor: Option<String>,
    pub has_more: bool,
}

/// The error codes of docs/api.md.
pub mod codes {
    pub const UNAUTHORIZED: &str = "UNAUTHORIZED";
    pub const FORBIDDEN: &str = "FORBIDDEN";
    pub const NOT_FOUND: &str = "NOT_FOUND";
    pub const INVALID_STATUS: &str = "INVALID_STATUS";
    pub const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
    pub const INVALID_REQUEST: &str = "INVALID_REQUEST";
    pub const CONNECTION_REQUIRED: &str = "CONNECTION_REQUIRED";
    pub const INVALID_CONNECTION: &str = "INVALID_CONNECTION";
    pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
    pub const METHOD_NOT_ALLOWED: &str = "METHOD_NOT_ALLOWED";
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    pub const INTERNAL: &str = "INTERNAL";
    pub const STORAGE_UNAVAILABLE: &str = "STORAGE_UNAVAILABLE";
    pub const STORAGE_CORRUPT: &str = "STORAGE_CORRUPT";
    pub const REQUEST_TIMEOUT: &str = "REQUEST_TIMEOUT";
    pub const SERVER_BUSY: &str = "SERVER_BUSY";
    pub const ALREADY_DECIDED: &str = "ALREADY_DECIDED";
    pub const ALREADY_RECEIVED: &str = "ALREADY_RECEIVED";
    pub const EXPIRED: &str = "EXPIRED";
    pub const NOT_WAITING: &str = "NOT_WAITING";
}
