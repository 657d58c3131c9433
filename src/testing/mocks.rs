//! Mocks: the stand-in result of every step with a side effect. A test case
//! writes them per step id; `simulate` builds them from a recorded run. A
//! step without one is never performed: the run stops there (fail-closed).

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The result one effectful step reports, in place of performing it.
#[derive(Debug, Clone, PartialEq)]
pub enum Mock {
    /// The step succeeds with this output.
    Output(Value),
    /// The step fails with this error; `retryable` decides whether the step's
    /// retry policy tries again (each attempt gets the same answer).
    Error {
        code: String,
        message: String,
        retryable: bool,
    },
}

impl Mock {
    /// `{"error": {code, message, retryable}}` (an object with only `error`) is a
    /// failure; any other value is the step's output.
    pub fn from_value(v: &Value) -> Result<Mock, String> {
        let Some(obj) = v.as_object().filter(|o| o.len() == 1) else {
            return Ok(Mock::Output(v.clone()));
        };
        let Some(error) = obj.get("error") else {
            return Ok(Mock::Output(v.clone()));
        };
        let Some(e) = error.as_object() else {
            return Err(
                "an error mock is {\"error\": {\"code\", \"message\", \"retryable\"}}".into(),
            );
        };
        for k in e.keys() {
            if !matches!(k.as_str(), "code" | "message" | "retryable") {
                return Err(format!(
                    "unknown field '{k}' in an error mock (fields: code, message, retryable)"
                ));
            }
        }
        let text = |k: &str| e.get(k).and_then(Value::as_str).map(String::from);
        let retryable = match e.get("retryable") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("'retryable' of an error mock is true or false".into()),
        };
        Ok(Mock::Error {
            code: text("code").unwrap_or_else(|| "MOCK_ERROR".into()),
            message: text("message").unwrap_or_else(|| "mocked failure".into()),
            retryable,
        })
    }
}

/// The mocks of one run, by step id.
#[derive(Debug, Clone, Default)]
pub struct Mocks(BTreeMap<String, Mock>);

impl Mocks {
    /// Every entry of a case's `mocks` object, or the first that is malformed.
    pub fn from_object(obj: &Map<String, Value>) -> Result<Mocks, String> {
        let mut out = BTreeMap::new();
        for (id, v) in obj {
            let mock = Mock::from_value(v).map_err(|e| format!("mocks.{id}: {e}"))?;
            out.insert(id.clone(), mock);
        }
        Ok(Mocks(out))
    }

    pub fn insert(&mut self, step_id: impl Into<String>, mock: Mock) {
        self.0.insert(step_id.into(), mock);
    }

    pub fn get(&self, step_id: &str) -> Option<&Mock> {
        self.0.get(step_id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_object_with_only_error_is_a_failure_anything_else_an_output() {
        assert_eq!(
            Mock::from_value(&json!({"error": {"code": "card_declined", "retryable": true}})),
            Ok(Mock::Error {
                code: "card_declined".into(),
                message: "mocked failure".into(),
                retryable: true
            })
        );
        let out = json!({"error": null, "id": "in_1"});
        assert_eq!(Mock::from_value(&out), Ok(Mock::Output(out.clone())));
        assert_eq!(Mock::from_value(&json!(7)), Ok(Mock::Output(json!(7))));
        assert!(Mock::from_value(&json!({"error": {"kode": "x"}})).is_err());
    }
}
