//! The in-memory run loop: the same `engine::advance` the server's worker
//! drives, with the worker's "perform the effect" replaced by a lookup in the
//! mocks. The engine still decides everything (step order, `if`, transforms,
//! conditions, `stop`, retries and their backoff, waits, timeouts, the run's
//! output); this loop only answers its effects:
//!
//! - `Execute` (an `action` or `email` step): the step's mock, or the run
//!   stops with a missing mock naming the step (fail-closed).
//! - `Spawn` (a `workflow` step): the step's mock; else, when the called
//!   workflow's definition was loaded, its run in memory, recursively, under
//!   the same mocks; else a missing mock.
//! - `Park` (a wait, a retry delay): the clock jumps to the due time, so waits
//!   and retries complete at once while every attempt is still on record.
//!
//! There is nothing here to call: no HTTP or SMTP client, no store, no clock.

use super::mocks::{Mock, Mocks};
use crate::engine::{self, Effect, Event, RunState, RunStatus, StepRecord};
use crate::workflow::{CompiledWorkflow, StepKind};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;

/// 2026-01-01T00:00:00.000Z: test runs start here, so `now`, waits and
/// timestamps are the same on every machine.
pub const TEST_EPOCH_MS: i64 = 1_767_225_600_000;

/// Jitter drawn for every retry: 1.0 gives the policy's full (nominal) delay.
const JITTER: f64 = 1.0;

/// A run that never settles (which the engine rules out) is cut off here.
const MAX_TRANSITIONS: usize = 100_000;

/// Definitions a `workflow` step may run in memory, by workflow id.
#[derive(Default)]
pub struct Library<'a> {
    workflows: HashMap<String, &'a CompiledWorkflow>,
}

impl<'a> Library<'a> {
    pub fn add(&mut self, wf: &'a CompiledWorkflow) {
        self.workflows.insert(wf.id.clone(), wf);
    }

    /// Whether a step of some loaded workflow has this id (its mock is not a typo).
    pub fn has_step(&self, id: &str) -> bool {
        self.workflows.values().any(|w| w.step_index(id).is_some())
    }

    fn get(&self, id: &str) -> Option<&'a CompiledWorkflow> {
        self.workflows.get(id).copied()
    }
}

/// Where and how a run starts.
#[derive(Debug, Clone)]
pub struct Start {
    pub run_id: String,
    pub workflow_version: i64,
    pub at_ms: i64,
}

impl Default for Start {
    fn default() -> Start {
        Start {
            run_id: "run_test".into(),
            workflow_version: 1,
            at_ms: TEST_EPOCH_MS,
        }
    }
}

/// An effectful step the run reached without a mock: it was not performed.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MissingMock {
    pub step_id: String,
    /// `action`, `email`, `workflow`, …
    pub step_type: String,
    /// `stripe.createInvoice`, `http.request`, … (actions), or the called workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl MissingMock {
    pub fn message(&self) -> String {
        let what = match &self.target {
            Some(t) => format!("{} {t}", self.step_type),
            None => self.step_type.clone(),
        };
        format!(
            "step '{}' ({what}) has no mock: add \"{}\" to the case's mocks (the test runner never calls the outside world)",
            self.step_id, self.step_id
        )
    }
}

/// One step as the run left it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    pub id: String,
    #[serde(rename = "type")]
    pub step_type: String,
    pub status: String,
    pub output: Value,
    pub error: Value,
    pub attempts: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<Value>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The rendered config the effect would have received (effectful steps).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<Value>,
    /// The delay before each retry, as the step's policy decided it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retry_delays_ms: Vec<i64>,
    /// A `workflow` step run in memory: its child run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub child: Option<Box<Outcome>>,
}

/// How a run ended.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub workflow_id: String,
    /// A run status (`completed`, `failed`, `timed_out`), `rejected` when the
    /// input failed the schema, or `incomplete` when a mock was missing.
    pub status: String,
    pub input: Value,
    pub output: Value,
    pub error: Value,
    pub steps: Vec<StepOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_mock: Option<MissingMock>,
    /// Milliseconds the run would have taken (waits and retry delays).
    pub duration_ms: i64,
}

impl Outcome {
    pub fn step(&self, id: &str) -> Option<&StepOutcome> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The first missing mock, here or in a child run.
    pub fn first_missing(&self) -> Option<&MissingMock> {
        self.missing_mock.as_ref().or_else(|| {
            self.steps
                .iter()
                .find_map(|s| s.child.as_ref().and_then(|c| c.first_missing()))
        })
    }
}

/// Run `wf` on `input` (the input schema's defaults and checks first, as a
/// trigger does), answering effects from `mocks`.
pub fn run(
    wf: &CompiledWorkflow,
    input: Value,
    mocks: &Mocks,
    library: &Library,
    start: &Start,
) -> Outcome {
    run_at_depth(wf, input, mocks, library, start, 0, None)
}

fn run_at_depth(
    wf: &CompiledWorkflow,
    input: Value,
    mocks: &Mocks,
    library: &Library,
    start: &Start,
    depth: i64,
    deadline_at: Option<i64>,
) -> Outcome {
    let input = match &wf.input_schema {
        Some(schema) => match schema.apply(input.clone()) {
            Ok(v) => v,
            Err(violations) => {
                let details: Vec<Value> = violations
                    .into_iter()
                    .map(|v| json!({"path": v.path, "message": v.message}))
                    .collect();
                return Outcome {
                    workflow_id: wf.id.clone(),
                    status: "rejected".into(),
                    input,
                    output: Value::Null,
                    error: json!({"code": "VALIDATION_ERROR", "message": "Input validation failed", "details": details}),
                    steps: vec![],
                    missing_mock: None,
                    duration_ms: 0,
                };
            }
        },
        None => input,
    };
    let mut state = RunState::new(
        wf,
        start.run_id.clone(),
        start.workflow_version,
        input,
        RunStatus::Pending,
        None,
        false,
        vec![],
    );
    state.depth = depth;
    state.deadline_at = deadline_at;
    let mut extra: Vec<Extra> = vec![Extra::default(); wf.steps.len()];
    let mut now = start.at_ms;
    let mut event = Event::Claimed;
    let mut missing = None;
    for _ in 0..MAX_TRANSITIONS {
        let t = engine::advance(wf, &state, event, now, JITTER);
        state = t.state;
        event = match t.effect {
            Effect::Finish { .. } => break,
            Effect::Park { until } => {
                let due = until.max(now);
                for (i, rec) in state.steps.iter().enumerate() {
                    if rec.status == engine::StepStatus::Retrying {
                        extra[i].retry_delays_ms.push(due - now);
                    }
                }
                now = due;
                Event::Claimed
            }
            Effect::Execute { idx, config, .. } => {
                let step = &wf.steps[idx];
                extra[idx].config = Some(config);
                match mocks.get(&step.id) {
                    Some(Mock::Output(output)) => Event::StepSucceeded {
                        idx,
                        output: output.clone(),
                    },
                    Some(Mock::Error {
                        code,
                        message,
                        retryable,
                    }) => Event::StepFailed {
                        idx,
                        error: engine::RunError::step(code, message.clone()),
                        retryable: *retryable,
                        retry_after_ms: None,
                    },
                    None => {
                        let target = match &step.kind {
                            StepKind::Action(kind) => Some(kind.as_str().to_string()),
                            _ => None,
                        };
                        missing = Some(MissingMock {
                            step_id: step.id.clone(),
                            step_type: step.kind.type_name().into(),
                            target,
                        });
                        break;
                    }
                }
            }
            Effect::Spawn(sp) => {
                let step_id = sp.step_id.clone();
                extra[sp.idx].config =
                    Some(json!({"workflowId": sp.workflow_id, "input": sp.input, "wait": sp.wait}));
                // The child's result as the store records it on the waiting step.
                let (child, output) = match (mocks.get(&step_id), library.get(&sp.workflow_id)) {
                    (Some(Mock::Output(out)), _) => (
                        json!({"runId": sp.child_run_id, "status": "completed", "output": out, "error": null}),
                        out.clone(),
                    ),
                    (Some(Mock::Error { code, message, .. }), _) => (
                        json!({"runId": sp.child_run_id, "status": "failed", "output": null,
                               "error": {"code": code, "message": message}}),
                        Value::Null,
                    ),
                    (None, Some(target)) => {
                        let child_start = Start {
                            run_id: sp.child_run_id.clone(),
                            workflow_version: 1,
                            at_ms: now,
                        };
                        let outcome = run_at_depth(
                            target,
                            sp.input.clone(),
                            mocks,
                            library,
                            &child_start,
                            sp.depth,
                            sp.deadline_at,
                        );
                        let stuck = outcome.first_missing().cloned();
                        let child = json!({"runId": sp.child_run_id, "status": outcome.status,
                                           "output": outcome.output, "error": outcome.error});
                        let output = outcome.output.clone();
                        now += outcome.duration_ms;
                        extra[sp.idx].child = Some(Box::new(outcome));
                        if stuck.is_some() {
                            missing = stuck;
                            break;
                        }
                        (child, output)
                    }
                    (None, None) => {
                        missing = Some(MissingMock {
                            step_id,
                            step_type: "workflow".into(),
                            target: Some(sp.workflow_id.clone()),
                        });
                        break;
                    }
                };
                if sp.wait {
                    if let Some(rec) = state.steps.get_mut(sp.idx)
                        && let Value::Object(o) = &mut rec.output
                    {
                        o.insert("child".into(), child);
                    }
                    Event::Claimed
                } else {
                    let output = match mocks.get(&step_id) {
                        Some(_) => output,
                        None => json!({"runId": sp.child_run_id}),
                    };
                    Event::StepSucceeded {
                        idx: sp.idx,
                        output,
                    }
                }
            }
        };
    }
    let status = if missing.is_some() {
        "incomplete".to_string()
    } else {
        state.status.as_str().to_string()
    };
    let steps = wf
        .steps
        .iter()
        .zip(state.steps.iter())
        .zip(extra)
        .map(|((step, rec), x)| step_outcome(step.kind.type_name(), rec, x))
        .collect();
    Outcome {
        workflow_id: wf.id.clone(),
        status,
        input: state.input,
        output: state.output,
        error: engine::RunError::to_value(&state.error),
        steps,
        missing_mock: missing,
        duration_ms: now - start.at_ms,
    }
}

/// What the loop learns about a step beyond its record.
#[derive(Debug, Clone, Default)]
struct Extra {
    config: Option<Value>,
    retry_delays_ms: Vec<i64>,
    child: Option<Box<Outcome>>,
}

fn step_outcome(step_type: &str, rec: &StepRecord, x: Extra) -> StepOutcome {
    StepOutcome {
        id: rec.step_id.clone(),
        step_type: step_type.into(),
        status: rec.status.as_str().into(),
        output: rec.output.clone(),
        error: engine::RunError::to_value(&rec.error),
        attempts: rec.attempts,
        skip_reason: rec.skip_reason.as_ref().map(|r| r.to_value()),
        warnings: rec.warnings.clone(),
        config: x.config,
        retry_delays_ms: x.retry_delays_ms,
        child: x.child,
    }
}
