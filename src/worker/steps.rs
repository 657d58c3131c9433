//! Side-effecting steps: resolves what an action needs and runs it with the
//! step's timeout. Errors carry whether a retry may help.

use super::Worker;
use crate::store::RunRow;
use crate::workflow::CompiledStep;
use serde_json::{Value, json};

pub(crate) struct StepError {
    pub error: Value,
    pub retryable: bool,
    pub retry_after_ms: Option<u64>,
}

pub(crate) async fn run_action(
    _worker: &Worker,
    _run: &RunRow,
    step: &CompiledStep,
    _config: &Value,
) -> Result<Value, StepError> {
    Err(StepError {
        error: json!({"code": "UNSUPPORTED", "message": format!("step '{}': {} steps are not available yet", step.id, step.kind.type_name())}),
        retryable: false,
        retry_after_ms: None,
    })
}
