//! `advance`: the whole run lifecycle as one pure function,
//! `(definition, &RunState, Event, now, jitter) -> Transition { state, effect }`.
//! It owns step order, `if`, transforms, `wait` steps, retries and backoff,
//! step and run timeouts (also while parked), cancel, skipping the rest after
//! a failure, and the run's output. The worker only performs the effect and
//! commits the state; it decides nothing.

use super::{
    FailureDecision, Next, Prepared, RunError, RunFacts, RunStatus, Scope, SkipReason, StepRecord,
    StepStatus, check_output, control, next, on_step_error, prepare, run_output, transform_output,
};
use crate::limits::RunLimits;
use crate::time::{parse_rfc3339, rfc3339};
use crate::workflow::{CompiledWorkflow, StepKind};
use serde_json::{Value, json};

/// Everything the rules need to know about one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
    pub run_id: String,
    pub workflow_id: String,
    pub workflow_version: i64,
    pub input: Value,
    pub status: RunStatus,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
    /// One record per step of the definition, in order (blank = pending).
    pub steps: Vec<StepRecord>,
    pub output: Value,
    pub error: Option<RunError>,
    /// Set when the run is parked: due again at this time.
    pub park_until: Option<i64>,
    /// A cancel recorded in the store before this claim.
    pub cancel_requested: bool,
    /// 0 for a run started from outside; a child run is one deeper than its parent.
    pub depth: i64,
    /// The latest deadline a parent allows this child run (ms), if any.
    pub deadline_at: Option<i64>,
    /// The budget of values and how often a run may be recovered (the server's settings).
    pub limits: RunLimits,
    /// How often the store took this run back from a holder that abandoned its lease
    /// (crashed, killed or hung while holding it).
    pub recoveries: u32,
}

impl RunState {
    /// The state of a stored run, with a blank record for every step that
    /// has none yet.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        wf: &CompiledWorkflow,
        run_id: String,
        workflow_version: i64,
        input: Value,
        status: RunStatus,
        started_at: Option<i64>,
        cancel_requested: bool,
        records: Vec<StepRecord>,
    ) -> RunState {
        let mut steps: Vec<StepRecord> = wf
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepRecord::blank(i, &s.id))
            .collect();
        for r in records {
            if let Some(slot) = steps.get_mut(r.idx) {
                *slot = r;
            }
        }
        RunState {
            run_id,
            workflow_id: wf.id.clone(),
            workflow_version,
            input,
            status,
            started_at,
            completed_at: None,
            steps,
            output: Value::Null,
            error: None,
            park_until: None,
            cancel_requested,
            depth: 0,
            deadline_at: None,
            limits: RunLimits::default(),
            recoveries: 0,
        }
    }

    /// The same state under the server's limits, as recovered `recoveries` times.
    pub fn with_limits(mut self, limits: RunLimits, recoveries: u32) -> RunState {
        self.limits = limits;
        self.recoveries = recoveries;
        self
    }

    /// When the run's `timeoutMs` runs out, once it has started.
    /// A child run's deadline is never later than its parent's.
    pub fn deadline(&self, wf: &CompiledWorkflow) -> Option<i64> {
        let own = wf.timeout_ms.and_then(|t| {
            let limit = i64::try_from(t).unwrap_or(i64::MAX);
            Some(self.started_at?.saturating_add(limit))
        });
        match (own, self.deadline_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl StepRecord {
    pub fn blank(idx: usize, step_id: &str) -> StepRecord {
        StepRecord {
            idx,
            step_id: step_id.into(),
            status: StepStatus::Pending,
            output: Value::Null,
            error: None,
            warnings: vec![],
            attempts: 0,
            started_at: None,
            completed_at: None,
            skip_reason: None,
        }
    }
}

/// Something that happened to a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A worker holds the run: it is new, due after a park, or resumed after
    /// its previous holder died.
    Claimed,
    StepSucceeded {
        idx: usize,
        output: Value,
    },
    StepFailed {
        idx: usize,
        error: RunError,
        retryable: bool,
        retry_after_ms: Option<u64>,
    },
    /// A cancel was recorded (answered by the store, or signalled).
    CancelRequested,
    /// The run's stored definition cannot be loaded or no longer compiles.
    DefinitionUnavailable,
}

/// What the worker must do next. One per transition.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Commit the state, then run this action step with this time limit and
    /// report `StepSucceeded` or `StepFailed`.
    Execute {
        idx: usize,
        config: Value,
        timeout_ms: u64,
    },
    /// Commit the state with the run back in the queue, due at `until`.
    Park { until: i64 },
    /// Commit the final state; the run is over.
    Finish { status: RunStatus },
    /// Commit the state together with a child run of `workflow_id` (created
    /// once: `child_run_id` is derived from the parent, step and key). With
    /// `wait`, the commit also suspends the run until the child's finish
    /// queues it again; without, report `StepSucceeded` with `{runId}`.
    Spawn(Spawn),
}

/// A child run to create, as the engine decided it.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawn {
    pub idx: usize,
    pub step_id: String,
    pub key: String,
    pub child_run_id: String,
    pub workflow_id: String,
    pub version: Option<i64>,
    pub input: Value,
    pub wait: bool,
    pub depth: i64,
    /// The parent's deadline: the child's may not be later.
    pub deadline_at: Option<i64>,
}

/// Sub-workflow chains are at most this deep.
pub const MAX_DEPTH: i64 = 25;

/// The id of the child run of `(parent, step, key)`: the same on every
/// attempt, so a spawn repeated after a crash finds the child it created.
pub fn child_run_id(parent_run_id: &str, step_id: &str, key: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{parent_run_id}\n{step_id}\n{key}").as_bytes());
    format!("run_{}", &crate::ids::hex(&digest)[..24])
}

#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub state: RunState,
    pub effect: Effect,
}

/// Stands in for a definition that cannot be loaded, so the run can still
/// be finished (with `Event::DefinitionUnavailable`).
pub fn placeholder_workflow(id: &str) -> CompiledWorkflow {
    CompiledWorkflow {
        id: id.into(),
        name: id.into(),
        status: None,
        definition: Value::Null,
        steps: vec![],
        output: None,
        variables: Value::Null,
        input_schema: None,
        timeout_ms: None,
        concurrency: None,
        trigger: Default::default(),
        warnings: vec![],
    }
}

/// Apply `event` to `state` and run every pure step that follows, up to the
/// next action, park or finish.
pub fn advance(
    wf: &CompiledWorkflow,
    state: &RunState,
    event: Event,
    now: i64,
    jitter: f64,
) -> Transition {
    let mut s = state.clone();
    s.park_until = None;
    if s.status.is_terminal() {
        // Nothing happens to a finished run.
        let status = s.status;
        return Transition {
            state: s,
            effect: Effect::Finish { status },
        };
    }
    s.started_at.get_or_insert(now);
    s.status = RunStatus::Running;
    let deadline = s.deadline(wf);
    match event {
        Event::Claimed if s.cancel_requested => return finish_cancelled(wf, s, now),
        Event::Claimed
            if s.limits.max_recoveries > 0 && s.recoveries >= s.limits.max_recoveries =>
        {
            return finish_interrupted(wf, s, now);
        }
        Event::Claimed => {}
        Event::CancelRequested => return finish_cancelled(wf, s, now),
        Event::DefinitionUnavailable => {
            let error = RunError::internal("the run's workflow version cannot be loaded");
            return finish(wf, s, RunStatus::Failed, Some(error), now);
        }
        Event::StepSucceeded { idx, output } => {
            let max = s.limits.max_value_bytes;
            if let Some(rec) = s.steps.get_mut(idx) {
                match check_output(&rec.step_id, &output, max) {
                    // Nothing of an output that cannot be stored is kept.
                    Some(error) => {
                        rec.status = StepStatus::Failed;
                        rec.error = Some(error);
                    }
                    None => {
                        rec.status = StepStatus::Completed;
                        rec.output = output;
                        rec.error = None;
                    }
                }
                rec.completed_at = Some(now);
            }
        }
        Event::StepFailed {
            idx,
            error,
            retryable,
            retry_after_ms,
        } => {
            if let (Some(rec), Some(step)) = (s.steps.get_mut(idx), wf.steps.get(idx)) {
                rec.error = Some(error);
                let past_deadline = deadline.is_some_and(|d| now >= d);
                let decision = if past_deadline {
                    FailureDecision::FailRun
                } else {
                    let attempts = u32::try_from(rec.attempts).unwrap_or(u32::MAX);
                    on_step_error(
                        step,
                        attempts,
                        retryable,
                        retry_after_ms,
                        now,
                        deadline,
                        jitter,
                    )
                };
                match decision {
                    FailureDecision::RetryAt(at) => {
                        rec.status = StepStatus::Retrying;
                        return park(s, at);
                    }
                    FailureDecision::Continue | FailureDecision::FailRun => {
                        rec.status = StepStatus::Failed;
                        rec.completed_at = Some(now);
                    }
                }
            }
        }
    }
    drive(wf, s, now, deadline)
}

/// Settle pure steps in order until something needs the outside world.
fn drive(wf: &CompiledWorkflow, mut s: RunState, now: i64, deadline: Option<i64>) -> Transition {
    let now_text = rfc3339(now);
    let started_text = rfc3339(s.started_at.unwrap_or(now));
    loop {
        if deadline.is_some_and(|d| now >= d) {
            let limit = wf.timeout_ms.unwrap_or(0);
            return finish(
                wf,
                s,
                RunStatus::TimedOut,
                Some(RunError::run_timeout(limit)),
                now,
            );
        }
        let facts = RunFacts {
            run_id: &s.run_id,
            workflow_id: &s.workflow_id,
            workflow_name: &wf.name,
            workflow_version: s.workflow_version,
            started_at: &started_text,
            input: &s.input,
        };
        let scope = Scope::new(&facts, &s.steps);
        let i = match next(wf, &s.steps) {
            Next::Finish => {
                let ctx = scope.context(&s.input, &wf.variables, &now_text);
                return match run_output(wf, &s.steps, &ctx, s.limits.max_value_bytes) {
                    Ok((output, _)) => {
                        s.output = output;
                        finish(wf, s, RunStatus::Completed, None, now)
                    }
                    Err(error) => finish(wf, s, RunStatus::Failed, Some(error), now),
                };
            }
            Next::Fail(i) => {
                let error = RunError::step_failed(&s.steps[i].step_id, s.steps[i].error.as_ref());
                return finish(wf, s, RunStatus::Failed, Some(error), now);
            }
            Next::Step(i) => i,
        };
        let step = &wf.steps[i];
        // A branch not taken skips the step before its `if` is even rendered.
        let prepared = match control::guard_skip(step, &s.steps) {
            Some(reason) => Prepared::Skip {
                warnings: vec![],
                reason,
            },
            None => prepare(
                step,
                &scope.context(&s.input, &wf.variables, &now_text),
                s.limits.max_value_bytes,
            ),
        };
        if let (StepKind::Stop, Prepared::Execute { config, .. }) = (&step.kind, &prepared) {
            let ctx = scope.context(&s.input, &wf.variables, &now_text);
            let output = match config.get("output") {
                Some(out) => Ok(out.clone()),
                // Without its own output the run's is computed as if it ended here.
                None => {
                    run_output(wf, &s.steps, &ctx, s.limits.max_value_bytes).map(|(out, _)| out)
                }
            };
            drop(scope);
            return stop_run(wf, s, i, config, output, now);
        }
        drop(scope);
        let rec = &mut s.steps[i];
        rec.started_at.get_or_insert(now);
        match prepared {
            Prepared::Skip { warnings, reason } => {
                rec.status = StepStatus::Skipped;
                rec.warnings = warnings;
                rec.skip_reason = Some(reason);
                rec.completed_at = Some(now);
            }
            Prepared::TemplateFailed { error } => {
                rec.attempts += 1;
                rec.status = StepStatus::Failed;
                rec.error = Some(error);
                rec.completed_at = Some(now);
            }
            Prepared::Execute { config, warnings } => {
                rec.warnings = warnings;
                match &step.kind {
                    StepKind::Transform => {
                        rec.attempts += 1;
                        let output = transform_output(&config);
                        match check_output(&rec.step_id, &output, s.limits.max_value_bytes) {
                            Some(error) => {
                                rec.status = StepStatus::Failed;
                                rec.error = Some(error);
                            }
                            None => {
                                rec.status = StepStatus::Completed;
                                rec.output = output;
                            }
                        }
                        rec.completed_at = Some(now);
                    }
                    StepKind::Condition => {
                        // Settled here and committed with whatever comes next, before any
                        // later effect: a crash never evaluates it a second time.
                        rec.attempts += 1;
                        rec.completed_at = Some(now);
                        match control::evaluate_step(&step.id, &config) {
                            Ok(output) => {
                                rec.status = StepStatus::Completed;
                                rec.output = output;
                            }
                            Err(error) => {
                                rec.status = StepStatus::Failed;
                                rec.error = Some(error);
                            }
                        }
                    }
                    // Handled above, where the scope is still at hand.
                    StepKind::Stop => {}
                    StepKind::Workflow => {
                        if let Some(t) = workflow_step(wf, &mut s, i, config, now, deadline) {
                            return t;
                        }
                    }
                    StepKind::Wait => {
                        if let Some(until) = wait_step(rec, &config, now) {
                            // A parked run still times out on time.
                            let until = deadline.map_or(until, |d| until.min(d));
                            return park(s, until);
                        }
                    }
                    StepKind::Action(_) => {
                        // The attempt is on record before its side effect starts.
                        rec.attempts += 1;
                        rec.status = StepStatus::Running;
                        rec.error = None;
                        let left = deadline.map_or(u64::MAX, |d| (d - now).max(1) as u64);
                        return Transition {
                            state: s,
                            effect: Effect::Execute {
                                idx: i,
                                config,
                                timeout_ms: step.timeout_ms.min(left),
                            },
                        };
                    }
                }
            }
        }
    }
}

/// A `stop` step: it completes, every later step is skipped naming it, and the run ends
/// with the stop's status and output (or error).
fn stop_run(
    wf: &CompiledWorkflow,
    mut s: RunState,
    i: usize,
    config: &Value,
    output: Result<Value, RunError>,
    now: i64,
) -> Transition {
    let stop_id = s.steps[i].step_id.clone();
    let failed = config.get("status").and_then(Value::as_str) == Some("failed");
    {
        let rec = &mut s.steps[i];
        rec.started_at.get_or_insert(now);
        rec.attempts += 1;
        rec.status = StepStatus::Completed;
        rec.output = config.get("output").cloned().unwrap_or(Value::Null);
        rec.completed_at = Some(now);
    }
    for rec in s.steps.iter_mut().skip(i + 1) {
        if !rec.status.is_settled() {
            rec.status = StepStatus::Skipped;
            rec.skip_reason = Some(SkipReason::Stop {
                stop: stop_id.clone(),
            });
            rec.completed_at = Some(now);
        }
    }
    if failed {
        let field = |k: &str| {
            config
                .get("error")
                .and_then(|e| e.get(k))
                .map(crate::template::value_text)
                .unwrap_or_default()
        };
        let error = RunError::stopped(&stop_id, &field("code"), &field("message"));
        return finish(wf, s, RunStatus::Failed, Some(error), now);
    }
    match output {
        Ok(out) => {
            s.output = out;
            finish(wf, s, RunStatus::Completed, None, now)
        }
        Err(error) => finish(wf, s, RunStatus::Failed, Some(error), now),
    }
}

/// A `workflow` step: settle it from its child's recorded finish, or spawn
/// (again: the spawn is idempotent) the child. `None`: settled, go on.
fn workflow_step(
    wf: &CompiledWorkflow,
    s: &mut RunState,
    i: usize,
    config: Value,
    now: i64,
    deadline: Option<i64>,
) -> Option<Transition> {
    let step = &wf.steps[i];
    let wait = config.get("wait").and_then(Value::as_bool).unwrap_or(true);
    let child_id = child_run_id(&s.run_id, &step.id, "0");
    let depth = s.depth + 1;
    let rec = &mut s.steps[i];
    if rec.status == StepStatus::Waiting
        && let Some(child) = rec.output.get("child").cloned()
    {
        // The child's finish was recorded on this step in the commit that ended it.
        rec.completed_at = Some(now);
        let status = child.get("status").and_then(Value::as_str).unwrap_or("");
        if status == "completed" {
            rec.status = StepStatus::Completed;
            rec.output = child.get("output").cloned().unwrap_or(Value::Null);
        } else {
            let cause = child.get("error").cloned().unwrap_or(Value::Null);
            rec.status = StepStatus::Failed;
            let mut error = RunError::child_failed(&step.id, &child_id, status, cause.clone());
            error.path = None;
            rec.output = json!({"runId": child_id, "status": status, "error": cause});
            rec.error = Some(error);
        }
        return None;
    }
    if depth > MAX_DEPTH {
        rec.attempts += 1;
        rec.status = StepStatus::Failed;
        rec.error = Some(RunError::max_depth(&step.id, MAX_DEPTH));
        rec.completed_at = Some(now);
        return None;
    }
    if rec.status != StepStatus::Waiting && rec.status != StepStatus::Running {
        rec.attempts += 1;
    }
    rec.error = None;
    if wait {
        rec.status = StepStatus::Waiting;
        rec.output = json!({
            "waitingFor": "children",
            "runId": child_id,
            "progress": {"total": 1, "running": 1, "completed": 0, "failed": 0},
        });
    } else {
        rec.status = StepStatus::Running;
    }
    let spawn = Spawn {
        idx: i,
        step_id: step.id.clone(),
        key: "0".into(),
        child_run_id: child_id,
        workflow_id: config
            .get("workflowId")
            .map(crate::template::value_text)
            .unwrap_or_default(),
        version: config.get("version").and_then(Value::as_i64),
        input: config.get("input").cloned().unwrap_or_else(|| json!({})),
        wait,
        depth,
        deadline_at: deadline,
    };
    if wait {
        // Waiting for the child holds no worker; a run with a deadline is
        // due again then (to time out), whatever its child is doing.
        s.park_until = deadline;
    }
    Some(Transition {
        state: s.clone(),
        effect: Effect::Spawn(spawn),
    })
}

/// A wait step: settle it when due (`None`), else mark it waiting and
/// return when it is due. The due time is fixed at its first start.
fn wait_step(rec: &mut StepRecord, config: &Value, now: i64) -> Option<i64> {
    let started = rec.started_at.unwrap_or(now);
    let due = if rec.status == StepStatus::Waiting {
        rec.output
            .get("resumeAt")
            .and_then(Value::as_str)
            .and_then(parse_rfc3339)
    } else {
        match (
            config.get("durationMs").and_then(Value::as_u64),
            config.get("until"),
        ) {
            (Some(ms), _) => Some(started.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))),
            (None, Some(Value::String(s))) => parse_rfc3339(s),
            _ => None,
        }
    };
    let Some(due) = due else {
        rec.attempts += 1;
        rec.status = StepStatus::Failed;
        rec.error = Some(RunError::invalid_config(format!(
            "step '{}': wait needs durationMs (milliseconds) or until (RFC 3339)",
            rec.step_id
        )));
        rec.completed_at = Some(now);
        return None;
    };
    if due <= now {
        rec.attempts = rec.attempts.max(1);
        rec.status = StepStatus::Completed;
        rec.output = json!({"waitedMs": now - started});
        rec.completed_at = Some(now);
        return None;
    }
    rec.status = StepStatus::Waiting;
    rec.output = json!({"resumeAt": rfc3339(due)});
    Some(due)
}

fn park(mut s: RunState, until: i64) -> Transition {
    s.park_until = Some(until);
    Transition {
        state: s,
        effect: Effect::Park { until },
    }
}

/// Poison-pill protection: the step the run was on (the first unsettled one) fails with
/// `RUN_INTERRUPTED`, and so does the run, instead of being resumed into the same crash.
fn finish_interrupted(wf: &CompiledWorkflow, mut s: RunState, now: i64) -> Transition {
    let times = s.recoveries;
    let at = match next(wf, &s.steps) {
        Next::Step(i) => s.steps.get_mut(i),
        Next::Finish | Next::Fail(_) => None,
    };
    let error = match at {
        Some(rec) => {
            let error = RunError::interrupted(Some(&rec.step_id), times);
            rec.status = StepStatus::Failed;
            rec.error = Some(error.clone());
            rec.started_at.get_or_insert(now);
            rec.completed_at = Some(now);
            error
        }
        None => RunError::interrupted(None, times),
    };
    finish(wf, s, RunStatus::Failed, Some(error), now)
}

fn finish_cancelled(wf: &CompiledWorkflow, s: RunState, now: i64) -> Transition {
    finish(
        wf,
        s,
        RunStatus::Cancelled,
        Some(RunError::cancelled()),
        now,
    )
}

/// End the run; a run that ends early leaves no step looking as if it
/// might still run.
fn finish(
    wf: &CompiledWorkflow,
    mut s: RunState,
    status: RunStatus,
    error: Option<RunError>,
    now: i64,
) -> Transition {
    if status != RunStatus::Completed {
        for rec in s.steps.iter_mut().take(wf.steps.len()) {
            if !rec.status.is_settled() {
                rec.status = StepStatus::Skipped;
            }
        }
        s.output = Value::Null;
    }
    s.status = status;
    s.error = error;
    s.completed_at = Some(now);
    s.park_until = None;
    Transition {
        state: s,
        effect: Effect::Finish { status },
    }
}
