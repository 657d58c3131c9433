//! `RunError`: the one error value of a run and of a step, from the engine
//! through the store to the wire. Built only through these constructors, so
//! codes and messages have one spelling.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{code, message, stepId?, path?}` as stored and as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunError {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl RunError {
    /// A step's own failure, with the code the action reported.
    pub fn step(code: &str, message: impl Into<String>) -> RunError {
        RunError {
            code: code.into(),
            message: message.into(),
            step_id: None,
            path: None,
        }
    }

    pub fn cancelled() -> RunError {
        RunError::step("CANCELLED", "Run was cancelled")
    }

    pub fn step_aborted() -> RunError {
        RunError::step("CANCELLED", "step aborted: the run was cancelled")
    }

    pub fn run_timeout(limit_ms: u64) -> RunError {
        RunError::step(
            "RUN_TIMEOUT",
            format!("run exceeded its timeoutMs of {limit_ms} ms"),
        )
    }

    pub fn template(step_id: &str, at: &str, message: &str) -> RunError {
        RunError {
            code: "TEMPLATE_ERROR".into(),
            message: format!("step '{step_id}', {at}: {message}"),
            step_id: Some(step_id.into()),
            path: Some(at.into()),
        }
    }

    /// A `condition` that cannot be decided (`gt` on text, a bad pattern).
    pub fn condition(step_id: &str, at: &str, message: &str) -> RunError {
        RunError {
            code: "CONDITION_ERROR".into(),
            message: format!("step '{step_id}', {at}: {message}"),
            step_id: Some(step_id.into()),
            path: Some(at.into()),
        }
    }

    /// The error a `stop` step with `status: failed` ends its run with.
    pub fn stopped(step_id: &str, code: &str, message: &str) -> RunError {
        RunError {
            code: code.into(),
            message: message.into(),
            step_id: Some(step_id.into()),
            path: None,
        }
    }

    pub fn output_template(message: &str) -> RunError {
        RunError::step("TEMPLATE_ERROR", format!("workflow output: {message}"))
    }

    pub fn invalid_config(message: impl Into<String>) -> RunError {
        RunError::step("INVALID_CONFIG", message)
    }

    pub fn internal(message: impl Into<String>) -> RunError {
        RunError::step("INTERNAL", message)
    }

    /// docs/workflows.md: a failed step fails the run with `STEP_ERROR` naming the step.
    pub fn step_failed(step_id: &str, cause: Option<&RunError>) -> RunError {
        RunError {
            code: "STEP_ERROR".into(),
            message: cause
                .map(|c| c.message.clone())
                .unwrap_or_else(|| "step failed".into()),
            step_id: Some(step_id.into()),
            path: None,
        }
    }

    /// The wire shape (`null` when there is no error).
    pub fn to_value(this: &Option<RunError>) -> Value {
        match this {
            None => Value::Null,
            Some(e) => serde_json::to_value(e).unwrap_or(Value::Null),
        }
    }
}
