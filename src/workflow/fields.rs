//! Which fields each object of a definition may carry, and "did you mean"
//! suggestions for everything else. A misspelled field (`confg`,
//! `errorHandlng`) is an error, never a silently ignored default.
//!
//! To accept a new field, add it to the list of its object here (e.g. a new
//! trigger type's fields to [`trigger_fields`]).

use super::compile::Checker;
use serde_json::{Map, Value, json};

/// Top-level fields of a definition.
pub const DEFINITION: &[&str] = &[
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
    "concurrency",
];

/// Fields of one step.
pub const STEP: &[&str] = &[
    "id",
    "type",
    "name",
    "description",
    "action",
    "config",
    "if",
    "errorHandling",
    "retryConfig",
    "timeoutMs",
    "connection",
];

/// Fields of `retryConfig`.
pub const RETRY_CONFIG: &[&str] = &[
    "maxAttempts",
    "initialDelayMs",
    "maxDelayMs",
    "backoffMultiplier",
];

/// Fields of `trigger` for a trigger type (`None`: the type is unknown, checked elsewhere).
pub fn trigger_fields(trigger_type: &str) -> Option<&'static [&'static str]> {
    match trigger_type {
        "api" => Some(&["type"]),
        _ => None,
    }
}

/// Config fields by step type / action; `None` = open (Stripe passes its API's parameters on).
pub fn config_fields(kind: &super::StepKind) -> Option<&'static [&'static str]> {
    use crate::actions::ActionKind::*;
    match kind {
        super::StepKind::Transform => Some(&["mapping"]),
        super::StepKind::Wait => Some(&["durationMs", "until", "callback"]),
        super::StepKind::Action(HttpRequest) => Some(&[
            "method",
            "url",
            "headers",
            "query",
            "body",
            "timeoutMs",
            "expectStatus",
        ]),
        super::StepKind::Action(Email) => Some(&[
            "action",
            "to",
            "cc",
            "bcc",
            "from",
            "replyTo",
            "subject",
            "body",
            "timeoutMs",
        ]),
        super::StepKind::Action(_) => None,
        super::StepKind::Condition => Some(&["conditions", "then", "else"]),
        super::StepKind::Stop => Some(&["status", "output", "error", "breakLoop"]),
        super::StepKind::Workflow => Some(&["workflowId", "input", "version", "wait"]),
        super::StepKind::Loop(_) => Some(super::blocks::LOOP_FIELDS),
        super::StepKind::Parallel(_) => Some(super::blocks::PARALLEL_FIELDS),
        super::StepKind::Approval => Some(super::waits::APPROVAL_FIELDS),
    }
}

/// Fields of an email step's `body` object.
pub const EMAIL_BODY: &[&str] = &["html", "text"];

/// The candidate closest to `word`, when it is close enough to be a typo:
/// the same letters ignoring case, `_` and `-` (`idempotency_key` →
/// `idempotencyKey`), or a small edit distance.
pub fn nearest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let squash = |s: &str| {
        s.chars()
            .filter(|c| *c != '_' && *c != '-')
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    let w = squash(word);
    if let Some(exact) = candidates.iter().find(|c| squash(c) == w) {
        return Some(exact);
    }
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&w, &squash(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `unknown field 'confg' — did you mean 'config'?`, or the list of valid fields.
pub fn unknown_field(field: &str, allowed: &[&str]) -> String {
    match nearest(field, allowed) {
        Some(s) => format!("unknown field '{field}' — did you mean '{s}'?"),
        None => format!(
            "unknown field '{field}'; valid fields: {}",
            allowed.join(", ")
        ),
    }
}

/// `unknown step type 'transfrom' — did you mean 'transform'?`
pub fn unknown_name(what: &str, name: &str, known: &[&str]) -> String {
    match nearest(name, known) {
        Some(s) => format!("unknown {what} '{name}' — did you mean '{s}'?"),
        None => format!(
            "unknown {what} '{name}'; expected one of {}",
            known.join(", ")
        ),
    }
}

/// Report every key of `obj` not in `allowed`, at its own path.
pub(super) fn check(ck: &mut Checker, at: &[Value], obj: &Map<String, Value>, allowed: &[&str]) {
    for key in obj.keys() {
        if !allowed.contains(&key.as_str()) {
            let mut path = at.to_vec();
            path.push(json!(key));
            ck.add(path, unknown_field(key, allowed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(nearest("confg", STEP), Some("config"));
        assert_eq!(nearest("errorHandlng", STEP), Some("errorHandling"));
        assert_eq!(
            nearest("idempotency_key", &["input", "idempotencyKey"]),
            Some("idempotencyKey")
        );
        assert_eq!(nearest("retry_config", STEP), Some("retryConfig"));
        assert_eq!(nearest("zzzzzz", STEP), None);
        assert_eq!(
            unknown_field("confg", STEP),
            "unknown field 'confg' — did you mean 'config'?"
        );
        assert!(unknown_field("zzzzzz", RETRY_CONFIG).contains("valid fields: maxAttempts"));
    }
}
