//! String filters. Numbers and booleans are accepted as their text (`{{ 42 | append: '%' }}`);
//! arrays and objects are a type error; null passes through, except that `append` and
//! `prepend` treat it as "" (as Liquid does). Lengths count characters.

use super::Args;
use crate::template::error::{TemplateError, TemplateErrorKind};
use serde_json::Value;

/// Applies `f` to the text of `v`, passing null through.
fn with_text(
    v: &Value,
    args: &Args<'_>,
    f: impl FnOnce(&str) -> Result<Value, TemplateError>,
) -> Result<Value, TemplateError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    f(&args.text(v)?)
}

fn string(s: String) -> Result<Value, TemplateError> {
    Ok(Value::String(s))
}

pub(crate) fn upcase(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| string(s.to_uppercase()))
}

pub(crate) fn downcase(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| string(s.to_lowercase()))
}

/// First character upper case, the rest lower case ("mY title" → "My title"), as Liquid.
pub(crate) fn capitalize(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| {
        let mut chars = s.chars();
        let out = match chars.next() {
            Some(c) => c
                .to_uppercase()
                .chain(chars.as_str().to_lowercase().chars())
                .collect(),
            None => String::new(),
        };
        string(out)
    })
}

pub(crate) fn strip(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| string(s.trim().to_string()))
}

/// The text of `v` with null as "" (`append`, `prepend`).
fn text_or_empty<'v>(
    v: &'v Value,
    args: &Args<'_>,
) -> Result<std::borrow::Cow<'v, str>, TemplateError> {
    if v.is_null() {
        return Ok(std::borrow::Cow::Borrowed(""));
    }
    args.text(v)
}

pub(crate) fn append(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let (s, extra) = (text_or_empty(v, args)?, args.text_arg(0)?);
    args.ensure(s.len().checked_add(extra.len()))?;
    let mut out = String::with_capacity(s.len() + extra.len());
    out.push_str(&s);
    out.push_str(&extra);
    string(out)
}

pub(crate) fn prepend(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    let (s, extra) = (text_or_empty(v, args)?, args.text_arg(0)?);
    args.ensure(s.len().checked_add(extra.len()))?;
    let mut out = String::with_capacity(s.len() + extra.len());
    out.push_str(&extra);
    out.push_str(&s);
    string(out)
}

/// Replaces every occurrence; an empty search string leaves the input unchanged; the
/// replacement defaults to "" (`replace: 'll'` deletes).
pub(crate) fn replace(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| {
        let (from, to) = (args.text_arg(0)?, args.text_arg(1)?);
        if from.is_empty() {
            return string(s.to_string());
        }
        // The size is known before anything is built: matches × the growth of each.
        let count = s.matches(&*from).count();
        let removed = count.saturating_mul(from.len());
        let size = count
            .checked_mul(to.len())
            .and_then(|added| (s.len() - removed).checked_add(added));
        args.ensure(size)?;
        string(s.replace(&*from, &to))
    })
}

/// Splits as Ruby's `String#split` does: on every occurrence of the separator, dropping
/// trailing empty parts (`"a,b,,"` gives `["a", "b"]`); a single space splits on runs of
/// whitespace and ignores leading whitespace; an empty (or null) separator splits into
/// characters.
pub(crate) fn split(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| {
        let sep = args.text_arg(0)?;
        // Each part costs at least its quotes and a comma as JSON (and far more in memory):
        // counted before the parts are built.
        let parts = if sep.is_empty() {
            s.chars().count()
        } else if sep == " " {
            s.split_whitespace().count()
        } else {
            s.matches(&*sep).count() + 1
        };
        args.ensure(parts.checked_mul(3).and_then(|n| n.checked_add(s.len())))?;
        let mut parts: Vec<Value> = if sep.is_empty() {
            s.chars().map(|c| Value::String(c.to_string())).collect()
        } else if sep == " " {
            s.split_whitespace()
                .map(|p| Value::String(p.to_string()))
                .collect()
        } else {
            s.split(&*sep)
                .map(|p| Value::String(p.to_string()))
                .collect()
        };
        while parts.last().is_some_and(|p| p.as_str() == Some("")) {
            parts.pop();
        }
        Ok(Value::Array(parts))
    })
}

/// `truncate: n, ellipsis?` keeps at most `n` characters (default 50) *including* the
/// ellipsis (default "..."), as Liquid does: "Ground control" | truncate: 8 → "Groun...".
pub(crate) fn truncate(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| {
        let n = if args.get(0).is_some() {
            args.int_arg(0)?
        } else {
            50
        };
        let Ok(n) = usize::try_from(n) else {
            let msg = format!("filter 'truncate' expects a length of 0 or more, got {n}");
            return Err(args.error(TemplateErrorKind::FilterType, msg));
        };
        let ellipsis = if args.get(1).is_some() {
            args.text_arg(1)?.into_owned()
        } else {
            "...".into()
        };
        if s.chars().count() <= n {
            return string(s.to_string());
        }
        let keep = n.saturating_sub(ellipsis.chars().count());
        string(s.chars().take(keep).chain(ellipsis.chars()).collect())
    })
}

/// Form-encodes as Ruby's `CGI.escape` (and so Liquid): RFC 3986 unreserved characters stay,
/// a space becomes `+`, everything else is percent-encoded.
pub(crate) fn url_encode(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| {
        let size = s
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { 1 } else { 3 })
            .sum();
        args.ensure(Some(size))?;
        let mut out = String::with_capacity(s.len());
        for b in s.bytes() {
            if b == b' ' {
                out.push('+');
            } else if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        string(out)
    })
}

/// HTML-escapes `& < > " '`, enough for element content and quoted attributes.
pub(crate) fn escape(v: &Value, args: &Args<'_>) -> Result<Value, TemplateError> {
    with_text(v, args, |s| {
        let size = s
            .bytes()
            .map(|b| match b {
                b'&' | b'\'' => 5,
                b'<' | b'>' => 4,
                b'"' => 6,
                _ => 1,
            })
            .sum();
        args.ensure(Some(size))?;
        let mut out = String::with_capacity(s.len());
        for c in s.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
        }
        string(out)
    })
}
