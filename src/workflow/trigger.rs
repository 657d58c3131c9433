//! How runs start: the `triggerType` every run records, and the `trigger` of a
//! definition (`api`, `schedule`, `webhook`) parsed and checked at apply time,
//! every problem with its path. Pure: occurrence times are `crate::schedule`'s.

use super::compile::Checker;
use serde_json::{Map, Value, json};

/// How a run started; stored and filtered on as its `as_str` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    Api,
    Schedule,
    Webhook,
    Replay,
    Batch,
}

impl TriggerType {
    pub const ALL: [&'static str; 5] = ["api", "schedule", "webhook", "replay", "batch"];

    pub fn parse(s: &str) -> Option<TriggerType> {
        Some(match s {
            "api" => TriggerType::Api,
            "schedule" => TriggerType::Schedule,
            "webhook" => TriggerType::Webhook,
            "replay" => TriggerType::Replay,
            "batch" => TriggerType::Batch,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerType::Api => "api",
            TriggerType::Schedule => "schedule",
            TriggerType::Webhook => "webhook",
            TriggerType::Replay => "replay",
            TriggerType::Batch => "batch",
        }
    }
}

/// A definition's `trigger`. API triggers work for every workflow.
#[derive(Debug, Clone, Default)]
pub enum TriggerDef {
    #[default]
    Api,
    Schedule(Box<ScheduleDef>),
    Webhook(WebhookDef),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

#[derive(Debug, Clone)]
pub enum Recurrence {
    /// A 5-field cron pattern, evaluated in the schedule's time zone.
    Cron(Box<croner::Cron>),
    Interval {
        value: u32,
        unit: IntervalUnit,
    },
}

/// What happens when the previous run of this schedule is still in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    Skip,
    Queue,
    Allow,
}

/// Which occurrences missed while no server ran are fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CatchUp {
    Latest,
    None,
    All,
}

#[derive(Debug, Clone)]
pub struct ScheduleDef {
    pub recurrence: Recurrence,
    pub timezone: chrono_tz::Tz,
    pub enabled: bool,
    pub overlap: Overlap,
    pub catch_up: CatchUp,
    pub jitter_ms: u64,
    pub input: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookProvider {
    Stripe,
    Github,
    Standard,
    Custom,
}

impl WebhookProvider {
    pub const ALL: [&'static str; 4] = ["stripe", "github", "standard", "custom"];

    pub fn parse(s: &str) -> Option<WebhookProvider> {
        Some(match s {
            "stripe" => WebhookProvider::Stripe,
            "github" => WebhookProvider::Github,
            "standard" => WebhookProvider::Standard,
            "custom" => WebhookProvider::Custom,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct WebhookDef {
    pub path: String,
    pub provider: WebhookProvider,
    /// Absent: every event starts a run.
    pub events: Option<Vec<String>>,
    /// The `webhook` connection holding the signing secret.
    pub connection: Option<String>,
    pub verify_signature: bool,
}

/// Fields each trigger type accepts (unknown ones are errors).
pub const API_FIELDS: &[&str] = &["type"];
pub const SCHEDULE_FIELDS: &[&str] = &[
    "type", "cron", "interval", "timezone", "enabled", "overlap", "catchUp", "jitterMs", "input",
];
pub const INTERVAL_FIELDS: &[&str] = &["value", "unit"];
pub const WEBHOOK_FIELDS: &[&str] = &[
    "type",
    "path",
    "provider",
    "events",
    "connection",
    "verifySignature",
];

const MAX_INTERVAL: u64 = 525_600;

pub(super) fn parse_trigger(ck: &mut Checker, raw: Option<&Value>) -> TriggerDef {
    let at = |sub: &[&str]| -> Vec<Value> {
        let mut p = vec![json!("trigger")];
        p.extend(sub.iter().map(|s| json!(s)));
        p
    };
    let t = match raw {
        None | Some(Value::Null) => return TriggerDef::Api,
        Some(Value::Object(t)) => t,
        Some(_) => {
            ck.add(at(&[]), "must be an object like {\"type\": \"api\"}");
            return TriggerDef::Api;
        }
    };
    let (fields, def) = match t.get("type").and_then(Value::as_str) {
        Some("api") => (API_FIELDS, TriggerDef::Api),
        Some("schedule") => (SCHEDULE_FIELDS, parse_schedule(ck, t, &at)),
        Some("webhook") => (WEBHOOK_FIELDS, parse_webhook(ck, t, &at)),
        _ => {
            ck.add(
                at(&["type"]),
                format!(
                    "unsupported trigger type {}; expected \"api\", \"schedule\" or \"webhook\"",
                    t.get("type").unwrap_or(&Value::Null)
                ),
            );
            return TriggerDef::Api;
        }
    };
    unknown_fields(ck, t, fields, at(&[]));
    def
}

fn unknown_fields(ck: &mut Checker, obj: &Map<String, Value>, known: &[&str], base: Vec<Value>) {
    for key in obj.keys().filter(|k| !known.contains(&k.as_str())) {
        let mut p = base.clone();
        p.push(json!(key));
        ck.add(
            p,
            format!("unknown field; expected one of {}", known.join(", ")),
        );
    }
}

fn one_of<T: Copy>(
    ck: &mut Checker,
    v: Option<&Value>,
    path: Vec<Value>,
    options: &[(&str, T)],
    default: T,
) -> T {
    match v {
        None => default,
        Some(Value::String(s)) => match options.iter().find(|(name, _)| name == s) {
            Some((_, t)) => *t,
            None => {
                let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
                ck.add(path, format!("must be one of {}", names.join(", ")));
                default
            }
        },
        Some(_) => {
            let names: Vec<_> = options.iter().map(|(n, _)| *n).collect();
            ck.add(path, format!("must be one of {}", names.join(", ")));
            default
        }
    }
}

fn flag(ck: &mut Checker, v: Option<&Value>, path: Vec<Value>, default: bool) -> bool {
    match v {
        None => default,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            ck.add(path, "must be true or false");
            default
        }
    }
}

fn parse_schedule(
    ck: &mut Checker,
    t: &Map<String, Value>,
    at: &dyn Fn(&[&str]) -> Vec<Value>,
) -> TriggerDef {
    let recurrence = match (t.get("cron"), t.get("interval")) {
        (Some(_), Some(_)) => {
            ck.add(at(&["interval"]), "give either cron or interval, not both");
            None
        }
        (None, None) => {
            ck.add(
                at(&["cron"]),
                "required: a 5-field cron pattern like \"0 9 * * 1-5\", or an interval",
            );
            None
        }
        (Some(c), None) => parse_cron(ck, c, at(&["cron"])),
        (None, Some(i)) => parse_interval(ck, i, at),
    };
    let timezone = match t.get("timezone") {
        None => Some(chrono_tz::UTC),
        Some(Value::String(s)) => match s.parse::<chrono_tz::Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                ck.add(
                    at(&["timezone"]),
                    format!("unknown time zone '{s}'; use an IANA name like \"America/New_York\""),
                );
                None
            }
        },
        Some(_) => {
            ck.add(at(&["timezone"]), "must be an IANA time zone name");
            None
        }
    };
    let enabled = flag(ck, t.get("enabled"), at(&["enabled"]), true);
    let overlap = one_of(
        ck,
        t.get("overlap"),
        at(&["overlap"]),
        &[
            ("skip", Overlap::Skip),
            ("queue", Overlap::Queue),
            ("allow", Overlap::Allow),
        ],
        Overlap::Skip,
    );
    let catch_up = one_of(
        ck,
        t.get("catchUp"),
        at(&["catchUp"]),
        &[
            ("latest", CatchUp::Latest),
            ("none", CatchUp::None),
            ("all", CatchUp::All),
        ],
        CatchUp::Latest,
    );
    let jitter_ms = match t.get("jitterMs") {
        None => 0,
        Some(v) => match v.as_u64() {
            Some(n) if n <= 3_600_000 => n,
            _ => {
                ck.add(
                    at(&["jitterMs"]),
                    "must be an integer number of milliseconds from 0 to 3600000",
                );
                0
            }
        },
    };
    let input = match t.get("input") {
        None => Map::new(),
        Some(Value::Object(m)) => {
            if m.contains_key("schedule") {
                ck.add(
                    at(&["input", "schedule"]),
                    "reserved: every scheduled run gets `schedule: {name, scheduledAt, firedAt}`",
                );
            }
            m.clone()
        }
        Some(_) => {
            ck.add(at(&["input"]), "must be an object (the run's static input)");
            Map::new()
        }
    };
    match (recurrence, timezone) {
        (Some(recurrence), Some(timezone)) => TriggerDef::Schedule(Box::new(ScheduleDef {
            recurrence,
            timezone,
            enabled,
            overlap,
            catch_up,
            jitter_ms,
            input,
        })),
        _ => TriggerDef::Api,
    }
}

fn parse_cron(ck: &mut Checker, v: &Value, path: Vec<Value>) -> Option<Recurrence> {
    let Some(text) = v.as_str() else {
        ck.add(path, "must be a 5-field cron pattern like \"0 9 * * 1-5\"");
        return None;
    };
    if text.split_whitespace().count() != 5 {
        ck.add(
            path,
            "must have 5 fields (minute hour day-of-month month day-of-week), like \"0 9 * * 1-5\"",
        );
        return None;
    }
    let parser = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .build();
    match parser.parse(text) {
        Ok(c) => Some(Recurrence::Cron(Box::new(c))),
        Err(e) => {
            ck.add(path, format!("not a valid cron pattern: {e}"));
            None
        }
    }
}

fn parse_interval(
    ck: &mut Checker,
    v: &Value,
    at: &dyn Fn(&[&str]) -> Vec<Value>,
) -> Option<Recurrence> {
    let Value::Object(i) = v else {
        ck.add(
            at(&["interval"]),
            "must be an object like {\"value\": 15, \"unit\": \"minutes\"}",
        );
        return None;
    };
    unknown_fields(ck, i, INTERVAL_FIELDS, at(&["interval"]));
    let value = match i.get("value").and_then(Value::as_u64) {
        Some(n) if (1..=MAX_INTERVAL).contains(&n) => Some(n as u32),
        _ => {
            ck.add(
                at(&["interval", "value"]),
                format!("required: an integer from 1 to {MAX_INTERVAL}"),
            );
            None
        }
    };
    let unit = match i.get("unit").and_then(Value::as_str) {
        Some("seconds") => Some(IntervalUnit::Seconds),
        Some("minutes") => Some(IntervalUnit::Minutes),
        Some("hours") => Some(IntervalUnit::Hours),
        Some("days") => Some(IntervalUnit::Days),
        Some("weeks") => Some(IntervalUnit::Weeks),
        _ => {
            ck.add(
                at(&["interval", "unit"]),
                "required: one of seconds, minutes, hours, days, weeks",
            );
            None
        }
    };
    Some(Recurrence::Interval {
        value: value?,
        unit: unit?,
    })
}

fn parse_webhook(
    ck: &mut Checker,
    t: &Map<String, Value>,
    at: &dyn Fn(&[&str]) -> Vec<Value>,
) -> TriggerDef {
    let path = match t.get("path").and_then(Value::as_str) {
        Some(p) if valid_webhook_path(p) => Some(p.to_string()),
        _ => {
            ck.add(
                at(&["path"]),
                "required: 1 to 128 characters of A-Z a-z 0-9 - _ . / (the URL is /webhooks/{path})",
            );
            None
        }
    };
    let provider = match t.get("provider") {
        None => Some(WebhookProvider::Custom),
        Some(Value::String(s)) if WebhookProvider::parse(s).is_some() => WebhookProvider::parse(s),
        Some(_) => {
            ck.add(
                at(&["provider"]),
                format!("must be one of {}", WebhookProvider::ALL.join(", ")),
            );
            None
        }
    };
    let events = match t.get("events") {
        None => None,
        Some(Value::Array(a)) if a.iter().all(|e| e.as_str().is_some_and(|s| !s.is_empty())) => {
            Some(
                a.iter()
                    .filter_map(|e| e.as_str().map(String::from))
                    .collect(),
            )
        }
        Some(_) => {
            ck.add(
                at(&["events"]),
                "must be an array of event types like [\"invoice.paid\"]",
            );
            None
        }
    };
    let connection = match t.get("connection") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => {
            ck.add(at(&["connection"]), "must be a connection id (conn_…)");
            None
        }
    };
    let verify_signature = flag(ck, t.get("verifySignature"), at(&["verifySignature"]), true);
    if verify_signature && connection.is_none() {
        ck.add(
            at(&["connection"]),
            "required: the webhook connection that holds the signing secret (or \"verifySignature\": false to accept unsigned calls)",
        );
    }
    match (path, provider) {
        (Some(path), Some(provider)) => TriggerDef::Webhook(WebhookDef {
            path,
            provider,
            events,
            connection,
            verify_signature,
        }),
        _ => TriggerDef::Api,
    }
}

pub fn valid_webhook_path(p: &str) -> bool {
    (1..=128).contains(&p.len())
        && !p.starts_with('/')
        && !p.ends_with('/')
        && !p.contains("//")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}
