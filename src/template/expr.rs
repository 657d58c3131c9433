//! The `map` expression language: `+ - * / %`, parentheses, unary minus, decimal number
//! literals and field paths of the element (`quantity * price`, `(a + b) / 2`, `item.price`,
//! `['unit-price']`). A lone field path yields the field's value of any type.
//!
//! `item` names the element itself when the element has no field called `item`, so
//! `item.price` works on `{price: 3}` and `item * 2` works on an array of numbers.

use super::ast::Seg;
use super::decimal::{Num, floored_rem, floored_rem_int, number_to_decimal, parse_numeric_string};
use super::eval::{describe, lookup};
use rust_decimal::Decimal;
use serde_json::Value;

/// Bounds that keep parsing, evaluation and dropping of the tree far from the stack limit.
const MAX_NESTING: usize = 32;
const MAX_OPERATORS: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone)]
pub(crate) enum MapExpr {
    Num(Decimal),
    Field { segs: Vec<Seg>, text: String },
    Neg(Box<MapExpr>),
    Bin(Op, Box<MapExpr>, Box<MapExpr>),
}

/// A parse error with the 0-based character offset inside the expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ExprSyntaxError {
    pub offset: usize,
    pub message: String,
}

/// Why evaluating an expression on one element failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprError {
    NotNumber { field: String, got: String },
    Arithmetic(String),
}

pub(crate) fn parse(src: &str) -> Result<MapExpr, ExprSyntaxError> {
    let mut p = ExprParser {
        chars: src.chars().collect(),
        pos: 0,
        depth: 0,
        ops: 0,
    };
    p.skip_ws();
    if p.peek().is_none() {
        return Err(p.error("empty expression"));
    }
    let e = p.sum()?;
    p.skip_ws();
    match p.peek() {
        None => Ok(e),
        Some(c) => Err(p.error(&format!("unexpected '{c}'"))),
    }
}

struct ExprParser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
    ops: usize,
}

impl ExprParser {
    fn error(&self, message: &str) -> ExprSyntaxError {
        ExprSyntaxError {
            offset: self.pos,
            message: message.to_string(),
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn binary(&mut self, op: Op, l: MapExpr, r: MapExpr) -> Result<MapExpr, ExprSyntaxError> {
        self.ops += 1;
        if self.ops > MAX_OPERATORS {
            return Err(self.error("expression has too many operators"));
        }
        Ok(MapExpr::Bin(op, Box::new(l), Box::new(r)))
    }

    fn sum(&mut self) -> Result<MapExpr, ExprSyntaxError> {
        let mut left = self.product()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('+') => Op::Add,
                Some('-') => Op::Sub,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.product()?;
            left = self.binary(op, left, right)?;
        }
    }

    fn product(&mut self) -> Result<MapExpr, ExprSyntaxError> {
        let mut left = self.unary()?;
        loop {
            self.skip_ws();
            let op = match self.peek() {
                Some('*') => Op::Mul,
                Some('/') => Op::Div,
                Some('%') => Op::Rem,
                _ => return Ok(left),
            };
            self.pos += 1;
            let right = self.unary()?;
            left = self.binary(op, left, right)?;
        }
    }

    fn unary(&mut self) -> Result<MapExpr, ExprSyntaxError> {
        self.skip_ws();
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error("expression is nested too deeply"));
        }
        let e = match self.peek() {
            Some('-') => {
                self.pos += 1;
                MapExpr::Neg(Box::new(self.unary()?))
            }
            Some('(') => {
                self.pos += 1;
                let e = self.sum()?;
                self.skip_ws();
                if self.peek() != Some(')') {
                    return Err(self.error("expected ')'"));
                }
                self.pos += 1;
                e
            }
            Some(c) if c.is_ascii_digit() => self.number()?,
            Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '[' => self.field()?,
            Some(c) => return Err(self.error(&format!("unexpected '{c}'"))),
            None => return Err(self.error("unexpected end of expression")),
        };
        self.depth -= 1;
        Ok(e)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn number(&mut self) -> Result<MapExpr, ExprSyntaxError> {
        let start = self.pos;
        let mut text = self.take_while(|c| c.is_ascii_digit());
        if self.peek() == Some('.')
            && self
                .chars
                .get(self.pos + 1)
                .is_some_and(char::is_ascii_digit)
        {
            self.pos += 1;
            text.push('.');
            text.push_str(&self.take_while(|c| c.is_ascii_digit()));
        }
        Decimal::from_str_exact(&text)
            .map(MapExpr::Num)
            .map_err(|_| ExprSyntaxError {
                offset: start,
                message: format!("number '{text}' is out of range"),
            })
    }

    fn field(&mut self) -> Result<MapExpr, ExprSyntaxError> {
        let start = self.pos;
        let mut segs = Vec::new();
        if self.peek() != Some('[') {
            segs.push(Seg::Key(
                self.take_while(|c| c.is_ascii_alphanumeric() || c == '_'),
            ));
        }
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    let seg = self.take_while(|c| c.is_ascii_alphanumeric() || c == '_');
                    if seg.is_empty() {
                        return Err(self.error("expected a field name after '.'"));
                    }
                    segs.push(Seg::Key(seg));
                }
                Some('[') => {
                    self.pos += 1;
                    segs.push(self.bracket()?);
                }
                _ => break,
            }
        }
        let text = self.chars[start..self.pos].iter().collect();
        Ok(MapExpr::Field { segs, text })
    }

    fn bracket(&mut self) -> Result<Seg, ExprSyntaxError> {
        let seg = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.pos += 1;
                let key = self.take_while(|c| c != q);
                if self.peek() != Some(q) {
                    return Err(self.error("unterminated string"));
                }
                self.pos += 1;
                Seg::Key(key)
            }
            Some(c) if c.is_ascii_digit() || c == '-' => {
                let neg = c == '-';
                if neg {
                    self.pos += 1;
                }
                let digits = self.take_while(|c| c.is_ascii_digit());
                let n: i64 = digits
                    .parse()
                    .map_err(|_| self.error("expected an index"))?;
                Seg::Index(if neg { -n } else { n })
            }
            _ => return Err(self.error("expected an index or a quoted key")),
        };
        if self.peek() != Some(']') {
            return Err(self.error("expected ']'"));
        }
        self.pos += 1;
        Ok(seg)
    }
}

/// Resolves a field path against an element, honouring the `item` alias.
fn field<'v>(segs: &[Seg], elem: &'v Value) -> Option<&'v Value> {
    if let Some(Seg::Key(first)) = segs.first()
        && first == "item"
        && elem.get("item").is_none()
    {
        return lookup(elem, &segs[1..]);
    }
    lookup(elem, segs)
}

/// The value of a lone field path (any JSON type, null when missing), or `None` when the
/// expression is arithmetic.
pub(crate) fn eval_field<'v>(expr: &MapExpr, elem: &'v Value) -> Option<Option<&'v Value>> {
    match expr {
        MapExpr::Field { segs, .. } => Some(field(segs, elem)),
        _ => None,
    }
}

fn int_op(op: Op, a: i64, b: i64) -> Option<i64> {
    match op {
        Op::Add => a.checked_add(b),
        Op::Sub => a.checked_sub(b),
        Op::Mul => a.checked_mul(b),
        Op::Div if a.checked_rem(b) == Some(0) => a.checked_div(b),
        Op::Div => None,
        Op::Rem => floored_rem_int(a, b),
    }
}

/// Evaluates an arithmetic expression for one element, exactly.
pub(crate) fn eval_number(expr: &MapExpr, elem: &Value) -> Result<Num, ExprError> {
    match expr {
        MapExpr::Num(d) => Ok(Num::Dec(*d)),
        MapExpr::Field { segs, text } => {
            let not_number = |got: String| ExprError::NotNumber {
                field: text.clone(),
                got,
            };
            match field(segs, elem) {
                Some(Value::Number(n)) => match n.as_i64() {
                    Some(i) => Ok(Num::Int(i)),
                    None => number_to_decimal(n).map(Num::Dec).ok_or_else(|| {
                        ExprError::Arithmetic(format!("number {n} in '{text}' is out of range"))
                    }),
                },
                Some(v @ Value::String(s)) => parse_numeric_string(s)
                    .map(Num::Dec)
                    .ok_or_else(|| not_number(describe(v))),
                Some(v) => Err(not_number(describe(v))),
                None => Err(not_number("nothing (the field is missing)".into())),
            }
        }
        MapExpr::Neg(e) => Ok(match eval_number(e, elem)? {
            Num::Int(i) => i
                .checked_neg()
                .map_or(Num::Dec(-Decimal::from(i)), Num::Int),
            Num::Dec(d) => Num::Dec(-d),
        }),
        MapExpr::Bin(op, l, r) => {
            let (a, b) = (eval_number(l, elem)?, eval_number(r, elem)?);
            if matches!(op, Op::Div | Op::Rem) && b.dec().is_zero() {
                return Err(ExprError::Arithmetic("division by zero".into()));
            }
            if let (Num::Int(x), Num::Int(y)) = (a, b)
                && let Some(i) = int_op(*op, x, y)
            {
                return Ok(Num::Int(i));
            }
            let (a, b) = (a.dec(), b.dec());
            match op {
                Op::Add => a.checked_add(b),
                Op::Sub => a.checked_sub(b),
                Op::Mul => a.checked_mul(b),
                Op::Div => a.checked_div(b),
                Op::Rem => floored_rem(a, b),
            }
            .map(Num::Dec)
            .ok_or_else(|| ExprError::Arithmetic("arithmetic overflow".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_keep_the_stack_safe() {
        assert!(parse(&"(".repeat(100)).is_err());
        assert!(parse(&"-".repeat(100)).is_err());
        assert!(parse(&format!("{}1", "1+".repeat(300))).is_err());
        assert!(parse(&format!("{}1", "1+".repeat(200))).is_ok());
    }

    #[test]
    fn integer_fast_path_falls_back_to_decimal() {
        let e = parse("a * b").expect("parses");
        let big = json!({"a": i64::MAX, "b": 2});
        assert_eq!(
            eval_number(&e, &big),
            Ok(Num::Dec(Decimal::from(i64::MAX) * Decimal::TWO))
        );
        let div = parse("a / b").expect("parses");
        let ab = |a: i64, b: i64| json!({"a": a, "b": b});
        assert_eq!(
            eval_number(&div, &ab(7, 2)),
            Ok(Num::Dec(Decimal::new(35, 1)))
        );
        assert_eq!(eval_number(&div, &ab(8, 2)), Ok(Num::Int(4)));
        let neg = parse("-a").expect("parses");
        assert_eq!(
            eval_number(&neg, &json!({"a": i64::MIN})),
            Ok(Num::Dec(-Decimal::from(i64::MIN)))
        );
    }

    #[test]
    fn a_third_stays_exact() {
        let e = parse("x / 3").expect("parses");
        let third = eval_number(&e, &json!({"x": 1})).expect("evaluates").dec();
        assert_eq!(
            (third * Decimal::from(3)).to_string(),
            "0.9999999999999999999999999999"
        );
    }
}
