//! Array filters. `first`, `last`, `reverse`, `slice` and `size` also take strings
//! (by character); `size` also counts object keys. Null passes through except in `sum`.

use super::Args;
use crate::template::ast::Seg;
use crate::template::decimal::{decimal_to_value, number_to_decimal, parse_numeric_string};
use crate::template::error::{TemplateError, TemplateErrorKind};
use crate::template::eval::{describe, lookup, push_text};
use crate::template::expr::{self, ExprError, MapExpr};
use rust_decimal::Decimal;
use serde_json::Value;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashSet;

fn array<'v>(v: &'v Value, args: &Args<'_>) -> Result<&'v [Value], TemplateError> {
    match v {
        Value::Array(a) => Ok(a),
        _ => Err(args.type_error("an array", v)),
    }
}

/// A `where`/`sort` field name; dots reach into nested objects (`customer.tier`).
fn field_path(args: &Args<'_>, i: usize) -> Result<Vec<Seg>, TemplateError> {
    Ok(args
        .text_arg(i)?
        .split('.')
        .map(|s| Seg::Key(s.to_string()))
        .collect())
}

pub(crate) fn map(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let items = array(v, args)?;
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
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(expr::eval(&expr, item).map_err(|e| match e {
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
    }
    Ok(Value::Array(out))
}

pub(crate) fn sum(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let items = array(v, args)?;
    // Integers add up in i64 (the common case: cents); the first fraction, numeric string
    // or overflow moves the running total to Decimal.
    let mut int_total: Option<i64> = Some(0);
    let mut total = Decimal::ZERO;
    for (i, item) in items.iter().enumerate() {
        if let (Some(t), Some(n)) = (int_total, item.as_i64())
            && let Some(t) = t.checked_add(n)
        {
            int_total = Some(t);
            continue;
        }
        if let Some(t) = int_total.take() {
            total = Decimal::from(t);
        }
        let d = match item {
            Value::Number(n) => number_to_decimal(n),
            Value::String(s) => parse_numeric_string(s),
            _ => None,
        }
        .ok_or_else(|| {
            let msg = format!(
                "filter 'sum' expects numbers, got {} at index {i}",
                describe(item)
            );
            args.error(TemplateErrorKind::FilterType, msg)
        })?;
        total = total.checked_add(d).ok_or_else(|| {
            args.error(
                TemplateErrorKind::Arithmetic,
                "arithmetic overflow in filter 'sum'",
            )
        })?;
    }
    Ok(int_total.map_or_else(|| decimal_to_value(total), Value::from))
}

pub(crate) fn size(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let n = match v {
        Value::Null => 0,
        Value::Array(a) => a.len(),
        Value::String(s) => s.chars().count(),
        Value::Object(m) => m.len(),
        _ => return Err(args.type_error("an array, string or object", v)),
    };
    Ok(Value::from(n))
}

fn pick(v: &Value, args: &Args<'_>, from_end: bool) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Array(a) => if from_end { a.last() } else { a.first() }
            .cloned()
            .unwrap_or(Value::Null),
        Value::String(s) => {
            let c = if from_end {
                s.chars().next_back()
            } else {
                s.chars().next()
            };
            c.map_or(Value::Null, |c| Value::String(c.to_string()))
        }
        _ => return Err(args.type_error("an array or string", v)),
    })
}

pub(crate) fn first(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    pick(v, args, false)
}

pub(crate) fn last(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    pick(v, args, true)
}

/// Joins with `sep`, default ", " (lists in emails read better with a comma than Liquid's space).
pub(crate) fn join(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let items = array(v, args)?;
    let sep = if args.get(0).is_some() {
        args.text_arg(0)?
    } else {
        Cow::Borrowed(", ")
    };
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        push_text(item, &mut out);
    }
    Ok(Value::String(out))
}

/// Equality where 1 and 1.0 are the same number.
fn loosely_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            match (number_to_decimal(x), number_to_decimal(y)) {
                (Some(x), Some(y)) => x == y,
                _ => x == y,
            }
        }
        _ => a == b,
    }
}

/// `where: 'field', value` keeps elements whose field equals `value`; `where: 'field'`
/// keeps elements whose field is truthy.
pub(crate) fn where_(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let items = array(v, args)?;
    let path = field_path(args, 0)?;
    let keep = |item: &Value| {
        let field = lookup(item, &path).unwrap_or(&Value::Null);
        match args.get(1) {
            Some(want) => loosely_equal(field, want),
            None => crate::template::is_truthy(field),
        }
    };
    Ok(Value::Array(
        items.iter().filter(|i| keep(i)).cloned().collect(),
    ))
}

/// A total order across JSON types: null < booleans < numbers < strings < arrays < objects.
fn compare(a: &Value, b: &Value) -> Ordering {
    let rank = |v: &Value| match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Number(_) => 2,
        Value::String(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    };
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => {
            match (number_to_decimal(x), number_to_decimal(y)) {
                (Some(x), Some(y)) => x.cmp(&y),
                _ => x
                    .as_f64()
                    .partial_cmp(&y.as_f64())
                    .unwrap_or(Ordering::Equal),
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => rank(a).cmp(&rank(b)),
    }
}

/// Stable sort by value, or by a field of each element (`sort: 'price'`).
pub(crate) fn sort(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut items = array(v, args)?.to_vec();
    if args.get(0).is_some() {
        let path = field_path(args, 0)?;
        let key = |x: &Value| lookup(x, &path).cloned().unwrap_or(Value::Null);
        items.sort_by(|a, b| compare(&key(a), &key(b)));
    } else {
        items.sort_by(compare);
    }
    Ok(Value::Array(items))
}

/// Drops repeated elements, keeping the first of each.
pub(crate) fn uniq(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut seen = HashSet::new();
    let key = |x: &Value| match x {
        Value::Number(n) => {
            number_to_decimal(n).map_or_else(|| n.to_string(), |d| d.normalize().to_string())
        }
        _ => serde_json::to_string(x).unwrap_or_default(),
    };
    let items = array(v, args)?;
    Ok(Value::Array(
        items
            .iter()
            .filter(|x| seen.insert(key(x)))
            .cloned()
            .collect(),
    ))
}

pub(crate) fn reverse(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(match v {
        Value::Null => Value::Null,
        Value::Array(a) => Value::Array(a.iter().rev().cloned().collect()),
        Value::String(s) => Value::String(s.chars().rev().collect()),
        _ => return Err(args.type_error("an array or string", v)),
    })
}

/// `slice: start, len?` — `len` defaults to 1 as in Liquid; a negative start counts from the end.
pub(crate) fn slice(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let start = args.int_arg(0)?;
    let len = if args.get(1).is_some() {
        args.int_arg(1)?
    } else {
        1
    };
    let Ok(len) = usize::try_from(len) else {
        let msg = format!("filter 'slice' expects a length of 0 or more, got {len}");
        return Err(args.error(TemplateErrorKind::FilterType, msg));
    };
    let range = |total: usize| {
        let from = if start < 0 {
            total.saturating_sub(usize::try_from(start.unsigned_abs()).unwrap_or(usize::MAX))
        } else {
            usize::try_from(start).unwrap_or(usize::MAX).min(total)
        };
        (from, from.saturating_add(len).min(total))
    };
    Ok(match v {
        Value::Array(a) => {
            let (from, to) = range(a.len());
            Value::Array(a[from..to].to_vec())
        }
        Value::String(s) => {
            let (from, to) = range(s.chars().count());
            Value::String(s.chars().skip(from).take(to - from).collect())
        }
        _ => return Err(args.type_error("an array or string", v)),
    })
}

pub(crate) fn compact(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let items = array(v, args)?;
    Ok(Value::Array(
        items.iter().filter(|x| !x.is_null()).cloned().collect(),
    ))
}
