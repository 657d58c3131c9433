//! Array filters. `first`, `last`, `reverse`, `slice` and `size` also take strings
//! (by character); `size` also counts object keys. Null passes through except in `sum`.
//! `map` and `sum` live in `aggregate`.

use super::Args;
use crate::limits::text_len_within;
use crate::template::ast::Seg;
use crate::template::chain::Val;
use crate::template::decimal::{Num, number_to_decimal};
use crate::template::error::TemplateError;
use crate::template::eval::{lookup, push_text};
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
pub(crate) fn field_path(args: &Args<'_>, i: usize) -> Result<Vec<Seg>, TemplateError> {
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
    // The length is added up before the text is built: elements × separator can be far
    // larger than the array.
    let mut size = sep
        .len()
        .checked_mul(items.len().saturating_sub(1))
        .filter(|n| *n <= args.max_bytes);
    for item in items {
        let Some(sofar) = size else { break };
        size = text_len_within(item, args.max_bytes - sofar).map(|n| sofar + n);
    }
    args.ensure(size)?;
    let mut out = String::with_capacity(size.unwrap_or(0));
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

/// `slice: start, len?` as Ruby's `slice(start, len)`, which Liquid calls: `len` defaults to
/// 1; a negative start counts from the end; a start before the beginning or past the end,
/// or a negative length, gives nothing (`[]` or `""`).
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
    let range = |total: usize| slice_range(start, len, total);
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

/// The element range `slice: start, len` takes from `total` elements (empty when Ruby's
/// `slice` answers nil).
fn slice_range(start: i64, len: i64, total: usize) -> (usize, usize) {
    let Ok(len) = usize::try_from(len) else {
        return (0, 0);
    };
    let from = if start < 0 {
        match usize::try_from(start.unsigned_abs())
            .ok()
            .and_then(|back| total.checked_sub(back))
        {
            Some(from) => from,
            None => return (0, 0),
        }
    } else {
        match usize::try_from(start) {
            Ok(from) if from <= total => from,
            _ => return (0, 0),
        }
    };
    (from, from.saturating_add(len).min(total))
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
