//! Value filters: `default`, `json`, `date`.

use super::Args;
use crate::template::decimal::{number_to_decimal, parse_numeric_string};
use crate::template::error::{TemplateError, TemplateErrorKind};
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use std::fmt::Write;

/// Replaces null and the empty string; `false`, `0` and `[]` are real values and stay.
pub(crate) fn default(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let empty = matches!(v, Value::Null) || matches!(v, Value::String(s) if s.is_empty());
    Ok(if empty {
        args.get(0).cloned().unwrap_or(Value::Null)
    } else {
        v.clone()
    })
}

/// Serializes any value to a compact JSON string (`null` becomes `"null"`).
pub(crate) fn json(v: &Value, _args: &Args<'_>) -> Result<Value, TemplateError> {
    Ok(Value::String(serde_json::to_string(v).unwrap_or_default()))
}

/// Rejects strftime strings chrono cannot format, so a literal format fails at apply time.
pub(crate) fn check_date_format(fmt: &str) -> Result<(), String> {
    if StrftimeItems::new(fmt).any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "filter 'date' got an invalid strftime format '{fmt}'"
        ));
    }
    Ok(())
}

/// `date: '%Y-%m-%d'` formats an RFC 3339 string (keeping its offset), a `YYYY-MM-DD` date,
/// unix seconds (a number or numeric string, fractions allowed; UTC), or "now" (the run's
/// clock). Null passes through.
pub(crate) fn date(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let fmt = args.text_arg(0)?;
    check_date_format(&fmt).map_err(|m| args.error(TemplateErrorKind::FilterType, m))?;
    let expected = "an RFC 3339 date-time, a YYYY-MM-DD date, unix seconds or \"now\"";
    let dt = to_datetime(v, args.now).ok_or_else(|| args.type_error(expected, v))?;
    let mut out = String::new();
    write!(out, "{}", dt.format_with_items(StrftimeItems::new(&fmt))).map_err(|_| {
        let msg = format!("filter 'date' could not format {dt} with '{fmt}'");
        args.error(TemplateErrorKind::FilterType, msg)
    })?;
    Ok(Value::String(out))
}

fn to_datetime(v: &Value, now: &str) -> Option<DateTime<FixedOffset>> {
    match v {
        Value::String(s) if s == "now" => DateTime::parse_from_rfc3339(now).ok(),
        Value::String(s) => DateTime::parse_from_rfc3339(s)
            .ok()
            .or_else(|| {
                let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
                Some(d.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset())
            })
            .or_else(|| from_seconds(parse_numeric_string(s)?)),
        Value::Number(n) => from_seconds(number_to_decimal(n)?),
        _ => None,
    }
}

fn from_seconds(secs: Decimal) -> Option<DateTime<FixedOffset>> {
    let whole = secs.floor();
    let nanos = ((secs - whole) * Decimal::from(1_000_000_000))
        .trunc()
        .to_u32()?;
    let dt: DateTime<Utc> = DateTime::from_timestamp(whole.to_i64()?, nanos)?;
    Some(dt.fixed_offset())
}
