//! `loop` and `parallel` steps: the block starts as a fan-out of child runs (one per
//! item or branch, each running the block's body), the run suspends, and the finish
//! of its last child queues it again with the children's results on the step (the
//! join, in key order). The window (at most `maxConcurrency` unfinished children),
//! the progress counters and the join are kept by the store in the commits that
//! finish children; here: what the fan-out is, and what the join makes of it.

use super::advance::{Effect, MAX_DEPTH, RunState, Transition};
use super::{RunError, StepRecord, StepStatus, check_output};
use crate::workflow::{CompiledWorkflow, StepKind};
use serde_json::{Map, Value, json};

/// A block's children, as the engine decided them.
#[derive(Debug, Clone, PartialEq)]
pub struct FanOut {
    pub idx: usize,
    pub step_id: String,
    /// `loop` or `parallel` (the children's trigger type).
    pub kind: &'static str,
    /// One key per child, in order: the item index, or the branch name.
    pub keys: Vec<String>,
    /// Each child's input: its loop variables (`{}` for a branch).
    pub inputs: Vec<Value>,
    /// At most this many children unfinished at once.
    pub max_concurrency: usize,
    /// The first failed child stops new ones and cancels the running ones.
    pub stop_on_failure: bool,
    /// What the body sees of the run: `{input, steps, vars}`.
    pub scope: Value,
    pub depth: i64,
    /// The run's deadline: no child may outlive it.
    pub deadline_at: Option<i64>,
}

/// A block step still has to learn its children's results (not yet joined).
pub(super) fn needs_scope(rec: &StepRecord) -> bool {
    !(rec.status == StepStatus::Waiting && rec.output.get("join").is_some())
}

impl RunError {
    fn block(code: &str, step_id: &str, message: String) -> RunError {
        RunError {
            code: code.into(),
            message: format!("step '{step_id}': {message}"),
            step_id: Some(step_id.into()),
            path: None,
        }
    }

    /// A loop whose `collection` is not an array.
    pub fn invalid_collection(step_id: &str, got: &Value) -> RunError {
        let kind = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Object(_) => "an object",
            Value::Array(_) => "an array",
        };
        Self::block(
            "INVALID_COLLECTION",
            step_id,
            format!("collection must be an array, got {kind}"),
        )
    }

    /// A collection longer than `maxIterations` (never truncated).
    pub fn max_iterations(step_id: &str, len: usize, max: usize) -> RunError {
        Self::block(
            "MAX_ITERATIONS",
            step_id,
            format!("the collection has {len} items, more than maxIterations ({max})"),
        )
    }

    /// A loop item failed under `onItemError: fail`; `path` names the item.
    pub fn item_failed(step_id: &str, index: usize, cause: &Value) -> RunError {
        let mut e = Self::block(
            "ITEM_FAILED",
            step_id,
            format!("item {index} failed: {}", cause_text(cause)),
        );
        e.path = Some(format!("items[{index}]"));
        e
    }

    /// A branch of a `parallel` with `failFast` failed.
    pub fn branch_failed(step_id: &str, branch: &str, cause: &Value) -> RunError {
        let mut e = Self::block(
            "BRANCH_FAILED",
            step_id,
            format!("branch '{branch}' failed: {}", cause_text(cause)),
        );
        e.path = Some(branch.to_string());
        e
    }
}

fn cause_text(cause: &Value) -> String {
    let code = cause.get("code").and_then(Value::as_str).unwrap_or("ERROR");
    let msg = cause
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("no error recorded");
    format!("{code}: {msg}")
}

/// A `loop` or `parallel` step: settle it from the join on its record, or (re)start its
/// fan-out. `None`: settled, go on. A repeated fan-out (after a crash or a redrive) is
/// harmless: children are created once per key, and the store keeps the window.
pub(super) fn block_step(
    wf: &CompiledWorkflow,
    s: &mut RunState,
    i: usize,
    config: &Value,
    outer: Option<Value>,
    now: i64,
    deadline: Option<i64>,
) -> Option<Transition> {
    let step = &wf.steps[i];
    let max_bytes = s.limits.max_value_bytes;
    let depth = s.depth + 1;
    let rec = &mut s.steps[i];
    rec.started_at.get_or_insert(now);
    if rec.status == StepStatus::Waiting
        && let Some(join) = rec.output.get("join").cloned()
    {
        settle(&step.kind, &step.id, rec, &join, max_bytes);
        rec.completed_at = Some(now);
        return None;
    }
    let fresh = rec.status != StepStatus::Waiting;
    if fresh {
        rec.attempts += 1;
    }
    let fail = |rec: &mut StepRecord, error: RunError| {
        rec.status = StepStatus::Failed;
        rec.error = Some(error);
        rec.completed_at = Some(now);
    };
    if depth > MAX_DEPTH {
        fail(rec, RunError::max_depth(&step.id, MAX_DEPTH));
        return None;
    }
    let (kind, keys, inputs, max_concurrency, stop_on_failure) = match &step.kind {
        StepKind::Loop(spec) => {
            let collection = config.get("collection").unwrap_or(&Value::Null);
            let Some(items) = collection.as_array() else {
                fail(rec, RunError::invalid_collection(&step.id, collection));
                return None;
            };
            if items.len() > spec.max_iterations {
                let error = RunError::max_iterations(&step.id, items.len(), spec.max_iterations);
                fail(rec, error);
                return None;
            }
            let inputs = items
                .iter()
                .enumerate()
                .map(|(k, item)| {
                    let mut vars = Map::new();
                    vars.insert(spec.item_var.clone(), item.clone());
                    vars.insert(spec.index_var.clone(), json!(k));
                    Value::Object(vars)
                })
                .collect::<Vec<_>>();
            let keys = (0..items.len()).map(|k| k.to_string()).collect();
            let stop = !spec.continue_on_error;
            ("loop", keys, inputs, spec.max_concurrency, stop)
        }
        StepKind::Parallel(spec) => {
            let keys: Vec<String> = spec.branches.iter().map(|(n, _)| n.clone()).collect();
            let n = keys.len();
            ("parallel", keys, vec![json!({}); n], n, spec.fail_fast)
        }
        _ => return None,
    };
    if keys.is_empty() {
        // Nothing to run: the join of no children.
        settle(&step.kind, &step.id, rec, &json!([]), max_bytes);
        rec.completed_at = Some(now);
        return None;
    }
    rec.status = StepStatus::Waiting;
    rec.error = None;
    rec.output = json!({
        "waitingFor": "children",
        "progress": {"total": keys.len(), "running": 0, "completed": 0, "failed": 0},
    });
    let fan = FanOut {
        idx: i,
        step_id: step.id.clone(),
        kind,
        keys,
        inputs,
        max_concurrency: max_concurrency.max(1),
        stop_on_failure,
        scope: outer.unwrap_or(Value::Null),
        depth,
        deadline_at: deadline,
    };
    Some(Transition {
        state: s.clone(),
        effect: Effect::FanOut(fan),
    })
}

/// One child's slot of a join: `{key, status, output, error}`; `status` is null for
/// a child never started (a loop stopped early).
fn slot_status(slot: &Value) -> Option<&str> {
    slot.get("status").and_then(Value::as_str)
}

/// The block's output (or error) from its children's results, in key order. The same
/// join gives the same result, whatever order the children finished in.
/// `Err`: the block fails with this error, keeping this (partial) output.
pub fn aggregate(
    kind: &StepKind,
    step_id: &str,
    join: &Value,
) -> Result<Value, Box<(RunError, Value)>> {
    let slots: &[Value] = join.as_array().map(Vec::as_slice).unwrap_or(&[]);
    // The failure that fails the block: the first in key order that is not a
    // cancel (siblings cancelled because of it come after or before, never instead).
    let culprit = || {
        let failed = |s: &&Value| slot_status(s).is_some_and(|st| st != "completed");
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| failed(s))
            .min_by_key(|(_, s)| slot_status(s) == Some("cancelled"))
            .map(|(k, s)| (k, s.get("error").cloned().unwrap_or(Value::Null)))
    };
    match kind {
        StepKind::Loop(spec) => {
            let mut items = Vec::with_capacity(slots.len());
            let mut errors = vec![];
            let (mut succeeded, mut failed) = (0, 0);
            for (k, slot) in slots.iter().enumerate() {
                match slot_status(slot) {
                    Some("completed") => {
                        succeeded += 1;
                        items.push(slot.get("output").cloned().unwrap_or(Value::Null));
                    }
                    None => items.push(Value::Null),
                    Some(_) => {
                        failed += 1;
                        items.push(Value::Null);
                        let error = slot.get("error").cloned().unwrap_or(Value::Null);
                        errors.push(json!({"index": k, "error": error}));
                    }
                }
            }
            let out = json!({
                "items": items,
                "count": slots.len(),
                "succeeded": succeeded,
                "failed": failed,
                "errors": errors,
            });
            match culprit() {
                Some((k, cause)) if !spec.continue_on_error => {
                    Err(Box::new((RunError::item_failed(step_id, k, &cause), out)))
                }
                _ => Ok(out),
            }
        }
        StepKind::Parallel(spec) => {
            let mut out = Map::new();
            let mut errors = vec![];
            for ((name, _), slot) in spec.branches.iter().zip(slots) {
                match slot_status(slot) {
                    Some("completed") => {
                        out.insert(
                            name.clone(),
                            slot.get("output").cloned().unwrap_or_default(),
                        );
                    }
                    _ => {
                        out.insert(name.clone(), Value::Null);
                        let error = slot.get("error").cloned().unwrap_or(Value::Null);
                        errors.push(json!({"branch": name, "error": error}));
                    }
                }
            }
            if let Some((k, cause)) = culprit()
                && spec.fail_fast
            {
                let name = spec.branches.get(k).map(|(n, _)| n.as_str()).unwrap_or("");
                let error = RunError::branch_failed(step_id, name, &cause);
                out.insert("errors".into(), Value::Array(errors));
                return Err(Box::new((error, Value::Object(out))));
            }
            if !errors.is_empty() {
                out.insert("errors".into(), Value::Array(errors));
            }
            Ok(Value::Object(out))
        }
        _ => Ok(Value::Null),
    }
}

fn settle(kind: &StepKind, step_id: &str, rec: &mut StepRecord, join: &Value, max_bytes: usize) {
    match aggregate(kind, step_id, join) {
        Ok(out) => match check_output(step_id, &out, max_bytes) {
            Some(mut error) => {
                error.message.push_str(
                    " (the items' outputs together; narrow each item with the loop's `output`)",
                );
                rec.status = StepStatus::Failed;
                rec.error = Some(error);
                rec.output = Value::Null;
            }
            None => {
                rec.status = StepStatus::Completed;
                rec.output = out;
                rec.error = None;
            }
        },
        Err(failed) => {
            let (error, out) = *failed;
            rec.status = StepStatus::Failed;
            rec.error = Some(error);
            // The partial results stay readable on the failed step, if they fit.
            rec.output = if check_output(step_id, &out, max_bytes).is_none() {
                out
            } else {
                Value::Null
            };
        }
    }
}
