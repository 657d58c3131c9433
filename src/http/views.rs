//! Domain → wire conversions (`RunRow` → `RunView`, …), explicit so storage
//! and engine can change without breaking clients.

use crate::api::{RunView, StepView, WorkflowView};
use crate::store::{RunRow, WorkflowRow};
use crate::time::rfc3339;
use crate::workflow::CompiledWorkflow;
use serde_json::Value;

pub fn run_view(run: &RunRow, wf: Option<&CompiledWorkflow>, with_steps: bool) -> RunView {
    let steps = match wf {
        Some(wf) if with_steps => wf
            .steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let rec = run.steps.iter().find(|r| r.idx == i);
                StepView {
                    id: step.id.clone(),
                    name: step.name.clone(),
                    step_type: step.kind.type_name().to_string(),
                    status: rec.map_or("pending", |r| r.status.as_str()).to_string(),
                    output: rec.map_or(Value::Null, |r| r.output.clone()),
                    error: rec.map_or(Value::Null, |r| r.error.clone()),
                    attempts: rec.map_or(0, |r| r.attempts),
                    warnings: rec.map(|r| r.warnings.clone()).unwrap_or_default(),
                    started_at: rec.and_then(|r| r.started_at).map(rfc3339),
                    completed_at: rec.and_then(|r| r.completed_at).map(rfc3339),
                }
            })
            .collect(),
        _ => vec![],
    };
    RunView {
        id: run.id.clone(),
        status: run.status.clone(),
        workflow_id: run.workflow_id.clone(),
        workflow_version: run.workflow_version,
        input: run.input.clone(),
        output: run.output.clone(),
        error: run.error.clone(),
        idempotency_key: run.idempotency_key.clone(),
        connection_id: run.connection_id.clone(),
        created_at: rfc3339(run.created_at),
        started_at: run.started_at.map(rfc3339),
        completed_at: run.completed_at.map(rfc3339),
        duration_ms: match (run.started_at, run.completed_at) {
            (Some(s), Some(c)) => Some(c - s),
            _ => None,
        },
        steps,
    }
}

pub fn workflow_view(row: &WorkflowRow, definition: Option<Value>) -> WorkflowView {
    WorkflowView {
        id: row.id.clone(),
        name: row.name.clone(),
        status: row.status.clone(),
        version: row.latest_version,
        versions: (1..=row.latest_version).collect(),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        definition,
    }
}
