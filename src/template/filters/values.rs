//! Value filters: `default`, `json`, `date`.
//!
//! `date` reads the input forms people paste (RFC 3339, the same without a zone, with a
//! space instead of `T`, RFC 2822, `March 14, 2016`, `YYYY-MM-DD`, unix seconds, `now` and
//! `today`; a time without a zone is UTC) and formats with Ruby's strftime, which chrono
//! covers except for the upper-case flag `%^a` and `%L` (milliseconds) / `%N`.

use super::Args;
use crate::template::decimal::{number_to_decimal, parse_numeric_string};
use crate::template::error::{TemplateError, TemplateErrorKind};
use crate::template::is_truthy;
use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde_json::Value;
use std::fmt::Write;

/// Replaces what Liquid calls empty: null, `false`, `""`, `[]` and `{}`. With
/// `allow_false: true` a `false` stays. `0` is a real value and stays.
/// Whether `default:` replaces `v` by its fallback.
pub(crate) fn needs_default(v: &Value, keep_false: bool) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !*b && !keep_false,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Number(_) => false,
    }
}

pub(crate) fn default(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let keep_false = args.kwarg("allow_false").is_some_and(is_truthy);
    Ok(if needs_default(v, keep_false) {
        args.get(0).cloned().unwrap_or(Value::Null)
    } else {
        v.clone()
    })
}

/// Serializes any value to a compact JSON string (`null` becomes `"null"`).
pub(crate) fn json(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    args.ensure(crate::limits::json_len_within(v, args.max_bytes))?;
    Ok(Value::String(serde_json::to_string(v).unwrap_or_default()))
}

/// One piece of a Ruby strftime format: literal text, or one directive in chrono's syntax
/// (upper-cased afterwards for Ruby's `^` flag).
enum Piece {
    Text(String),
    Directive { chrono: String, upper: bool },
}

/// Translates a Ruby strftime format into pieces chrono can format.
fn pieces(fmt: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            text.push(c);
            continue;
        }
        let mut flags = String::new();
        let mut upper = false;
        while let Some(&f) = chars.peek() {
            match f {
                '^' => upper = true,
                '#' => {} // Ruby's "change case": no chrono equivalent, left out
                '-' | '_' | '0' => flags.push(f),
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut colons = String::new();
        while chars.peek() == Some(&':') {
            colons.push(':');
            chars.next();
        }
        let Some(conv) = chars.next() else {
            text.push('%');
            break;
        };
        let chrono = match conv {
            '%' => {
                text.push('%');
                continue;
            }
            // chrono's own fraction forms: %.f, %.3f, %3f
            '.' => {
                let mut digits = String::new();
                while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(d);
                    chars.next();
                }
                if chars.peek() == Some(&'f') {
                    chars.next();
                }
                format!("%.{digits}f")
            }
            'f' => format!("%{width}f"),
            'L' => format!("%{}f", if width.is_empty() { "3" } else { &width }),
            'N' => format!("%{}f", if width.is_empty() { "9" } else { &width }),
            _ => format!("%{flags}{colons}{conv}"),
        };
        if !text.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut text)));
        }
        out.push(Piece::Directive { chrono, upper });
    }
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

/// Rejects strftime strings chrono cannot format, so a literal format fails at apply time.
pub(crate) fn check_date_format(fmt: &str) -> Result<(), String> {
    let bad = pieces(fmt).iter().any(|p| match p {
        Piece::Directive { chrono, .. } => {
            StrftimeItems::new(chrono).any(|i| matches!(i, Item::Error))
        }
        Piece::Text(_) => false,
    });
    if bad {
        return Err(format!(
            "filter 'date' got an invalid strftime format '{fmt}'"
        ));
    }
    Ok(())
}

/// `date: '%Y-%m-%d'` formats a date-time (see the module header for the input forms);
/// null passes through; an empty or null format gives the input unchanged, as in Liquid.
pub(crate) fn date(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let fmt = args.text_arg(0)?;
    if fmt.is_empty() {
        return Ok(v.clone());
    }
    check_date_format(&fmt).map_err(|m| args.error(TemplateErrorKind::FilterType, m))?;
    let expected = "a date-time (RFC 3339, RFC 2822, YYYY-MM-DD [HH:MM:SS], \"March 14, 2016\"), \
                    unix seconds, \"now\" or \"today\"";
    let dt = to_datetime(v, args.now).ok_or_else(|| args.type_error(expected, v))?;
    let mut out = String::new();
    for piece in pieces(&fmt) {
        match piece {
            Piece::Text(t) => out.push_str(&t),
            Piece::Directive { chrono, upper } => {
                let mut one = String::new();
                write!(one, "{}", dt.format_with_items(StrftimeItems::new(&chrono))).map_err(
                    |_| {
                        let msg = format!("filter 'date' could not format {dt} with '{fmt}'");
                        args.error(TemplateErrorKind::FilterType, msg)
                    },
                )?;
                out.push_str(&if upper { one.to_uppercase() } else { one });
            }
        }
    }
    Ok(Value::String(out))
}

/// Date-times without a zone, read as UTC.
const NAIVE_DATE_TIMES: &[&str] = &[
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
];

/// Dates alone, read as midnight UTC.
const DATES: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%B %d, %Y",
    "%b %d, %Y",
    "%B %d %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%d %b %Y",
    "%A, %B %d, %Y",
    "%a, %b %d, %Y",
];

/// Date-times with a numeric offset (`2024-03-05 07:08:09 +0100`).
const OFFSET_DATE_TIMES: &[&str] = &["%Y-%m-%d %H:%M:%S%.f %z", "%Y-%m-%d %H:%M:%S%.f%z"];

fn to_datetime(v: &Value, now: &str) -> Option<DateTime<FixedOffset>> {
    match v {
        Value::String(s) => parse_date_text(s.trim(), now),
        Value::Number(n) => from_seconds(number_to_decimal(n)?),
        _ => None,
    }
}

fn parse_date_text(s: &str, now: &str) -> Option<DateTime<FixedOffset>> {
    if s.eq_ignore_ascii_case("now") || s.eq_ignore_ascii_case("today") {
        return DateTime::parse_from_rfc3339(now).ok();
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt);
    }
    if let Ok(dt) = DateTime::parse_from_rfc2822(s) {
        return Some(dt);
    }
    if let Some(dt) = OFFSET_DATE_TIMES
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok())
    {
        return Some(dt);
    }
    // "2024-03-05 07:08:09 UTC" / "…Z": a zone that is UTC by name.
    let bare = s
        .strip_suffix(" UTC")
        .or_else(|| s.strip_suffix('Z'))
        .unwrap_or(s);
    if let Some(dt) = NAIVE_DATE_TIMES
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(bare, f).ok())
    {
        return Some(dt.and_utc().fixed_offset());
    }
    if let Some(d) = DATES
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
    {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc().fixed_offset());
    }
    from_seconds(parse_numeric_string(s)?)
}

fn from_seconds(secs: Decimal) -> Option<DateTime<FixedOffset>> {
    let whole = secs.floor();
    let nanos = ((secs - whole) * Decimal::from(1_000_000_000))
        .trunc()
        .to_u32()?;
    let dt: DateTime<Utc> = DateTime::from_timestamp(whole.to_i64()?, nanos)?;
    Some(dt.fixed_offset())
}
