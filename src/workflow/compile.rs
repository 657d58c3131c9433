//! Apply-time validation: turns a definition's JSON into a `CompiledWorkflow`,
//! or lists *every* problem with its JSON path (SPEC §1).

use super::definition::*;
use super::schema::InputSchema;
use crate::actions::ActionKind;
use crate::template::value::PathSeg;
use crate::template::{CompiledValue, Template};
use serde_json::{Map, Value, json};

/// One problem: `{path: ["steps", 1, "config", "amount"], message}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    pub path: Vec<Value>,
    pub message: String,
}

const MAX_STEPS: usize = 100;
const DEFAULT_STEP_TIMEOUT_MS: u64 = 30_000;
const KNOWN_FIELDS: [&str; 10] = [
    "id",
    "name",
    "description",
    "status",
    "trigger",
    "inputSchema",
    "steps",
    "output",
    "variables",
    "timeoutMs",
];

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

struct Checker {
    issues: Vec<Issue>,
}

impl Checker {
    fn add(&mut self, path: Vec<Value>, message: impl Into<String>) {
        self.issues.push(Issue {
            path,
            message: message.into(),
        });
    }

    fn compile_value(&mut self, base: &[Value], v: &Value) -> CompiledValue {
        match CompiledValue::compile(v) {
            Ok(c) => c,
            Err(errors) => {
                for (sub, err) in errors {
                    self.add(join(base, &sub), err.to_string());
                }
                CompiledValue::Literal(Value::Null)
            }
        }
    }

    /// `steps.X` must name a step before `position` (or any step, for `output`).
    fn check_refs(
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
            let why = if later.contains(&id) {
                format!("step '{id}' is referenced before it runs; only earlier steps can be used")
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

fn path(parts: &[Value]) -> Vec<Value> {
    parts.to_vec()
}

/// Validate and compile a definition. Every problem is listed, not only the first.
pub fn compile(def: &Value) -> Result<CompiledWorkflow, Vec<Issue>> {
    let mut ck = Checker { issues: vec![] };
    let Some(obj) = def.as_object() else {
        ck.add(vec![], "a workflow definition must be a JSON object");
        return Err(ck.issues);
    };
    for key in obj.keys() {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            ck.add(
                vec![json!(key)],
                format!("unknown field; expected one of {}", KNOWN_FIELDS.join(", ")),
            );
        }
    }
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
    match obj.get("trigger") {
        Some(Value::Object(t)) if t.get("type") == Some(&json!("api")) => {}
        Some(Value::Object(t)) => ck.add(
            vec![json!("trigger"), json!("type")],
            format!(
                "unsupported trigger type {}; expected \"api\"",
                t.get("type").unwrap_or(&Value::Null)
            ),
        ),
        None => {}
        Some(_) => ck.add(
            vec![json!("trigger")],
            "must be an object like {\"type\": \"api\"}",
        ),
    }
    let input_schema = match obj.get("inputSchema") {
        None | Some(Value::Null) => None,
        Some(raw) => match InputSchema::compile(raw) {
            Ok(s) => Some(s),
            Err(e) => {
                ck.add(
                    vec![json!("inputSchema")],
                    format!("not a valid JSON Schema: {e}"),
                );
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
    let all_ids: Vec<String> = raw_steps
        .iter()
        .filter_map(|s| s.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (i, raw) in raw_steps.iter().enumerate() {
        let earlier = &all_ids[..all_ids.len().min(i)];
        let later = &all_ids[all_ids.len().min(i)..];
        if let Some(step) = compile_step(&mut ck, i, raw, earlier, later) {
            steps.push(step);
        }
    }
    let output = obj.get("output").map(|raw| {
        let c = ck.compile_value(&[json!("output")], raw);
        ck.check_refs(&[json!("output")], &c, &all_ids, &[]);
        c
    });

    if !ck.issues.is_empty() {
        return Err(ck.issues);
    }
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
    })
}

fn positive_ms(ck: &mut Checker, v: Option<&Value>, at: Vec<Value>) -> Option<u64> {
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

fn compile_step(
    ck: &mut Checker,
    i: usize,
    raw: &Value,
    earlier: &[String],
    later: &[String],
) -> Option<CompiledStep> {
    let at = |field: &str| vec![json!("steps"), json!(i), json!(field)];
    let base = vec![json!("steps"), json!(i)];
    let Some(obj) = raw.as_object() else {
        ck.add(base, "a step must be an object");
        return None;
    };
    let before = ck.issues.len();
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !valid_step_id(&id) {
        ck.add(at("id"), "required: 1-64 characters of A-Z a-z 0-9 _ -");
    } else if earlier.contains(&id) {
        ck.add(at("id"), format!("duplicate step id '{id}'"));
    }
    let name = obj.get("name").and_then(Value::as_str).map(String::from);
    let step_type = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    let action = obj.get("action").and_then(Value::as_str).map(String::from);
    let config_raw = obj.get("config").cloned().unwrap_or(json!({}));
    if !config_raw.is_object() {
        ck.add(at("config"), "must be an object");
    }
    let kind = match step_type {
        "transform" => {
            if config_raw.get("mapping").is_none() {
                ck.add(at("config"), "a transform needs `mapping`");
            }
            StepKind::Transform
        }
        "wait" => {
            let has = |k| config_raw.get(k).is_some();
            if has("durationMs") == has("until") {
                ck.add(
                    at("config"),
                    "a wait step needs exactly one of `durationMs` or `until`",
                );
            }
            StepKind::Wait
        }
        "action" | "email" => {
            // The seed writes an email step's `"action": "send"` inside its config.
            let name = action.as_deref().or_else(|| {
                config_raw
                    .get("action")
                    .and_then(Value::as_str)
                    .filter(|_| step_type == "email")
            });
            match ActionKind::parse(step_type, name) {
                Some(kind) => {
                    for field in kind.missing_config(&config_raw) {
                        let mut p = at("config");
                        p.push(json!(field));
                        ck.add(p, format!("required config field '{field}' is missing"));
                    }
                    StepKind::Action(kind)
                }
                None => {
                    let known = ActionKind::known_actions().join(", ");
                    let message = match name {
                        Some(n) => format!("unknown action '{n}'; known: {known}"),
                        None => format!("required for an action step; one of {known}"),
                    };
                    ck.add(at("action"), message);
                    StepKind::Transform
                }
            }
        }
        other => {
            ck.add(
                at("type"),
                format!("unknown step type '{other}'; expected transform, action, email or wait"),
            );
            StepKind::Transform
        }
    };
    let config = ck.compile_value(&at("config"), &config_raw);
    ck.check_refs(&at("config"), &config, earlier, later);
    let condition = match obj.get("if") {
        None => None,
        Some(Value::String(s)) => match Template::parse(s) {
            Ok(t) => {
                let c = CompiledValue::Template(t.clone());
                ck.check_refs(&at("if"), &c, earlier, later);
                Some(t)
            }
            Err(e) => {
                ck.add(at("if"), e.to_string());
                None
            }
        },
        Some(_) => {
            ck.add(at("if"), "must be a template string");
            None
        }
    };
    let default_handling = if matches!(kind, StepKind::Action(_)) {
        ErrorHandling::Retry
    } else {
        ErrorHandling::Fail
    };
    let error_handling = match obj.get("errorHandling").and_then(Value::as_str) {
        None if obj.get("errorHandling").is_none() => default_handling,
        Some("fail") => ErrorHandling::Fail,
        Some("continue") => ErrorHandling::Continue,
        Some("retry") => ErrorHandling::Retry,
        _ => {
            ck.add(at("errorHandling"), "must be one of fail, continue, retry");
            default_handling
        }
    };
    let retry = retry_config(ck, obj.get("retryConfig"), at("retryConfig"));
    let timeout_ms =
        positive_ms(ck, obj.get("timeoutMs"), at("timeoutMs")).unwrap_or(DEFAULT_STEP_TIMEOUT_MS);
    let connection = obj
        .get("connection")
        .and_then(Value::as_str)
        .map(String::from);
    (ck.issues.len() == before).then_some(CompiledStep {
        id,
        name,
        kind,
        config,
        condition,
        error_handling,
        retry,
        timeout_ms,
        connection,
    })
}

fn retry_config(ck: &mut Checker, v: Option<&Value>, at: Vec<Value>) -> RetryConfig {
    let mut rc = RetryConfig::default();
    let Some(v) = v else { return rc };
    let Some(obj) = v.as_object() else {
        ck.add(
            at,
            "must be an object {maxAttempts, initialDelayMs, maxDelayMs, backoffMultiplier}",
        );
        return rc;
    };
    let field = |k: &str| {
        let mut p = path(&at);
        p.push(json!(k));
        p
    };
    if let Some(n) = obj.get("maxAttempts") {
        match n.as_u64() {
            Some(n @ 1..=100) => rc.max_attempts = n as u32,
            _ => ck.add(field("maxAttempts"), "must be an integer from 1 to 100"),
        }
    }
    for (k, slot) in [
        ("initialDelayMs", &mut rc.initial_delay_ms),
        ("maxDelayMs", &mut rc.max_delay_ms),
    ] {
        if let Some(n) = obj.get(k) {
            match n.as_u64() {
                Some(n) => *slot = n,
                None => ck.add(field(k), "must be a non-negative integer"),
            }
        }
    }
    if let Some(n) = obj.get("backoffMultiplier") {
        match n.as_f64() {
            Some(m) if (1.0..=10.0).contains(&m) => rc.backoff_multiplier = m,
            _ => ck.add(field("backoffMultiplier"), "must be a number from 1 to 10"),
        }
    }
    rc
}
