//! Number filters, all in exact decimal arithmetic. Inputs and arguments may be JSON numbers
//! or strings holding a plain decimal number ("12.50"); `divided_by` is exact division
//! (7 / 2 = 3.5, use `| floor` for integer division); `modulo` keeps the sign of the input.

use super::Args;
use crate::template::decimal::decimal_to_value;
use crate::template::error::{TemplateError, TemplateErrorKind};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::Value;

/// Decimal's own limit on fractional digits.
const MAX_DIGITS: i64 = 28;

fn checked(
    args: &Args<'_>,
    v: &Value,
    op: fn(Decimal, Decimal) -> Option<Decimal>,
) -> Result<Value, TemplateError> {
    let (a, b) = (args.number(v)?, args.number_arg(0)?);
    op(a, b).map(decimal_to_value).ok_or_else(|| {
        let msg = format!(
            "arithmetic overflow in filter '{}' ({a} and {b})",
            args.name()
        );
        args.error(TemplateErrorKind::Arithmetic, msg)
    })
}

fn nonzero_divisor(args: &Args<'_>) -> Result<(), TemplateError> {
    if args.number_arg(0)?.is_zero() {
        let msg = format!("division by zero in filter '{}'", args.name());
        return Err(args.error(TemplateErrorKind::Arithmetic, msg));
    }
    Ok(())
}

pub(crate) fn times(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    checked(args, v, Decimal::checked_mul)
}

pub(crate) fn plus(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    checked(args, v, Decimal::checked_add)
}

pub(crate) fn minus(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    checked(args, v, Decimal::checked_sub)
}

pub(crate) fn divided_by(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    args.number(v)?;
    nonzero_divisor(args)?;
    checked(args, v, Decimal::checked_div)
}

pub(crate) fn modulo(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    args.number(v)?;
    nonzero_divisor(args)?;
    checked(args, v, Decimal::checked_rem)
}

/// Half away from zero (2.5 → 3, -2.5 → -3), like a cashier, not banker's rounding.
pub(crate) fn round(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let d = args.number(v)?;
    let digits = if args.get(0).is_some() {
        args.int_arg(0)?
    } else {
        0
    };
    if !(0..=MAX_DIGITS).contains(&digits) {
        let msg = format!("filter 'round' expects 0 to {MAX_DIGITS} digits, got {digits}");
        return Err(args.error(TemplateErrorKind::FilterType, msg));
    }
    let dp = u32::try_from(digits).unwrap_or(0);
    Ok(decimal_to_value(d.round_dp_with_strategy(
        dp,
        RoundingStrategy::MidpointAwayFromZero,
    )))
}

pub(crate) fn ceil(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(decimal_to_value(args.number(v)?.ceil()))
}

pub(crate) fn floor(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(decimal_to_value(args.number(v)?.floor()))
}

pub(crate) fn abs(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(decimal_to_value(args.number(v)?.abs()))
}

pub(crate) fn at_least(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(decimal_to_value(args.number(v)?.max(args.number_arg(0)?)))
}

pub(crate) fn at_most(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(decimal_to_value(args.number(v)?.min(args.number_arg(0)?)))
}
