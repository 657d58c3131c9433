//! Apply-time checks of the steps that wait for people and outside systems:
//! `approval` (approvers, reason, timeout, required, onTimeout, onReject,
//! notify channels) and the callback form of `wait`; and the rules that span
//! the definition: an approval nobody checks, an approval or callback that
//! would outlast the run, `callbacks.X` naming a step that is no callback.

use super::compile::Checker;
use super::definition::{CompiledStep, StepKind};
use crate::template::CompiledValue;
use serde_json::{Value, json};

pub const APPROVAL_FIELDS: &[&str] = &[
    "approvers",
    "reason",
    "timeoutMs",
    "required",
    "onTimeout",
    "onReject",
    "notifyChannels",
];
const CALLBACK_FIELDS: &[&str] = &["timeoutMs", "onTimeout"];

/// 24 hours: how long an approval or a callback waits when `timeoutMs` is absent.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 24 * 3_600_000;
/// 30 days: the longest an approval or a callback may wait.
pub const MAX_WAIT_TIMEOUT_MS: u64 = 30 * 24 * 3_600_000;
/// The most approvers one approval may name.
pub const MAX_APPROVERS: usize = 50;
/// The notify channels that exist; anything else is refused until it does.
const NOTIFY_CHANNELS: &[&str] = &["email"];

fn sub(at: &[Value], field: &str) -> Vec<Value> {
    let mut p = at.to_vec();
    p.push(json!(field));
    p
}

fn is_template(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.contains("{{"))
}

/// A `wait` step: exactly one of `durationMs`, `until` or `callback`.
pub(super) fn check_wait(ck: &mut Checker, at: &[Value], config: &Value) {
    let n = ["durationMs", "until", "callback"]
        .iter()
        .filter(|k| config.get(**k).is_some())
        .count();
    if n != 1 {
        ck.add(
            at.to_vec(),
            "a wait step needs exactly one of `durationMs`, `until` or `callback`",
        );
        return;
    }
    let Some(cb) = config.get("callback") else {
        return;
    };
    let at = sub(at, "callback");
    let Some(obj) = cb.as_object() else {
        ck.add(at, "must be an object {timeoutMs?, onTimeout?}");
        return;
    };
    super::fields::check(ck, &at, obj, CALLBACK_FIELDS);
    check_timeout(ck, &at, obj.get("timeoutMs"));
    match obj.get("onTimeout") {
        None => {}
        Some(Value::String(s)) if s == "fail" || s == "continue" => {}
        Some(_) => ck.add(sub(&at, "onTimeout"), "must be fail or continue"),
    }
}

fn check_timeout(ck: &mut Checker, at: &[Value], v: Option<&Value>) {
    match v {
        None => {}
        Some(v) if is_template(v) => {}
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= MAX_WAIT_TIMEOUT_MS => {}
            _ => ck.add(
                sub(at, "timeoutMs"),
                format!(
                    "must be a positive number of milliseconds, at most {MAX_WAIT_TIMEOUT_MS} (30 days)"
                ),
            ),
        },
    }
}

/// An `approval` step's config.
pub(super) fn check_approval(ck: &mut Checker, at: &[Value], config: &Value) {
    let Some(obj) = config.as_object() else {
        return;
    };
    let approvers = match obj.get("approvers") {
        Some(Value::Array(list)) => {
            if list.is_empty() || list.len() > MAX_APPROVERS {
                ck.add(
                    sub(at, "approvers"),
                    format!("must list 1 to {MAX_APPROVERS} approvers"),
                );
            }
            let mut seen: Vec<&str> = vec![];
            for (i, a) in list.iter().enumerate() {
                match a.as_str() {
                    Some(s) if !s.trim().is_empty() => {
                        if seen.contains(&s) {
                            let mut p = sub(at, "approvers");
                            p.push(json!(i));
                            ck.add(p, format!("approver '{s}' is listed twice"));
                        }
                        seen.push(s);
                    }
                    _ => {
                        let mut p = sub(at, "approvers");
                        p.push(json!(i));
                        ck.add(p, "must be a non-empty string (an email address or a name)");
                    }
                }
            }
            Some(list.len())
        }
        Some(v) if is_template(v) => None,
        _ => {
            ck.add(
                sub(at, "approvers"),
                "required: an array of approvers (email addresses or names)",
            );
            None
        }
    };
    match obj.get("reason") {
        None | Some(Value::String(_)) => {}
        Some(_) => ck.add(sub(at, "reason"), "must be a string (templates allowed)"),
    }
    check_timeout(ck, at, obj.get("timeoutMs"));
    match obj.get("required") {
        None => {}
        Some(Value::String(s)) if s == "all" => {}
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && approvers.is_none_or(|k| n as usize <= k) => {}
            Some(n) if n >= 1 => ck.add(
                sub(at, "required"),
                format!(
                    "{n} approvals are required but only {} approvers are listed",
                    approvers.unwrap_or(0)
                ),
            ),
            _ => ck.add(
                sub(at, "required"),
                "must be a number of approvals (1 or more) or \"all\"",
            ),
        },
    }
    match obj.get("onTimeout") {
        None => {}
        Some(Value::String(s)) if ["reject", "approve", "fail"].contains(&s.as_str()) => {}
        Some(_) => ck.add(sub(at, "onTimeout"), "must be reject, approve or fail"),
    }
    match obj.get("onReject") {
        None => {}
        Some(Value::String(s)) if s == "continue" || s == "fail" => {}
        Some(_) => ck.add(sub(at, "onReject"), "must be continue or fail"),
    }
    match obj.get("notifyChannels") {
        None => {}
        Some(Value::Object(ch)) => {
            for (name, v) in ch {
                if !NOTIFY_CHANNELS.contains(&name.as_str()) {
                    ck.add(
                        sub(&sub(at, "notifyChannels"), name),
                        format!(
                            "notify channel '{name}' does not exist yet; the channels are: {}",
                            NOTIFY_CHANNELS.join(", ")
                        ),
                    );
                } else if !v.is_boolean() {
                    ck.add(
                        sub(&sub(at, "notifyChannels"), name),
                        "must be true or false",
                    );
                }
            }
        }
        Some(_) => ck.add(
            sub(at, "notifyChannels"),
            "must be an object like {\"email\": true}",
        ),
    }
}

/// A field of a compiled config object, when it holds no template.
fn literal<'a>(config: &'a CompiledValue, field: &str) -> Option<&'a Value> {
    match config {
        CompiledValue::Literal(v) => v.get(field),
        CompiledValue::Object(fields) => fields.iter().find_map(|(name, v)| match v {
            CompiledValue::Literal(v) if name == field => Some(v),
            _ => None,
        }),
        _ => None,
    }
}

/// A field of a compiled config object, as compiled.
fn field(config: &CompiledValue, name: &str) -> Option<CompiledValue> {
    match config {
        CompiledValue::Literal(v) => v.get(name).cloned().map(CompiledValue::Literal),
        CompiledValue::Object(fields) => fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone()),
        _ => None,
    }
}

/// Whether a step is a `wait` that completes by a callback.
pub fn is_callback_wait(step: &CompiledStep) -> bool {
    step.kind == StepKind::Wait && field(&step.config, "callback").is_some()
}

/// Rules over the whole definition.
pub(super) fn check_workflow(
    ck: &mut Checker,
    steps: &[CompiledStep],
    output: Option<&CompiledValue>,
    run_timeout_ms: Option<u64>,
) {
    let callbacks: Vec<&str> = steps
        .iter()
        .filter(|s| is_callback_wait(s))
        .map(|s| s.id.as_str())
        .collect();
    for (i, step) in steps.iter().enumerate() {
        // `callbacks.X` must name a callback wait step.
        let mut templates: Vec<(Vec<Value>, &crate::template::Template)> = step
            .config
            .templates()
            .into_iter()
            .map(|(p, t)| {
                let mut at = vec![json!("steps"), json!(i), json!("config")];
                at.extend(p.into_iter().map(|s| match s {
                    crate::template::value::PathSeg::Key(k) => json!(k),
                    crate::template::value::PathSeg::Index(n) => json!(n),
                }));
                (at, t)
            })
            .collect();
        if let Some(t) = &step.condition {
            templates.push((vec![json!("steps"), json!(i), json!("if")], t));
        }
        for (at, t) in templates {
            for id in t.callback_refs() {
                if !callbacks.contains(&id) {
                    let known = if callbacks.is_empty() {
                        "this workflow has none".to_string()
                    } else {
                        format!("the callback waits are: {}", callbacks.join(", "))
                    };
                    ck.add(
                        at.clone(),
                        format!(
                            "'callbacks.{id}' names no callback wait step ({{\"type\": \"wait\", \"config\": {{\"callback\": {{}}}}}}); {known}"
                        ),
                    );
                }
            }
        }
        let waits = step.kind == StepKind::Approval || is_callback_wait(step);
        if !waits {
            continue;
        }
        let cfg = if step.kind == StepKind::Approval {
            step.config.clone()
        } else {
            field(&step.config, "callback").unwrap_or(CompiledValue::Literal(Value::Null))
        };
        let cfg = &cfg;
        let timeout = literal(cfg, "timeoutMs")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_WAIT_TIMEOUT_MS);
        if let Some(run) = run_timeout_ms
            && timeout > run
        {
            let mut at = vec![json!("steps"), json!(i), json!("config")];
            if step.kind != StepKind::Approval {
                at.push(json!("callback"));
            }
            at.push(json!("timeoutMs"));
            ck.add(
                at,
                format!(
                    "waits up to {timeout} ms{}, longer than the run's timeoutMs ({run} ms): the run would time out first",
                    if literal(cfg, "timeoutMs").is_none() {
                        " (the default, 24 hours)"
                    } else {
                        ""
                    }
                ),
            );
        }
        if step.kind == StepKind::Approval {
            let fails = literal(cfg, "onReject").and_then(Value::as_str) == Some("fail");
            let read_later = steps[i + 1..].iter().any(|s| reads(s, &step.id))
                || output.is_some_and(|o| o.step_refs().iter().any(|(_, id)| id == &step.id));
            if !fails && !read_later {
                ck.add(
                    vec![json!("steps"), json!(i)],
                    format!(
                        "approval '{}' is never checked: a rejection does not stop the run, so a later step must read steps.{}.output.approved (in `if` or a condition), or set \"onReject\": \"fail\"",
                        step.id, step.id
                    ),
                );
            }
        }
    }
}

/// Whether `step` reads anything of step `id` (its config, `if`, or a condition on it).
fn reads(step: &CompiledStep, id: &str) -> bool {
    step.config.step_refs().iter().any(|(_, r)| r == id)
        || step
            .condition
            .as_ref()
            .is_some_and(|t| t.step_refs().contains(&id))
}
