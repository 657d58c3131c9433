//! The value that travels along a filter chain. A number computed by a filter stays an
//! exact `Decimal` (`Val::Num`), and so do the elements of an arithmetic `map`
//! (`Val::Nums`), until the chain ends: `{{ 100 | divided_by: 3 | times: 3 }}` is 100, not
//! the `f64` 100.00000000000001 that converting after every filter would give.

use super::decimal::Num;
use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    /// A JSON value from the context, a literal, or a filter that works on JSON.
    Json(Cow<'a, Value>),
    /// A number computed inside the chain.
    Num(Num),
    /// The result of an arithmetic `map`: one number per element.
    Nums(Vec<Num>),
}

impl<'a> Val<'a> {
    /// The JSON value, converting numbers once (the end of the chain).
    pub(crate) fn into_value(self) -> Cow<'a, Value> {
        match self {
            Val::Json(v) => v,
            Val::Num(n) => Cow::Owned(n.to_value()),
            Val::Nums(ns) => Cow::Owned(Value::Array(ns.into_iter().map(Num::to_value).collect())),
        }
    }

    /// The JSON view of the value for filters that work on JSON.
    pub(crate) fn as_value(&self) -> Cow<'_, Value> {
        match self {
            Val::Json(v) => Cow::Borrowed(v.as_ref()),
            Val::Num(n) => Cow::Owned(n.to_value()),
            Val::Nums(ns) => Cow::Owned(Value::Array(ns.iter().map(|n| n.to_value()).collect())),
        }
    }

    pub(crate) fn dec(d: rust_decimal::Decimal) -> Val<'a> {
        Val::Num(Num::Dec(d))
    }
}
