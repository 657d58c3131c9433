//! `map` and `sum`, the filters of the seed's order total. Both flatten nested arrays and
//! take a single object as a one-element array, as Liquid does; an arithmetic `map` keeps
//! its numbers exact (`Val::Nums`) for the next filter.

use super::Args;
use super::arrays::field_path;
use crate::template::chain::Val;
use crate::template::decimal::{Num, number_to_decimal, parse_numeric_string};
use crate::template::error::{TemplateError, TemplateErrorKind};
use crate::template::eval::{describe, lookup};
use crate::template::expr::{self, ExprError, MapExpr};
use serde_json::Value;
use std::borrow::Cow;

type Res<'v> = Result<Val<'v>, TemplateError>;

fn json<'v>(v: Value) -> Res<'v> {
    Ok(Val::Json(Cow::Owned(v)))
}

/// Calls `f` for the elements a `map` or `sum` walks, as Liquid sees them: nested arrays are
/// flattened and a single object counts as a one-element array. No allocation: this is
/// the hot loop of the seed's `map: 'quantity * price' | sum`.
fn each_item<'v>(
    v: &'v Value,
    args: &Args<'_>,
    f: &mut impl FnMut(usize, &'v Value) -> Result<(), TemplateError>,
) -> Result<(), TemplateError> {
    fn walk<'v>(
        items: &'v [Value],
        i: &mut usize,
        f: &mut impl FnMut(usize, &'v Value) -> Result<(), TemplateError>,
    ) -> Result<(), TemplateError> {
        for item in items {
            match item {
                Value::Array(inner) => walk(inner, i, f)?,
                other => {
                    f(*i, other)?;
                    *i += 1;
                }
            }
        }
        Ok(())
    }
    match v {
        Value::Array(a) => walk(a, &mut 0, f),
        Value::Object(_) => f(0, v),
        _ => Err(args.type_error("an array", v)),
    }
}

/// How many elements `each_item` visits, for sizing the output.
fn item_hint(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        _ => 1,
    }
}

pub(crate) fn map<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let v = v.as_value();
    if v.is_null() {
        return json(Value::Null);
    }
    let expr: Cow<'_, MapExpr> = match &args.call.map_expr {
        Some(e) => Cow::Borrowed(e),
        None => {
            // Only a map expression coming from a path gets here; literals were parsed early.
            let src = match args.get(0) {
                Some(Value::String(s)) => s,
                Some(other) => return Err(args.type_error("an expression string argument", other)),
                None => return Err(args.type_error("an expression string argument", &Value::Null)),
            };
            let e = expr::parse(src).map_err(|e| {
                let msg = format!(
                    "invalid map expression '{src}': {} at offset {}",
                    e.message, e.offset
                );
                args.error(TemplateErrorKind::Expression, msg)
            })?;
            Cow::Owned(e)
        }
    };
    if expr::eval_field(&expr, &Value::Null).is_some() {
        let mut fields = Vec::with_capacity(item_hint(&v));
        // Counted as the array grows: a field may be repeated in many elements.
        let mut size = 2usize;
        each_item(&v, args, &mut |_, item| {
            let field = expr::eval_field(&expr, item).flatten();
            let field = field.unwrap_or(&Value::Null);
            let room = args.max_bytes.saturating_sub(size);
            size += 1 + crate::limits::json_len_within(field, room)
                .ok_or_else(|| crate::template::eval::too_large(args, args.max_bytes))?;
            fields.push(field.clone());
            Ok(())
        })?;
        return json(Value::Array(fields));
    }
    let mut out = Vec::with_capacity(item_hint(&v));
    each_item(&v, args, &mut |i, item| {
        out.push(expr::eval_number(&expr, item).map_err(|e| match e {
            ExprError::NotNumber { field, got } => {
                let msg =
                    format!("filter 'map' expects a number for '{field}' at index {i}, got {got}");
                args.error(TemplateErrorKind::FilterType, msg)
            }
            ExprError::Arithmetic(m) => args.error(
                TemplateErrorKind::Arithmetic,
                format!("filter 'map': {m} at index {i}"),
            ),
        })?);
        Ok(())
    })?;
    Ok(Val::Nums(out))
}

/// Adds numbers exactly, in `i64` while they fit (the common case: cents).
fn add(total: Num, n: Num, args: &Args<'_>) -> Result<Num, TemplateError> {
    if let (Num::Int(t), Num::Int(x)) = (total, n)
        && let Some(s) = t.checked_add(x)
    {
        return Ok(Num::Int(s));
    }
    total
        .dec()
        .checked_add(n.dec())
        .map(Num::Dec)
        .ok_or_else(|| {
            args.error(
                TemplateErrorKind::Arithmetic,
                "arithmetic overflow in filter 'sum'",
            )
        })
}

/// `sum` adds the elements (nested arrays flattened); `sum: 'field'` adds that field of
/// each object and skips objects without it, as Liquid does. A null element fails.
pub(crate) fn sum<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let property = match args.opt(0) {
        Some(_) => Some(field_path(args, 0)?),
        None => None,
    };
    if let (Val::Nums(ns), None) = (&v, &property) {
        let mut total = Num::Int(0);
        for n in ns {
            total = add(total, *n, args)?;
        }
        return Ok(Val::Num(total));
    }
    let v = v.as_value();
    if !v.is_array() {
        return Err(args.type_error("an array", &v));
    }
    let mut total = Num::Int(0);
    each_item(&v, args, &mut |i, item| {
        let value = match &property {
            Some(p) if !item.is_object() => {
                let msg = format!(
                    "filter 'sum' with a field expects objects, got {} at index {i}",
                    describe(item)
                );
                return Err(args.error(TemplateErrorKind::FilterType, msg));
            }
            Some(p) => match lookup(item, p) {
                None | Some(Value::Null) => return Ok(()),
                Some(x) => x,
            },
            None => item,
        };
        let n = match value {
            Value::Number(n) => match n.as_i64() {
                Some(i) => Some(Num::Int(i)),
                None => number_to_decimal(n).map(Num::Dec),
            },
            Value::String(s) => parse_numeric_string(s).map(Num::Dec),
            _ => None,
        }
        .ok_or_else(|| {
            let msg = format!(
                "filter 'sum' expects numbers, got {} at index {i}",
                describe(value)
            );
            args.error(TemplateErrorKind::FilterType, msg)
        })?;
        total = add(total, n, args)?;
        Ok(())
    })?;
    Ok(Val::Num(total))
}
