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
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;

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
        self.workflows.values().any(|w| has_step(w, id))
    }

    fn get(&self, id: &str) -> Option<&'a CompiledWorkflow> {
        self.workflows.get(id).copied()
    }
}

/// Whether `wf` has a step with this id, block bodies included.
pub fn has_step(wf: &CompiledWorkflow, id: &str) -> bool {
    wf.steps.iter().any(|s| {
        s.id == id
            || match &s.kind {
                StepKind::Loop(spec) => has_step(&spec.body, id),
                StepKind::Parallel(spec) => spec.branches.iter().any(|(_, b)| has_step(b, id)),
                _ => false,
            }
    })
}

/// The mock of a step; in a loop item's run, a list mock gives the item its element.
fn mock_for(mocks: &Mocks, id: &str, item: Option<usize>, locals: &Value) -> Option<Mock> {
    let mock = match (mocks.get(id)?, item) {
        (Mock::Output(Value::Array(list)), Some(k)) => {
            let one = list.get(k)?;
            Mock::from_value(one).unwrap_or_else(|_| Mock::Output(one.clone()))
        }
        (m, _) => m.clone(),
    };
    Some(match mock {
        Mock::Output(v) if locals.as_object().is_some_and(|l| !l.is_empty()) => {
            render_mock(&v, locals)
        }
        m => m,
    })
}

/// Inside a loop body a mock's strings may be templates over the item's
/// variables (`"INV-{{ invoice.id }}"`, `"{{ i | times: 10 }}"`): each item
/// gets its own answer. A template that fails makes the step fail with
/// `TEMPLATE_ERROR`, as a step's own config would.
fn render_mock(v: &Value, locals: &Value) -> Mock {
    let names: Vec<String> = locals
        .as_object()
        .map(|l| l.keys().cloned().collect())
        .unwrap_or_default();
    let compiled =
        crate::template::with_locals(&names, || crate::template::CompiledValue::compile(v));
    let failed = |message: String| Mock::Error {
        code: "TEMPLATE_ERROR".into(),
        message: format!("in the mock: {message}"),
        retryable: false,
    };
    let compiled = match compiled {
        Ok(c) => c,
        Err(errors) => {
            let first = errors.first().map(|e| e.1.to_string()).unwrap_or_default();
            return failed(first);
        }
    };
    let (empty, null) = (Map::new(), Value::Null);
    let ctx = crate::template::Context {
        input: &null,
        steps: &empty,
        variables: &null,
        run: &null,
        workflow: &null,
        now: "",
        locals,
    };
    match compiled.render(&ctx) {
        Ok(r) => Mock::Output(r.value),
        Err(e) => failed(e.1.to_string()),
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

/// Where a run sits in its tree: a child run (a sub-workflow, a loop item, a
/// parallel branch) is one deeper than its parent and never outlives it.
#[derive(Debug, Clone, Default)]
struct Frame {
    depth: i64,
    deadline_at: Option<i64>,
    /// A block body's run: what its block saw (`{input, steps, vars}`).
    outer: Option<Arc<Value>>,
    /// A loop item's index: a list mock of a body step gives this item its element.
    item: Option<usize>,
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
    /// A `loop` or `parallel` step: the run of each item or branch, in key order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<Outcome>,
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
    /// A loop item's run ended with a `stop` that has `breakLoop`.
    #[serde(skip)]
    pub break_loop: bool,
}

impl Outcome {
    pub fn step(&self, id: &str) -> Option<&StepOutcome> {
        self.steps.iter().find(|s| s.id == id)
    }

    /// The first missing mock, here or in a child run.
    pub fn first_missing(&self) -> Option<&MissingMock> {
        self.missing_mock.as_ref().or_else(|| {
            self.steps.iter().find_map(|s| {
                s.child
                    .as_ref()
                    .and_then(|c| c.first_missing())
                    .or_else(|| s.children.iter().find_map(|c| c.first_missing()))
            })
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
    run_in(wf, input, mocks, library, start, Frame::default())
}

fn run_in(
    wf: &CompiledWorkflow,
    input: Value,
    mocks: &Mocks,
    library: &Library,
    start: &Start,
    frame: Frame,
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
                    break_loop: false,
                };
            }
        },
        None => input,
    };
    // A loop item's variables (its run's input, with the enclosing loops'):
    // what template mocks of its body see.
    let locals = match (frame.item, &input) {
        (Some(_), Value::Object(own)) => {
            let mut vars = match frame.outer.as_deref().and_then(|o| o.get("vars")) {
                Some(Value::Object(v)) => v.clone(),
                _ => Map::new(),
            };
            vars.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
            Value::Object(vars)
        }
        _ => Value::Null,
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
    state.depth = frame.depth;
    state.deadline_at = frame.deadline_at;
    state.outer = frame.outer.clone();
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
                match mock_for(mocks, &step.id, frame.item, &locals) {
                    Some(Mock::Output(output)) => Event::StepSucceeded { idx, output },
                    Some(Mock::Error {
                        code,
                        message,
                        retryable,
                    }) => Event::StepFailed {
                        idx,
                        error: engine::RunError::step(&code, message),
                        retryable,
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
            // An approval or a callback wait: the mock is what the people or
            // the outside system answered, the step's output. Fail-closed too.
            Effect::Suspend(sp) => match mock_for(mocks, &sp.step_id, frame.item, &locals) {
                Some(Mock::Output(output)) => Event::StepSucceeded {
                    idx: sp.idx,
                    output,
                },
                Some(Mock::Error {
                    code,
                    message,
                    retryable,
                }) => Event::StepFailed {
                    idx: sp.idx,
                    error: engine::RunError::step(&code, message),
                    retryable,
                    retry_after_ms: None,
                },
                None => {
                    missing = Some(MissingMock {
                        step_id: sp.step_id.clone(),
                        step_type: wf.steps[sp.idx].kind.type_name().into(),
                        target: None,
                    });
                    break;
                }
            },
            Effect::FanOut(fo) => {
                // Each item or branch runs its body in memory, in key order, through
                // the same engine; the join goes on the step as the store records it.
                let outer = Arc::new(fo.scope.clone());
                let mut join = vec![];
                let mut children = vec![];
                let mut stopped = false;
                for (k, key) in fo.keys.iter().enumerate() {
                    let body = match wf.body(&fo.step_id, key) {
                        Some(b) if !stopped => b,
                        _ => {
                            join.push(json!({"key": key, "status": null}));
                            continue;
                        }
                    };
                    let child_start = Start {
                        run_id: engine::child_run_id(&state.run_id, &fo.step_id, key),
                        workflow_version: start.workflow_version,
                        at_ms: now,
                    };
                    let child_frame = Frame {
                        depth: fo.depth,
                        deadline_at: fo.deadline_at,
                        outer: Some(outer.clone()),
                        item: (fo.kind == "loop").then_some(k),
                    };
                    let input = fo.inputs.get(k).cloned().unwrap_or_else(|| json!({}));
                    let outcome = run_in(&body, input, mocks, library, &child_start, child_frame);
                    now += outcome.duration_ms;
                    if let Some(m) = outcome.first_missing() {
                        missing = Some(m.clone());
                    }
                    join.push(
                        json!({"key": key, "runId": child_start.run_id, "status": outcome.status,
                                     "output": outcome.output, "error": outcome.error}),
                    );
                    stopped =
                        outcome.break_loop || (fo.stop_on_failure && outcome.status != "completed");
                    children.push(outcome);
                    if missing.is_some() {
                        break;
                    }
                }
                extra[fo.idx].children = children;
                if missing.is_some() {
                    break;
                }
                if let Some(rec) = state.steps.get_mut(fo.idx)
                    && let Value::Object(o) = &mut rec.output
                {
                    o.insert("join".into(), Value::Array(join));
                }
                Event::Claimed
            }
            Effect::Spawn(sp) => {
                let step_id = sp.step_id.clone();
                extra[sp.idx].config =
                    Some(json!({"workflowId": sp.workflow_id, "input": sp.input, "wait": sp.wait}));
                // The child's result as the store records it on the waiting step.
                let mock = mock_for(mocks, &step_id, frame.item, &locals);
                let (child, output) = match (&mock, library.get(&sp.workflow_id)) {
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
                        let child_frame = Frame {
                            depth: sp.depth,
                            deadline_at: sp.deadline_at,
                            ..Frame::default()
                        };
                        let outcome = run_in(
                            target,
                            sp.input.clone(),
                            mocks,
                            library,
                            &child_start,
                            child_frame,
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
                    let output = match mock {
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
        break_loop: state.break_loop,
    }
}

/// What the loop learns about a step beyond its record.
#[derive(Debug, Clone, Default)]
struct Extra {
    config: Option<Value>,
    retry_delays_ms: Vec<i64>,
    child: Option<Box<Outcome>>,
    children: Vec<Outcome>,
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
        children: x.children,
    }
}
