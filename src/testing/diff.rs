//! A structural diff of two JSON values, one line per differing leaf:
//! `output.total: expected 4317.84, got 4317.85`. Objects are compared key by
//! key and arrays of equal length item by item; anything else whole.

use serde::Serialize;
use serde_json::Value;

/// One difference at a path (`output.items[2].price`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    pub path: String,
    /// `null` when the path is absent on that side.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actual: Option<Value>,
    /// Why it differs, when it is more than a value (`skipped: check-amount took then`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Difference {
    pub fn new(path: &str, expected: Option<&Value>, actual: Option<&Value>) -> Difference {
        Difference {
            path: path.into(),
            expected: expected.cloned(),
            actual: actual.cloned(),
            note: None,
        }
    }

    /// The line people read, with `was`/`now` or `expected`/`got` wording.
    pub fn line(&self, before: &str, after: &str) -> String {
        let mut text = match (&self.expected, &self.actual) {
            (Some(e), Some(a)) => {
                format!("{}: {before} {}, {after} {}", self.path, short(e), short(a))
            }
            (Some(e), None) => format!("{}: {before} {}, {after} nothing", self.path, short(e)),
            (None, Some(a)) => format!("{}: {before} nothing, {after} {}", self.path, short(a)),
            (None, None) => self.path.clone(),
        };
        if let Some(n) = &self.note {
            text.push_str(&format!(" ({n})"));
        }
        text
    }
}

/// Compact JSON, cut at 160 characters.
pub fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() <= 160 {
        return s;
    }
    let cut: String = s.chars().take(157).collect();
    format!("{cut}…")
}

/// Every difference between `expected` and `actual` under `path`.
pub fn diff(path: &str, expected: &Value, actual: &Value) -> Vec<Difference> {
    let mut out = vec![];
    walk(path, expected, actual, &mut out);
    out
}

fn walk(path: &str, e: &Value, a: &Value, out: &mut Vec<Difference>) {
    if same(e, a) {
        return;
    }
    match (e, a) {
        (Value::Object(eo), Value::Object(ao)) => {
            for (k, ev) in eo {
                let p = join(path, k);
                match ao.get(k) {
                    Some(av) => walk(&p, ev, av, out),
                    None => out.push(Difference::new(&p, Some(ev), None)),
                }
            }
            for (k, av) in ao.iter().filter(|(k, _)| !eo.contains_key(*k)) {
                out.push(Difference::new(&join(path, k), None, Some(av)));
            }
        }
        (Value::Array(ea), Value::Array(aa)) if ea.len() == aa.len() => {
            for (i, (ev, av)) in ea.iter().zip(aa).enumerate() {
                walk(&format!("{path}[{i}]"), ev, av, out);
            }
        }
        _ => out.push(Difference::new(path, Some(e), Some(a))),
    }
}

/// `expected` is contained in `actual`: its object fields, recursively (for
/// errors, where a `code` alone is a useful expectation).
pub fn diff_subset(path: &str, expected: &Value, actual: &Value) -> Vec<Difference> {
    match (expected, actual) {
        (Value::Object(eo), Value::Object(ao)) => eo
            .iter()
            .flat_map(|(k, ev)| match ao.get(k) {
                Some(av) => diff_subset(&join(path, k), ev, av),
                None => vec![Difference::new(&join(path, k), Some(ev), None)],
            })
            .collect(),
        _ => diff(path, expected, actual),
    }
}

/// Numbers are equal when their values are (`1.0` and `1`), as in the engine.
fn same(e: &Value, a: &Value) -> bool {
    match (e, a) {
        (Value::Number(x), Value::Number(y)) => {
            x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => e == a,
    }
}

fn join(path: &str, key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (path.is_empty(), simple) {
        (true, true) => key.into(),
        (false, true) => format!("{path}.{key}"),
        (_, false) => format!("{path}[{}]", Value::String(key.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn one_line_per_differing_leaf() {
        let d = diff(
            "output",
            &json!({"total": 4317.84, "items": [1, 2], "gone": true}),
            &json!({"total": 4317.85, "items": [1, 3], "new": "x"}),
        );
        let lines: Vec<String> = d.iter().map(|d| d.line("expected", "got")).collect();
        assert_eq!(
            lines,
            [
                "output.total: expected 4317.84, got 4317.85",
                "output.items[1]: expected 2, got 3",
                "output.gone: expected true, got nothing",
                "output.new: expected nothing, got \"x\"",
            ]
        );
        assert!(diff("o", &json!({"a": 1.0}), &json!({"a": 1})).is_empty());
    }

    #[test]
    fn a_subset_checks_only_the_expected_fields() {
        let actual = json!({"code": "STEP_ERROR", "message": "long", "stepId": "x"});
        assert!(diff_subset("error", &json!({"code": "STEP_ERROR"}), &actual).is_empty());
        assert_eq!(
            diff_subset("error", &json!({"code": "NOPE"}), &actual)[0].path,
            "error.code"
        );
    }
}
