//! The template language of docs/templates.md (pure: no I/O, no clock, no runtime): `{{ path | filter:
//! args }}` inside JSON strings, compiled once at apply time, rendered per step.
//!
//! Pipeline: `lexer` → `parser` (→ `ast`, with `expr` for `map` expressions) → `eval` with
//! the `filters` registry and exact `decimal` arithmetic; `value` compiles whole JSON trees.
//!
//! Filters that share a name with Liquid's behave as Liquid's (Ruby Liquid 5), except for
//! the deliberate differences listed in docs/templates.md: exact decimal arithmetic, a
//! single `{{…}}` keeping its JSON type, arrays and objects printing as JSON, `map` taking
//! an expression, and arithmetic on null failing (money never silently becomes 0).
//!
//! Decisions beyond Liquid:
//! * **Numeric strings.** Arithmetic filters (`times`, `plus`, …, `sum`) and `map` expressions
//!   accept strings that are entirely a plain decimal number (`"12.50"`, `" -3 "`, `"+7"`),
//!   because form and CSV input often carries amounts as text. Any other string (`"abc"`,
//!   `"1e3"`, `"1,000"`, `""`) is a `FilterType` error naming the filter.
//! * **Null.** A path that does not resolve gives null plus the warning
//!   `unresolved path 'input.x'`; null renders empty in text. See `filters` for which
//!   filters accept null.
//! * **Numbers** compute in `rust_decimal` and stay decimal through the whole chain
//!   (`chain::Val`); `divided_by` is exact (7 / 2 = 3.5); `round` rounds half away from
//!   zero; overflow and division by zero are `Arithmetic` errors. At the end of the chain a
//!   result is an integer when integral, otherwise the shortest `f64` (4857.84).
//! * String literals know the escapes `\'`, `\"`, `\\`, `\n`, `\t`; other backslashes stay.
//! * Error columns are 1-based character offsets in the whole template source.

mod ast;
mod chain;
pub mod compare;
mod decimal;
mod error;
mod eval;
mod expr;
mod filters;
mod lexer;
mod parser;
pub mod value;

pub use error::{TemplateError, TemplateErrorKind};
pub use value::{CompiledValue, PathSeg, format_path};

use ast::Part;
use serde_json::Value;

/// One compiled template string, e.g. `"Total: ${{steps.calc.output.total}}"`.
#[derive(Debug, Clone)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
    /// Index of the one expression when the whole string is `{{…}}` (surrounding whitespace
    /// allowed): such a template yields the JSON value itself, not its text.
    single: Option<usize>,
}

/// Every filter's name (the documentation check lists them all in docs/templates.md).
pub fn filter_names() -> impl Iterator<Item = &'static str> {
    filters::FILTERS.iter().map(|f| f.name)
}

/// One `steps.X…` path in a template, for the apply-time checks.
#[derive(Debug, Clone, PartialEq)]
pub struct StepPath<'t> {
    /// The step id X.
    pub step: &'t str,
    /// The path as written (`steps.high-value.output.total`).
    pub text: &'t str,
    /// It heads a filter chain that goes through `default` (the author expected it to be
    /// missing).
    pub defaulted: bool,
    /// It reads `steps.X.status`, which is set for a skipped step too.
    pub status_only: bool,
}

/// A rendered value and the warnings (unresolved paths) met on the way.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub value: Value,
    pub warnings: Vec<String>,
}

/// Everything a template can see. `steps` maps step id -> {"output": .., "status": ".."}; only
/// steps that ran (or were skipped/failed) are present. `run` = {"id","workflowId",
/// "workflowVersion","startedAt"}; `runId` resolves to run.id. `workflow` = {"id","name"}.
/// `now` is RFC 3339 UTC with milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub input: &'a Value,
    pub steps: &'a serde_json::Map<String, Value>,
    pub variables: &'a Value,
    pub run: &'a Value,
    pub workflow: &'a Value,
    pub now: &'a str,
    /// The item and index variables of the loops around a step (`{}` elsewhere).
    pub locals: &'a Value,
}

/// Parse templates inside `f` with these loop variables as extra roots (a loop body's
/// `invoice.id`); outside any loop a name that is not a root stays a parse error.
pub fn with_locals<T>(names: &[String], f: impl FnOnce() -> T) -> T {
    parser::with_locals(names, f)
}

/// A value as it reads inside text: strings raw, numbers canonical, null empty, arrays and
/// objects as compact JSON.
pub fn value_text(v: &Value) -> String {
    eval::to_text(v)
}

/// `false`, `null`, `""` and `0` are falsy (a step's `if`); everything else is truthy.
pub fn is_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

impl Template {
    pub fn parse(src: &str) -> Result<Template, TemplateError> {
        let parts = parser::parse(src)?;
        let mut exprs = parts
            .iter()
            .enumerate()
            .filter(|(_, p)| matches!(p, Part::Expr(_)));
        let only_space = parts.iter().all(|p| match p {
            Part::Text(t) => t.trim().is_empty(),
            Part::Expr(_) => true,
        });
        let single = match (exprs.next(), exprs.next()) {
            (Some((i, _)), None) if only_space => Some(i),
            _ => None,
        };
        Ok(Template {
            source: src.to_string(),
            parts,
            single,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Ids X of every `callbacks.X…` path, each once, in order of appearance.
    pub fn callback_refs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in &self.parts {
            let Part::Expr(e) = part else { continue };
            e.visit_paths(&mut |p, _| {
                if let Some(id) = p.callback_ref()
                    && !out.contains(&id)
                {
                    out.push(id);
                }
            });
        }
        out
    }

    /// Ids X of every `steps.X…` path used anywhere (operands, filter arguments and
    /// dynamic keys), each once, in order of appearance.
    pub fn step_refs(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in self.step_paths() {
            if !out.contains(&r.step) {
                out.push(r.step);
            }
        }
        out
    }

    /// Every `steps.X…` path, in order of appearance, with how it is used.
    pub fn step_paths(&self) -> Vec<StepPath<'_>> {
        let mut out = Vec::new();
        for part in &self.parts {
            let Part::Expr(e) = part else { continue };
            e.visit_paths(&mut |p, defaulted| {
                if let Some(step) = p.step_ref() {
                    let status_only = matches!(
                        p.segs.get(1),
                        Some(ast::Seg::Key(k)) if k == "status"
                    );
                    out.push(StepPath {
                        step,
                        text: &p.text,
                        defaulted,
                        status_only,
                    });
                }
            });
        }
        out
    }

    /// Whether rendering yields the expression's JSON value rather than a string.
    pub fn is_single_expression(&self) -> bool {
        self.single.is_some()
    }

    /// Renders with the default budget (`limits::DEFAULT_MAX_VALUE_BYTES`).
    pub fn render(&self, ctx: &Context) -> Result<Rendered, TemplateError> {
        self.render_within(ctx, crate::limits::DEFAULT_MAX_VALUE_BYTES)
    }

    /// Renders; every value built on the way (each filter's result, the text) must stay
    /// within `max_bytes` as JSON, checked before the memory is asked for where a filter
    /// can multiply its input (`replace`, `join`, `split`, …). Values taken from the
    /// context as they are count towards the caller's total, not here.
    pub fn render_within(
        &self,
        ctx: &Context,
        max_bytes: usize,
    ) -> Result<Rendered, TemplateError> {
        let mut warnings = Vec::new();
        let single = self.single.and_then(|i| self.parts.get(i));
        let value = match (single, self.parts.as_slice()) {
            (Some(Part::Expr(e)), _) => {
                eval::eval_expr(e, ctx, &mut warnings, max_bytes)?.into_owned()
            }
            (_, [Part::Text(t)]) => Value::String(t.clone()),
            (_, parts) => Value::String(eval::render_text(parts, ctx, &mut warnings, max_bytes)?),
        };
        Ok(Rendered { value, warnings })
    }

    /// Whether every operand and argument is a literal: the result does not depend on the
    /// run (`now` aside), so apply can try it.
    pub fn is_constant(&self) -> bool {
        let mut paths = 0usize;
        for part in &self.parts {
            if let Part::Expr(e) = part {
                e.visit_paths(&mut |_, _| paths += 1);
            }
        }
        paths == 0
    }
}
