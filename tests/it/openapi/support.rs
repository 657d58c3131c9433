//! Helpers for `tests/it/openapi.rs`: reading the OpenAPI document (operations,
//! `$ref`s), reading the router's routes out of `src/http/*.rs`, and checking
//! a real answer against what the document says about it.

use serde_json::Value;
use std::collections::BTreeSet;

pub const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// What the document points at with `#/a/b/c` (panics on a dangling `$ref`).
pub fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("only local $refs are expected, got {reference}"));
    doc.pointer(pointer)
        .unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
}

/// `v` with every `$ref` replaced by its target, recursively. Siblings of a
/// `$ref` (allowed in 3.1) are kept next to the inlined target via `allOf`.
pub fn inline(doc: &Value, v: &Value) -> Value {
    inline_at(doc, v, 0)
}

fn inline_at(doc: &Value, v: &Value, depth: usize) -> Value {
    assert!(depth < 64, "$ref cycle or very deep nesting");
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                let target = inline_at(doc, resolve(doc, r), depth + 1);
                let rest: serde_json::Map<_, _> = m
                    .iter()
                    .filter(|(k, _)| *k != "$ref" && *k != "description" && *k != "summary")
                    .map(|(k, v)| (k.clone(), inline_at(doc, v, depth + 1)))
                    .collect();
                if rest.is_empty() {
                    return target;
                }
                return serde_json::json!({"allOf": [target, Value::Object(rest)]});
            }
            Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), inline_at(doc, v, depth + 1)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| inline_at(doc, x, depth + 1)).collect()),
        other => other.clone(),
    }
}

/// Every `$ref` string anywhere in `v`.
pub fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// (METHOD, path template, operation) for every operation of the document.
pub fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    out
}

/// The parameters of an operation, path-level ones included, `$ref`s resolved.
pub fn parameters(doc: &Value, path: &str, op: &Value) -> Vec<Value> {
    let item = &doc["paths"][path];
    [&item["parameters"], &op["parameters"]]
        .into_iter()
        .filter_map(Value::as_array)
        .flatten()
        .map(|p| inline(doc, p))
        .collect()
}

/// A concrete path for a template: ids that exist nowhere, version 1.
pub fn concrete(template: &str) -> String {
    template
        .replace("{n}", "1")
        .replace("/workflows/{id}", "/workflows/wf_probe")
        .replace("/runs/{id}", "/runs/run_probe")
        .replace("/connections/{id}", "/connections/conn_probe")
        .replace("{step}", "ask")
        .replace("{token}", "probe")
}

/// (METHOD, path literal) of every `.route("…", get(…).post(…))` in
/// `src/http/*.rs`, and the prefixes of every `.nest("…", …)`.
pub fn routes_in_source() -> (BTreeSet<(String, String)>, Vec<String>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut routes = BTreeSet::new();
    let mut prefixes = vec![String::new()];
    for entry in std::fs::read_dir(dir).expect("src/http") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, _) in text.match_indices(".nest(\"") {
            prefixes.push(first_literal(&text[i..]));
        }
        for (i, _) in text.match_indices(".route(\"") {
            let call = call_text(&text[i + ".route".len()..]);
            let literal = first_literal(call);
            for m in methods_called(call) {
                routes.insert((m, literal.clone()));
            }
        }
    }
    (routes, prefixes)
}

fn first_literal(s: &str) -> String {
    let start = s.find('"').unwrap() + 1;
    let len = s[start..].find('"').unwrap();
    s[start..start + len].to_string()
}

/// `(…)` starting at `s[0] == '('`, up to its matching `)`.
fn call_text(s: &str) -> &str {
    let mut depth = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &s[..=i];
                }
            }
            _ => {}
        }
    }
    s
}

/// `get(`, `.post(`, … inside a route call, as upper-case method names.
fn methods_called(call: &str) -> Vec<String> {
    let mut out = vec![];
    let mut word = String::new();
    for c in call.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if c == '(' && METHODS.contains(&word.as_str()) {
            out.push(word.to_uppercase());
        }
        word.clear();
    }
    out
}

/// The documented response of an operation for a status (`$ref`s inlined).
pub fn documented_response(doc: &Value, method: &str, path: &str, status: u16) -> Value {
    let op = &doc["paths"][path][method.to_lowercase()];
    assert!(op.is_object(), "{method} {path} is not documented");
    let resp = op["responses"]
        .get(status.to_string())
        .unwrap_or_else(|| panic!("{method} {path}: status {status} is not documented"));
    inline(doc, resp)
}

/// Validate `instance` against a (fully inlined) JSON Schema, formats included.
pub fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("not a valid JSON Schema ({e}): {schema}"));
    validator
        .iter_errors(instance)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

/// A real answer.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

/// Check a real answer against the document: its status is documented, its
/// content type is the documented one, its body matches the schema and the
/// required headers are there and match theirs.
pub fn check_answer(doc: &Value, method: &str, path: &str, a: &Answer) {
    let spec = documented_response(doc, method, path, a.status);
    let ctx = format!("{method} {path} → {}: {}", a.status, a.text);
    let content_type = a
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = content_type.split(';').next().unwrap().trim();
    let media = spec["content"]
        .get(essence)
        .unwrap_or_else(|| panic!("content type {content_type} is not documented: {ctx}"));
    let body: Value = if essence == "application/json" {
        serde_json::from_str(&a.text).unwrap_or_else(|e| panic!("not JSON ({e}): {ctx}"))
    } else {
        Value::String(a.text.clone())
    };
    let errors = schema_errors(&media["schema"], &body);
    assert!(errors.is_empty(), "schema mismatch {errors:?}: {ctx}");
    if let Some(headers) = spec["headers"].as_object() {
        for (name, h) in headers {
            match a.headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
                None => assert!(h["required"] != true, "header {name} missing: {ctx}"),
                Some(text) => {
                    let value = match h["schema"]["type"].as_str() {
                        Some("integer" | "number") => serde_json::from_str(text)
                            .unwrap_or_else(|_| Value::String(text.into())),
                        _ => Value::String(text.into()),
                    };
                    let errors = schema_errors(&h["schema"], &value);
                    assert!(
                        errors.is_empty(),
                        "header {name}: {text}: {errors:?}: {ctx}"
                    );
                }
            }
        }
    }
}
