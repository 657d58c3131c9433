//! `simulate`: a new definition replayed against a recorded run. Each
//! effectful step is answered by the recorded result of the step with the same
//! id (fail-closed: a step with no recording stops the replay and is reported
//! as needing a live call); the report says which branches change, which steps
//! change status, and how the final output differs.

use super::diff::{Difference, diff};
use super::mocks::{Mock, Mocks};
use super::runner::{Library, MissingMock, Outcome, Start, TEST_EPOCH_MS, run};
use crate::api::RunView;
use crate::workflow::{CompiledWorkflow, StepKind};
use serde::Serialize;
use serde_json::Value;

/// Step types whose result is not computed by the engine but recorded.
fn recorded_as_mock(step_type: &str) -> bool {
    !matches!(
        step_type,
        "transform" | "condition" | "stop" | "wait" | "loop" | "parallel"
    )
}

/// The recorded results of a run's effectful steps, as mocks.
pub fn mocks_from(recorded: &RunView) -> Mocks {
    let mut mocks = Mocks::default();
    for s in recorded
        .steps
        .iter()
        .filter(|s| recorded_as_mock(&s.step_type))
    {
        match s.status.as_str() {
            "completed" => mocks.insert(&s.id, Mock::Output(s.output.clone())),
            "failed" => {
                let text = |k: &str| {
                    s.error
                        .get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                mocks.insert(
                    &s.id,
                    Mock::Error {
                        code: text("code"),
                        message: text("message"),
                        retryable: false,
                    },
                );
            }
            _ => {}
        }
    }
    mocks
}

/// A condition that takes another branch than it did.
#[derive(Debug, Clone, Serialize)]
pub struct BranchChange {
    pub step: String,
    /// `then`, `else`, `skipped`, `failed`, or `null` when it did not exist or run.
    pub was: Option<String>,
    pub now: Option<String>,
}

/// A step whose status differs from the recorded one.
#[derive(Debug, Clone, Serialize)]
pub struct StepChange {
    pub step: String,
    pub was: Option<String>,
    pub now: String,
}

/// One recorded run, replayed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Replay {
    pub run_id: String,
    pub recorded_version: i64,
    pub recorded_status: String,
    pub status: String,
    pub branches: Vec<BranchChange>,
    pub steps: Vec<StepChange>,
    /// Effectful steps without a recording: the replay stopped at the first.
    pub live_calls: Vec<MissingMock>,
    /// The final output's differences (none when the replay stopped early).
    pub output: Vec<Difference>,
    pub changed: bool,
    pub replay: Outcome,
}

fn branch_of(status: &str, output: &Value) -> Option<String> {
    match status {
        "completed" => output
            .get("branch")
            .and_then(Value::as_str)
            .map(String::from),
        "skipped" | "failed" => Some(status.into()),
        _ => None,
    }
}

/// Replay `wf` on `recorded`'s input with its recorded results as mocks.
pub fn replay(wf: &CompiledWorkflow, recorded: &RunView, library: &Library) -> Replay {
    let start = Start {
        run_id: recorded.id.clone(),
        workflow_version: recorded.workflow_version,
        at_ms: recorded
            .started_at
            .as_deref()
            .and_then(crate::time::parse_rfc3339)
            .unwrap_or(TEST_EPOCH_MS),
    };
    let outcome = run(
        wf,
        recorded.input.clone(),
        &mocks_from(recorded),
        library,
        &start,
    );
    let was = |id: &str| recorded.steps.iter().find(|s| s.id == id);
    let mut branches = vec![];
    let mut steps = vec![];
    for (step, now) in wf.steps.iter().zip(&outcome.steps) {
        let before = was(&step.id);
        if matches!(step.kind, StepKind::Condition) {
            let old = before.and_then(|s| branch_of(&s.status, &s.output));
            let new = branch_of(&now.status, &now.output);
            if old != new {
                branches.push(BranchChange {
                    step: step.id.clone(),
                    was: old,
                    now: new,
                });
            }
        }
        let old_status = before.map(|s| s.status.clone());
        // A new step that does not run changes nothing; after a missing recording
        // the rest of the replay is unknown, not changed.
        let new_and_idle = old_status.is_none() && now.status == "skipped";
        let unknown = matches!(now.status.as_str(), "pending" | "running" | "waiting");
        if old_status.as_deref() != Some(now.status.as_str()) && !new_and_idle && !unknown {
            steps.push(StepChange {
                step: step.id.clone(),
                was: old_status,
                now: now.status.clone(),
            });
        }
    }
    let live_calls: Vec<MissingMock> = outcome.first_missing().cloned().into_iter().collect();
    let output = if live_calls.is_empty() {
        diff("output", &recorded.output, &outcome.output)
    } else {
        vec![]
    };
    let changed = !branches.is_empty()
        || !steps.is_empty()
        || !live_calls.is_empty()
        || !output.is_empty()
        || recorded.status != outcome.status;
    Replay {
        run_id: recorded.id.clone(),
        recorded_version: recorded.workflow_version,
        recorded_status: recorded.status.clone(),
        status: outcome.status.clone(),
        branches,
        steps,
        live_calls,
        output,
        changed,
        replay: outcome,
    }
}
