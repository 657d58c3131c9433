//! Domain → wire conversions (`RunRow` → `RunView`, …), explicit so storage
//! and engine can change without breaking clients.

use crate::api::{RunView, StepView, WorkflowView};
use crate::engine::{RunError, StepRecord};
use crate::store::{RunRow, WorkflowRow};
use crate::time::rfc3339;
use crate::workflow::CompiledWorkflow;
use serde_json::Value;

/// Takes the run by value: its JSON moves into the view instead of being copied.
pub fn run_view(run: RunRow, wf: Option<&CompiledWorkflow>, with_steps: bool) -> RunView {
    // A loop item's or branch's run executes its block's body, not the whole workflow.
    let body = match (wf, &run.family.parent_step_id) {
        (Some(w), Some(step)) if run.trigger_type.is_body() => {
            w.body(step, run.family.key.as_deref().unwrap_or_default())
        }
        _ => None,
    };
    let wf = body.as_deref().or(wf);
    let mut records: Vec<Option<StepRecord>> = Vec::new();
    if let Some(wf) = wf {
        records.resize(wf.steps.len(), None);
        for r in run.steps {
            if let Some(slot) = records.get_mut(r.idx) {
                *slot = Some(r);
            }
        }
    }
    let steps = match wf {
        Some(wf) if with_steps => wf
            .steps
            .iter()
            .zip(records)
            .map(|(step, rec)| match rec {
                Some(r) => StepView {
                    waiting_for: (r.status == crate::engine::StepStatus::Waiting)
                        .then(|| r.output.get("waitingFor").and_then(Value::as_str))
                        .flatten()
                        .map(String::from),
                    id: step.id.clone(),
                    name: step.name.clone(),
                    step_type: step.kind.type_name().to_string(),
                    status: r.status.as_str().to_string(),
                    output: r.output,
                    error: RunError::to_value(&r.error),
                    attempts: r.attempts,
                    warnings: r.warnings,
                    skip_reason: r.skip_reason.as_ref().map(|s| s.to_value()),
                    started_at: r.started_at.map(rfc3339),
                    completed_at: r.completed_at.map(rfc3339),
                },
                None => StepView {
                    id: step.id.clone(),
                    name: step.name.clone(),
                    step_type: step.kind.type_name().to_string(),
                    status: run.status.unrecorded_step().as_str().into(),
                    output: Value::Null,
                    error: Value::Null,
                    attempts: 0,
                    warnings: vec![],
                    skip_reason: None,
                    waiting_for: None,
                    started_at: None,
                    completed_at: None,
                },
            })
            .collect(),
        _ => vec![],
    };
    let family = run.family;
    RunView {
        root_run_id: family.root_run_id.unwrap_or_else(|| run.id.clone()),
        parent_run_id: family.parent_run_id,
        parent_step_id: family.parent_step_id,
        key: family.key,
        depth: family.depth,
        redrive_count: family.redrive_count,
        children: family.children.map(|n| {
            serde_json::json!({"total": n.total, "completed": n.completed, "failed": n.failed, "running": n.running})
        }),
        id: run.id,
        status: run.status.as_str().into(),
        workflow_id: run.workflow_id,
        workflow_version: run.workflow_version,
        input: run.input,
        output: run.output,
        error: RunError::to_value(&run.error),
        idempotency_key: run.idempotency_key,
        connection_id: run.connection_id,
        trigger_type: run.trigger_type.as_str().into(),
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

pub fn workflow_view(
    row: &WorkflowRow,
    definition: Option<Value>,
    next_run_at: Option<i64>,
) -> WorkflowView {
    WorkflowView {
        id: row.id.clone(),
        name: row.name.clone(),
        status: row.status.as_str().into(),
        version: row.latest_version,
        versions: (1..=row.latest_version).collect(),
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
        next_run_at: next_run_at.map(rfc3339),
        definition,
    }
}
