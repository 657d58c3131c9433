//! Apply-time rules of the control-flow steps `condition` and `stop`: the shape of
//! `conditions` and its operators, literal regexes, the `then`/`else` targets and the
//! guards they put on later steps, and the definedness analysis over those guards (a
//! reference to a step that a condition may skip, from a step outside that branch).

use super::compile::{Checker, Issue};
use super::definition::{Branch, CompiledStep, Guard};
use super::fields;
use crate::template::{CompiledValue, Template, value::PathSeg};
use serde_json::{Map, Value, json};

/// LoopFour's twelve operators of a `condition`.
pub const OPERATORS: &[&str] = &[
    "eq",
    "ne",
    "gt",
    "gte",
    "lt",
    "lte",
    "contains",
    "startsWith",
    "endsWith",
    "exists",
    "isEmpty",
    "matches",
];

/// Operators that look at `left` only.
pub fn takes_right(op: &str) -> bool {
    !matches!(op, "exists" | "isEmpty")
}

/// `all`/`any`/`not` nest at most this deep.
pub const MAX_CONDITION_DEPTH: usize = 4;

/// A `matches` pattern compiles into at most this much memory (the regex crate runs in
/// linear time; the limit bounds what one pattern may cost).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Compiles a `matches` pattern the one way both apply time and run time do.
pub fn compile_regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

fn push(at: &[Value], key: impl Into<Value>) -> Vec<Value> {
    let mut p = at.to_vec();
    p.push(key.into());
    p
}

/// `config.conditions`: a comparison `{left, operator, right}` or `{all: […]}`,
/// `{any: […]}`, `{not: {…}}`.
pub(super) fn check_conditions(ck: &mut Checker, at: &[Value], v: &Value, depth: usize) {
    let Some(obj) = v.as_object() else {
        ck.add(
            at.to_vec(),
            "must be an object: {left, operator, right}, {all: [...]}, {any: [...]} or {not: {...}}",
        );
        return;
    };
    let compound = ["all", "any", "not"]
        .iter()
        .filter(|k| obj.contains_key(**k))
        .count();
    if compound > 0 {
        if compound > 1 || obj.len() > 1 {
            ck.add(
                at.to_vec(),
                "a compound condition has exactly one key: all, any or not",
            );
            return;
        }
        if depth >= MAX_CONDITION_DEPTH {
            ck.add(
                at.to_vec(),
                format!("all/any/not nest at most {MAX_CONDITION_DEPTH} deep"),
            );
            return;
        }
        let (key, inner) = obj.iter().next().expect("one key");
        match (key.as_str(), inner) {
            ("not", inner) => check_conditions(ck, &push(at, "not"), inner, depth + 1),
            (_, Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    check_conditions(ck, &push(&push(at, key.as_str()), i), item, depth + 1);
                }
            }
            _ => ck.add(
                push(at, key.as_str()),
                "must be a non-empty array of conditions",
            ),
        }
        return;
    }
    check_comparison(ck, at, obj);
}

fn check_comparison(ck: &mut Checker, at: &[Value], obj: &Map<String, Value>) {
    fields::check(ck, at, obj, &["left", "operator", "right"]);
    if !obj.contains_key("left") {
        ck.add(push(at, "left"), "required: the value to test");
    }
    let op = match obj.get("operator") {
        Some(Value::String(op)) if OPERATORS.contains(&op.as_str()) => op.as_str(),
        Some(Value::String(op)) => {
            ck.add(
                push(at, "operator"),
                format!(
                    "unknown operator '{op}'; the operators are {}",
                    OPERATORS.join(", ")
                ),
            );
            return;
        }
        _ => {
            ck.add(
                push(at, "operator"),
                format!("required: one of {}", OPERATORS.join(", ")),
            );
            return;
        }
    };
    match (takes_right(op), obj.get("right")) {
        (true, None) => ck.add(push(at, "right"), format!("required for '{op}'")),
        (false, Some(_)) => ck.add(
            push(at, "right"),
            format!("'{op}' looks at `left` only; remove `right`"),
        ),
        (true, Some(Value::String(pattern))) if op == "matches" && !pattern.contains("{{") => {
            if let Err(e) = compile_regex(pattern) {
                ck.add(push(at, "right"), e);
            }
        }
        _ => {}
    }
}

/// `then` / `else`: later steps of the same block, each listed once. Returns the indexes
/// of the targets that are valid.
pub(super) fn check_targets(
    ck: &mut Checker,
    i: usize,
    cfg: &Map<String, Value>,
    block_ids: &[String],
) -> Vec<(usize, Branch)> {
    let mut out: Vec<(usize, Branch)> = vec![];
    for branch in [Branch::Then, Branch::Else] {
        let key = branch.as_str();
        let at = vec![json!("steps"), json!(i), json!("config"), json!(key)];
        let Some(v) = cfg.get(key) else { continue };
        let Some(list) = v.as_array() else {
            ck.add(at, "must be an array of ids of later steps");
            continue;
        };
        for (j, item) in list.iter().enumerate() {
            let at = push(&at, j);
            let Some(id) = item.as_str() else {
                ck.add(at, "must be a step id");
                continue;
            };
            match block_ids.iter().position(|x| x == id) {
                Some(t) if t > i => {
                    if let Some((_, b)) = out.iter().find(|(x, _)| *x == t) {
                        let msg = if *b == branch {
                            format!("'{id}' is listed twice")
                        } else {
                            format!("'{id}' is listed in both then and else")
                        };
                        ck.add(at, msg);
                    } else {
                        out.push((t, branch));
                    }
                }
                Some(t) if t == i => ck.add(at, "a condition cannot guard itself"),
                Some(_) => ck.add(
                    at,
                    format!("'{id}' comes before this condition; then/else name later steps"),
                ),
                None => ck.add(
                    at,
                    format!("unknown step '{id}'; then/else name later steps of the same block"),
                ),
            }
        }
    }
    out
}

/// `stop`: `{status: completed|failed, output?, error?: {code, message}}`.
pub(super) fn check_stop(ck: &mut Checker, at: &[Value], cfg: &Map<String, Value>) {
    let status = cfg.get("status").and_then(Value::as_str);
    match status {
        Some("completed") => {
            if cfg.contains_key("error") {
                ck.add(push(at, "error"), "only a failed stop has an error");
            }
        }
        Some("failed") => {
            if cfg.contains_key("output") {
                ck.add(
                    push(at, "output"),
                    "a failed run has no output; describe it in `error`",
                );
            }
            match cfg.get("error") {
                Some(Value::Object(e)) => {
                    let at = push(at, "error");
                    fields::check(ck, &at, e, &["code", "message"]);
                    for k in ["code", "message"] {
                        if e.get(k).and_then(Value::as_str).is_none_or(str::is_empty) {
                            ck.add(push(&at, k), "required: a non-empty string");
                        }
                    }
                }
                _ => ck.add(
                    push(at, "error"),
                    "required for a failed stop: {code, message}",
                ),
            }
        }
        _ => ck.add(push(at, "status"), "required: completed or failed"),
    }
}

/// Each step's guards with those of the conditions that guard it (a step under a branch
/// of a condition that is itself under a branch needs both).
pub(super) fn full_guards(steps: &[CompiledStep]) -> Vec<Vec<Guard>> {
    let mut out: Vec<Vec<Guard>> = Vec::with_capacity(steps.len());
    for step in steps {
        let mut all = step.guards.clone();
        for g in &step.guards {
            if let Some(inherited) = out.get(g.condition) {
                for h in inherited {
                    if !all.contains(h) {
                        all.push(h.clone());
                    }
                }
            }
        }
        out.push(all);
    }
    out
}

/// The definedness analysis: a reference to a step that may be skipped by a condition,
/// from a place that is not under the same branch, reads a missing value on some run.
/// Going through `| default:` or reading `steps.X.status` says the author knows.
pub(super) fn definedness(steps: &[CompiledStep], output: Option<&CompiledValue>) -> Vec<Issue> {
    let guards = full_guards(steps);
    let index = |id: &str| steps.iter().position(|s| s.id == id);
    let mut issues = vec![];
    let mut check = |at: Vec<Value>, t: &Template, mine: &[Guard]| {
        for r in t.step_paths() {
            if r.defaulted || r.status_only {
                continue;
            }
            let Some(x) = index(r.step) else { continue };
            if let Some(g) = guards[x].iter().find(|g| !mine.contains(g)) {
                issues.push(Issue {
                    path: at.clone(),
                    message: format!(
                        "'{}' is unset when '{}' takes '{}' (use `| default:` if that is expected)",
                        r.text,
                        g.condition_id,
                        g.branch.other().as_str()
                    ),
                });
            }
        }
    };
    let join = |base: Vec<Value>, sub: &[PathSeg]| {
        let mut p = base;
        p.extend(sub.iter().map(|s| match s {
            PathSeg::Key(k) => json!(k),
            PathSeg::Index(i) => json!(i),
        }));
        p
    };
    for (i, step) in steps.iter().enumerate() {
        for (sub, t) in step.config.templates() {
            check(
                join(vec![json!("steps"), json!(i), json!("config")], &sub),
                t,
                &guards[i],
            );
        }
        if let Some(t) = &step.condition {
            check(vec![json!("steps"), json!(i), json!("if")], t, &guards[i]);
        }
    }
    if let Some(out) = output {
        for (sub, t) in out.templates() {
            check(join(vec![json!("output")], &sub), t, &[]);
        }
    }
    issues
}
