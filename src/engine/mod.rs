//! The pure run state machine: given a compiled workflow and the step results
//! so far, decide what happens next, prepare a step's config, and turn a step
//! failure into a decision (retry, continue, fail). No I/O, no clock: time
//! comes in as arguments, so every rule is unit-tested without a runtime.

mod connections;
mod retry;
mod status;

pub use connections::{ConnectionRef, ResolveError, check_trigger, resolve};
pub use retry::{FailureDecision, on_step_error};
pub use status::{RunStatus, StepStatus};

use crate::template::{Context, is_truthy};
use crate::workflow::{CompiledStep, CompiledWorkflow};
use serde_json::{Map, Value, json};

/// One step's recorded result (persisted by the store, keyed by run and index).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub idx: usize,
    pub step_id: String,
    pub status: StepStatus,
    pub output: Value,
    pub error: Value,
    pub warnings: Vec<String>,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

/// What a run knows about itself, for templates (`run.*`, `workflow.*`).
pub struct RunFacts<'a> {
    pub run_id: &'a str,
    pub workflow_id: &'a str,
    pub workflow_name: &'a str,
    pub workflow_version: i64,
    pub started_at: &'a str,
    pub input: &'a Value,
}

/// The template scope of a run, grown as steps finish.
pub struct Scope {
    steps: Map<String, Value>,
    run: Value,
    workflow: Value,
}

impl Scope {
    pub fn new(facts: &RunFacts, records: &[StepRecord]) -> Scope {
        let mut scope = Scope {
            steps: Map::new(),
            run: json!({
                "id": facts.run_id,
                "workflowId": facts.workflow_id,
                "workflowVersion": facts.workflow_version,
                "startedAt": facts.started_at,
            }),
            workflow: json!({"id": facts.workflow_id, "name": facts.workflow_name}),
        };
        for r in records {
            scope.record(r);
        }
        scope
    }

    pub fn record(&mut self, r: &StepRecord) {
        self.steps.insert(
            r.step_id.clone(),
            json!({"output": r.output, "status": r.status.as_str()}),
        );
    }

    pub fn context<'a>(
        &'a self,
        input: &'a Value,
        variables: &'a Value,
        now: &'a str,
    ) -> Context<'a> {
        Context {
            input,
            steps: &self.steps,
            variables,
            run: &self.run,
            workflow: &self.workflow,
            now,
        }
    }
}

/// What to do with a run next.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Execute (or resume) the step at this index.
    Step(usize),
    /// Every step is settled: finish the run.
    Finish,
    /// A step failed with `errorHandling: fail`: the run fails.
    Fail(usize),
}

/// The first step without a settled result decides what comes next.
pub fn next(wf: &CompiledWorkflow, records: &[Option<StepRecord>]) -> Next {
    for (i, step) in wf.steps.iter().enumerate() {
        match records.get(i).and_then(Option::as_ref) {
            Some(r)
                if r.status == StepStatus::Failed
                    && step.error_handling != crate::workflow::ErrorHandling::Continue =>
            {
                return Next::Fail(i);
            }
            Some(r) if r.status.is_settled() => continue,
            _ => return Next::Step(i),
        }
    }
    Next::Finish
}

/// A step's config, rendered and ready to execute, or why it will not run.
#[derive(Debug, Clone, PartialEq)]
pub enum Prepared {
    Skip {
        warnings: Vec<String>,
    },
    Execute {
        config: Value,
        warnings: Vec<String>,
    },
    TemplateFailed {
        error: Value,
    },
}

pub fn prepare(step: &CompiledStep, ctx: &Context) -> Prepared {
    let mut warnings = vec![];
    if let Some(cond) = &step.condition {
        match cond.render(ctx) {
            Ok(r) => {
                warnings.extend(r.warnings);
                if !is_truthy(&r.value) {
                    return Prepared::Skip { warnings };
                }
            }
            Err(e) => {
                return Prepared::TemplateFailed {
                    error: template_error(step, "if", &e.to_string()),
                };
            }
        }
    }
    match step.config.render(ctx) {
        Ok(r) => {
            warnings.extend(r.warnings);
            Prepared::Execute {
                config: r.value,
                warnings,
            }
        }
        Err((path, e)) => {
            let mut at = String::from("config");
            for seg in path {
                match seg {
                    crate::template::value::PathSeg::Key(k) => {
                        at.push('.');
                        at.push_str(&k);
                    }
                    crate::template::value::PathSeg::Index(i) => at.push_str(&format!("[{i}]")),
                }
            }
            Prepared::TemplateFailed {
                error: template_error(step, &at, &e.to_string()),
            }
        }
    }
}

fn template_error(step: &CompiledStep, at: &str, message: &str) -> Value {
    json!({
        "code": "TEMPLATE_ERROR",
        "message": format!("step '{}', {at}: {message}", step.id),
        "stepId": step.id,
        "path": at,
    })
}

/// The output of a transform step is its rendered `mapping`.
pub fn transform_output(config: &Value) -> Value {
    config.get("mapping").cloned().unwrap_or(Value::Null)
}

/// The run's output: the workflow's `output`, else the last completed step's.
pub fn run_output(
    wf: &CompiledWorkflow,
    records: &[Option<StepRecord>],
    ctx: &Context,
) -> Result<(Value, Vec<String>), Value> {
    if let Some(out) = &wf.output {
        return out.render(ctx).map(|r| (r.value, r.warnings)).map_err(
            |(_, e)| json!({"code": "TEMPLATE_ERROR", "message": format!("workflow output: {e}")}),
        );
    }
    let last = records
        .iter()
        .rev()
        .flatten()
        .find(|r| r.status == StepStatus::Completed)
        .map(|r| r.output.clone())
        .unwrap_or(Value::Null);
    Ok((last, vec![]))
}

/// The run error for a failed step (docs/workflows.md: `STEP_ERROR` with `stepId`).
pub fn step_failure(record: &StepRecord) -> Value {
    let message = record
        .error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("step failed");
    json!({
        "code": "STEP_ERROR",
        "message": message,
        "stepId": record.step_id,
    })
}

#[cfg(test)]
mod tests;
