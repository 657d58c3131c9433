//! Apply-time validation: turns a definition's JSON into a `CompiledWorkflow`,
//! or lists *every* problem with its JSON path (docs/workflows.md).

use super::definition::*;
use super::fields;
use super::schema::InputSchema;
use super::steps::compile_step;
use crate::template::value::PathSeg;
use crate::template::{CompiledValue, Context, Template, TemplateErrorKind};
use serde_json::{Map, Value, json};

/// One problem: `{path: ["steps", 1, "config", "amount"], message}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: Vec<Value>,
    pub message: String,
}

const MAX_STEPS: usize = 100;

/// `wf_` + the name in lower snake case ("Process Customer Order" → `wf_process_customer_order`).
pub fn derive_id(name: &str) -> String {
    let mut id = String::from("wf_");
    let mut pending_sep = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_sep && id.len() > 3 {
                id.push('_');
            }
            pending_sep = false;
            id.push(c.to_ascii_lowercase());
        } else {
            pending_sep = true;
        }
    }
    id.truncate(67);
    id
}

fn valid_workflow_id(id: &str) -> bool {
    id.strip_prefix("wf_").is_some_and(|rest| {
        (1..=64).contains(&rest.len())
            && rest.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

pub fn valid_step_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

pub(super) struct Checker {
    pub(super) issues: Vec<Issue>,
    /// Steps inside a block's body, with the block they are private to.
    pub(super) inner: Vec<(String, String)>,
    /// The body being compiled (default: the top level).
    pub(super) block: super::blocks::BlockCtx,
}

impl Checker {
    pub(super) fn add(&mut self, path: Vec<Value>, message: impl Into<String>) {
        self.issues.push(Issue {
            path,
            message: message.into(),
        });
    }

    pub(super) fn compile_value(&mut self, base: &[Value], v: &Value) -> CompiledValue {
        match CompiledValue::compile(v) {
            Ok(c) => {
                for (sub, t) in c.templates() {
                    self.check_constant(&join(base, &sub), t);
                }
                c
            }
            Err(errors) => {
                for (sub, err) in errors {
                    self.add(join(base, &sub), err.to_string());
                }
                CompiledValue::Literal(Value::Null)
            }
        }
    }

    /// A template made only of literals gives the same result in every run, so it is
    /// rendered once here: one whose result would pass the default budget of a value
    /// (`limits::DEFAULT_MAX_VALUE_BYTES`) is refused now instead of failing every run.
    pub(super) fn check_constant(&mut self, path: &[Value], t: &Template) {
        if !t.is_constant() {
            return;
        }
        let (steps, null) = (Map::new(), Value::Null);
        let ctx = Context {
            input: &null,
            steps: &steps,
            variables: &null,
            run: &null,
            workflow: &null,
            now: "1970-01-01T00:00:00.000Z",
            locals: &null,
        };
        if let Err(e) = t.render(&ctx)
            && e.kind == TemplateErrorKind::TooLarge
        {
            self.add(path.to_vec(), e.to_string());
        }
    }

    /// `steps.X` must name a step before `position` (or any step, for `output`).
    pub(super) fn check_refs(
        &mut self,
        base: &[Value],
        c: &CompiledValue,
        earlier: &[String],
        later: &[String],
    ) {
        for (sub, id) in c.step_refs() {
            if earlier.contains(&id) {
                continue;
            }
            let private = self.inner.iter().find(|(inner, _)| *inner == id);
            let why = if later.contains(&id) {
                format!("step '{id}' is referenced before it runs; only earlier steps can be used")
            } else if let Some((_, block)) = private {
                format!(
                    "step '{id}' is inside the body of '{block}' and private to it; after the block use steps.{block}.output"
                )
            } else {
                format!("unknown step '{id}'{}", earlier_steps(earlier))
            };
            self.add(join(base, &sub), why);
        }
    }
}

fn earlier_steps(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(" (earlier steps: {})", known.join(", "))
    }
}

fn join(base: &[Value], sub: &[PathSeg]) -> Vec<Value> {
    let mut p = base.to_vec();
    p.extend(sub.iter().map(|s| match s {
        PathSeg::Key(k) => json!(k),
        PathSeg::Index(i) => json!(i),
    }));
    p
}

/// Validate and compile a definition. Every problem is listed, not only the first.
pub fn compile(def: &Value) -> Result<CompiledWorkflow, Vec<Issue>> {
    let mut ck = Checker {
        issues: vec![],
        inner: vec![],
        block: Default::default(),
    };
    let Some(obj) = def.as_object() else {
        ck.add(vec![], "a workflow definition must be a JSON object");
        return Err(ck.issues);
    };
    fields::check(&mut ck, &[], obj, fields::DEFINITION);
    let name = match obj.get("name") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            ck.add(vec![json!("name")], "required: a non-empty string");
            String::new()
        }
    };
    let id = match obj.get("id") {
        None => derive_id(&name),
        Some(Value::String(s)) if valid_workflow_id(s) => s.clone(),
        Some(_) => {
            ck.add(vec![json!("id")], "must match ^wf_[A-Za-z0-9_]{1,64}$");
            String::new()
        }
    };
    if !name.is_empty() && !valid_workflow_id(&id) {
        ck.add(
            vec![json!("name")],
            "cannot derive an id from this name; set `id`",
        );
    }
    let status = match obj.get("status") {
        None => None,
        Some(Value::String(s)) if WorkflowStatus::parse(s).is_some() => WorkflowStatus::parse(s),
        Some(_) => {
            ck.add(
                vec![json!("status")],
                format!("must be one of {}", WorkflowStatus::ALL.join(", ")),
            );
            None
        }
    };
    let trigger = super::trigger::parse_trigger(&mut ck, obj.get("trigger"));
    let input_schema = match obj.get("inputSchema") {
        None | Some(Value::Null) => None,
        Some(raw) => match InputSchema::compile(raw) {
            Ok(s) => Some(s),
            Err(problems) => {
                for p in problems {
                    let mut path = vec![json!("inputSchema")];
                    path.extend(p.path);
                    ck.add(path, format!("not a valid JSON Schema: {}", p.message));
                }
                None
            }
        },
    };
    let variables = match obj.get("variables") {
        None => Value::Object(Map::new()),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            ck.add(vec![json!("variables")], "must be an object of constants");
            Value::Object(Map::new())
        }
    };
    let timeout_ms = positive_ms(&mut ck, obj.get("timeoutMs"), vec![json!("timeoutMs")]);
    let concurrency = match obj.get("concurrency") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=10_000) => Some(n as u32),
            _ => {
                ck.add(
                    vec![json!("concurrency")],
                    "must be an integer from 1 to 10000 (runs of this workflow executing at once)",
                );
                None
            }
        },
    };

    let raw_steps: &[Value] = match obj.get("steps") {
        Some(Value::Array(a)) if !a.is_empty() && a.len() <= MAX_STEPS => a,
        Some(Value::Array(a)) if a.len() > MAX_STEPS => {
            ck.add(vec![json!("steps")], format!("at most {MAX_STEPS} steps"));
            &[]
        }
        _ => {
            ck.add(vec![json!("steps")], "required: an array of 1 to 100 steps");
            &[]
        }
    };
    super::blocks::check_tree(&mut ck, raw_steps);
    let all_ids: Vec<String> = raw_steps
        .iter()
        .filter_map(|s| s.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let mut steps = compile_block(&mut ck, raw_steps, &[]);
    let output = obj.get("output").map(|raw| {
        let c = ck.compile_value(&[json!("output")], raw);
        ck.check_refs(&[json!("output")], &c, &all_ids, &[]);
        c
    });
    super::waits::check_workflow(&mut ck, &steps, output.as_ref(), timeout_ms);

    if !ck.issues.is_empty() {
        return Err(ck.issues);
    }
    super::blocks::finish_bodies(&mut steps, &id, &name, &variables);
    let warnings = super::control::definedness(&steps, output.as_ref());
    let mut definition = obj.clone();
    definition.remove("status");
    definition.insert("id".into(), json!(id));
    Ok(CompiledWorkflow {
        id,
        name,
        status,
        definition: Value::Object(definition),
        steps,
        output,
        variables,
        input_schema,
        timeout_ms,
        trigger,
        concurrency,
        warnings,
    })
}

/// One block's list of steps (the top level or a body): each step sees `outer` (the
/// steps before the block, in enclosing blocks) and the earlier steps of its own block;
/// a condition's `then`/`else` guard later steps of the same block.
pub(super) fn compile_block(
    ck: &mut Checker,
    raw_steps: &[Value],
    outer: &[String],
) -> Vec<CompiledStep> {
    let all_ids: Vec<String> = raw_steps
        .iter()
        .filter_map(|s| s.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let mut steps = Vec::with_capacity(raw_steps.len());
    let mut guards: Vec<Vec<Guard>> = vec![vec![]; raw_steps.len()];
    for (i, raw) in raw_steps.iter().enumerate() {
        let mut earlier = outer.to_vec();
        earlier.extend_from_slice(&all_ids[..all_ids.len().min(i)]);
        let later = &all_ids[all_ids.len().min(i)..];
        if raw.get("type").and_then(Value::as_str) == Some("condition")
            && let Some(cfg) = raw.get("config").and_then(Value::as_object)
        {
            let id = raw.get("id").and_then(Value::as_str).unwrap_or_default();
            for (target, branch) in super::control::check_targets(ck, i, cfg, &all_ids) {
                guards[target].push(Guard {
                    condition: i,
                    condition_id: id.to_string(),
                    branch,
                });
            }
        }
        if let Some(step) = compile_step(ck, i, raw, &earlier, later) {
            steps.push(step);
        }
    }
    // Only when every step compiled do indexes line up with `guards`.
    if steps.len() == raw_steps.len() {
        for (step, g) in steps.iter_mut().zip(guards) {
            step.guards = g;
        }
    }
    steps
}

pub(super) fn positive_ms(ck: &mut Checker, v: Option<&Value>, at: Vec<Value>) -> Option<u64> {
    match v {
        None => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                ck.add(at, "must be a positive integer number of milliseconds");
                None
            }
        },
    }
}
