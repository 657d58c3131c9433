//! Lexer: splits a template source into text and the tokens of each `{{ … }}` expression.
//!
//! Byte offsets are kept on every token; errors convert them to character columns.

use super::error::{TemplateError, TemplateErrorKind, column_at};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Text(String),
    Open,
    Close,
    /// A root, keyword, filter name or path segment (`calculate-total`, `0`).
    Ident(String),
    Number(String),
    Str(String),
    Dot,
    LBracket,
    RBracket,
    Pipe,
    Colon,
    Comma,
    LParen,
    RParen,
    /// A run of comparison characters (`>=`, `==`, but also `=>` or `&&`); the parser
    /// decides whether it is an operator it knows.
    Op(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    /// Byte offsets of the token's first character and of the one after its last.
    pub start: usize,
    pub end: usize,
}

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

pub(crate) fn lex(src: &str) -> Result<Vec<Token>, TemplateError> {
    let mut tokens = Vec::new();
    let mut pos = 0;
    while pos < src.len() {
        let rest = &src[pos..];
        let Some(i) = rest.find("{{") else {
            tokens.push(Token {
                tok: Tok::Text(rest.to_string()),
                start: pos,
                end: src.len(),
            });
            break;
        };
        if i > 0 {
            tokens.push(Token {
                tok: Tok::Text(rest[..i].to_string()),
                start: pos,
                end: pos + i,
            });
        }
        let open = pos + i;
        tokens.push(Token {
            tok: Tok::Open,
            start: open,
            end: open + 2,
        });
        pos = lex_expr(src, open, &mut tokens)?;
    }
    Ok(tokens)
}

/// Lexes one expression starting at the `{{` at `open`; returns the offset after its `}}`.
fn lex_expr(src: &str, open: usize, tokens: &mut Vec<Token>) -> Result<usize, TemplateError> {
    let syntax = |msg: String, at: usize| {
        TemplateError::new(TemplateErrorKind::Syntax, msg, column_at(src, at))
    };
    let mut pos = open + 2;
    loop {
        let rest = &src[pos..];
        let Some(c) = rest.chars().next() else {
            return Err(syntax("unterminated '{{': missing '}}'".into(), open));
        };
        let after_dot = matches!(tokens.last(), Some(Token { tok: Tok::Dot, .. }));
        let start = pos;
        let mut push = |tok: Tok, len: usize| {
            tokens.push(Token {
                tok,
                start,
                end: start + len,
            });
            start + len
        };
        pos = if c.is_whitespace() {
            pos + c.len_utf8()
        } else if rest.starts_with("}}") {
            return Ok(push(Tok::Close, 2));
        } else if after_dot && is_segment_char(c) {
            let len = rest.find(|c| !is_segment_char(c)).unwrap_or(rest.len());
            push(Tok::Ident(rest[..len].to_string()), len)
        } else if c.is_ascii_alphabetic() || c == '_' {
            let len = rest.find(|c| !is_segment_char(c)).unwrap_or(rest.len());
            push(Tok::Ident(rest[..len].to_string()), len)
        } else if c.is_ascii_digit()
            || (c == '-' && rest[1..].starts_with(|d: char| d.is_ascii_digit()))
        {
            let len = number_len(rest);
            push(Tok::Number(rest[..len].to_string()), len)
        } else if c == '\'' || c == '"' {
            let (value, len) = lex_string(rest, c)
                .ok_or_else(|| syntax("unterminated string literal".into(), start))?;
            push(Tok::Str(value), len)
        } else if rest.starts_with("||") {
            push(Tok::Op("||".into()), 2)
        } else if is_op_char(c) {
            let len = rest.find(|c| !is_op_char(c)).unwrap_or(rest.len());
            push(Tok::Op(rest[..len].to_string()), len)
        } else {
            let tok = match c {
                '.' => Tok::Dot,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                '|' => Tok::Pipe,
                ':' => Tok::Colon,
                ',' => Tok::Comma,
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                _ => return Err(syntax(format!("unexpected character '{c}'"), start)),
            };
            push(tok, 1)
        };
    }
}

/// Characters that make up comparison operators (and the mistakes people make with them).
fn is_op_char(c: char) -> bool {
    matches!(c, '<' | '>' | '=' | '!' | '&')
}

/// Length of `-?digits(.digits)?([eE][+-]?digits)?` at the start of `s`.
fn number_len(s: &str) -> usize {
    let b = s.as_bytes();
    let digits_from = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits_from(usize::from(b.first() == Some(&b'-')));
    if i + 1 < b.len() && b[i] == b'.' && b[i + 1].is_ascii_digit() {
        i = digits_from(i + 1);
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let mut j = i + 1;
        if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
            j += 1;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            i = digits_from(j);
        }
    }
    i
}

/// A quoted string: `\\`, `\'`, `\"`, `\n`, `\t` are escapes; any other backslash is kept,
/// so Windows paths and regex-looking text survive. Returns the value and the byte length.
fn lex_string(s: &str, quote: char) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, n)) if n == quote || n == '\\' => out.push(n),
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => return None,
            },
            c if c == quote => return Some((out, i + 1)),
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src)
            .expect("lexes")
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    #[test]
    fn segments_after_dot_allow_digits_and_hyphens() {
        let toks = kinds("{{steps.calculate-total.output.0.1}}");
        assert_eq!(toks[1], Tok::Ident("steps".into()));
        assert_eq!(toks[3], Tok::Ident("calculate-total".into()));
        assert_eq!(toks[7], Tok::Ident("0".into()));
        assert_eq!(toks[9], Tok::Ident("1".into()));
    }

    #[test]
    fn strings_may_contain_braces() {
        let toks = kinds("a {{ '}}' }} b");
        assert_eq!(toks[2], Tok::Str("}}".into()));
        assert_eq!(toks[4], Tok::Text(" b".into()));
    }

    #[test]
    fn unterminated_open_reports_its_column() {
        let err = lex("ab {{ input").unwrap_err();
        assert_eq!(err.column, 4);
    }

    #[test]
    fn operators_and_parentheses() {
        let toks = kinds("{{ (a >= 1) && b || c }}");
        assert_eq!(toks[1], Tok::LParen);
        assert_eq!(toks[3], Tok::Op(">=".into()));
        assert_eq!(toks[5], Tok::RParen);
        assert_eq!(toks[6], Tok::Op("&&".into()));
        assert_eq!(toks[8], Tok::Op("||".into()));
    }

    #[test]
    fn numbers() {
        assert_eq!(number_len("-1.5e3|"), 6);
        assert_eq!(number_len("12.x"), 2);
        assert_eq!(number_len("3e"), 1);
    }
}
