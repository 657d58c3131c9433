//! Apply-time validation of one step: its type or action, config, `if`,
//! error handling, retry policy and timeout, and its references to other steps.

use super::compile::{Checker, positive_ms, valid_step_id};
use super::control;
use super::definition::*;
use super::fields;
use crate::actions::ActionKind;
use crate::template::{CompiledValue, Template};
use serde_json::{Value, json};

const DEFAULT_STEP_TIMEOUT_MS: u64 = 30_000;

/// The step types this version runs.
const STEP_TYPES: &[&str] = &[
    "transform",
    "action",
    "email",
    "wait",
    "condition",
    "stop",
    "workflow",
    "loop",
    "parallel",
    "approval",
];

fn at_config(i: usize, field: &str) -> Vec<Value> {
    vec![json!("steps"), json!(i), json!("config"), json!(field)]
}

pub(super) fn compile_step(
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
    fields::check(ck, &base, obj, fields::STEP);
    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    // Duplicates are found across the whole definition (`blocks::check_tree`).
    if !valid_step_id(&id) {
        ck.add(at("id"), "required: 1-64 characters of A-Z a-z 0-9 _ -");
    }
    let name = obj.get("name").and_then(Value::as_str).map(String::from);
    let step_type = obj.get("type").and_then(Value::as_str).unwrap_or_default();
    let action = obj.get("action").and_then(Value::as_str).map(String::from);
    let config_raw = obj.get("config").cloned().unwrap_or(json!({}));
    if !config_raw.is_object() {
        ck.add(at("config"), "must be an object");
    }
    let issues_before_kind = ck.issues.len();
    let kind = match step_type {
        "transform" => {
            if config_raw.get("mapping").is_none() {
                ck.add(at("config"), "a transform needs `mapping`");
            }
            StepKind::Transform
        }
        "wait" => {
            super::waits::check_wait(ck, &at("config"), &config_raw);
            StepKind::Wait
        }
        "approval" => {
            super::waits::check_approval(ck, &at("config"), &config_raw);
            StepKind::Approval
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
                    let known = ActionKind::known_actions();
                    let message = match name {
                        Some(n) => fields::unknown_name("action", n, known),
                        None => format!("required for an action step; one of {}", known.join(", ")),
                    };
                    ck.add(at("action"), message);
                    StepKind::Transform
                }
            }
        }
        "condition" => {
            match config_raw.get("conditions") {
                Some(c) => control::check_conditions(ck, &at_config(i, "conditions"), c, 0),
                None => ck.add(
                    at("config"),
                    "a condition needs `conditions`: {left, operator, right}",
                ),
            }
            StepKind::Condition
        }
        "stop" => {
            if let Some(cfg) = config_raw.as_object() {
                control::check_stop(ck, &at("config"), cfg);
            }
            match config_raw.get("breakLoop") {
                None => {}
                Some(_) if !ck.block.in_loop => ck.add(
                    at_config(i, "breakLoop"),
                    "only a stop inside a loop's body can break the loop",
                ),
                Some(Value::Bool(_)) => {}
                Some(_) => ck.add(at_config(i, "breakLoop"), "must be true or false"),
            }
            StepKind::Stop
        }
        "loop" | "parallel" => {
            let (kind, fields) = if step_type == "loop" {
                let spec = super::blocks::compile_loop(ck, &at("config"), &config_raw, earlier);
                (spec.map(StepKind::Loop), super::blocks::LOOP_FIELDS)
            } else {
                let spec = super::blocks::compile_parallel(ck, &at("config"), &config_raw, earlier);
                (spec.map(StepKind::Parallel), super::blocks::PARALLEL_FIELDS)
            };
            // A block with problems stands in as a transform: its fields are checked here.
            if let (None, Some(cfg)) = (&kind, config_raw.as_object()) {
                fields::check(ck, &at("config"), cfg, fields);
            }
            kind.unwrap_or(StepKind::Transform)
        }
        "workflow" => {
            match config_raw.get("workflowId") {
                Some(Value::String(id)) if !id.is_empty() => {}
                _ => ck.add(
                    at("config"),
                    "a workflow step needs `workflowId`: the id of the workflow to run",
                ),
            }
            match config_raw.get("wait") {
                None | Some(Value::Bool(_)) => {}
                Some(_) => {
                    let mut p = at("config");
                    p.push(json!("wait"));
                    ck.add(p, "must be true or false");
                }
            }
            match config_raw.get("version") {
                None => {}
                Some(v) if v.as_i64().is_some_and(|n| n >= 1) => {}
                Some(_) => {
                    let mut p = at("config");
                    p.push(json!("version"));
                    ck.add(p, "must be a version number (1 or more)");
                }
            }
            StepKind::Workflow
        }
        "" => {
            ck.add(
                at("type"),
                format!("required: one of {}", STEP_TYPES.join(", ")),
            );
            StepKind::Transform
        }
        other => {
            ck.add(
                at("type"),
                fields::unknown_name("step type", other, STEP_TYPES),
            );
            StepKind::Transform
        }
    };
    // Config fields are checked against the step's real kind, not a fallback.
    let kind_known = !ck.issues[issues_before_kind..].iter().any(|i| {
        matches!(
            i.path.get(2).and_then(Value::as_str),
            Some("type" | "action")
        )
    });
    // A block whose config has problems stands in as a transform: its fields are not a
    // transform's (they were checked with the block).
    let block_fallback = matches!(step_type, "loop" | "parallel") && kind == StepKind::Transform;
    if let (true, Some(allowed), Some(cfg)) = (
        kind_known && !block_fallback,
        fields::config_fields(&kind),
        config_raw.as_object(),
    ) {
        fields::check(ck, &at("config"), cfg, allowed);
        if let (StepKind::Action(ActionKind::Email), Some(Value::Object(body))) =
            (&kind, cfg.get("body"))
        {
            let mut p = at("config");
            p.push(json!("body"));
            fields::check(ck, &p, body, fields::EMAIL_BODY);
        }
    }
    // A block's body is compiled with the block (`blocks`), not rendered with its config.
    let own = super::blocks::own_config(&kind, &config_raw);
    let config = ck.compile_value(&at("config"), own.as_ref().unwrap_or(&config_raw));
    ck.check_refs(&at("config"), &config, earlier, later);
    let condition = match obj.get("if") {
        None => None,
        Some(Value::String(s)) => match Template::parse(s) {
            Ok(t) => {
                ck.check_constant(&at("if"), &t);
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
        guards: vec![],
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
    fields::check(ck, &at, obj, fields::RETRY_CONFIG);
    let field = |k: &str| {
        let mut p = at.clone();
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
