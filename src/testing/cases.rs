//! Test files: `{"workflow", "cases": [{"name", "input", "mocks", "expect"}]}`.
//! A case runs through the runner; its expectations are checked field by field
//! (only what the case states), and `--update` writes the actual results back
//! as the expectations.

use super::diff::{Difference, diff, diff_subset};
use super::mocks::Mocks;
use super::runner::{Library, Outcome, Start, run};
use crate::workflow::CompiledWorkflow;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

/// A test file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestFile {
    /// A workflow id (`wf_x`) or a path relative to the test file; absent: the
    /// definition beside it (`x.json` for `x.test.json`).
    #[serde(default)]
    pub workflow: Option<String>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default = "empty_object")]
    pub input: Value,
    #[serde(default)]
    pub mocks: Map<String, Value>,
    #[serde(default)]
    pub expect: Expect,
}

fn empty_object() -> Value {
    json!({})
}

/// What a case expects; each field is checked only when present.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// `completed` when absent.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub output: Option<Value>,
    /// Compared as a subset: `{"code": "STEP_ERROR"}` checks only the code.
    #[serde(default, deserialize_with = "present")]
    pub error: Option<Value>,
    #[serde(default)]
    pub steps: Map<String, Value>,
}

/// What one step is expected to be; each field is checked only when present.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub output: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    pub error: Option<Value>,
    #[serde(default)]
    pub attempts: Option<i64>,
    /// The rendered config an effectful step would have been called with (a subset).
    #[serde(default, deserialize_with = "present")]
    pub config: Option<Value>,
}

/// A field that is present counts, even when it is `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The verdict on one case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Passed,
    Failed,
    /// The case could not be judged: a missing mock, a malformed case.
    Error,
}

/// One case, run and judged.
#[derive(Debug, Clone)]
pub struct CaseRun {
    pub name: String,
    pub verdict: Verdict,
    pub differences: Vec<Difference>,
    pub error: Option<String>,
    pub outcome: Option<Outcome>,
}

/// Run and judge one case.
pub fn run_case(wf: &CompiledWorkflow, case: &Case, library: &Library) -> CaseRun {
    let failed = |error: String| CaseRun {
        name: case.name.clone(),
        verdict: Verdict::Error,
        differences: vec![],
        error: Some(error),
        outcome: None,
    };
    let mocks = match Mocks::from_object(&case.mocks) {
        Ok(m) => m,
        Err(e) => return failed(e),
    };
    let unknown: Vec<&str> = mocks
        .ids()
        .filter(|id| wf.step_index(id).is_none() && !in_library(library, id))
        .collect();
    if let Some(id) = unknown.first() {
        return failed(format!(
            "mocks.{id}: the workflow has no step '{id}' (steps: {})",
            step_ids(wf)
        ));
    }
    let outcome = run(wf, case.input.clone(), &mocks, library, &Start::default());
    if let Some(m) = outcome.first_missing() {
        return CaseRun {
            error: Some(m.message()),
            outcome: Some(outcome.clone()),
            ..failed(String::new())
        };
    }
    match check(wf, &case.expect, &outcome) {
        Ok(differences) => CaseRun {
            name: case.name.clone(),
            verdict: if differences.is_empty() {
                Verdict::Passed
            } else {
                Verdict::Failed
            },
            differences,
            error: None,
            outcome: Some(outcome),
        },
        Err(e) => CaseRun {
            outcome: Some(outcome),
            ..failed(e)
        },
    }
}

fn in_library(library: &Library, id: &str) -> bool {
    library.has_step(id)
}

fn step_ids(wf: &CompiledWorkflow) -> String {
    wf.steps
        .iter()
        .map(|s| s.id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every difference between what the case expects and what happened.
pub fn check(
    wf: &CompiledWorkflow,
    expect: &Expect,
    outcome: &Outcome,
) -> Result<Vec<Difference>, String> {
    let mut out = vec![];
    let status = expect.status.as_deref().unwrap_or("completed");
    if status != outcome.status {
        let mut d = Difference::new("status", Some(&json!(status)), Some(&json!(outcome.status)));
        if let Some(m) = outcome.error.get("message").and_then(Value::as_str) {
            d.note = Some(m.to_string());
        }
        out.push(d);
    }
    if let Some(e) = &expect.output {
        out.extend(diff("output", e, &outcome.output));
    }
    if let Some(e) = &expect.error {
        out.extend(diff_subset("error", e, &outcome.error));
    }
    for (id, raw) in &expect.steps {
        let se: StepExpect =
            serde_json::from_value(raw.clone()).map_err(|e| format!("expect.steps.{id}: {e}"))?;
        let Some(actual) = outcome.step(id) else {
            return Err(format!(
                "expect.steps.{id}: the workflow has no step '{id}' (steps: {})",
                step_ids(wf)
            ));
        };
        let at = |field: &str| format!("steps.{id}.{field}");
        if let Some(s) = &se.status
            && *s != actual.status
        {
            let mut d =
                Difference::new(&at("status"), Some(&json!(s)), Some(&json!(actual.status)));
            d.note = skip_note(actual.skip_reason.as_ref());
            out.push(d);
        }
        if let Some(e) = &se.output {
            out.extend(diff(&at("output"), e, &actual.output));
        }
        if let Some(e) = &se.error {
            out.extend(diff_subset(&at("error"), e, &actual.error));
        }
        if let Some(n) = se.attempts
            && n != actual.attempts
        {
            out.push(Difference::new(
                &at("attempts"),
                Some(&json!(n)),
                Some(&json!(actual.attempts)),
            ));
        }
        if let Some(e) = &se.config {
            let config = actual.config.clone().unwrap_or(Value::Null);
            out.extend(diff_subset(&at("config"), e, &config));
        }
    }
    Ok(out)
}

/// Why a step was skipped, in words.
pub fn skip_note(reason: Option<&Value>) -> Option<String> {
    let r = reason?;
    let text = |k: &str| r.get(k).and_then(Value::as_str);
    Some(if let Some(c) = text("condition") {
        match text("branch") {
            Some(b) => format!("skipped: {c} took {b}"),
            None => format!("skipped: {c} did not run"),
        }
    } else if let Some(s) = text("stop") {
        format!("skipped: {s} stopped the run")
    } else if let Some(t) = text("if") {
        format!("skipped: if {t} was false")
    } else {
        format!("skipped: {r}")
    })
}

/// The expectations that would make `outcome` pass, keeping the case's choice
/// of which steps (and which of their fields) it checks.
pub fn updated_expect(old: &Value, outcome: &Outcome) -> Value {
    let mut exp = Map::new();
    exp.insert("status".into(), json!(outcome.status));
    if outcome.status == "completed" {
        exp.insert("output".into(), outcome.output.clone());
    } else {
        let mut e = Map::new();
        for k in ["code", "message", "stepId"] {
            if let Some(v) = outcome.error.get(k) {
                e.insert(k.into(), v.clone());
            }
        }
        exp.insert("error".into(), Value::Object(e));
    }
    if let Some(steps) = old.get("steps").and_then(Value::as_object) {
        let mut new_steps = Map::new();
        for (id, fields) in steps {
            let Some(actual) = outcome.step(id) else {
                new_steps.insert(id.clone(), fields.clone());
                continue;
            };
            let mut entry = Map::new();
            let keys: Vec<String> = match fields.as_object() {
                Some(o) if !o.is_empty() => o.keys().cloned().collect(),
                _ => vec!["status".into()],
            };
            for k in keys {
                let v = match k.as_str() {
                    "status" => json!(actual.status),
                    "output" => actual.output.clone(),
                    "error" => actual.error.clone(),
                    "attempts" => json!(actual.attempts),
                    "config" => actual.config.clone().unwrap_or(Value::Null),
                    _ => continue,
                };
                entry.insert(k, v);
            }
            new_steps.insert(id.clone(), Value::Object(entry));
        }
        exp.insert("steps".into(), Value::Object(new_steps));
    }
    Value::Object(exp)
}
