//! Block steps with a body: `loop` (the body once per item) and `parallel` (named
//! branches). Each body is compiled here into a workflow of its own, which the
//! engine runs as child runs; its steps are private to it (visible inside the
//! body, an apply-time error outside), and a loop's item and index variables
//! are template roots inside it only.

use super::compile::{Checker, Issue, compile_block};
use super::definition::{CompiledStep, CompiledWorkflow, StepKind};
use crate::template::with_locals;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Blocks nest at most this deep.
pub const MAX_NESTING: usize = 4;
/// Steps in one definition, bodies included.
pub const MAX_TOTAL_STEPS: usize = 200;
/// Steps in one body.
pub const MAX_BODY_STEPS: usize = 50;
pub const MAX_ITERATIONS: u64 = 10_000;
pub const DEFAULT_ITERATIONS: u64 = 100;
pub const MAX_CONCURRENCY: u64 = 50;
pub const MAX_BRANCHES: usize = 10;

pub const LOOP_FIELDS: &[&str] = &[
    "collection",
    "itemVariable",
    "indexVariable",
    "maxIterations",
    "maxConcurrency",
    "onItemError",
    "steps",
    "output",
];
pub const PARALLEL_FIELDS: &[&str] = &["branches", "failFast"];

/// Names a loop variable may not take: the template roots.
const ROOTS: &[&str] = &[
    "input",
    "steps",
    "variables",
    "run",
    "workflow",
    "runId",
    "now",
];

/// A compiled `loop`.
#[derive(Debug)]
pub struct LoopSpec {
    pub body: Arc<CompiledWorkflow>,
    pub item_var: String,
    pub index_var: String,
    pub max_iterations: usize,
    pub max_concurrency: usize,
    /// `onItemError: continue`: every item runs and the step completes.
    pub continue_on_error: bool,
}

/// A compiled `parallel`: its branches in the order written.
#[derive(Debug)]
pub struct ParallelSpec {
    pub branches: Vec<(String, Arc<CompiledWorkflow>)>,
    pub fail_fast: bool,
}

// A compiled body is compared by identity: two specs are equal only if they are one.
impl PartialEq for LoopSpec {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl PartialEq for ParallelSpec {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// Where a body is compiled: the loop variables around it, how deep it is, and whether
/// a `stop` in it may break a loop.
#[derive(Debug, Clone, Default)]
pub struct BlockCtx {
    pub locals: Vec<String>,
    pub depth: usize,
    pub in_loop: bool,
}

impl CompiledWorkflow {
    /// The body a child run of block `step_id` executes (`key`: the branch of a
    /// `parallel`; a loop has one body), searched through nested bodies.
    pub fn body(&self, step_id: &str, key: &str) -> Option<Arc<CompiledWorkflow>> {
        for step in &self.steps {
            let found = match &step.kind {
                StepKind::Loop(spec) if step.id == step_id => return Some(spec.body.clone()),
                StepKind::Parallel(spec) if step.id == step_id => {
                    return spec
                        .branches
                        .iter()
                        .find(|(name, _)| name == key)
                        .map(|(_, b)| b.clone());
                }
                StepKind::Loop(spec) => spec.body.body(step_id, key),
                StepKind::Parallel(spec) => {
                    spec.branches.iter().find_map(|(_, b)| b.body(step_id, key))
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

/// The part of a block's config rendered in the enclosing run (the body is not).
pub(super) fn own_config(kind: &StepKind, config: &Value) -> Option<Value> {
    match kind {
        StepKind::Loop(_) => {
            Some(json!({"collection": config.get("collection").cloned().unwrap_or(Value::Null)}))
        }
        StepKind::Parallel(_) => Some(json!({})),
        _ => None,
    }
}

fn push(at: &[Value], k: impl Into<Value>) -> Vec<Value> {
    let mut p = at.to_vec();
    p.push(k.into());
    p
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 64
}

/// A `loop` step's config (`at` = its config's path; `earlier`: the steps visible to it).
pub(super) fn compile_loop(
    ck: &mut Checker,
    at: &[Value],
    cfg: &Value,
    earlier: &[String],
) -> Option<Arc<LoopSpec>> {
    let before = ck.issues.len();
    nesting(ck, at);
    if cfg.get("collection").is_none_or(Value::is_null) {
        ck.add(
            push(at, "collection"),
            "required: the array to loop over, e.g. \"{{steps.fetch.output.body.items}}\"",
        );
    }
    let mut var = |field: &str, default: &str| -> String {
        match cfg.get(field) {
            None => default.to_string(),
            Some(Value::String(s)) if valid_name(s) => s.clone(),
            Some(_) => {
                ck.add(
                    push(at, field),
                    "must be a name of letters, digits and _ (not starting with a digit)",
                );
                default.to_string()
            }
        }
    };
    let item_var = var("itemVariable", "item");
    let index_var = var("indexVariable", "index");
    for (field, name) in [("itemVariable", &item_var), ("indexVariable", &index_var)] {
        if ROOTS.contains(&name.as_str()) {
            ck.add(
                push(at, field),
                format!("'{name}' would shadow the template root of that name; choose another"),
            );
        } else if ck.block.locals.contains(name) {
            ck.add(
                push(at, field),
                format!("'{name}' would shadow the variable of an enclosing loop; choose another"),
            );
        }
    }
    if item_var == index_var {
        ck.add(
            push(at, "indexVariable"),
            format!("'{index_var}' is the item variable too; choose another"),
        );
    }
    let max_iterations = bounded(
        ck,
        at,
        cfg,
        "maxIterations",
        DEFAULT_ITERATIONS,
        MAX_ITERATIONS,
    );
    let max_concurrency = bounded(ck, at, cfg, "maxConcurrency", 1, MAX_CONCURRENCY);
    let continue_on_error = match cfg.get("onItemError") {
        None => false,
        Some(Value::String(s)) if s == "fail" => false,
        Some(Value::String(s)) if s == "continue" => true,
        Some(_) => {
            ck.add(push(at, "onItemError"), "must be fail or continue");
            false
        }
    };
    let mut locals = ck.block.locals.clone();
    locals.extend([item_var.clone(), index_var.clone()]);
    let body = compile_body(
        ck,
        push(at, "steps"),
        cfg.get("steps"),
        earlier,
        BlockCtx {
            locals,
            depth: ck.block.depth + 1,
            in_loop: true,
        },
        cfg.get("output").map(|o| (push(at, "output"), o)),
    );
    let body = body.filter(|_| ck.issues.len() == before)?;
    Some(Arc::new(LoopSpec {
        body,
        item_var,
        index_var,
        max_iterations: max_iterations as usize,
        max_concurrency: max_concurrency as usize,
        continue_on_error,
    }))
}

/// A `parallel` step's config.
pub(super) fn compile_parallel(
    ck: &mut Checker,
    at: &[Value],
    cfg: &Value,
    earlier: &[String],
) -> Option<Arc<ParallelSpec>> {
    let before = ck.issues.len();
    nesting(ck, at);
    let fail_fast = match cfg.get("failFast") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            ck.add(push(at, "failFast"), "must be true or false");
            true
        }
    };
    let empty = Map::new();
    let branches = match cfg.get("branches") {
        Some(Value::Object(b)) if !b.is_empty() && b.len() <= MAX_BRANCHES => b,
        _ => {
            ck.add(
                push(at, "branches"),
                format!(
                    "required: an object of 1 to {MAX_BRANCHES} named branches, each a list of steps"
                ),
            );
            &empty
        }
    };
    let mut out = vec![];
    for (name, steps) in branches {
        let base = push(&push(at, "branches"), name.as_str());
        if !super::compile::valid_step_id(name) || name == "errors" {
            ck.add(
                base.clone(),
                "a branch name is 1-64 characters of A-Z a-z 0-9 _ - (and not 'errors', which lists failed branches)",
            );
        }
        let ctx = BlockCtx {
            locals: ck.block.locals.clone(),
            depth: ck.block.depth + 1,
            in_loop: false,
        };
        if let Some(body) = compile_body(ck, base, Some(steps), earlier, ctx, None) {
            out.push((name.clone(), body));
        }
    }
    (ck.issues.len() == before).then(|| {
        Arc::new(ParallelSpec {
            branches: out,
            fail_fast,
        })
    })
}

fn nesting(ck: &mut Checker, at: &[Value]) {
    if ck.block.depth + 1 > MAX_NESTING {
        let mut p = at.to_vec();
        p.pop();
        ck.add(
            p,
            format!("blocks (loop, parallel) nest at most {MAX_NESTING} deep"),
        );
    }
}

fn bounded(
    ck: &mut Checker,
    at: &[Value],
    cfg: &Value,
    field: &str,
    default: u64,
    max: u64,
) -> u64 {
    match cfg.get(field) {
        None => default,
        Some(v) => match v.as_u64() {
            Some(n @ 1..) if n <= max => n,
            _ => {
                ck.add(
                    push(at, field),
                    format!("must be an integer from 1 to {max}"),
                );
                default
            }
        },
    }
}

/// Compile one body (`base`: the path of its list of steps) with a checker of its own,
/// whose problems are then listed under `base`.
fn compile_body(
    ck: &mut Checker,
    base: Vec<Value>,
    raw: Option<&Value>,
    earlier: &[String],
    ctx: BlockCtx,
    output: Option<(Vec<Value>, &Value)>,
) -> Option<Arc<CompiledWorkflow>> {
    let steps: &[Value] = match raw {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_BODY_STEPS => a,
        _ => {
            ck.add(
                base,
                format!("required: a list of 1 to {MAX_BODY_STEPS} steps"),
            );
            return None;
        }
    };
    let locals = ctx.locals.clone();
    let mut sub = Checker {
        issues: vec![],
        inner: ck.inner.clone(),
        block: ctx,
    };
    let compiled = with_locals(&locals, || compile_block(&mut sub, steps, earlier));
    for issue in sub.issues {
        // The body's checker names paths from its own `steps`; they sit under `base`.
        let mut path = base.clone();
        path.extend(issue.path.into_iter().skip(1));
        ck.issues.push(Issue {
            path,
            message: issue.message,
        });
    }
    let output = output.map(|(at, raw)| {
        with_locals(&locals, || {
            let c = ck.compile_value(&at, raw);
            let mut visible = earlier.to_vec();
            visible.extend(compiled.iter().map(|s| s.id.clone()));
            ck.check_refs(&at, &c, &visible, &[]);
            c
        })
    });
    if compiled.len() != steps.len() {
        return None;
    }
    Some(Arc::new(CompiledWorkflow {
        id: String::new(),
        name: String::new(),
        status: None,
        definition: Value::Null,
        steps: compiled,
        output,
        variables: Value::Null,
        input_schema: None,
        timeout_ms: None,
        trigger: Default::default(),
        concurrency: None,
        warnings: vec![],
    }))
}

/// Bodies share their workflow's id, name and variables (set once the whole
/// definition has compiled, while each body has one owner).
pub(super) fn finish_bodies(steps: &mut [CompiledStep], id: &str, name: &str, variables: &Value) {
    let fill = |body: &mut Arc<CompiledWorkflow>| {
        if let Some(b) = Arc::get_mut(body) {
            b.id = id.to_string();
            b.name = name.to_string();
            b.variables = variables.clone();
            finish_bodies(&mut b.steps, id, name, variables);
        }
    };
    for step in steps {
        match &mut step.kind {
            StepKind::Loop(spec) => {
                if let Some(spec) = Arc::get_mut(spec) {
                    fill(&mut spec.body);
                }
            }
            StepKind::Parallel(spec) => {
                if let Some(spec) = Arc::get_mut(spec) {
                    for (_, b) in &mut spec.branches {
                        fill(b);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The bodies of a raw step, with the path of each body's list of steps.
fn raw_bodies(step: &Value, at: &[Value]) -> Vec<(Vec<Value>, Vec<Value>)> {
    let cfg = step.get("config");
    let list = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    match step.get("type").and_then(Value::as_str) {
        Some("loop") => vec![(
            push(&push(at, "config"), "steps"),
            list(cfg.and_then(|c| c.get("steps"))),
        )],
        Some("parallel") => cfg
            .and_then(|c| c.get("branches"))
            .and_then(Value::as_object)
            .map(|b| {
                b.iter()
                    .map(|(name, v)| {
                        (
                            push(&push(&push(at, "config"), "branches"), name.as_str()),
                            list(Some(v)),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => vec![],
    }
}

/// Whole-definition rules: step ids unique across all bodies, at most
/// `MAX_TOTAL_STEPS` steps in all; and which block each inner step is private to.
pub(super) fn check_tree(ck: &mut Checker, steps: &[Value]) {
    let mut seen: Vec<String> = vec![];
    let mut total = 0;
    walk(ck, steps, &[json!("steps")], None, &mut seen, &mut total);
    if total > MAX_TOTAL_STEPS {
        ck.add(
            vec![json!("steps")],
            format!("at most {MAX_TOTAL_STEPS} steps in all, bodies of loops and parallel branches included ({total} here)"),
        );
    }
}

fn walk(
    ck: &mut Checker,
    steps: &[Value],
    at: &[Value],
    block: Option<&str>,
    seen: &mut Vec<String>,
    total: &mut usize,
) {
    for (i, step) in steps.iter().enumerate() {
        *total += 1;
        let here = push(at, i);
        let id = step.get("id").and_then(Value::as_str).unwrap_or_default();
        if !id.is_empty() {
            if seen.iter().any(|s| s == id) {
                ck.add(push(&here, "id"), format!("duplicate step id '{id}'"));
            } else {
                seen.push(id.to_string());
            }
            if let Some(b) = block {
                ck.inner.push((id.to_string(), b.to_string()));
            }
        }
        for (path, body) in raw_bodies(step, &here) {
            walk(ck, &body, &path, Some(id), seen, total);
        }
    }
}
