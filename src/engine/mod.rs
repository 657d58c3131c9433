//! The pure run state machine. `advance` (in `advance.rs`) owns every rule
//! of a run; this file holds its building blocks: the step record, the
//! template scope, which step comes next, rendering a step's config, and the
//! run's output. No I/O, no clock: time and jitter come in as arguments, so
//! every rule is unit-tested without a runtime. May depend on `workflow` and
//! `template` only.

mod advance;
mod connections;
mod control;
mod error;
mod loops;
mod retry;
mod status;
mod waits;

pub use advance::{
    Effect, Event, MAX_DEPTH, RunState, Spawn, Transition, advance, child_run_id,
    placeholder_workflow,
};
pub use connections::{ConnectionRef, ResolveError, check_trigger, resolve};
pub use control::{SkipReason, compare_op};
pub use error::RunError;
pub use loops::FanOut;
pub use retry::{FailureDecision, on_step_error};
pub use status::{RunStatus, StepStatus};
pub use waits::{ApprovalRequest, Suspend, WaitingFor};

use crate::template::{Context, TemplateError, TemplateErrorKind, is_truthy};
use crate::workflow::{CompiledStep, CompiledWorkflow};
use serde_json::{Map, Value, json};

/// One step's recorded result (persisted by the store, keyed by run and index).
#[derive(Debug, Clone, PartialEq)]
pub struct StepRecord {
    pub idx: usize,
    pub step_id: String,
    pub status: StepStatus,
    pub output: Value,
    pub error: Option<RunError>,
    pub warnings: Vec<String>,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// Why a `skipped` step did not run, when a condition, a stop or its `if` decided it.
    pub skip_reason: Option<SkipReason>,
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
    /// Loop variables in scope (a body's run: its own and its enclosing loops').
    locals: Value,
}

impl Scope {
    /// Only settled steps are visible to later templates.
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
            locals: Value::Object(Map::new()),
        };
        for r in records.iter().filter(|r| r.status.is_settled()) {
            scope.record(r);
        }
        scope
    }

    /// A body's run also sees what its block saw (`outer`: `{input, steps, vars}`, taken
    /// when the block started) and its own loop variables (`own_vars`, the run's input).
    pub fn within(mut self, outer: Option<&Value>, own_vars: &Value) -> Scope {
        let Some(outer) = outer else { return self };
        if let Some(Value::Object(steps)) = outer.get("steps") {
            for (id, v) in steps {
                self.steps.entry(id.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut locals = match outer.get("vars") {
            Some(Value::Object(v)) => v.clone(),
            _ => Map::new(),
        };
        if let Value::Object(own) = own_vars {
            locals.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        self.locals = Value::Object(locals);
        self
    }

    /// What a block's body will see: `{input, steps, vars}` as of now.
    pub fn snapshot(&self, input: &Value) -> Value {
        json!({"input": input, "steps": self.steps, "vars": self.locals})
    }

    /// The run's callback URLs, visible as `callbacks.<stepId>.url` (carried
    /// in the run's facts so the template context keeps its shape).
    pub fn set_callbacks(&mut self, callbacks: Value) {
        if let Some(run) = self.run.as_object_mut() {
            run.insert("callbacks".into(), callbacks);
        }
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
            locals: &self.locals,
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
pub fn next(wf: &CompiledWorkflow, records: &[StepRecord]) -> Next {
    for (i, step) in wf.steps.iter().enumerate() {
        match records.get(i) {
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
        reason: SkipReason,
    },
    Execute {
        config: Value,
        warnings: Vec<String>,
    },
    TemplateFailed {
        error: RunError,
    },
}

/// Renders the step's `if` and config, each within `max_bytes`.
pub fn prepare(step: &CompiledStep, ctx: &Context, max_bytes: usize) -> Prepared {
    let mut warnings = vec![];
    if let Some(cond) = &step.condition {
        match cond.render_within(ctx, max_bytes) {
            Ok(r) => {
                warnings.extend(r.warnings);
                if !is_truthy(&r.value) {
                    let reason = SkipReason::If {
                        template: cond.source().to_string(),
                    };
                    return Prepared::Skip { warnings, reason };
                }
            }
            Err(e) => {
                return Prepared::TemplateFailed {
                    error: template_error(step, "if", &e),
                };
            }
        }
    }
    match step.config.render_within(ctx, max_bytes) {
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
                error: template_error(step, &at, &e),
            }
        }
    }
}

fn template_error(step: &CompiledStep, at: &str, e: &TemplateError) -> RunError {
    match e.kind {
        TemplateErrorKind::TooLarge => RunError::too_large(&step.id, at, &e.to_string()),
        _ => RunError::template(&step.id, at, &e.to_string()),
    }
}

/// Why a value may not become a step's output: larger than the budget, or nested deeper
/// than run state may be. Both are final: the same input gives the same output.
pub fn check_output(step_id: &str, output: &Value, max_bytes: usize) -> Option<RunError> {
    if crate::limits::deeper_than(output, crate::limits::MAX_JSON_DEPTH) {
        return Some(RunError::output_too_deep(Some(step_id)));
    }
    if crate::limits::json_len_within(output, max_bytes).is_none() {
        return Some(RunError::output_too_large(step_id, max_bytes));
    }
    None
}

/// The output of a transform step is its rendered `mapping`.
pub fn transform_output(config: &Value) -> Value {
    config.get("mapping").cloned().unwrap_or(Value::Null)
}

/// The run's output: the workflow's `output`, else the last completed step's.
pub fn run_output(
    wf: &CompiledWorkflow,
    records: &[StepRecord],
    ctx: &Context,
    max_bytes: usize,
) -> Result<(Value, Vec<String>), RunError> {
    if let Some(out) = &wf.output {
        let (value, warnings) = out
            .render_within(ctx, max_bytes)
            .map(|r| (r.value, r.warnings))
            .map_err(|(_, e)| RunError::output_template(&e.to_string()))?;
        if crate::limits::deeper_than(&value, crate::limits::MAX_JSON_DEPTH) {
            return Err(RunError::output_too_deep(None));
        }
        return Ok((value, warnings));
    }
    let last = records
        .iter()
        .rev()
        .find(|r| r.status == StepStatus::Completed)
        .map(|r| r.output.clone())
        .unwrap_or(Value::Null);
    Ok((last, vec![]))
}

#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod waits_tests;
