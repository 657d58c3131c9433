//! The run-time half of `condition` and `stop`: evaluating a rendered `conditions`
//! tree, the guard a taken (or not taken) branch puts on a later step, and why a step
//! was skipped. Pure; called from `advance`.

use super::{RunError, StepRecord, StepStatus};
use crate::template::compare;
use crate::workflow::{CompiledStep, control};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Why a step was skipped, as recorded with it and answered as `skipReason`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SkipReason {
    /// Listed in a branch of `condition` that was not taken. `branch` is the branch the
    /// condition took, `null` when it did not run (skipped itself, or failed).
    Condition {
        condition: String,
        branch: Option<String>,
    },
    /// A `stop` step ended the run first.
    Stop { stop: String },
    /// The step's own `if` rendered falsy.
    If {
        #[serde(rename = "if")]
        template: String,
    },
}

impl SkipReason {
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// The reason `step` must be skipped because of a condition, if any: the first guard whose
/// condition did not take the step's branch.
pub(super) fn guard_skip(step: &CompiledStep, records: &[StepRecord]) -> Option<SkipReason> {
    step.guards.iter().find_map(|g| {
        let rec = records.get(g.condition)?;
        let taken = (rec.status == StepStatus::Completed)
            .then(|| rec.output.get("branch").and_then(Value::as_str))
            .flatten();
        (taken != Some(g.branch.as_str())).then(|| SkipReason::Condition {
            condition: g.condition_id.clone(),
            branch: taken.map(String::from),
        })
    })
}

/// The outcome of a `condition` step from its rendered config: `{result, branch}`, or
/// `CONDITION_ERROR` (an ordering of non-numbers is never silently false).
pub(super) fn evaluate_step(step_id: &str, config: &Value) -> Result<Value, RunError> {
    let conditions = config.get("conditions").unwrap_or(&Value::Null);
    let result = evaluate(conditions, "conditions")
        .map_err(|(at, message)| RunError::condition(step_id, &format!("config.{at}"), &message))?;
    let branch = crate::workflow::Branch::of(result);
    Ok(serde_json::json!({"result": result, "branch": branch.as_str()}))
}

type EvalError = (String, String);

fn evaluate(c: &Value, at: &str) -> Result<bool, EvalError> {
    if let Some(items) = c.get("all").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            if !evaluate(item, &format!("{at}.all[{i}]"))? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(items) = c.get("any").and_then(Value::as_array) {
        for (i, item) in items.iter().enumerate() {
            if evaluate(item, &format!("{at}.any[{i}]"))? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(inner) = c.get("not") {
        return Ok(!evaluate(inner, &format!("{at}.not"))?);
    }
    let left = c.get("left").unwrap_or(&Value::Null);
    let right = c.get("right").unwrap_or(&Value::Null);
    let op = c
        .get("operator")
        .and_then(Value::as_str)
        .unwrap_or_default();
    compare_op(op, left, right).map_err(|m| (at.to_string(), format!("'{op}': {m}")))
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// One comparison. A missing `left` (null) is false for the text operators, as nothing
/// starts with anything; ordering it is an error.
pub fn compare_op(op: &str, left: &Value, right: &Value) -> Result<bool, String> {
    let texts = || -> Result<Option<(String, String)>, String> {
        if left.is_null() {
            return Ok(None);
        }
        match (text(left), text(right)) {
            (Some(l), Some(r)) => Ok(Some((l, r))),
            _ => Err(format!(
                "needs text on both sides, got {} and {}",
                describe(left),
                describe(right)
            )),
        }
    };
    // Unlike a template's `>`, a condition orders numbers only: "10000" from a form and
    // 10000 from JSON are the same amount, and text here is almost always a mistake.
    let numbers = || match (compare::as_decimal(left), compare::as_decimal(right)) {
        (Some(l), Some(r)) => Ok(l.cmp(&r)),
        _ => Err(format!(
            "cannot order {} against {}: gt, gte, lt and lte compare numbers (or numeric strings){}",
            describe(left),
            describe(right),
            if left.is_null() || right.is_null() {
                "; a missing value is null"
            } else {
                ""
            }
        )),
    };
    Ok(match op {
        "eq" => compare::equal(left, right),
        "ne" => !compare::equal(left, right),
        "gt" => numbers()?.is_gt(),
        "gte" => numbers()?.is_ge(),
        "lt" => numbers()?.is_lt(),
        "lte" => numbers()?.is_le(),
        "contains" => compare::contains(left, right)?,
        "startsWith" => texts()?.is_some_and(|(l, r)| l.starts_with(&r)),
        "endsWith" => texts()?.is_some_and(|(l, r)| l.ends_with(&r)),
        "exists" => !left.is_null(),
        "isEmpty" => match left {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(m) => m.is_empty(),
            _ => false,
        },
        "matches" => {
            let Value::String(pattern) = right else {
                return Err(format!(
                    "the pattern must be a string, got {}",
                    describe(right)
                ));
            };
            let re = control::compile_regex(pattern)?;
            match texts()? {
                None => false,
                Some((l, _)) => re.is_match(&l),
            }
        }
        other => return Err(format!("unknown operator '{other}'")),
    })
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}
