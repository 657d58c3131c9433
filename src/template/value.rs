//! `CompiledValue`: a JSON value whose strings may hold templates, compiled once (at apply
//! time) and rendered many times. Subtrees without any `{{` stay literal and are cloned as is.

use super::{Context, Rendered, Template, TemplateError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

#[derive(Debug, Clone)]
pub enum CompiledValue {
    /// A subtree without any `{{`.
    Literal(Value),
    Template(Template),
    Array(Vec<CompiledValue>),
    Object(Vec<(String, CompiledValue)>),
}

/// One step of a JSON path; serializes as a plain string or number (`["mapping", 0]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// Formats a path as `mapping.total` / `items[0].name`, the way the CLI prints locations.
pub fn format_path(path: &[PathSeg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            PathSeg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            PathSeg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

impl fmt::Display for PathSeg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathSeg::Key(k) => f.write_str(k),
            PathSeg::Index(i) => write!(f, "{i}"),
        }
    }
}

type PathError = (Vec<PathSeg>, TemplateError);

impl CompiledValue {
    /// Compiles every string of `v`; on failure returns every template error in the tree,
    /// each with its path, not only the first.
    pub fn compile(v: &Value) -> Result<CompiledValue, Vec<PathError>> {
        let mut errors = Vec::new();
        let compiled = compile_at(v, &mut Vec::new(), &mut errors);
        if errors.is_empty() {
            Ok(compiled)
        } else {
            Err(errors)
        }
    }

    /// Every `steps.X` reference with the path of the string that holds it.
    pub fn step_refs(&self) -> Vec<(Vec<PathSeg>, String)> {
        let mut out = Vec::new();
        self.walk(&mut Vec::new(), &mut |path, t| {
            out.extend(
                t.step_refs()
                    .into_iter()
                    .map(|id| (path.to_vec(), id.to_string())),
            );
        });
        out
    }

    /// Every template in the tree with its path (for callers that check more than steps).
    pub fn templates(&self) -> Vec<(Vec<PathSeg>, &Template)> {
        let mut out = Vec::new();
        self.walk(&mut Vec::new(), &mut |path, t| out.push((path.to_vec(), t)));
        out
    }

    fn walk<'s>(&'s self, path: &mut Vec<PathSeg>, f: &mut impl FnMut(&[PathSeg], &'s Template)) {
        match self {
            CompiledValue::Literal(_) => {}
            CompiledValue::Template(t) => f(path, t),
            CompiledValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    item.walk(path, f);
                    path.pop();
                }
            }
            CompiledValue::Object(fields) => {
                for (k, item) in fields {
                    path.push(PathSeg::Key(k.clone()));
                    item.walk(path, f);
                    path.pop();
                }
            }
        }
    }

    /// Renders the tree. Warnings are prefixed with the path of their string
    /// (`to: unresolved path 'input.customerEmail'`); an error comes with the failing path.
    pub fn render(&self, ctx: &Context) -> Result<Rendered, PathError> {
        self.render_within(ctx, crate::limits::DEFAULT_MAX_VALUE_BYTES)
    }

    /// Renders the tree within a budget of `max_bytes` for the whole result as JSON: each
    /// template's result is measured as it is rendered, so a tree of many templates (or one
    /// that repeats a large value) stops at the budget, not after.
    pub fn render_within(&self, ctx: &Context, max_bytes: usize) -> Result<Rendered, PathError> {
        let mut warnings = Vec::new();
        let mut budget = Budget {
            max: max_bytes,
            used: 0,
        };
        let value = self.render_at(ctx, &mut Vec::new(), &mut warnings, &mut budget)?;
        Ok(Rendered { value, warnings })
    }

    fn render_at(
        &self,
        ctx: &Context,
        path: &mut Vec<PathSeg>,
        warnings: &mut Vec<String>,
        budget: &mut Budget,
    ) -> Result<Value, PathError> {
        Ok(match self {
            CompiledValue::Literal(v) => {
                budget.spend(v, path)?;
                v.clone()
            }
            CompiledValue::Template(t) => {
                let r = t
                    .render_within(ctx, budget.max)
                    .map_err(|e| (path.clone(), e))?;
                budget.spend(&r.value, path)?;
                let prefix = format_path(path);
                for w in r.warnings {
                    let w = if prefix.is_empty() {
                        w
                    } else {
                        format!("{prefix}: {w}")
                    };
                    if !warnings.contains(&w) {
                        warnings.push(w);
                    }
                }
                r.value
            }
            CompiledValue::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    path.push(PathSeg::Index(i));
                    out.push(item.render_at(ctx, path, warnings, budget)?);
                    path.pop();
                }
                Value::Array(out)
            }
            CompiledValue::Object(fields) => {
                let mut out = Map::new();
                for (k, item) in fields {
                    path.push(PathSeg::Key(k.clone()));
                    out.insert(k.clone(), item.render_at(ctx, path, warnings, budget)?);
                    path.pop();
                }
                Value::Object(out)
            }
        })
    }
}

/// Bytes of JSON rendered so far against the budget of the whole tree.
struct Budget {
    max: usize,
    used: usize,
}

impl Budget {
    fn spend(&mut self, v: &Value, path: &[PathSeg]) -> Result<(), PathError> {
        let room = self.max.saturating_sub(self.used);
        match crate::limits::json_len_within(v, room) {
            Some(n) => {
                self.used += n;
                Ok(())
            }
            None => {
                let msg = format!(
                    "the rendered value would be more than the limit of {}",
                    crate::limits::describe_bytes(self.max)
                );
                Err((
                    path.to_vec(),
                    TemplateError::new(super::TemplateErrorKind::TooLarge, msg, 1),
                ))
            }
        }
    }
}

fn compile_at(v: &Value, path: &mut Vec<PathSeg>, errors: &mut Vec<PathError>) -> CompiledValue {
    match v {
        Value::String(s) if s.contains("{{") => match Template::parse(s) {
            Ok(t) => CompiledValue::Template(t),
            Err(e) => {
                errors.push((path.clone(), e));
                CompiledValue::Literal(Value::Null)
            }
        },
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                path.push(PathSeg::Index(i));
                out.push(compile_at(item, path, errors));
                path.pop();
            }
            if out.iter().all(is_literal) {
                return CompiledValue::Literal(v.clone());
            }
            CompiledValue::Array(out)
        }
        Value::Object(fields) => {
            let mut out = Vec::with_capacity(fields.len());
            for (k, item) in fields {
                path.push(PathSeg::Key(k.clone()));
                out.push((k.clone(), compile_at(item, path, errors)));
                path.pop();
            }
            if out.iter().all(|(_, c)| is_literal(c)) {
                return CompiledValue::Literal(v.clone());
            }
            CompiledValue::Object(out)
        }
        _ => CompiledValue::Literal(v.clone()),
    }
}

fn is_literal(c: &CompiledValue) -> bool {
    matches!(c, CompiledValue::Literal(_))
}
