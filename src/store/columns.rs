//! How records become column values and back, the same for both stores:
//! JSON values live in text columns (`NULL` for JSON `null`), errors as
//! their JSON text. Plain functions, no SQL.

use super::{Result, StoreError};
use crate::engine::{RunError, SkipReason, StepRecord, StepStatus};
use serde_json::Value;

/// A connection status as stored (its wire name).
pub fn connection_status(s: &str) -> Result<super::ConnectionStatus> {
    super::ConnectionStatus::parse(s)
        .ok_or_else(|| super::StoreError::Decode(format!("unknown connection status '{s}'")))
}

/// A connection provider as stored (its wire name).
pub fn connection_provider(s: &str) -> Result<super::ConnectionProvider> {
    super::ConnectionProvider::parse(s)
        .ok_or_else(|| super::StoreError::Decode(format!("unknown connection provider '{s}'")))
}

/// A workflow status as stored (its wire name).
pub fn workflow_status(s: &str) -> Result<crate::workflow::WorkflowStatus> {
    crate::workflow::WorkflowStatus::parse(s)
        .ok_or_else(|| super::StoreError::Decode(format!("unknown workflow status '{s}'")))
}

pub(crate) fn opt_json(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| v.to_string())
}

pub(crate) fn from_json(s: Option<String>) -> Result<Value> {
    match s {
        None => Ok(Value::Null),
        Some(s) => parse_stored(&s),
    }
}

/// The deepest stored text that is read back. Nothing deeper than `limits::MAX_JSON_DEPTH`
/// is written any more, but older versions stored what templates built (a mapping can
/// nest a deep input further); those rows stay readable up to here.
pub(crate) const MAX_STORED_DEPTH: usize = 512;

/// Parses stored JSON text. Text within serde_json's own recursion limit (128) is parsed as
/// usual; deeper text, written before the depth limit, is parsed without that limit on a
/// thread of its own with a stack sized for it, so no reader fails (or overflows its stack)
/// on a row an older version wrote.
pub(crate) fn parse_stored(text: &str) -> Result<Value> {
    let depth = crate::limits::text_depth(text);
    if depth < 120 {
        return Ok(serde_json::from_str(text)?);
    }
    if depth > MAX_STORED_DEPTH {
        return Err(StoreError::Decode(format!(
            "stored JSON is nested {depth} levels deep, more than the {MAX_STORED_DEPTH} that can be read"
        )));
    }
    let owned = text.to_string();
    let parsed = std::thread::Builder::new()
        .name("flowctl-deep-json".into())
        .stack_size(64 * 1024 * 1024)
        .spawn(move || {
            let mut de = serde_json::Deserializer::from_str(&owned);
            de.disable_recursion_limit();
            let v = <Value as serde::Deserialize>::deserialize(&mut de)?;
            de.end()?;
            Ok::<Value, serde_json::Error>(v)
        })
        .map_err(|e| StoreError::Decode(format!("cannot start a thread to read deep JSON: {e}")))?
        .join()
        .map_err(|_| StoreError::Decode("reading deep JSON failed".into()))?;
    Ok(parsed?)
}

pub(crate) fn encode_error(e: &Option<RunError>) -> Option<String> {
    e.as_ref().and_then(|e| serde_json::to_string(e).ok())
}

pub(crate) fn decode_error(text: Option<String>) -> Result<Option<RunError>> {
    match text {
        None => Ok(None),
        Some(t) => Ok(Some(serde_json::from_value(parse_stored(&t)?)?)),
    }
}

/// A step record as its columns, serialized before it reaches a writer.
pub(crate) struct StepColumns {
    pub idx: i64,
    pub step_id: String,
    pub status: &'static str,
    pub output: Option<String>,
    pub error: Option<String>,
    pub warnings: Option<String>,
    pub attempts: i64,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

impl From<&StepRecord> for StepColumns {
    fn from(s: &StepRecord) -> StepColumns {
        StepColumns {
            idx: s.idx as i64,
            step_id: s.step_id.clone(),
            status: s.status.as_str(),
            output: match (&s.skip_reason, s.status) {
                (Some(reason), StepStatus::Skipped) => {
                    Some(serde_json::json!({ SKIP_REASON: reason }).to_string())
                }
                _ => opt_json(&s.output),
            },
            error: encode_error(&s.error),
            warnings: (!s.warnings.is_empty())
                .then(|| serde_json::to_string(&s.warnings).unwrap_or_default()),
            attempts: s.attempts,
            started_at: s.started_at,
            completed_at: s.completed_at,
        }
    }
}

/// A skipped step has no output, so its output column carries why it was skipped
/// (`{"skipReason": …}`), which saves both stores a column and a migration.
const SKIP_REASON: &str = "skipReason";

/// A step's output and skip reason from its status and output column.
pub(crate) fn decode_output(
    status: StepStatus,
    text: Option<String>,
) -> Result<(Value, Option<SkipReason>)> {
    let value = from_json(text)?;
    if status == StepStatus::Skipped
        && let Some(reason) = value.get(SKIP_REASON)
    {
        let reason = serde_json::from_value(reason.clone())?;
        return Ok((Value::Null, Some(reason)));
    }
    Ok((value, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deep_text(levels: usize) -> String {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn rows_deeper_than_serde_jsons_limit_are_read_back() {
        // What older versions could store (a mapping nesting a 127-deep input further).
        let v = from_json(Some(deep_text(300))).expect("readable");
        assert!(crate::limits::deeper_than(&v, 299));
        assert_eq!(v.to_string(), deep_text(300));
        let plain = from_json(Some(r#"{"a":[1,{"b":null}]}"#.into())).expect("plain");
        assert_eq!(plain["a"][1]["b"], Value::Null);
        assert!(matches!(
            from_json(Some(deep_text(MAX_STORED_DEPTH + 1))),
            Err(StoreError::Decode(_))
        ));
        assert!(matches!(
            from_json(Some("[1,".into())),
            Err(StoreError::Decode(_))
        ));
    }

    fn skipped(reason: Option<SkipReason>) -> StepRecord {
        StepRecord {
            status: StepStatus::Skipped,
            skip_reason: reason,
            ..StepRecord::blank(2, "lo")
        }
    }

    #[test]
    fn a_skip_reason_round_trips_through_the_output_column() {
        let reason = SkipReason::Condition {
            condition: "check-amount".into(),
            branch: Some("then".into()),
        };
        let cols = StepColumns::from(&skipped(Some(reason.clone())));
        assert_eq!(
            cols.output.as_deref(),
            Some(r#"{"skipReason":{"condition":"check-amount","branch":"then"}}"#)
        );
        let (output, back) = decode_output(StepStatus::Skipped, cols.output).unwrap();
        assert_eq!((output, back), (Value::Null, Some(reason)));
        for reason in [
            SkipReason::Stop {
                stop: "halt".into(),
            },
            SkipReason::If {
                template: "{{ false }}".into(),
            },
            SkipReason::Condition {
                condition: "c".into(),
                branch: None,
            },
        ] {
            let cols = StepColumns::from(&skipped(Some(reason.clone())));
            let (_, back) = decode_output(StepStatus::Skipped, cols.output).unwrap();
            assert_eq!(back, Some(reason));
        }
    }

    #[test]
    fn outputs_of_other_steps_are_left_alone() {
        let cols = StepColumns::from(&skipped(None));
        assert_eq!(cols.output, None);
        // A completed step whose output happens to carry the key keeps it.
        let text = Some(r#"{"skipReason":"mine"}"#.to_string());
        let (output, reason) = decode_output(StepStatus::Completed, text).unwrap();
        assert_eq!(output, serde_json::json!({"skipReason": "mine"}));
        assert_eq!(reason, None);
    }
}
