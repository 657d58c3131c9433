//! The filter registry: one entry (name, arity, function) per filter, plus the argument and
//! input coercions every filter shares, so all filters report errors the same way.
//!
//! Null handling, in one place: `default` replaces null, `size` of null is 0, `json` gives
//! `"null"`, `append`/`prepend` treat it as ""; number filters and `sum` fail on null (money
//! must never silently become 0; the message suggests `| default: 0`); every other filter
//! passes null through, so a missing value renders empty and the "unresolved path" warning
//! says why. An optional argument that is null counts as left out (`round: input.digits`).
//!
//! Most filters work on JSON (`ValueFn`); number filters, `sum`, `map`, `size`, `first`
//! and `last` work on the chain value (`ChainFn`), so decimals stay exact between filters.

pub(crate) mod aggregate;
pub(crate) mod arrays;
pub(crate) mod numbers;
pub(crate) mod strings;
pub(crate) mod values;

use super::ast::FilterCall;
use super::chain::Val;
use super::decimal::{Num, number_to_decimal, parse_numeric_string};
use super::error::{TemplateError, TemplateErrorKind};
use super::eval::{describe, to_text};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use std::borrow::Cow;

pub(crate) type ValueFn = fn(&Value, &Args<'_>) -> Result<Value, TemplateError>;
pub(crate) type ChainFn = for<'v> fn(Val<'v>, &Args<'_>) -> Result<Val<'v>, TemplateError>;

#[derive(Clone, Copy)]
pub(crate) enum Apply {
    Value(ValueFn),
    Chain(ChainFn),
}

pub(crate) struct FilterDef {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    pub apply: Apply,
    /// Keyword arguments the filter knows (`default: 0, allow_false: true`).
    pub keywords: &'static [&'static str],
}

impl std::fmt::Debug for FilterDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FilterDef({})", self.name)
    }
}

const fn def(name: &'static str, min_args: usize, max_args: usize, f: ValueFn) -> FilterDef {
    FilterDef {
        name,
        min_args,
        max_args,
        apply: Apply::Value(f),
        keywords: &[],
    }
}

const fn chain(name: &'static str, min_args: usize, max_args: usize, f: ChainFn) -> FilterDef {
    FilterDef {
        name,
        min_args,
        max_args,
        apply: Apply::Chain(f),
        keywords: &[],
    }
}

pub(crate) static FILTERS: &[FilterDef] = &[
    // arrays
    chain("map", 1, 1, aggregate::map),
    chain("sum", 0, 1, aggregate::sum),
    chain("size", 0, 0, arrays::size),
    chain("first", 0, 0, arrays::first),
    chain("last", 0, 0, arrays::last),
    def("join", 0, 1, arrays::join),
    def("where", 1, 2, arrays::where_),
    def("sort", 0, 1, arrays::sort),
    def("uniq", 0, 0, arrays::uniq),
    def("reverse", 0, 0, arrays::reverse),
    def("slice", 1, 2, arrays::slice),
    def("compact", 0, 0, arrays::compact),
    // numbers
    chain("times", 1, 1, numbers::times),
    chain("plus", 1, 1, numbers::plus),
    chain("minus", 1, 1, numbers::minus),
    chain("divided_by", 1, 1, numbers::divided_by),
    chain("modulo", 1, 1, numbers::modulo),
    chain("round", 0, 1, numbers::round),
    chain("ceil", 0, 0, numbers::ceil),
    chain("floor", 0, 0, numbers::floor),
    chain("abs", 0, 0, numbers::abs),
    chain("at_least", 1, 1, numbers::at_least),
    chain("at_most", 1, 1, numbers::at_most),
    chain("fixed", 1, 1, numbers::fixed),
    // strings
    def("upcase", 0, 0, strings::upcase),
    def("downcase", 0, 0, strings::downcase),
    def("capitalize", 0, 0, strings::capitalize),
    def("strip", 0, 0, strings::strip),
    def("append", 1, 1, strings::append),
    def("prepend", 1, 1, strings::prepend),
    def("replace", 1, 2, strings::replace),
    def("split", 1, 1, strings::split),
    def("truncate", 0, 2, strings::truncate),
    def("url_encode", 0, 0, strings::url_encode),
    def("escape", 0, 0, strings::escape),
    // values
    FilterDef {
        keywords: &["allow_false"],
        ..def("default", 0, 1, values::default)
    },
    def("json", 0, 0, values::json),
    def("date", 1, 1, values::date),
];

pub(crate) fn lookup(name: &str) -> Option<&'static FilterDef> {
    FILTERS.iter().find(|f| f.name == name)
}

/// The registered name closest to `name`, when it is close enough to be a typo.
pub(crate) fn nearest(name: &str) -> Option<&'static str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    FILTERS
        .iter()
        .map(|f| (edit_distance(name, f.name), f.name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// What a filter function sees besides its input.
pub(crate) struct Args<'a> {
    pub values: &'a [Cow<'a, Value>],
    /// Values of `call.kwargs`, in the same order.
    pub kwargs: &'a [Cow<'a, Value>],
    pub call: &'a FilterCall,
    /// The render's `now`, for `date: … ` on "now".
    pub now: &'a str,
}

impl Args<'_> {
    pub(crate) fn name(&self) -> &'static str {
        self.call.def.name
    }

    pub(crate) fn error(&self, kind: TemplateErrorKind, msg: impl Into<String>) -> TemplateError {
        TemplateError::new(kind, msg, self.call.column).with_filter(self.name())
    }

    /// `filter 'times' expects a number, got string "abc"`
    pub(crate) fn type_error(&self, expected: &str, got: &Value) -> TemplateError {
        let msg = format!(
            "filter '{}' expects {expected}, got {}",
            self.name(),
            describe(got)
        );
        self.error(TemplateErrorKind::FilterType, msg)
    }

    fn arg_error(&self, i: usize, expected: &str, got: &Value) -> TemplateError {
        let msg = format!(
            "filter '{}' expects {expected} as argument {}, got {}",
            self.name(),
            i + 1,
            describe(got)
        );
        self.error(TemplateErrorKind::FilterType, msg)
    }

    pub(crate) fn get(&self, i: usize) -> Option<&Value> {
        self.values.get(i).map(|v| &**v)
    }

    /// An optional argument: `None` when left out or null (a missing value).
    pub(crate) fn opt(&self, i: usize) -> Option<&Value> {
        self.get(i).filter(|v| !v.is_null())
    }

    /// A keyword argument's value (`allow_false: true`).
    pub(crate) fn kwarg(&self, name: &str) -> Option<&Value> {
        let i = self.call.kwargs.iter().position(|(k, _)| k == name)?;
        self.kwargs.get(i).map(|v| &**v)
    }

    /// Arithmetic on null fails: a missing amount must not silently become 0.
    fn null_number_error(&self, what: &str) -> TemplateError {
        let msg = format!(
            "filter '{}' expects a number{what}, got null (a missing value?); add \
             `| default: 0` before '{}' if 0 is meant",
            self.name(),
            self.name()
        );
        self.error(TemplateErrorKind::FilterType, msg)
    }

    /// A number input: a JSON number or a string holding a plain decimal number.
    pub(crate) fn number(&self, v: &Value) -> Result<Decimal, TemplateError> {
        if v.is_null() {
            return Err(self.null_number_error(""));
        }
        self.decimal(v)
            .ok_or_else(|| self.type_error("a number", v))?
    }

    /// A number input from the chain, kept exact (and as `i64` while it is one).
    pub(crate) fn num(&self, v: &Val<'_>) -> Result<Num, TemplateError> {
        match v {
            Val::Num(n) => Ok(*n),
            Val::Json(j) => match j.as_ref() {
                Value::Number(n) if n.as_i64().is_some() => Ok(Num::Int(n.as_i64().unwrap_or(0))),
                j => self.number(j).map(Num::Dec),
            },
            Val::Nums(_) => Err(self.type_error("a number", &v.as_value())),
        }
    }

    fn decimal(&self, v: &Value) -> Option<Result<Decimal, TemplateError>> {
        match v {
            Value::Number(n) => Some(number_to_decimal(n).ok_or_else(|| {
                let msg = format!(
                    "number {n} is outside the decimal range of filter '{}'",
                    self.name()
                );
                self.error(TemplateErrorKind::Arithmetic, msg)
            })),
            Value::String(s) => parse_numeric_string(s).map(Ok),
            _ => None,
        }
    }

    pub(crate) fn number_arg(&self, i: usize) -> Result<Decimal, TemplateError> {
        let v = self.get(i).unwrap_or(&Value::Null);
        if v.is_null() {
            return Err(self.null_number_error(&format!(" as argument {}", i + 1)));
        }
        self.decimal(v)
            .ok_or_else(|| self.arg_error(i, "a number", v))?
    }

    /// An integer argument (`slice: 2`, `round: 2`, `truncate: 20`).
    pub(crate) fn int_arg(&self, i: usize) -> Result<i64, TemplateError> {
        let v = self.get(i).unwrap_or(&Value::Null);
        match self.decimal(v) {
            Some(Ok(d)) if d.is_integer() => {
                d.to_i64().ok_or_else(|| self.arg_error(i, "an integer", v))
            }
            _ => Err(self.arg_error(i, "an integer", v)),
        }
    }

    /// A text argument: strings as they are, numbers and booleans as text, null as "".
    pub(crate) fn text_arg(&self, i: usize) -> Result<Cow<'_, str>, TemplateError> {
        match self.get(i).unwrap_or(&Value::Null) {
            Value::String(s) => Ok(Cow::Borrowed(s)),
            v @ (Value::Number(_) | Value::Bool(_) | Value::Null) => Ok(Cow::Owned(to_text(v))),
            v => Err(self.arg_error(i, "a string", v)),
        }
    }

    /// A text input: strings as they are, numbers and booleans as their text.
    pub(crate) fn text<'v>(&self, v: &'v Value) -> Result<Cow<'v, str>, TemplateError> {
        match v {
            Value::String(s) => Ok(Cow::Borrowed(s)),
            Value::Number(_) | Value::Bool(_) => Ok(Cow::Owned(to_text(v))),
            _ => Err(self.type_error("a string", v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique() {
        for (i, f) in FILTERS.iter().enumerate() {
            assert!(
                FILTERS[i + 1..].iter().all(|g| g.name != f.name),
                "{}",
                f.name
            );
            assert!(f.min_args <= f.max_args);
        }
    }

    #[test]
    fn suggestions_only_when_close() {
        assert_eq!(nearest("tims"), Some("times"));
        assert_eq!(nearest("upper"), None);
        assert_eq!(nearest("dividedby"), Some("divided_by"));
        assert_eq!(nearest("x"), None);
    }
}
