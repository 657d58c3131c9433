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

    /// A template whose result would pass the budget of one value (not retried: the same
    /// input gives the same result).
    pub fn too_large(step_id: &str, at: &str, message: &str) -> RunError {
        RunError {
            code: "OUTPUT_TOO_LARGE".into(),
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

    /// A step output (of an action or a transform) larger than the budget.
    pub fn output_too_large(step_id: &str, max_bytes: usize) -> RunError {
        RunError {
            code: "OUTPUT_TOO_LARGE".into(),
            message: format!(
                "step '{step_id}': its output is larger than the limit of {} (--max-value-bytes)",
                crate::limits::describe_bytes(max_bytes)
            ),
            step_id: Some(step_id.into()),
            path: None,
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

    /// A step output (or the run's output) nested deeper than run state may be.
    pub fn output_too_deep(step_id: Option<&str>) -> RunError {
        let what = match step_id {
            Some(id) => format!("step '{id}': its output"),
            None => "workflow output".into(),
        };
        RunError {
            code: "OUTPUT_TOO_DEEP".into(),
            message: format!(
                "{what} is nested deeper than {} levels, the limit for run state",
                crate::limits::MAX_JSON_DEPTH
            ),
            step_id: step_id.map(String::from),
            path: None,
        }
    }

    /// The run was taken from a holder that died (or hung) this many times while it was
    /// on this step: it is failed rather than resumed into the same crash again.
    pub fn interrupted(step_id: Option<&str>, times: u32) -> RunError {
        let at = step_id.map_or("the run".to_string(), |id| format!("step '{id}'"));
        RunError {
            code: "RUN_INTERRUPTED".into(),
            message: format!(
                "{at} was interrupted {times} times (the server stopped or lost the run's \
                 lease while executing it); the run is not resumed again"
            ),
            step_id: step_id.map(String::from),
            path: None,
        }
    }

    pub fn output_template(message: &str) -> RunError {
        RunError::step("TEMPLATE_ERROR", format!("workflow output: {message}"))
    }

    pub fn invalid_config(message: impl Into<String>) -> RunError {
        RunError::step("INVALID_CONFIG", message)
    }

    /// The run's stored state cannot be read back (a damaged row): the store fails that
    /// run alone, and the queue goes on.
    pub fn unreadable(message: impl std::fmt::Display) -> RunError {
        RunError::step(
            "STORAGE_CORRUPT",
            format!("the run's stored state cannot be read: {message}"),
        )
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

    /// A `workflow` step whose child run did not complete: the child's error nested.
    pub fn child_failed(step_id: &str, child_run_id: &str, status: &str, cause: Value) -> RunError {
        RunError {
            code: "CHILD_FAILED".into(),
            message: format!(
                "step '{step_id}': child run {child_run_id} ended {status}: {}",
                cause
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("no error recorded")
            ),
            step_id: Some(step_id.into()),
            path: None,
        }
    }

    /// A chain of sub-workflows deeper than the limit.
    pub fn max_depth(step_id: &str, limit: i64) -> RunError {
        RunError {
            code: "MAX_DEPTH".into(),
            message: format!("step '{step_id}': sub-workflows may nest at most {limit} deep"),
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
