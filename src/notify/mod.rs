//! Outbound notifications (docs/notifications.md). This file is **pure**: the
//! event types, which events a run's state change produces, endpoint filters,
//! the retry schedule and the disable rule, and the payload. The stores call
//! `run_events` from inside the transaction that changes a run (the outbox:
//! the event is committed with its cause); `deliver.rs` is the worker that
//! POSTs what is due, signed as Standard Webhooks.

pub mod deliver;

use crate::engine::RunStatus;
use serde_json::{Value, json};

/// Every event an endpoint can subscribe to. `run.suspended` and the
/// `approval.*` events join here (and in `run_events`) with the steps that
/// cause them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    RunStarted,
    RunCompleted,
    RunFailed,
    RunCancelled,
    RunTimedOut,
    EndpointDisabled,
}

impl EventType {
    pub const ALL: [EventType; 6] = [
        EventType::RunStarted,
        EventType::RunCompleted,
        EventType::RunFailed,
        EventType::RunCancelled,
        EventType::RunTimedOut,
        EventType::EndpointDisabled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::RunStarted => "run.started",
            EventType::RunCompleted => "run.completed",
            EventType::RunFailed => "run.failed",
            EventType::RunCancelled => "run.cancelled",
            EventType::RunTimedOut => "run.timed_out",
            EventType::EndpointDisabled => "endpoint.disabled",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The event a run's finish produces.
    pub fn finished(status: RunStatus) -> Option<EventType> {
        match status {
            RunStatus::Completed => Some(EventType::RunCompleted),
            RunStatus::Failed => Some(EventType::RunFailed),
            RunStatus::Cancelled => Some(EventType::RunCancelled),
            RunStatus::TimedOut => Some(EventType::RunTimedOut),
            RunStatus::Pending | RunStatus::Running | RunStatus::Suspended => None,
        }
    }
}

/// A run as one write finds it and leaves it, as far as events care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunChange {
    /// `started_at` was set before the write.
    pub was_started: bool,
    pub was_finished: bool,
    /// After the write.
    pub status: RunStatus,
    pub started: bool,
}

/// The events one write of a run produces, in the order they happened
/// (a run that starts and ends in one write gets both, started first).
/// A run cancelled before it started gets only `run.cancelled`.
pub fn run_events(c: RunChange) -> Vec<EventType> {
    let mut out = vec![];
    if c.was_finished {
        return out;
    }
    if !c.was_started && c.started {
        out.push(EventType::RunStarted);
    }
    if let Some(t) = EventType::finished(c.status) {
        out.push(t);
    }
    out
}

/// Both outcomes of a commit whose prior `started_at` the caller cannot see
/// before the statement runs (PostgreSQL decides in SQL which one applies):
/// `(if it had not started, if it had)`. A commit's run is never finished before.
pub fn commit_events(status: RunStatus, started: bool) -> (Vec<EventType>, Vec<EventType>) {
    let change = |was_started| RunChange {
        was_started,
        was_finished: false,
        status,
        started,
    };
    (run_events(change(false)), run_events(change(true)))
}

/// An endpoint's subscription: `None` means every event / every workflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub events: Option<Vec<String>>,
    pub workflow_ids: Option<Vec<String>>,
}

impl Filter {
    /// Whether an event of `event` about a run of `workflow_id` (none for
    /// system events, which no workflow filter excludes) goes to this endpoint.
    pub fn wants(&self, event: &str, workflow_id: Option<&str>) -> bool {
        let typed = self
            .events
            .as_ref()
            .is_none_or(|e| e.iter().any(|t| t == event));
        let of_workflow = match (&self.workflow_ids, workflow_id) {
            (Some(ids), Some(w)) => ids.iter().any(|i| i == w),
            _ => true,
        };
        typed && of_workflow
    }
}

/// Delays after the 1st, 2nd, … failed attempt (Svix's schedule): eight
/// attempts over about 27.5 hours, then the delivery has failed for good.
pub const RETRY_DELAYS_MS: [i64; 7] = [
    5_000,
    5 * 60_000,
    30 * 60_000,
    2 * 3_600_000,
    5 * 3_600_000,
    10 * 3_600_000,
    10 * 3_600_000,
];

/// An endpoint failing this long (no success since its first failure) is disabled.
pub const DEFAULT_DISABLE_AFTER_MS: i64 = 5 * 24 * 3_600_000;

/// How the delivery worker decides after an attempt.
#[derive(Debug, Clone)]
pub struct Policy {
    pub retry_delays_ms: Vec<i64>,
    pub disable_after_ms: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            retry_delays_ms: RETRY_DELAYS_MS.to_vec(),
            disable_after_ms: DEFAULT_DISABLE_AFTER_MS,
        }
    }
}

/// What one attempt leaves behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    /// Try again at this time.
    RetryAt(i64),
    /// The schedule is exhausted.
    Failed,
}

/// The endpoint after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointNext {
    /// A success: no longer failing.
    Healthy,
    /// Failing since this time (kept, or this attempt's time if it was healthy).
    FailingSince(i64),
    /// Failing for `disable_after` already: disable it (and record `endpoint.disabled`).
    Disable,
}

/// Only a 2xx answer delivers; redirects are not followed and count as failures.
pub fn delivered(status: Option<u16>) -> bool {
    status.is_some_and(|s| (200..300).contains(&s))
}

/// The decision after attempt number `attempt` (1-based) of a delivery, at `now`.
pub fn after_attempt(
    policy: &Policy,
    attempt: u32,
    ok: bool,
    now: i64,
    failing_since: Option<i64>,
) -> (Next, EndpointNext) {
    if ok {
        return (Next::Delivered, EndpointNext::Healthy);
    }
    let next = match policy
        .retry_delays_ms
        .get(attempt.saturating_sub(1) as usize)
    {
        Some(delay) => Next::RetryAt(now + delay),
        None => Next::Failed,
    };
    let since = failing_since.unwrap_or(now);
    let endpoint = if now - since >= policy.disable_after_ms {
        EndpointNext::Disable
    } else {
        EndpointNext::FailingSince(since)
    };
    (next, endpoint)
}

/// The body POSTed: `{id, type, occurredAt, sequence, data}`.
pub fn payload(id: &str, event: &str, occurred_at: i64, sequence: i64, data: Value) -> Value {
    json!({
        "id": id,
        "type": event,
        "occurredAt": crate::time::rfc3339(occurred_at),
        "sequence": sequence,
        "data": data,
    })
}

/// The run fields an event freezes at the moment it happened; the rest of
/// the run view (id, workflow, input, …) never changes after the trigger.
pub fn snapshot(
    status: RunStatus,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    output: &Value,
    error: &Value,
) -> Value {
    json!({
        "status": status.as_str(),
        "startedAt": started_at,
        "completedAt": completed_at,
        "output": output,
        "error": error,
    })
}

/// What each event of one write freezes: the write's state, except that
/// `run.started` shows the run as it started (running, no result yet) even
/// when the same write also finished it.
pub fn event_snapshots(
    events: &[EventType],
    status: RunStatus,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    output: &Value,
    error: &Value,
) -> Vec<(EventType, Value)> {
    events
        .iter()
        .map(|e| {
            let data = match e {
                EventType::RunStarted => snapshot(
                    RunStatus::Running,
                    started_at,
                    None,
                    &Value::Null,
                    &Value::Null,
                ),
                _ => snapshot(status, started_at, completed_at, output, error),
            };
            (*e, data)
        })
        .collect()
}

/// The view of a run as of an event: the run's view without steps, with
/// the event's frozen status, output, error and times laid over it.
pub fn run_data(mut view: Value, snap: &Value) -> Value {
    if let Value::Object(m) = &mut view {
        m.remove("steps");
        let ms = |k: &str| snap.get(k).and_then(Value::as_i64);
        if let Some(s) = snap.get("status") {
            m.insert("status".into(), s.clone());
        }
        m.insert(
            "output".into(),
            snap.get("output").cloned().unwrap_or(Value::Null),
        );
        m.insert(
            "error".into(),
            snap.get("error").cloned().unwrap_or(Value::Null),
        );
        let (start, end) = (ms("startedAt"), ms("completedAt"));
        m.insert("startedAt".into(), json!(start.map(crate::time::rfc3339)));
        m.insert("completedAt".into(), json!(end.map(crate::time::rfc3339)));
        let duration = match (start, end) {
            (Some(s), Some(e)) => json!(e - s),
            _ => Value::Null,
        };
        m.insert("durationMs".into(), duration);
    }
    view
}

/// A URL on this server's own `/webhooks/` path would notify the server
/// itself, so a failure notification could start the workflow that fails
/// again: refused. `own` are the `host:port` authorities this server answers
/// on (the request's `Host`, the listening address).
pub fn loops_back(url: &url::Url, own: &[String]) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let port = url.port_or_known_default().unwrap_or(0);
    let authority = format!(
        "{}:{port}",
        host.trim_start_matches('[').trim_end_matches(']')
    );
    let path = url.path();
    let hooks = path == "/webhooks" || path.starts_with("/webhooks/");
    hooks
        && own.iter().any(|o| {
            let o = o.to_ascii_lowercase();
            o == authority.to_ascii_lowercase()
                || (is_local(&o) && is_local(&authority) && same_port(&o, port))
        })
}

fn is_local(authority: &str) -> bool {
    let host = authority
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(authority);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

fn same_port(authority: &str, port: u16) -> bool {
    authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse::<u16>().ok())
        .is_some_and(|p| p == port)
}

#[cfg(test)]
mod tests;

/// Time-ordered ids like run ids: `evt_…` events, `msg_…` deliveries, `ep_…` endpoints.
pub fn new_id(prefix: &str) -> String {
    let run = crate::ids::run_id();
    format!("{prefix}_{}", &run["run_".len()..])
}

/// A new signing secret: `whsec_` and the base64 of 32 random bytes (the
/// Standard Webhooks form).
pub fn new_secret() -> String {
    use base64::Engine as _;
    let key: [u8; 32] = rand::random();
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The data of `endpoint.disabled`.
pub fn endpoint_data(
    id: &str,
    url: &str,
    description: Option<&str>,
    failing_since: Option<i64>,
    disabled_at: i64,
) -> Value {
    json!({
        "endpointId": id,
        "url": url,
        "description": description,
        "failingSince": failing_since.map(crate::time::rfc3339),
        "disabledAt": crate::time::rfc3339(disabled_at),
    })
}

/// `500ms`, `30s`, `10m`, `12h`, `5d` → milliseconds (for `--endpoint-disable-after`).
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{s}' needs a unit: ms, s, m, h or d (e.g. 5d)"))?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("'{s}' must start with a whole number (e.g. 5d)"))?;
    let factor = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "unknown unit '{unit}' in '{s}': use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(factor)
        .filter(|ms| *ms > 0)
        .ok_or_else(|| format!("'{s}' must be more than zero and less than centuries"))
}
