//! Evaluation: resolves paths against a `Context`, runs filter chains and turns values into
//! text. Missing values become `null` plus a warning naming the path.

use super::Context;
use super::ast::{Chain, CmpOp, Expr, Head, Logic, Operand, Part, Path, Root, Seg};
use super::chain::Val;
use super::compare;
use super::decimal::canonical_number;
use super::error::{TemplateError, TemplateErrorKind};
use super::filters::{Apply, Args};
use serde_json::Value;
use std::borrow::Cow;

/// Follows `segs` from `v`. A key on an array is an index when it is all digits (`items.0`);
/// a negative index counts from the end.
pub(crate) fn lookup<'v>(mut v: &'v Value, segs: &[Seg]) -> Option<&'v Value> {
    for seg in segs {
        v = match (v, seg) {
            (Value::Object(m), Seg::Key(k)) => m.get(k)?,
            (Value::Object(m), Seg::Index(i)) => m.get(&i.to_string())?,
            (Value::Array(a), Seg::Key(k)) if k.bytes().all(|b| b.is_ascii_digit()) => {
                a.get(k.parse::<usize>().ok()?)?
            }
            (Value::Array(a), Seg::Index(i)) => {
                let idx = if *i < 0 {
                    a.len()
                        .checked_sub(usize::try_from(i.unsigned_abs()).ok()?)?
                } else {
                    usize::try_from(*i).ok()?
                };
                a.get(idx)?
            }
            // Dynamic keys are resolved to keys or indexes before lookup.
            _ => return None,
        };
    }
    Some(v)
}

/// Liquid's special properties, for a key the value does not have: `size` of an array,
/// string or object, `first` / `last` of an array, and `first` of an object (its first
/// `[key, value]` pair).
fn property(v: &Value, key: &str) -> Option<Value> {
    match (key, v) {
        ("size", Value::Array(a)) => Some(Value::from(a.len())),
        ("size", Value::String(s)) => Some(Value::from(s.chars().count())),
        ("size", Value::Object(m)) => Some(Value::from(m.len())),
        ("first", Value::Array(a)) => a.first().cloned(),
        ("last", Value::Array(a)) => a.last().cloned(),
        ("first", Value::Object(m)) => m
            .iter()
            .next()
            .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), v.clone()])),
        _ => None,
    }
}

/// `lookup`, plus the special properties `size`, `first` and `last` (a real key of that
/// name wins).
fn lookup_with_properties<'v>(v: &'v Value, segs: &[Seg]) -> Option<Cow<'v, Value>> {
    let mut cur = v;
    for (i, seg) in segs.iter().enumerate() {
        match lookup(cur, std::slice::from_ref(seg)) {
            Some(next) => cur = next,
            None => {
                let Seg::Key(k) = seg else { return None };
                let computed = property(cur, k)?;
                let rest = &segs[i + 1..];
                return match lookup_with_properties(&computed, rest)? {
                    Cow::Borrowed(x) => Some(Cow::Owned(x.clone())),
                    Cow::Owned(x) => Some(Cow::Owned(x)),
                };
            }
        }
    }
    Some(Cow::Borrowed(cur))
}

/// The segments of a path with every dynamic key replaced by its value: a string is a
/// key, an integer an index. `None` (unresolved) when a key is missing or not usable.
fn concrete_segs<'p>(
    path: &'p Path,
    ctx: &Context<'_>,
    warnings: &mut Vec<String>,
) -> Option<Cow<'p, [Seg]>> {
    if !path.segs.iter().any(|s| matches!(s, Seg::Dynamic(_))) {
        return Some(Cow::Borrowed(&path.segs));
    }
    let mut out = Vec::with_capacity(path.segs.len());
    for seg in &path.segs {
        out.push(match seg {
            Seg::Dynamic(inner) => match resolve_path(inner, ctx, warnings)
                .or_else(|| {
                    warn_unresolved(inner, warnings);
                    None
                })?
                .as_ref()
            {
                Value::String(s) => Seg::Key(s.clone()),
                Value::Number(n) if n.as_i64().is_some() => Seg::Index(n.as_i64()?),
                _ => return None,
            },
            other => other.clone(),
        });
    }
    Some(Cow::Owned(out))
}

fn resolve_path<'a>(
    path: &Path,
    ctx: &Context<'a>,
    warnings: &mut Vec<String>,
) -> Option<Cow<'a, Value>> {
    let segs = concrete_segs(path, ctx, warnings)?;
    let (root, rest): (Cow<'a, Value>, &[Seg]) = match path.root {
        Root::Input => (Cow::Borrowed(ctx.input), &segs),
        Root::Variables => (Cow::Borrowed(ctx.variables), &segs),
        Root::Local => (Cow::Borrowed(ctx.locals), &segs),
        Root::Run => (Cow::Borrowed(ctx.run), &segs),
        Root::Workflow => (Cow::Borrowed(ctx.workflow), &segs),
        Root::RunId => (Cow::Borrowed(ctx.run.get("id")?), &segs),
        Root::Now => (Cow::Owned(Value::String(ctx.now.to_string())), &segs),
        // The run's callback URLs travel with its facts (`run.callbacks`), so the
        // template context keeps its shape.
        Root::Callbacks => (Cow::Borrowed(ctx.run.get("callbacks")?), &segs),
        Root::Steps => match segs.split_first() {
            None => (Cow::Owned(Value::Object(ctx.steps.clone())), &[][..]),
            Some((Seg::Key(id), rest)) => (Cow::Borrowed(ctx.steps.get(id)?), rest),
            Some(_) => return None,
        },
    };
    match root {
        Cow::Borrowed(v) => lookup_with_properties(v, rest),
        Cow::Owned(v) => lookup_with_properties(&v, rest).map(|c| Cow::Owned(c.into_owned())),
    }
}

fn eval_operand<'a, 'e>(
    op: &'e Operand,
    ctx: &Context<'a>,
    warnings: &mut Vec<String>,
) -> Cow<'a, Value>
where
    'e: 'a,
{
    match op {
        Operand::Literal(v) => Cow::Borrowed(v),
        Operand::Path(p) => resolve_path(p, ctx, warnings).unwrap_or_else(|| {
            warn_unresolved(p, warnings);
            Cow::Owned(Value::Null)
        }),
    }
}

fn warn_unresolved(p: &Path, warnings: &mut Vec<String>) {
    let w = format!("unresolved path '{}'", p.text);
    if !warnings.contains(&w) {
        warnings.push(w);
    }
}

/// Evaluates one `{{ … }}` expression. Every value a filter produces must stay within
/// `max_bytes` as JSON; filters that can multiply their input check before they allocate.
pub(crate) fn eval_expr<'a, 'e: 'a>(
    expr: &'e Expr,
    ctx: &Context<'a>,
    warnings: &mut Vec<String>,
    max_bytes: usize,
) -> Result<Cow<'a, Value>, TemplateError> {
    match expr {
        Expr::Chain(c) => eval_chain(c, ctx, warnings, max_bytes),
        Expr::Not(e) => Ok(Cow::Owned(Value::Bool(!super::is_truthy(
            eval_expr(e, ctx, warnings, max_bytes)?.as_ref(),
        )))),
        Expr::Logic { op, left, right } => {
            let l = super::is_truthy(eval_expr(left, ctx, warnings, max_bytes)?.as_ref());
            // Short-circuit, so `input.x != null and input.x > 5` never orders a null.
            let result = match (op, l) {
                (Logic::And, false) => false,
                (Logic::Or, true) => true,
                _ => super::is_truthy(eval_expr(right, ctx, warnings, max_bytes)?.as_ref()),
            };
            Ok(Cow::Owned(Value::Bool(result)))
        }
        Expr::Compare {
            op,
            left,
            right,
            column,
        } => {
            let l = eval_expr(left, ctx, warnings, max_bytes)?;
            let r = eval_expr(right, ctx, warnings, max_bytes)?;
            let result = match op {
                CmpOp::Eq => Ok(compare::equal(&l, &r)),
                CmpOp::Ne => Ok(!compare::equal(&l, &r)),
                CmpOp::Contains => compare::contains(&l, &r),
                CmpOp::Gt => compare::order(&l, &r).map(|o| o.is_gt()),
                CmpOp::Ge => compare::order(&l, &r).map(|o| o.is_ge()),
                CmpOp::Lt => compare::order(&l, &r).map(|o| o.is_lt()),
                CmpOp::Le => compare::order(&l, &r).map(|o| o.is_le()),
            };
            result.map(|b| Cow::Owned(Value::Bool(b))).map_err(|msg| {
                TemplateError::new(
                    TemplateErrorKind::Comparison,
                    format!("'{}': {msg}", op.as_str()),
                    *column,
                )
            })
        }
    }
}

fn eval_chain<'a, 'e: 'a>(
    chain: &'e Chain,
    ctx: &Context<'a>,
    warnings: &mut Vec<String>,
    max_bytes: usize,
) -> Result<Cow<'a, Value>, TemplateError> {
    let head = match &chain.head {
        Head::Operand(op) => eval_operand(op, ctx, warnings),
        Head::Group(e) => eval_expr(e, ctx, warnings, max_bytes)?,
    };
    let mut value = Val::Json(head);
    for call in &chain.filters {
        // Arguments warn only when they are used: the fallback of a `default:`
        // whose value was present is never needed, so its missing path is no news.
        let mut arg_warnings = vec![];
        let values: Vec<Cow<'a, Value>> = call
            .args
            .iter()
            .map(|a| eval_operand(a, ctx, &mut arg_warnings))
            .collect();
        let kwargs: Vec<Cow<'a, Value>> = call
            .kwargs
            .iter()
            .map(|(_, a)| eval_operand(a, ctx, &mut arg_warnings))
            .collect();
        let fallback_unused = call.def.name == "default"
            && !super::filters::values::needs_default(
                &value.as_value(),
                call.kwargs
                    .iter()
                    .zip(&kwargs)
                    .any(|((k, _), v)| k == "allow_false" && super::is_truthy(v)),
            );
        if !fallback_unused {
            for w in arg_warnings {
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
        }
        let args = Args {
            values: &values,
            kwargs: &kwargs,
            call,
            now: ctx.now,
            max_bytes,
        };
        value = match call.def.apply {
            Apply::Value(f) => Val::Json(Cow::Owned(f(&value.as_value(), &args)?)),
            Apply::Chain(f) => f(value, &args)?,
        };
        // What a filter built is measured once; values borrowed from the context are
        // already run state, bounded where they entered.
        if let Val::Json(Cow::Owned(v)) = &value
            && crate::limits::json_len_within(v, max_bytes).is_none()
        {
            return Err(too_large(&args, max_bytes));
        }
    }
    // The one conversion of chain numbers to JSON numbers.
    Ok(value.into_value())
}

/// The error of a filter whose result would pass the budget.
pub(crate) fn too_large(args: &Args<'_>, max_bytes: usize) -> TemplateError {
    let msg = format!(
        "filter '{}' would produce more than the limit of {} for one value",
        args.name(),
        crate::limits::describe_bytes(max_bytes)
    );
    args.error(TemplateErrorKind::TooLarge, msg)
}

/// Renders a mixed template to one string of at most `max_bytes`.
pub(crate) fn render_text(
    parts: &[Part],
    ctx: &Context<'_>,
    warnings: &mut Vec<String>,
    max_bytes: usize,
) -> Result<String, TemplateError> {
    let mut out = String::new();
    for part in parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Expr(e) => {
                let v = eval_expr(e, ctx, warnings, max_bytes)?;
                let room = max_bytes.saturating_sub(out.len());
                if crate::limits::text_len_within(&v, room).is_none() {
                    let msg = format!(
                        "the text would be more than the limit of {} for one value",
                        crate::limits::describe_bytes(max_bytes)
                    );
                    let column = 1;
                    return Err(TemplateError::new(TemplateErrorKind::TooLarge, msg, column));
                }
                push_text(v.as_ref(), &mut out)
            }
        }
    }
    Ok(out)
}

/// A value as it appears inside text: strings raw, numbers canonical, `null` empty,
/// arrays and objects as compact JSON.
pub(crate) fn push_text(v: &Value, out: &mut String) {
    match v {
        Value::Null => {}
        Value::String(s) => out.push_str(s),
        Value::Number(n) => out.push_str(&canonical_number(n)),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Array(_) | Value::Object(_) => {
            out.push_str(&serde_json::to_string(v).unwrap_or_default())
        }
    }
}

pub(crate) fn to_text(v: &Value) -> String {
    let mut s = String::new();
    push_text(v, &mut s);
    s
}

/// A short description of a value for error messages: `string "abc"`, `number 5`, `array`.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {}", canonical_number(n)),
        Value::String(s) if s.chars().count() > 40 => {
            format!("string \"{}…\"", s.chars().take(40).collect::<String>())
        }
        Value::String(s) => format!("string \"{s}\""),
        Value::Array(a) => format!("array of {}", a.len()),
        Value::Object(_) => "object".into(),
    }
}
