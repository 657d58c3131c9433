//! Bounds on what may become run state (pure: no I/O). One nesting depth for every JSON
//! document that enters (trigger inputs, webhook inputs with their wrapping, step outputs,
//! template results), a size budget for what templates and steps produce, and how often a
//! run may be recovered from an abandoned lease before it is failed instead of resumed.
//!
//! The depth stays well below serde_json's parse limit (128), so whatever is stored can be
//! read back by every reader, with room for the levels the store's own records add.

use serde_json::Value;

/// The deepest nesting accepted anywhere in run state: containers (arrays, objects) on the
/// deepest path; a scalar is depth 0, `[]` is 1.
pub const MAX_JSON_DEPTH: usize = 64;

/// Default budget, in bytes, for one rendered value and for one step's output
/// (`--max-value-bytes`).
pub const DEFAULT_MAX_VALUE_BYTES: usize = 10 * 1024 * 1024;

/// Default number of times a run may be recovered from a lease its holder abandoned (the
/// process died or hung while executing it) before it is failed (`--max-run-recoveries`).
pub const DEFAULT_MAX_RECOVERIES: u32 = 3;

/// The limits the engine applies to one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    /// Bytes one rendered value, one step output or the run's output may take as JSON.
    pub max_value_bytes: usize,
    /// Recoveries from an abandoned lease after which the run fails instead of resuming.
    pub max_recoveries: u32,
}

impl Default for RunLimits {
    fn default() -> RunLimits {
        RunLimits {
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            max_recoveries: DEFAULT_MAX_RECOVERIES,
        }
    }
}

/// Whether `v` nests deeper than `max` containers. Iterative, so a deep value cannot
/// exhaust the stack here.
pub fn deeper_than(v: &Value, max: usize) -> bool {
    let mut stack: Vec<(&Value, usize)> = vec![(v, 0)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Array(a) => Box::new(a.iter()),
            Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        if d + 1 > max {
            return true;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    false
}

/// The nesting depth of a JSON text (containers on the deepest path), by scanning its bytes
/// without parsing; text inside strings is skipped. Used to pick a decoder for stored text.
pub fn text_depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// The length of `v` as compact JSON, or `None` as soon as it passes `max` (the walk stops
/// there, so measuring a huge value costs no more than the budget).
pub fn json_len_within(v: &Value, max: usize) -> Option<usize> {
    let mut total = 0usize;
    let mut stack: Vec<&Value> = vec![v];
    while let Some(v) = stack.pop() {
        let n = match v {
            Value::Null => 4,
            Value::Bool(b) => 4 + usize::from(!*b),
            Value::Number(n) => number_len(n),
            Value::String(s) => quoted_len(s),
            Value::Array(a) => {
                stack.extend(a.iter());
                2 + a.len().saturating_sub(1)
            }
            Value::Object(m) => {
                let mut n = 2 + m.len().saturating_sub(1);
                for (k, item) in m {
                    n = n.saturating_add(quoted_len(k) + 1);
                    stack.push(item);
                }
                n
            }
        };
        total = total.saturating_add(n);
        if total > max {
            return None;
        }
    }
    Some(total)
}

/// The length of `v` as it appears inside template text (strings raw, null empty, arrays and
/// objects as compact JSON), or `None` once it passes `max`.
pub fn text_len_within(v: &Value, max: usize) -> Option<usize> {
    let n = match v {
        Value::Null => 0,
        Value::String(s) => s.len(),
        Value::Bool(b) => 4 + usize::from(!*b),
        Value::Number(n) => number_len(n),
        Value::Array(_) | Value::Object(_) => return json_len_within(v, max),
    };
    (n <= max).then_some(n)
}

fn number_len(n: &serde_json::Number) -> usize {
    n.to_string().len()
}

/// A string's length as a JSON string literal, escapes included.
fn quoted_len(s: &str) -> usize {
    let extra: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0..=0x1f => 5,
            _ => 0,
        })
        .sum();
    s.len() + 2 + extra
}

/// Bytes in a human unit for messages: "10 MiB", "1.5 KiB", "512 bytes".
pub fn describe_bytes(n: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    let unit = |n: usize, u: usize, name: &str| {
        if n.is_multiple_of(u) {
            format!("{} {name}", n / u)
        } else {
            format!("{:.1} {name}", n as f64 / u as f64)
        }
    };
    if n >= MIB {
        unit(n, MIB, "MiB")
    } else if n >= KIB {
        unit(n, KIB, "KiB")
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(levels: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..levels {
            v = json!([v]);
        }
        v
    }

    #[test]
    fn depth_counts_containers() {
        assert!(!deeper_than(&json!(1), 0));
        assert!(deeper_than(&json!([]), 0));
        assert!(!deeper_than(&nested(64), 64));
        assert!(deeper_than(&nested(65), 64));
        assert!(deeper_than(&json!({"a": [1, {"b": nested(63)}]}), 64));
        assert_eq!(text_depth(&nested(100).to_string()), 100);
        assert_eq!(text_depth(r#"{"a":"[[[[\"]]"}"#), 1);
    }

    #[test]
    fn json_len_matches_serde_json() {
        let samples = [
            json!(null),
            json!(false),
            json!(true),
            json!(-12.5),
            json!(18446744073709551615u64),
            json!("a\"b\\c\nd\u{1}é"),
            json!([1, "x", [], {}]),
            json!({"k\"": {"n": [null, true]}, "z": ""}),
        ];
        for v in samples {
            let text = serde_json::to_string(&v).unwrap_or_default();
            assert_eq!(json_len_within(&v, usize::MAX), Some(text.len()), "{text}");
            assert_eq!(json_len_within(&v, text.len() - 1), None, "{text}");
        }
        assert_eq!(text_len_within(&json!("abc"), 3), Some(3));
        assert_eq!(text_len_within(&json!("abcd"), 3), None);
        assert_eq!(text_len_within(&json!(null), 0), Some(0));
    }

    #[test]
    fn bytes_read_well() {
        assert_eq!(describe_bytes(10 * 1024 * 1024), "10 MiB");
        assert_eq!(describe_bytes(1536), "1.5 KiB");
        assert_eq!(describe_bytes(12), "12 bytes");
    }
}
