//! Array filters. `first`, `last`, `reverse`, `slice` and `size` also take strings
//! (by character); `size` also counts object keys. Null passes through except in `sum`.
//! `map` and `sum` flatten nested arrays and take a single object as a one-element array,
//! as Liquid does; an arithmetic `map` keeps its numbers exact for the next filter.

use super::Args;
use crate::template::ast::Seg;
use crate::template::chain::Val;
use crate::template::decimal::{Num, number_to_decimal, parse_numeric_string};
use crate::template::error::{TemplateError, TemplateErrorKind};
use crate::template::eval::{describe, lookup, push_text};
use crate::template::expr::{self, ExprError, MapExpr};
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

type Res<'v> = Result<Val<'v>, TemplateError>;

fn json<'v>(v: Value) -> Res<'v> {
    Ok(Val::Json(Cow::Owned(v)))
}

/// The elements a `map` or `sum` walks, as Liquid sees them: nested arrays are flattened and
/// a single object counts as a one-element array.
fn flat_items<'v>(v: &'v Value, args: &Args<'_>) -> Result<Vec<&'v Value>, TemplateError> {
    fn walk<'v>(items: &'v [Value], out: &mut Vec<&'v Value>) {
        for item in items {
            match item {
                Value::Array(inner) => walk(inner, out),
                other => out.push(other),
            }
        }
    }
    match v {
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            walk(a, &mut out);
            Ok(out)
        }
        Value::Object(_) => Ok(vec![v]),
        _ => Err(args.type_error("an array", v)),
    }
}

pub(crate) fn map<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let v = v.as_value();
    if v.is_null() {
        return json(Value::Null);
    }
    let items = flat_items(&v, args)?;
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
        let fields = items.iter().map(|item| {
            expr::eval_field(&expr, item)
                .flatten()
                .cloned()
                .unwrap_or(Value::Null)
        });
        return json(Value::Array(fields.collect()));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
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
    }
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
    let items = match v.as_ref() {
        Value::Array(_) => flat_items(&v, args)?,
        _ => return Err(args.type_error("an array", &v)),
    };
    let mut total = Num::Int(0);
    for (i, item) in items.iter().enumerate() {
        let value = match &property {
            Some(p) if !item.is_object() => {
                let msg = format!(
                    "filter 'sum' with a field expects objects, got {} at index {i}",
                    describe(item)
                );
                return Err(args.error(TemplateErrorKind::FilterType, msg));
            }
            Some(p) => match lookup(item, p) {
                None | Some(Value::Null) => continue,
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
    }
    Ok(Val::Num(total))
}

pub(crate) fn size<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let n = match &v {
        Val::Nums(ns) => ns.len(),
        Val::Num(_) => return Err(args.type_error("an array, string or object", &v.as_value())),
        Val::Json(j) => match j.as_ref() {
            Value::Null => 0,
            Value::Array(a) => a.len(),
            Value::String(s) => s.chars().count(),
            Value::Object(m) => m.len(),
            other => return Err(args.type_error("an array, string or object", other)),
        },
    };
    Ok(Val::Num(Num::Int(i64::try_from(n).unwrap_or(i64::MAX))))
}

fn pick<'v>(v: Val<'v>, args: &Args<'_>, from_end: bool) -> Res<'v> {
    if let Val::Nums(ns) = &v {
        let n = if from_end { ns.last() } else { ns.first() };
        return Ok(n.map_or(Val::Json(Cow::Owned(Value::Null)), |n| Val::Num(*n)));
    }
    let v = v.as_value();
    json(match v.as_ref() {
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
        other => return Err(args.type_error("an array or string", other)),
    })
}

pub(crate) fn first<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    pick(v, args, false)
}

pub(crate) fn last<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    pick(v, args, true)
}

/// Joins with `sep`, default " " as in Liquid.
pub(crate) fn join(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let items = array(v, args)?;
    let sep = if args.get(0).is_some() {
        args.text_arg(0)?
    } else {
        Cow::Borrowed(" ")
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
/// keeps elements whose field is truthy. A missing (null) field name keeps nothing.
pub(crate) fn where_(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let items = array(v, args)?;
    if args.opt(0).is_none() {
        return Ok(Value::Array(Vec::new()));
    }
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

/// `compare`, but null (a missing value) sorts after everything, as in Liquid.
fn compare_nulls_last(a: &Value, b: &Value) -> Ordering {
    match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => compare(a, b),
    }
}

/// Stable sort by value, or by a field of each element (`sort: 'price'`); elements whose
/// value or field is missing go last. A null field name sorts by value.
pub(crate) fn sort(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let mut items = array(v, args)?.to_vec();
    if args.opt(0).is_some() {
        let path = field_path(args, 0)?;
        fn key<'x>(x: &'x Value, path: &[Seg]) -> &'x Value {
            lookup(x, path).unwrap_or(&Value::Null)
        }
        items.sort_by(|a, b| compare_nulls_last(key(a, &path), key(b, &path)));
    } else {
        items.sort_by(compare_nulls_last);
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

/// `slice: start, len?` — `len` defaults to 1 as in Liquid; a negative start counts from the
/// end; a negative length gives nothing.
pub(crate) fn slice(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let start = args.int_arg(0)?;
    let len = if args.opt(1).is_some() {
        args.int_arg(1)?
    } else {
        1
    };
    let len = usize::try_from(len).unwrap_or(0);
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
