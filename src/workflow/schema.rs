//! A workflow's `inputSchema`: compiled once, applies `default`s (nested too)
//! before validation, and reports violations at their own paths.
//! Remote `$ref`s are never fetched: jsonschema is built without its HTTP/file
//! resolvers, so such a schema fails to compile instead.

use jsonschema::error::ValidationErrorKind;
use jsonschema::paths::LocationSegment;
use serde_json::Value;
use std::sync::Arc;

#[derive(Clone)]
pub struct InputSchema {
    raw: Value,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSchema")
            .field("raw", &self.raw)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputViolation {
    pub path: Vec<Value>,
    pub message: String,
}

impl InputSchema {
    /// Compile a schema, or list *every* problem with its path inside the schema.
    pub fn compile(raw: &Value) -> Result<InputSchema, Vec<InputViolation>> {
        // The meta-schema check lists every problem; building reports only the first.
        if let Ok(meta) = jsonschema::meta::validator_for(raw) {
            let problems: Vec<InputViolation> = meta
                .iter_errors(raw)
                .map(|err| InputViolation {
                    path: path_of(err.instance_path()),
                    message: err.to_string(),
                })
                .collect();
            if !problems.is_empty() {
                return Err(problems);
            }
        }
        let validator = jsonschema::options()
            .should_validate_formats(true)
            .build(raw)
            .map_err(|e| {
                vec![InputViolation {
                    path: path_of(e.instance_path()),
                    message: e.to_string(),
                }]
            })?;
        Ok(InputSchema {
            raw: raw.clone(),
            validator: Arc::new(validator),
        })
    }

    /// Fill in defaults, then validate. Returns the input the run will see.
    pub fn apply(&self, mut input: Value) -> Result<Value, Vec<InputViolation>> {
        apply_defaults(&self.raw, &mut input);
        let violations: Vec<InputViolation> = self
            .validator
            .iter_errors(&input)
            .map(|err| {
                let mut path = path_of(err.instance_path());
                let message = match err.kind() {
                    // The seed reports a missing property at its own path, as `Required`.
                    ValidationErrorKind::Required { property } => {
                        path.push(property.clone());
                        "Required".to_string()
                    }
                    _ => err.to_string(),
                };
                InputViolation { path, message }
            })
            .collect();
        if violations.is_empty() {
            Ok(input)
        } else {
            Err(violations)
        }
    }
}

fn path_of(location: &jsonschema::paths::Location) -> Vec<Value> {
    location
        .iter()
        .map(|seg| match seg {
            LocationSegment::Property(p) => Value::String(p.into_owned()),
            LocationSegment::Index(i) => Value::from(i),
        })
        .collect()
}

/// Insert `default`s of missing object properties, recursing into present
/// (or just defaulted) objects and array items.
fn apply_defaults(schema: &Value, instance: &mut Value) {
    let Some(schema) = schema.as_object() else {
        return;
    };
    match instance {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = schema.get("properties") {
                for (name, prop_schema) in props {
                    if !map.contains_key(name)
                        && let Some(default) = prop_schema.get("default")
                    {
                        map.insert(name.clone(), default.clone());
                    }
                    if let Some(child) = map.get_mut(name) {
                        apply_defaults(prop_schema, child);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items.iter_mut() {
                    apply_defaults(item_schema, item);
                }
            }
        }
        _ => {}
    }
    for key in ["allOf"] {
        if let Some(Value::Array(subs)) = schema.get(key) {
            for sub in subs {
                apply_defaults(sub, instance);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_schema() -> InputSchema {
        InputSchema::compile(&json!({
            "type": "object",
            "required": ["customerId", "amount"],
            "properties": {
                "customerId": {"type": "string", "pattern": "^cus_[a-zA-Z0-9]+$"},
                "amount": {"type": "number", "minimum": 100},
                "currency": {"type": "string", "enum": ["usd", "eur", "gbp"], "default": "usd"},
                "items": {"type": "array", "items": {"type": "object",
                    "properties": {"quantity": {"type": "number", "minimum": 1},
                                   "unit": {"type": "string", "default": "pcs"}}}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn missing_required_is_reported_at_its_own_path() {
        let err = seed_schema().apply(json!({"amount": 9900})).unwrap_err();
        assert_eq!(
            err,
            vec![InputViolation {
                path: vec![json!("customerId")],
                message: "Required".into()
            }]
        );
    }

    #[test]
    fn defaults_are_applied_nested() {
        let out = seed_schema()
            .apply(json!({"customerId": "cus_1", "amount": 100, "items": [{"quantity": 2}]}))
            .unwrap();
        assert_eq!(out["currency"], "usd");
        assert_eq!(out["items"][0]["unit"], "pcs");
    }

    #[test]
    fn nested_violation_has_index_path() {
        let err = seed_schema()
            .apply(json!({"customerId": "cus_1", "amount": 100, "items": [{"quantity": 0}]}))
            .unwrap_err();
        assert_eq!(
            err[0].path,
            vec![json!("items"), json!(0), json!("quantity")]
        );
    }

    #[test]
    fn every_schema_problem_is_listed() {
        let schema = json!({"type": "object", "properties": {
            "a": {"type": "strnig"}, "b": {"minimum": "ten"}}});
        let problems = InputSchema::compile(&schema).unwrap_err();
        assert_eq!(problems.len(), 2, "{problems:?}");
        let paths: Vec<_> = problems.iter().map(|p| p.path.clone()).collect();
        assert!(paths.contains(&vec![json!("properties"), json!("a"), json!("type")]));
        assert!(paths.contains(&vec![json!("properties"), json!("b"), json!("minimum")]));
        let unknown_draft = json!({"$schema": "https://example.com/unknown", "type": "object"});
        assert!(InputSchema::compile(&unknown_draft).is_err());
    }

    #[test]
    fn remote_refs_are_not_fetched() {
        let schema = json!({"$ref": "https://example.com/schema.json"});
        assert!(InputSchema::compile(&schema).is_err());
    }
}
