//! Comparisons shared by template operators (`>`, `==`, `contains`, …) and the `condition`
//! step: numbers and numeric strings compare as decimals, strings lexically, `==` works on
//! any JSON values, and ordering a number against a non-number is an error (never a
//! silent `false`).

use super::decimal::{number_to_decimal, parse_numeric_string};
use super::eval::{describe, to_text};
use rust_decimal::Decimal;
use serde_json::Value;
use std::cmp::Ordering;

/// The decimal value of a number or of a numeric string (`"10000"`, `" 12.50 "`).
pub fn as_decimal(v: &Value) -> Option<Decimal> {
    match v {
        Value::Number(n) => number_to_decimal(n),
        Value::String(s) => parse_numeric_string(s),
        _ => None,
    }
}

/// `==`: JSON equality, except that numbers compare by value (`1.0 == 1`) and a number
/// equals a numeric string of the same value (`"10000" == 10000`). Two strings compare as
/// text, so `"007" == "7"` is false.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_))
        | (Value::Number(_), Value::String(_))
        | (Value::String(_), Value::Number(_)) => match (as_decimal(a), as_decimal(b)) {
            (Some(x), Some(y)) => x == y,
            _ => a == b,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| equal(v, w)))
        }
        _ => a == b,
    }
}

/// `>`, `<` and friends: decimals when both sides are numbers or numeric strings, text
/// when both are strings; anything else cannot be ordered and says why.
pub fn order(a: &Value, b: &Value) -> Result<Ordering, String> {
    if let (Some(x), Some(y)) = (as_decimal(a), as_decimal(b)) {
        return Ok(x.cmp(&y));
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => Ok(x.cmp(y)),
        _ => {
            let hint = if a.is_null() || b.is_null() {
                " (a missing value is null; give it one with `| default: 0`)"
            } else {
                ""
            };
            Err(format!(
                "cannot order {} against {}: only numbers (or numeric strings) with numbers, and strings with strings{hint}",
                describe(a),
                describe(b)
            ))
        }
    }
}

/// `contains`: a substring of a string, an element of an array, a key of an object.
/// Nothing contains anything in null (a missing list), as in Liquid.
pub fn contains(haystack: &Value, needle: &Value) -> Result<bool, String> {
    match haystack {
        Value::Null => Ok(false),
        Value::String(s) => Ok(match needle {
            Value::Null => false,
            Value::Array(_) | Value::Object(_) => {
                return Err(format!(
                    "a string cannot contain {}; compare with a string",
                    describe(needle)
                ));
            }
            n => s.contains(&to_text(n)),
        }),
        Value::Array(items) => Ok(items.iter().any(|x| equal(x, needle))),
        Value::Object(m) => Ok(match needle {
            Value::String(k) => m.contains_key(k),
            _ => false,
        }),
        other => Err(format!(
            "'contains' needs a string, an array or an object on its left, got {}",
            describe(other)
        )),
    }
}
