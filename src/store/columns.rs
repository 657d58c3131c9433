//! How records become column values and back, the same for both stores:
//! JSON values live in text columns (`NULL` for JSON `null`), errors as
//! their JSON text. Plain functions, no SQL.

use super::Result;
use crate::engine::{RunError, StepRecord};
use serde_json::Value;

/// A connection status as stored (its wire name).
pub fn connection_status(s: &str) -> Result<super::ConnectionStatus> {
    super::ConnectionStatus::parse(s)
        .ok_or_else(|| super::StoreError::Decode(format!("unknown connection status '{s}'")))
}

/// A workflow status as stored (its wire name).
pub fn workflow_status(s: &str) -> Result<crate::workflow::WorkflowStatus> {
    crate::workflow::WorkflowStatus::parse(s)
        .ok_or_else(|| super::StoreError::Decode(format!("unknown workflow status '{s}'")))
}

pub(crate) fn opt_json(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| v.to_string())
}

pub(crate) fn from_json(s: Option<String>) -> Result<Value> {
    match s {
        None => Ok(Value::Null),
        Some(s) => Ok(serde_json::from_str(&s)?),
    }
}

pub(crate) fn encode_error(e: &Option<RunError>) -> Option<String> {
    e.as_ref().and_then(|e| serde_json::to_string(e).ok())
}

pub(crate) fn decode_error(text: Option<String>) -> Result<Option<RunError>> {
    match text {
        None => Ok(None),
        Some(t) => Ok(Some(serde_json::from_str(&t)?)),
    }
}

/// A step record as its columns, serialized before it reaches a writer.
pub(crate) struct StepColumns {
    pub idx: i64,
    pub step_id: String,
    pub status: &'static str,
    pub output: Option<String>,
    pub error: Option<String>,
    pub warnings: Option<String>,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

impl From<&StepRecord> for StepColumns {
    fn from(s: &StepRecord) -> StepColumns {
        StepColumns {
            idx: s.idx as i64,
            step_id: s.step_id.clone(),
            status: s.status.as_str(),
            output: opt_json(&s.output),
            error: encode_error(&s.error),
            warnings: (!s.warnings.is_empty())
                .then(|| serde_json::to_string(&s.warnings).unwrap_or_default()),
            attempts: s.attempts,
            started_at: s.started_at,
            completed_at: s.completed_at,
        }
    }
}
