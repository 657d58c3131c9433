//! TEMPORARY placeholder: JSON values whose strings may hold templates.
use super::{Context, Rendered, Template, TemplateError};
use serde_json::Value;

#[derive(Debug, Clone)]
pub enum CompiledValue {
    Literal(Value),
    Template(Template),
    Array(Vec<CompiledValue>),
    Object(Vec<(String, CompiledValue)>),
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

type Errors = Vec<(Vec<PathSeg>, TemplateError)>;

impl CompiledValue {
    pub fn compile(v: &Value) -> Result<CompiledValue, Errors> {
        let mut errs = vec![];
        let c = compile_at(v, &mut vec![], &mut errs);
        if errs.is_empty() { Ok(c) } else { Err(errs) }
    }
    pub fn step_refs(&self) -> Vec<(Vec<PathSeg>, String)> {
        let mut out = vec![];
        refs(self, &mut vec![], &mut out);
        out
    }
    pub fn render(&self, ctx: &Context) -> Result<Rendered, (Vec<PathSeg>, TemplateError)> {
        let mut warnings = vec![];
        let value = render_at(self, ctx, &mut vec![], &mut warnings)?;
        Ok(Rendered { value, warnings })
    }
}

fn compile_at(v: &Value, path: &mut Vec<PathSeg>, errs: &mut Errors) -> CompiledValue {
    match v {
        Value::String(s) if s.contains("{{") => match Template::parse(s) {
            Ok(t) => CompiledValue::Template(t),
            Err(e) => {
                errs.push((path.clone(), e));
                CompiledValue::Literal(Value::Null)
            }
        },
        Value::Array(a) => CompiledValue::Array(
            a.iter()
                .enumerate()
                .map(|(i, x)| {
                    path.push(PathSeg::Index(i));
                    let c = compile_at(x, path, errs);
                    path.pop();
                    c
                })
                .collect(),
        ),
        Value::Object(m) => CompiledValue::Object(
            m.iter()
                .map(|(k, x)| {
                    path.push(PathSeg::Key(k.clone()));
                    let c = compile_at(x, path, errs);
                    path.pop();
                    (k.clone(), c)
                })
                .collect(),
        ),
        other => CompiledValue::Literal(other.clone()),
    }
}

fn refs(c: &CompiledValue, path: &mut Vec<PathSeg>, out: &mut Vec<(Vec<PathSeg>, String)>) {
    match c {
        CompiledValue::Literal(_) => {}
        CompiledValue::Template(t) => {
            for r in t.step_refs() {
                out.push((path.clone(), r.to_string()));
            }
        }
        CompiledValue::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(PathSeg::Index(i));
                refs(x, path, out);
                path.pop();
            }
        }
        CompiledValue::Object(m) => {
            for (k, x) in m {
                path.push(PathSeg::Key(k.clone()));
                refs(x, path, out);
                path.pop();
            }
        }
    }
}

fn render_at(
    c: &CompiledValue,
    ctx: &Context,
    path: &mut Vec<PathSeg>,
    warnings: &mut Vec<String>,
) -> Result<Value, (Vec<PathSeg>, TemplateError)> {
    Ok(match c {
        CompiledValue::Literal(v) => v.clone(),
        CompiledValue::Template(t) => {
            let r = t.render(ctx).map_err(|e| (path.clone(), e))?;
            warnings.extend(r.warnings);
            r.value
        }
        CompiledValue::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                path.push(PathSeg::Index(i));
                out.push(render_at(x, ctx, path, warnings)?);
                path.pop();
            }
            Value::Array(out)
        }
        CompiledValue::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, x) in m {
                path.push(PathSeg::Key(k.clone()));
                out.insert(k.clone(), render_at(x, ctx, path, warnings)?);
                path.pop();
            }
            Value::Object(out)
        }
    })
}
