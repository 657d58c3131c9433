//! TEMPORARY placeholder with the final API; replaced by the real template engine.
use serde_json::{Map, Value};

pub mod value;
pub use value::CompiledValue;

#[derive(Debug, Clone)]
pub struct Template {
    src: String,
    parts: Vec<Part>,
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Path(Vec<String>),
}

pub struct Rendered {
    pub value: Value,
    pub warnings: Vec<String>,
}

pub struct Context<'a> {
    pub input: &'a Value,
    pub steps: &'a Map<String, Value>,
    pub variables: &'a Value,
    pub run: &'a Value,
    pub workflow: &'a Value,
    pub now: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub enum TemplateErrorKind {
    Syntax,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    pub message: String,
    pub column: usize,
    pub filter: Option<String>,
}

pub fn is_truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
        && v.as_str() != Some("")
        && v.as_f64() != Some(0.0)
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let mut parts = vec![];
        let mut rest = src;
        while let Some(i) = rest.find("{{") {
            parts.push(Part::Text(rest[..i].to_string()));
            let Some(j) = rest[i..].find("}}") else {
                return Err(TemplateError {
                    kind: TemplateErrorKind::Syntax,
                    message: "unterminated".into(),
                    column: i + 1,
                    filter: None,
                });
            };
            let inner = rest[i + 2..i + j].trim();
            parts.push(Part::Path(inner.split('.').map(String::from).collect()));
            rest = &rest[i + j + 2..];
        }
        parts.push(Part::Text(rest.to_string()));
        parts.retain(|p| !matches!(p, Part::Text(t) if t.is_empty()));
        Ok(Template {
            src: src.to_string(),
            parts,
        })
    }
    pub fn source(&self) -> &str {
        &self.src
    }
    pub fn step_refs(&self) -> Vec<&str> {
        self.parts
            .iter()
            .filter_map(|p| match p {
                Part::Path(p) if p[0] == "steps" && p.len() > 1 => Some(p[1].as_str()),
                _ => None,
            })
            .collect()
    }
    pub fn render(&self, ctx: &Context) -> Result<Rendered, TemplateError> {
        let mut warnings = vec![];
        let mut resolve = |p: &Vec<String>| {
            let mut cur = match p[0].as_str() {
                "input" => ctx.input.clone(),
                "steps" => Value::Object(ctx.steps.clone()),
                "variables" => ctx.variables.clone(),
                "run" => ctx.run.clone(),
                "workflow" => ctx.workflow.clone(),
                _ => Value::Null,
            };
            for seg in &p[1..] {
                cur = match &cur {
                    Value::Object(m) => m.get(seg).cloned().unwrap_or(Value::Null),
                    Value::Array(a) => seg
                        .parse::<usize>()
                        .ok()
                        .and_then(|i| a.get(i).cloned())
                        .unwrap_or(Value::Null),
                    _ => Value::Null,
                };
            }
            if cur.is_null() {
                warnings.push(format!("unresolved path '{}'", p.join(".")));
            }
            cur
        };
        if let [Part::Path(p)] = self.parts.as_slice() {
            let value = resolve(p);
            return Ok(Rendered { value, warnings });
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Path(p) => match resolve(p) {
                    Value::Null => {}
                    Value::String(s) => out.push_str(&s),
                    v => out.push_str(&v.to_string()),
                },
            }
        }
        Ok(Rendered {
            value: Value::String(out),
            warnings,
        })
    }
}
