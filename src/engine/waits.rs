//! Steps that wait for people and outside systems: `approval` and the
//! callback form of `wait`. Reaching one suspends the run (`Effect::Suspend`:
//! status `suspended`, the step `waiting`, parked without a worker until its
//! deadline). Decisions and callbacks are store writes that put their result
//! on the waiting step (`resolution`, `callback`) and queue the run; the next
//! claim settles the step from that record, or from the deadline. Pure, like
//! the rest of the engine.

use super::{RunError, RunState, RunStatus, StepRecord, StepStatus, Transition};
use crate::time::{parse_rfc3339, rfc3339};
use crate::workflow::waits::{DEFAULT_WAIT_TIMEOUT_MS, MAX_APPROVERS, MAX_WAIT_TIMEOUT_MS};
use serde_json::{Value, json};

/// What a suspended step waits for (`waitingFor` on the step).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitingFor {
    Approval,
    Callback,
}

impl WaitingFor {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitingFor::Approval => "approval",
            WaitingFor::Callback => "callback",
        }
    }
}

/// The run waits, holding no worker, until `until` (its step's deadline, or
/// the run's when that is earlier), a decision or a callback.
#[derive(Debug, Clone, PartialEq)]
pub struct Suspend {
    pub idx: usize,
    pub step_id: String,
    pub until: i64,
    pub waiting_for: WaitingFor,
    /// Set when the run first reaches an approval: the store records it (and
    /// one token per approver) in the same commit.
    pub approval: Option<ApprovalRequest>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalRequest {
    pub approvers: Vec<String>,
    pub reason: String,
    pub required: usize,
    pub expires_at: i64,
    /// `notifyChannels.email`: approvers that are email addresses get a link.
    pub email: bool,
}

fn timeout_of(config: &Value) -> u64 {
    config
        .get("timeoutMs")
        .and_then(Value::as_u64)
        .unwrap_or(DEFAULT_WAIT_TIMEOUT_MS)
        .clamp(1, MAX_WAIT_TIMEOUT_MS)
}

fn expires_at(rec: &StepRecord) -> Option<i64> {
    rec.output
        .get("expiresAt")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
}

fn fail(rec: &mut StepRecord, now: i64, error: RunError) {
    rec.status = StepStatus::Failed;
    rec.error = Some(error);
    rec.completed_at = Some(now);
}

fn complete(rec: &mut StepRecord, now: i64, output: Value) {
    rec.status = StepStatus::Completed;
    rec.error = None;
    rec.output = output;
    rec.completed_at = Some(now);
}

fn with_step(mut e: RunError, step_id: &str) -> RunError {
    e.step_id = Some(step_id.to_string());
    e
}

fn suspend(
    s: &mut RunState,
    i: usize,
    until: i64,
    deadline: Option<i64>,
    waiting_for: WaitingFor,
    approval: Option<ApprovalRequest>,
) -> Transition {
    let until = deadline.map_or(until, |d| until.min(d));
    s.status = RunStatus::Suspended;
    s.park_until = Some(until);
    Transition {
        state: s.clone(),
        effect: super::Effect::Suspend(Suspend {
            idx: i,
            step_id: s.steps[i].step_id.clone(),
            until,
            waiting_for,
            approval,
        }),
    }
}

/// The approvers of a rendered config: a list of names or addresses, each once.
fn approvers(config: &Value) -> Result<Vec<String>, String> {
    let list: Vec<String> = match config.get("approvers") {
        Some(Value::Array(items)) => items
            .iter()
            .map(crate::template::value_text)
            .map(|s| s.trim().to_string())
            .collect(),
        Some(Value::String(s)) => s.split(',').map(|p| p.trim().to_string()).collect(),
        _ => return Err("approvers must be a list of email addresses or names".into()),
    };
    let mut out: Vec<String> = vec![];
    for a in list {
        if a.is_empty() {
            return Err("an approver rendered empty".into());
        }
        if !out.contains(&a) {
            out.push(a);
        }
    }
    if out.is_empty() || out.len() > MAX_APPROVERS {
        return Err(format!(
            "approvers must list 1 to {MAX_APPROVERS} approvers"
        ));
    }
    Ok(out)
}

/// An `approval` step: settle it from its recorded resolution or its
/// deadline (`None`: settled, go on), or suspend the run until either.
pub(super) fn approval_step(
    s: &mut RunState,
    i: usize,
    config: &Value,
    now: i64,
    deadline: Option<i64>,
) -> Option<Transition> {
    let step_id = s.steps[i].step_id.clone();
    let rec = &mut s.steps[i];
    if rec.status == StepStatus::Waiting {
        if let Some(res) = rec.output.get("resolution").cloned() {
            settle_approval(rec, config, &res, now);
            return None;
        }
        let expires = expires_at(rec).unwrap_or(now);
        if now >= expires {
            settle_approval(rec, config, &json!({"decision": "timeout"}), now);
            return None;
        }
        return Some(suspend(s, i, expires, deadline, WaitingFor::Approval, None));
    }
    let approvers = match approvers(config) {
        Ok(a) => a,
        Err(m) => {
            rec.attempts += 1;
            let e = RunError::invalid_config(format!("step '{step_id}': {m}"));
            fail(rec, now, with_step(e, &step_id));
            return None;
        }
    };
    let required = match config.get("required") {
        None | Some(Value::Null) => 1,
        Some(Value::String(a)) if a == "all" => approvers.len(),
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 && n as usize <= approvers.len() => n as usize,
            _ => {
                rec.attempts += 1;
                let e = RunError::invalid_config(format!(
                    "step '{step_id}': required must be 1 to {} (the approvers listed) or \"all\"",
                    approvers.len()
                ));
                fail(rec, now, with_step(e, &step_id));
                return None;
            }
        },
    };
    let reason = match config.get("reason") {
        Some(r) if !r.is_null() => crate::template::value_text(r),
        _ => format!(
            "Step '{step_id}' of workflow '{}' asks for approval",
            s.workflow_id
        ),
    };
    let expires = now.saturating_add(timeout_of(config) as i64);
    rec.attempts += 1;
    rec.error = None;
    rec.status = StepStatus::Waiting;
    rec.output = json!({
        "waitingFor": "approval",
        "reason": reason,
        "approvers": approvers,
        "required": required,
        "expiresAt": rfc3339(expires),
        "decisions": [],
    });
    let email = config
        .get("notifyChannels")
        .and_then(|c| c.get("email"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let request = ApprovalRequest {
        approvers,
        reason,
        required,
        expires_at: expires,
        email,
    };
    Some(suspend(
        s,
        i,
        expires,
        deadline,
        WaitingFor::Approval,
        Some(request),
    ))
}

/// The step's result from `resolution` (`{decision: approve|reject|timeout, by, at, comment}`).
fn settle_approval(rec: &mut StepRecord, config: &Value, res: &Value, now: i64) {
    let decisions = rec
        .output
        .get("decisions")
        .cloned()
        .unwrap_or_else(|| json!([]));
    let text = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or_default();
    let on_reject_fails = text("onReject") == "fail";
    let decision = res.get("decision").and_then(Value::as_str).unwrap_or("");
    let at = res
        .get("at")
        .cloned()
        .unwrap_or_else(|| json!(rfc3339(now)));
    let (approved, by, comment) = match decision {
        "approve" => (true, res.get("by").cloned(), res.get("comment").cloned()),
        "reject" => (false, res.get("by").cloned(), res.get("comment").cloned()),
        _ => match text("onTimeout") {
            "approve" => (true, None, None),
            "fail" => {
                let step_id = rec.step_id.clone();
                rec.output =
                    json!({"approved": false, "decision": "timeout", "decisions": decisions});
                let e = RunError::step(
                    "APPROVAL_TIMEOUT",
                    format!("step '{step_id}': nobody decided before the approval's timeout"),
                );
                fail(rec, now, with_step(e, &step_id));
                return;
            }
            _ => (false, None, None),
        },
    };
    let output = json!({
        "approved": approved,
        "decision": if decision == "approve" || decision == "reject" { decision } else { "timeout" },
        "approvedBy": by.unwrap_or(Value::Null),
        "approvedAt": at,
        "comment": comment.unwrap_or(Value::Null),
        "decisions": decisions,
    });
    if !approved && on_reject_fails {
        let step_id = rec.step_id.clone();
        let who = output["approvedBy"]
            .as_str()
            .map(|b| format!(" by {b}"))
            .unwrap_or_else(|| " by its timeout".into());
        rec.output = output;
        let e = RunError::step(
            "APPROVAL_REJECTED",
            format!("step '{step_id}': the approval was rejected{who}"),
        );
        fail(rec, now, with_step(e, &step_id));
        return;
    }
    complete(rec, now, output);
}

/// A callback `wait` step: settle it from the recorded callback or its
/// deadline (`None`), or suspend the run until either.
pub(super) fn callback_step(
    s: &mut RunState,
    i: usize,
    config: &Value,
    now: i64,
    deadline: Option<i64>,
) -> Option<Transition> {
    let cb = config.get("callback").cloned().unwrap_or(Value::Null);
    let rec = &mut s.steps[i];
    if rec.status == StepStatus::Waiting {
        if let Some(got) = rec.output.get("callback").cloned() {
            complete(
                rec,
                now,
                json!({
                    "received": true,
                    "body": got.get("body").cloned().unwrap_or(Value::Null),
                    "headers": got.get("headers").cloned().unwrap_or_else(|| json!({})),
                    "receivedAt": got.get("receivedAt").cloned().unwrap_or(Value::Null),
                }),
            );
            return None;
        }
        let expires = expires_at(rec).unwrap_or(now);
        if now >= expires {
            if cb.get("onTimeout").and_then(Value::as_str) == Some("continue") {
                complete(rec, now, json!({"received": false}));
            } else {
                let step_id = rec.step_id.clone();
                let e = RunError::step(
                    "CALLBACK_TIMEOUT",
                    format!("step '{step_id}': no callback arrived before its timeout"),
                );
                fail(rec, now, with_step(e, &step_id));
            }
            return None;
        }
        return Some(suspend(s, i, expires, deadline, WaitingFor::Callback, None));
    }
    let expires = now.saturating_add(timeout_of(&cb) as i64);
    rec.attempts += 1;
    rec.error = None;
    rec.status = StepStatus::Waiting;
    rec.output = json!({"waitingFor": "callback", "expiresAt": rfc3339(expires)});
    Some(suspend(s, i, expires, deadline, WaitingFor::Callback, None))
}

/// Whether a rendered `wait` config is the callback form.
pub(super) fn is_callback(config: &Value) -> bool {
    config.get("callback").is_some()
}
