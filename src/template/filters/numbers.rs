//! Number filters, all in exact decimal arithmetic on the chain value, so a result stays
//! exact for the next filter. Inputs and arguments may be JSON numbers or strings holding a
//! plain decimal number ("12.50"); `divided_by` is exact division (7 / 2 = 3.5, use
//! `| floor` for integer division); `modulo` takes the sign of the divisor, as Ruby does
//! (`-7 | modulo: 3` is 2). Null fails (money never silently becomes 0).

use super::Args;
use crate::template::chain::Val;
use crate::template::decimal::{Num, floored_rem, floored_rem_int};
use crate::template::error::{TemplateError, TemplateErrorKind};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal's own limit on fractional digits.
const MAX_DIGITS: i64 = 28;

type Res<'v> = Result<Val<'v>, TemplateError>;

fn checked<'v>(
    args: &Args<'_>,
    v: &Val<'v>,
    int: fn(i64, i64) -> Option<i64>,
    op: fn(Decimal, Decimal) -> Option<Decimal>,
) -> Res<'v> {
    let a = args.num(v)?;
    let b_dec = args.number_arg(0)?;
    let b = match b_dec.to_i64() {
        Some(i) if b_dec.scale() == 0 => Num::Int(i),
        _ => Num::Dec(b_dec),
    };
    if let (Num::Int(x), Num::Int(y)) = (a, b)
        && let Some(r) = int(x, y)
    {
        return Ok(Val::Num(Num::Int(r)));
    }
    let (a, b) = (a.dec(), b.dec());
    op(a, b).map(Val::dec).ok_or_else(|| {
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

pub(crate) fn times<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    checked(args, &v, i64::checked_mul, Decimal::checked_mul)
}

pub(crate) fn plus<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    checked(args, &v, i64::checked_add, Decimal::checked_add)
}

pub(crate) fn minus<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    checked(args, &v, i64::checked_sub, Decimal::checked_sub)
}

pub(crate) fn divided_by<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    args.num(&v)?;
    nonzero_divisor(args)?;
    let exact = |a: i64, b: i64| (a.checked_rem(b) == Some(0)).then(|| a.checked_div(b))?;
    checked(args, &v, exact, Decimal::checked_div)
}

pub(crate) fn modulo<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    args.num(&v)?;
    nonzero_divisor(args)?;
    checked(args, &v, floored_rem_int, floored_rem)
}

/// Half away from zero (2.5 → 3, -2.5 → -3), like a cashier, not banker's rounding.
/// The digits argument is truncated to an integer (`round: 1.2` is `round: 1`); negative
/// digits round to tens, hundreds, … (`1234 | round: -2` is 1200), as Ruby does.
pub(crate) fn round<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let d = args.num(&v)?.dec();
    let digits = match args.opt(0) {
        None => 0,
        Some(_) => args.number_arg(0)?.trunc().to_i64().unwrap_or(i64::MAX),
    };
    let strategy = RoundingStrategy::MidpointAwayFromZero;
    if digits < 0 {
        let Some(scale) = u32::try_from(digits.unsigned_abs())
            .ok()
            .filter(|s| *s <= 28)
            .and_then(|s| (0..s).try_fold(Decimal::ONE, |p, _| p.checked_mul(Decimal::TEN)))
        else {
            return Ok(Val::Num(Num::Int(0)));
        };
        let r = (d / scale).round_dp_with_strategy(0, strategy) * scale;
        return Ok(Val::dec(r));
    }
    if digits > MAX_DIGITS {
        return Ok(Val::dec(d));
    }
    let dp = u32::try_from(digits).unwrap_or(0);
    Ok(Val::dec(d.round_dp_with_strategy(dp, strategy)))
}

pub(crate) fn ceil<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    Ok(Val::dec(args.num(&v)?.dec().ceil()))
}

pub(crate) fn floor<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    Ok(Val::dec(args.num(&v)?.dec().floor()))
}

pub(crate) fn abs<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    Ok(Val::dec(args.num(&v)?.dec().abs()))
}

pub(crate) fn at_least<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let a = args.num(&v)?;
    let b = args.number_arg(0)?;
    Ok(if a.dec() >= b {
        Val::Num(a)
    } else {
        Val::dec(b)
    })
}

pub(crate) fn at_most<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let a = args.num(&v)?;
    let b = args.number_arg(0)?;
    Ok(if a.dec() <= b {
        Val::Num(a)
    } else {
        Val::dec(b)
    })
}

/// `fixed: digits`: the number as text with exactly that many decimals (`1234.5 | fixed: 2`
/// is `"1234.50"`), rounding half away from zero like `round`. Digits run from 0 to 28.
pub(crate) fn fixed<'v>(v: Val<'v>, args: &Args<'_>) -> Res<'v> {
    let d = args.num(&v)?.dec();
    let digits = args.int_arg(0)?;
    let Some(dp) = u32::try_from(digits)
        .ok()
        .filter(|d| i64::from(*d) <= MAX_DIGITS)
    else {
        let msg = format!("filter 'fixed' needs digits from 0 to {MAX_DIGITS}, got {digits}");
        return Err(args.error(TemplateErrorKind::FilterType, msg));
    };
    let mut r = d.round_dp_with_strategy(dp, RoundingStrategy::MidpointAwayFromZero);
    // Pads with zeros; a decimal that cannot carry that many digits keeps what it has.
    r.rescale(dp);
    Ok(Val::Json(std::borrow::Cow::Owned(
        serde_json::Value::String(r.to_string()),
    )))
}
