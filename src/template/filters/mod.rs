//! The filter registry: one entry (name, arity, function) per filter, plus the argument and
//! input coercions every filter shares, so all filters report errors the same way.
//!
//! Null handling, in one place: `default` replaces null, `size` of null is 0, `json` gives
//! `"null"`; number filters and `sum` fail on null (money must never silently become 0);
//! every other filter passes null through, so a missing value renders empty and the
//! "unresolved path" warning says why.

pub(crate) mod arrays;
pub(crate) mod numbers;
pub(crate) mod strings;
pub(crate) mod values;

use super::ast::FilterCall;
use super::decimal::{number_to_decimal, parse_numeric_string};
use super::error::{TemplateError, TemplateErrorKind};
use super::eval::{describe, to_text};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use std::borrow::Cow;

pub(crate) type FilterFn = fn(&Value, &Args<'_>) -> Result<Value, TemplateError>;

pub(crate) struct FilterDef {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: usize,
    pub apply: FilterFn,
}

impl std::fmt::Debug for FilterDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FilterDef({})", self.name)
    }
}

const fn def(name: &'static str, min_args: usize, max_args: usize, apply: FilterFn) -> FilterDef {
    FilterDef {
        name,
        min_args,
        max_args,
        apply,
    }
}

pub(crate) static FILTERS: &[FilterDef] = &[
    // arrays
    def("map", 1, 1, arrays::map),
    def("sum", 0, 0, arrays::sum),
    def("size", 0, 0, arrays::size),
    def("first", 0, 0, arrays::first),
    def("last", 0, 0, arrays::last),
    def("join", 0, 1, arrays::join),
    def("where", 1, 2, arrays::where_),
    def("sort", 0, 1, arrays::sort),
    def("uniq", 0, 0, arrays::uniq),
    def("reverse", 0, 0, arrays::reverse),
    def("slice", 1, 2, arrays::slice),
    def("compact", 0, 0, arrays::compact),
    // numbers
    def("times", 1, 1, numbers::times),
    def("plus", 1, 1, numbers::plus),
    def("minus", 1, 1, numbers::minus),
    def("divided_by", 1, 1, numbers::divided_by),
    def("modulo", 1, 1, numbers::modulo),
    def("round", 0, 1, numbers::round),
    def("ceil", 0, 0, numbers::ceil),
    def("floor", 0, 0, numbers::floor),
    def("abs", 0, 0, numbers::abs),
    def("at_least", 1, 1, numbers::at_least),
    def("at_most", 1, 1, numbers::at_most),
    // strings
    def("upcase", 0, 0, strings::upcase),
    def("downcase", 0, 0, strings::downcase),
    def("capitalize", 0, 0, strings::capitalize),
    def("strip", 0, 0, strings::strip),
    def("append", 1, 1, strings::append),
    def("prepend", 1, 1, strings::prepend),
    def("replace", 2, 2, strings::replace),
    def("split", 1, 1, strings::split),
    def("truncate", 1, 2, strings::truncate),
    def("url_encode", 0, 0, strings::url_encode),
    def("escape", 0, 0, strings::escape),
    // values
    def("default", 1, 1, values::default),
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

    /// A number input: a JSON number or a string holding a plain decimal number.
    pub(crate) fn number(&self, v: &Value) -> Result<Decimal, TemplateError> {
        self.decimal(v)
            .ok_or_else(|| self.type_error("a number", v))?
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
