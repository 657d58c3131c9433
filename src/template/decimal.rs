//! Exact decimal arithmetic for templates: JSON number <-> `rust_decimal::Decimal`, numeric
//! strings, and the canonical text form of numbers.
//!
//! A JSON number becomes a decimal through its shortest textual form, so the `f64` 1.08
//! is exactly 1.08 and `3998 | times: 1.08` is exactly 4317.84. Inside a filter chain a
//! number stays a `Decimal` (or an `i64`, see `Num`); it goes back to JSON once, at the end
//! of the chain, as an integer when integral and within `i64`, otherwise as the `f64`
//! nearest to the normalized decimal text (which then prints as that same short text). An
//! `f64` that comes out integral (`100 / 3 * 3` is 99.99…9 with 27 nines) is that integer.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::{Number, Value};
use std::str::FromStr;

/// The decimal value of a JSON number, or `None` when it is outside the decimal range
/// (about ±7.9e28) or too small to be told apart from zero with 28 digits.
pub(crate) fn number_to_decimal(n: &Number) -> Option<Decimal> {
    if let Some(i) = n.as_i64() {
        return Some(Decimal::from(i));
    }
    if let Some(u) = n.as_u64() {
        return Some(Decimal::from(u));
    }
    let f = n.as_f64()?;
    if f == 0.0 {
        return Some(Decimal::ZERO);
    }
    // serde_json prints an f64 with its shortest round-tripping digits (ryu).
    let text = n.to_string();
    parse_number_text(&text)
}

/// Parses `12`, `-3.5`, `1e20` or `1.5E-7` into a decimal; `None` if it does not fit.
pub(crate) fn parse_number_text(text: &str) -> Option<Decimal> {
    if text.contains(['e', 'E']) {
        let d = Decimal::from_scientific(text).ok()?;
        // from_scientific silently rounds tiny values to zero; refuse instead of lying.
        if d.is_zero() && text.chars().any(|c| matches!(c, '1'..='9')) {
            let mantissa = text.split(['e', 'E']).next().unwrap_or("");
            if mantissa.chars().any(|c| matches!(c, '1'..='9')) {
                return None;
            }
        }
        Some(d)
    } else {
        Decimal::from_str_exact(text).ok()
    }
}

/// A string that looks like a plain decimal number (`12`, `-3.50`, `+7`, surrounding
/// whitespace allowed). Exponents, `NaN`, hex, thousands separators and the empty string
/// are not numbers here: form and CSV input carries amounts as text, nothing fancier.
pub(crate) fn parse_numeric_string(s: &str) -> Option<Decimal> {
    let t = s.trim();
    let body = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    Decimal::from_str_exact(t).ok()
}

/// Integers up to 2^53 are exact in an `f64`; an integral `f64` below that is an integer.
const EXACT_F64_INT: f64 = 9_007_199_254_740_992.0;

/// A number during a filter chain or a `map` expression. Integers stay `i64` while they
/// fit, because most amounts are cents and quantities and `i64` arithmetic is several times
/// cheaper than `Decimal`'s; anything else, or an `i64` overflow, continues in `Decimal`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Num {
    Int(i64),
    Dec(Decimal),
}

impl Num {
    pub(crate) fn dec(self) -> Decimal {
        match self {
            Num::Int(i) => Decimal::from(i),
            Num::Dec(d) => d,
        }
    }

    pub(crate) fn to_value(self) -> Value {
        match self {
            Num::Int(i) => Value::from(i),
            Num::Dec(d) => decimal_to_value(d),
        }
    }
}

/// Remainder with the sign of the divisor, as Ruby's `%` (and so Liquid's `modulo`):
/// `-7 % 3` is 2, `7 % -3` is -2. `None` on a zero divisor or overflow.
pub(crate) fn floored_rem(a: Decimal, b: Decimal) -> Option<Decimal> {
    let r = a.checked_rem(b)?;
    if !r.is_zero() && r.is_sign_negative() != b.is_sign_negative() {
        return r.checked_add(b);
    }
    Some(r)
}

/// `floored_rem` for integers.
pub(crate) fn floored_rem_int(a: i64, b: i64) -> Option<i64> {
    let r = a.checked_rem(b)?;
    if r != 0 && (r < 0) != (b < 0) {
        return r.checked_add(b);
    }
    Some(r)
}

/// The JSON number for a decimal result: done once, at the end of a chain.
pub(crate) fn decimal_to_value(d: Decimal) -> Value {
    // Integer arithmetic is the common case (cents, quantities); skip normalizing it.
    let d = if d.scale() == 0 { d } else { d.normalize() };
    if d.scale() == 0
        && let Some(i) = d.to_i64()
    {
        return Value::Number(Number::from(i));
    }
    let Ok(f) = f64::from_str(&d.to_string()) else {
        return Value::Null;
    };
    if f.fract() == 0.0 && f.abs() < EXACT_F64_INT {
        // 28 significant digits round to an integral f64: the integer is what was meant.
        return Value::from(f as i64);
    }
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// A number as it appears inside text: `42`, `4857.84`, `0.0000001`; never `1000.0` or
/// `1e3`. Magnitudes beyond the decimal range keep their exponent form.
pub(crate) fn canonical_number(n: &Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match number_to_decimal(n) {
        Some(d) => d.normalize().to_string(),
        None => n.to_string(),
    }
}

/// A number literal written in a template (`42`, `-1.5`, `2e3`) as a JSON value.
pub(crate) fn literal_number(text: &str) -> Option<Value> {
    if let Some(d) = parse_number_text(text) {
        return Some(decimal_to_value(d));
    }
    text.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dec(v: Value) -> Decimal {
        match v {
            Value::Number(n) => number_to_decimal(&n).expect("in range"),
            _ => panic!("not a number"),
        }
    }

    #[test]
    fn shortest_form_keeps_decimal_fractions_exact() {
        assert_eq!(dec(json!(1.08)).to_string(), "1.08");
        assert_eq!(
            dec(json!(0.1)) + dec(json!(0.2)),
            Decimal::from_str("0.3").unwrap()
        );
        assert_eq!(dec(json!(1e20)).to_string(), "100000000000000000000");
    }

    #[test]
    fn results_are_integers_when_integral() {
        assert_eq!(
            decimal_to_value(Decimal::from_str("4498.00").unwrap()),
            json!(4498)
        );
        assert_eq!(
            decimal_to_value(Decimal::from_str("4857.840").unwrap()),
            json!(4857.84)
        );
        let third = Decimal::ONE / Decimal::from(3);
        assert_eq!(decimal_to_value(third * Decimal::from(3)), json!(1));
        assert_eq!(
            decimal_to_value(Decimal::from(100) / Decimal::from(3) * Decimal::from(3)),
            json!(100)
        );
    }

    #[test]
    fn canonical_text() {
        let n = |v: Value| match v {
            Value::Number(n) => canonical_number(&n),
            _ => String::new(),
        };
        assert_eq!(n(json!(1000.0)), "1000");
        assert_eq!(n(json!(4857.84)), "4857.84");
        assert_eq!(n(json!(1e-7)), "0.0000001");
        assert_eq!(n(json!(1e300)), "1e+300");
    }

    #[test]
    fn numeric_strings() {
        assert_eq!(
            parse_numeric_string(" 12.50 "),
            Decimal::from_str("12.50").ok()
        );
        assert_eq!(parse_numeric_string("+7"), Some(Decimal::from(7)));
        for bad in ["", "1e3", "NaN", "0x10", "1,000", "12.", ".5", "-", "abc"] {
            assert_eq!(parse_numeric_string(bad), None, "{bad}");
        }
    }

    #[test]
    fn out_of_range_numbers_are_refused() {
        assert_eq!(parse_number_text("1e40"), None);
        assert_eq!(parse_number_text("1e-40"), None);
        assert_eq!(literal_number("1e40"), Some(json!(1e40)));
    }
}
