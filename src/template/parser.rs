//! Parser: turns the lexer's tokens into `Part`s, resolving filter names, checking arity and
//! pre-parsing literal `map` expressions and `date` formats, so mistakes surface at apply time.

use super::ast::{
    Chain, CmpOp, Expr, FilterCall, Head, Logic, Operand, Part, Path, Root, Seg, operator_hint,
};
use super::decimal::literal_number;
use super::error::{TemplateError, TemplateErrorKind, column_at};
use super::expr;
use super::filters::{self, FilterDef};
use super::lexer::{Tok, Token, lex};
use serde_json::Value;

thread_local! {
    /// The loop variables in scope while a body's templates are parsed.
    static LOCALS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub(crate) fn with_locals<T>(names: &[String], f: impl FnOnce() -> T) -> T {
    let saved = LOCALS.with(|l| std::mem::replace(&mut *l.borrow_mut(), names.to_vec()));
    let out = f();
    LOCALS.with(|l| *l.borrow_mut() = saved);
    out
}

/// A root name, or a loop variable in scope (`Root::Local`).
fn root_named(word: &str) -> Option<Root> {
    Root::from_name(word).or_else(|| {
        LOCALS
            .with(|l| l.borrow().iter().any(|n| n == word))
            .then_some(Root::Local)
    })
}

pub(crate) fn parse(src: &str) -> Result<Vec<Part>, TemplateError> {
    let tokens = lex(src)?;
    let mut p = Parser {
        src,
        tokens: &tokens,
        pos: 0,
    };
    let mut parts = Vec::new();
    while let Some(t) = p.next() {
        match &t.tok {
            Tok::Text(s) => parts.push(Part::Text(s.clone())),
            Tok::Open => parts.push(Part::Expr(p.expr(t.start)?)),
            // The lexer only emits expression tokens between Open and Close.
            _ => return Err(p.error("unexpected token", t.start)),
        }
    }
    Ok(parts)
}

/// A loop variable's path keeps the variable's name as its first key.
fn local_named(mut p: Path, name: String) -> Path {
    if p.root == Root::Local {
        p.segs.insert(0, Seg::Key(name));
    }
    p
}

/// How deep parentheses and `not` may nest inside one expression.
const MAX_NESTING: usize = 32;

struct Parser<'s> {
    src: &'s str,
    tokens: &'s [Token],
    pos: usize,
}

fn describe_tok(t: Option<&Token>) -> String {
    match t.map(|t| &t.tok) {
        None => "end of template".into(),
        Some(Tok::Close) => "'}}'".into(),
        Some(Tok::Open) => "'{{'".into(),
        Some(Tok::Text(_)) => "text".into(),
        Some(Tok::Ident(s)) | Some(Tok::Number(s)) => format!("'{s}'"),
        Some(Tok::Str(s)) => format!("string '{s}'"),
        Some(Tok::Dot) => "'.'".into(),
        Some(Tok::LBracket) => "'['".into(),
        Some(Tok::RBracket) => "']'".into(),
        Some(Tok::Pipe) => "'|'".into(),
        Some(Tok::Colon) => "':'".into(),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::LParen) => "'('".into(),
        Some(Tok::RParen) => "')'".into(),
        Some(Tok::Op(s)) => format!("'{s}'"),
    }
}

impl<'s> Parser<'s> {
    fn next(&mut self) -> Option<&'s Token> {
        let t = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some(t)
    }

    fn peek(&self) -> Option<&'s Token> {
        self.tokens.get(self.pos)
    }

    fn peek_is(&self, tok: &Tok) -> bool {
        self.peek().is_some_and(|t| &t.tok == tok)
    }

    fn col(&self, byte: usize) -> usize {
        column_at(self.src, byte)
    }

    fn error(&self, msg: &str, byte: usize) -> TemplateError {
        TemplateError::new(TemplateErrorKind::Syntax, msg, self.col(byte))
    }

    /// Byte offset for errors about the next token (or the end of the source).
    fn here(&self) -> usize {
        self.peek().map_or(self.src.len(), |t| t.start)
    }

    fn expected(&self, what: &str) -> TemplateError {
        let found = describe_tok(self.peek());
        self.error(&format!("expected {what}, found {found}"), self.here())
    }

    /// One `{{ … }}`: `or`-expression, then `}}`.
    ///
    /// Precedence, loosest first: `or`, `and`, `not`, a comparison, a filter chain. So
    /// `items | size > 3` compares the size, and a filter argument ends at an operator.
    fn expr(&mut self, open: usize) -> Result<Expr, TemplateError> {
        if self.peek_is(&Tok::Close) {
            return Err(self.error("empty expression '{{ }}'", open));
        }
        let e = self.or_expr(0)?;
        match self.peek().map(|t| &t.tok) {
            Some(Tok::Close) => {
                self.pos += 1;
                Ok(e)
            }
            _ => Err(self.unexpected_after_value("'|', an operator or '}}'")),
        }
    }

    /// Nesting of parentheses and `not` is bounded, so a hostile template cannot
    /// exhaust the stack.
    fn check_depth(&self, depth: usize) -> Result<(), TemplateError> {
        if depth > MAX_NESTING {
            return Err(self.error(
                &format!("expression nested more than {MAX_NESTING} levels deep"),
                self.here(),
            ));
        }
        Ok(())
    }

    fn keyword_is(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if w == word)
    }

    fn or_expr(&mut self, depth: usize) -> Result<Expr, TemplateError> {
        let mut left = self.and_expr(depth)?;
        while self.keyword_is("or") {
            self.pos += 1;
            let right = self.and_expr(depth)?;
            left = Expr::Logic {
                op: Logic::Or,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    fn and_expr(&mut self, depth: usize) -> Result<Expr, TemplateError> {
        let mut left = self.not_expr(depth)?;
        while self.keyword_is("and") {
            self.pos += 1;
            let right = self.not_expr(depth)?;
            left = Expr::Logic {
                op: Logic::And,
                left: Box::new(left),
                right: Box::new(right),
            };
        }
        Ok(left)
    }

    fn not_expr(&mut self, depth: usize) -> Result<Expr, TemplateError> {
        if self.keyword_is("not") {
            self.check_depth(depth + 1)?;
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not_expr(depth + 1)?)));
        }
        let left = self.chain(depth)?;
        let (op, start) = match self.peek() {
            Some(Token {
                tok: Tok::Op(text),
                start,
                ..
            }) => match CmpOp::parse(text) {
                Some(op) => (op, *start),
                None => return Err(self.unknown_operator(text, *start)),
            },
            Some(Token {
                tok: Tok::Ident(w),
                start,
                ..
            }) if w == "contains" => (CmpOp::Contains, *start),
            _ => return Ok(left),
        };
        self.pos += 1;
        let right = self.chain(depth)?;
        if let Some(Token {
            tok: Tok::Op(text),
            start,
            ..
        }) = self.peek()
        {
            let msg = format!(
                "comparisons do not chain: use 'and' between them ('{}' then '{text}')",
                op.as_str()
            );
            return Err(self.error(&msg, *start));
        }
        Ok(Expr::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
            column: self.col(start),
        })
    }

    fn chain(&mut self, depth: usize) -> Result<Expr, TemplateError> {
        let head = if self.peek_is(&Tok::LParen) {
            self.check_depth(depth + 1)?;
            self.pos += 1;
            let inner = self.or_expr(depth + 1)?;
            if !self.peek_is(&Tok::RParen) {
                return Err(self.unexpected_after_value("')'"));
            }
            self.pos += 1;
            Head::Group(Box::new(inner))
        } else {
            if let Some(Token {
                tok: Tok::Op(text),
                start,
                ..
            }) = self.peek()
            {
                return Err(self.unknown_operator(text, *start));
            }
            Head::Operand(self.operand()?)
        };
        let mut filters = Vec::new();
        while self.peek_is(&Tok::Pipe) {
            self.pos += 1;
            filters.push(self.filter()?);
        }
        Ok(Expr::Chain(Chain { head, filters }))
    }

    /// After a complete value: a word or symbol that is not an operator we know is named
    /// as an unknown operator; anything else is "expected …".
    fn unexpected_after_value(&self, what: &str) -> TemplateError {
        match self.peek() {
            Some(Token {
                tok: Tok::Op(text),
                start,
                ..
            }) => self.unknown_operator(text, *start),
            // A word that could start a value (`input`, `true`) is a missing operator or
            // pipe, not a misspelt one.
            Some(Token {
                tok: Tok::Ident(word),
                start,
                ..
            }) if Root::from_name(word).is_none()
                && !matches!(word.as_str(), "true" | "false" | "null") =>
            {
                self.unknown_operator(word, *start)
            }
            _ => self.expected(what),
        }
    }

    fn unknown_operator(&self, text: &str, byte: usize) -> TemplateError {
        let hint = operator_hint(text)
            .map(|h| format!(" (did you mean '{h}'?)"))
            .unwrap_or_default();
        let msg = format!(
            "unknown operator '{text}'{hint}: the operators are {}",
            CmpOp::ALL
        );
        TemplateError::new(TemplateErrorKind::UnknownOperator, msg, self.col(byte))
    }

    fn operand(&mut self) -> Result<Operand, TemplateError> {
        let Some(t) = self.peek() else {
            return Err(self.expected("a value"));
        };
        let operand = match &t.tok {
            Tok::Ident(word) => match word.as_str() {
                "true" => Operand::Literal(Value::Bool(true)),
                "false" => Operand::Literal(Value::Bool(false)),
                "null" => Operand::Literal(Value::Null),
                _ => {
                    let Some(root) = root_named(word) else {
                        let msg = format!(
                            "unknown root '{word}': a path starts with one of {}",
                            Root::NAMES
                        );
                        return Err(self.error(&msg, t.start));
                    };
                    let word = word.clone();
                    self.pos += 1;
                    return self
                        .path(root, t.start)
                        .map(|p| local_named(p, word))
                        .map(Operand::Path);
                }
            },
            Tok::Number(text) => match literal_number(text) {
                Some(n) => Operand::Literal(n),
                None => return Err(self.error(&format!("invalid number '{text}'"), t.start)),
            },
            Tok::Str(s) => Operand::Literal(Value::String(s.clone())),
            _ => return Err(self.expected("a value")),
        };
        self.pos += 1;
        Ok(operand)
    }

    fn path(&mut self, root: Root, start: usize) -> Result<Path, TemplateError> {
        let mut segs = Vec::new();
        let mut end = self.tokens[self.pos - 1].end;
        loop {
            if self.peek_is(&Tok::Dot) {
                self.pos += 1;
                match self.peek() {
                    Some(Token {
                        tok: Tok::Ident(s),
                        end: e,
                        ..
                    }) => {
                        segs.push(Seg::Key(s.clone()));
                        end = *e;
                        self.pos += 1;
                    }
                    _ => return Err(self.expected("a name after '.'")),
                }
            } else if self.peek_is(&Tok::LBracket) {
                self.pos += 1;
                let seg = match self.peek().map(|t| &t.tok) {
                    Some(Tok::Str(s)) => Seg::Key(s.clone()),
                    // Step ids may be all digits; `steps[1]` names step "1", not the second step.
                    Some(Tok::Number(n)) if root == Root::Steps && segs.is_empty() => {
                        Seg::Key(n.clone())
                    }
                    Some(Tok::Number(n)) if n.parse::<i64>().is_ok() => {
                        Seg::Index(n.parse().unwrap_or_default())
                    }
                    Some(Tok::Ident(word)) => {
                        let at = self.here();
                        let name = word.clone();
                        let Some(inner_root) = root_named(word) else {
                            return Err(
                                self.expected("an integer, a quoted key or a path inside '[ ]'")
                            );
                        };
                        if root == Root::Steps && segs.is_empty() {
                            return Err(self.error(
                                "a step id is written literally (steps.my-step), not computed",
                                at,
                            ));
                        }
                        self.pos += 1;
                        let inner = local_named(self.path(inner_root, at)?, name);
                        // `path` stopped before the ']'.
                        self.pos -= 1;
                        Seg::Dynamic(Box::new(inner))
                    }
                    _ => {
                        return Err(
                            self.expected("an integer, a quoted key or a path inside '[ ]'")
                        );
                    }
                };
                self.pos += 1;
                match self.peek() {
                    Some(Token {
                        tok: Tok::RBracket,
                        end: e,
                        ..
                    }) => {
                        end = *e;
                        self.pos += 1;
                    }
                    _ => return Err(self.expected("']'")),
                }
                segs.push(seg);
            } else {
                let text = self.src.get(start..end).unwrap_or_default().to_string();
                return Ok(Path { root, segs, text });
            }
        }
    }

    fn filter(&mut self) -> Result<FilterCall, TemplateError> {
        let (name, start) = match self.peek() {
            Some(Token {
                tok: Tok::Ident(name),
                start,
                ..
            }) => (name, *start),
            _ => return Err(self.expected("a filter name after '|'")),
        };
        self.pos += 1;
        let column = self.col(start);
        let def = filters::lookup(name).ok_or_else(|| unknown_filter(name, column))?;
        let mut args = Vec::new();
        let mut kwargs = Vec::new();
        let mut arg_starts = Vec::new();
        if self.peek_is(&Tok::Colon) {
            self.pos += 1;
            loop {
                if let Some(kw) = self.keyword(def)? {
                    kwargs.push(kw);
                } else {
                    arg_starts.push(self.here());
                    args.push(self.operand()?);
                }
                if !self.peek_is(&Tok::Comma) {
                    break;
                }
                self.pos += 1;
            }
        }
        check_arity(def, args.len(), column)?;
        let map_expr = self.prepare(def, &args, &arg_starts, column)?;
        Ok(FilterCall {
            def,
            args,
            kwargs,
            column,
            map_expr,
        })
    }

    /// A keyword argument `name: value` (Liquid's `allow_false: true`), when one is next.
    fn keyword(&mut self, def: &FilterDef) -> Result<Option<(String, Operand)>, TemplateError> {
        let (
            Some(Token {
                tok: Tok::Ident(name),
                start,
                ..
            }),
            Some(Token {
                tok: Tok::Colon, ..
            }),
        ) = (self.tokens.get(self.pos), self.tokens.get(self.pos + 1))
        else {
            return Ok(None);
        };
        if !def.keywords.contains(&name.as_str()) {
            let msg = if def.keywords.is_empty() {
                format!("filter '{}' takes no keyword argument '{name}'", def.name)
            } else {
                format!(
                    "filter '{}' has no keyword argument '{name}' (it knows {})",
                    def.name,
                    def.keywords.join(", ")
                )
            };
            let e = TemplateError::new(TemplateErrorKind::FilterArity, msg, self.col(*start));
            return Err(e.with_filter(def.name));
        }
        self.pos += 2;
        Ok(Some((name.clone(), self.operand()?)))
    }

    /// Literal arguments that can be checked now are checked now.
    fn prepare(
        &self,
        def: &FilterDef,
        args: &[Operand],
        starts: &[usize],
        column: usize,
    ) -> Result<Option<expr::MapExpr>, TemplateError> {
        let Some(Operand::Literal(Value::String(s))) = args.first() else {
            return Ok(None);
        };
        match def.name {
            "map" => expr::parse(s).map(Some).map_err(|e| {
                // +1 skips the opening quote; exact unless the literal used escapes.
                let col = self.col(starts[0]) + 1 + e.offset;
                let msg = format!(
                    "invalid map expression '{s}': {} at column {col}",
                    e.message
                );
                TemplateError::new(TemplateErrorKind::Expression, msg, col).with_filter("map")
            }),
            "date" => filters::values::check_date_format(s)
                .map(|()| None)
                .map_err(|msg| {
                    TemplateError::new(TemplateErrorKind::FilterType, msg, column)
                        .with_filter("date")
                }),
            _ => Ok(None),
        }
    }
}

fn check_arity(def: &FilterDef, got: usize, column: usize) -> Result<(), TemplateError> {
    if (def.min_args..=def.max_args).contains(&got) {
        return Ok(());
    }
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let expects = match (def.min_args, def.max_args) {
        (a, b) if a == b => format!("{a} argument{}", plural(a)),
        (0, b) => format!("at most {b} argument{}", plural(b)),
        (a, b) => format!("{a} to {b} arguments"),
    };
    let msg = format!("filter '{}' expects {expects}, got {got}", def.name);
    Err(TemplateError::new(TemplateErrorKind::FilterArity, msg, column).with_filter(def.name))
}

fn unknown_filter(name: &str, column: usize) -> TemplateError {
    let msg = match filters::nearest(name) {
        Some(s) => format!("unknown filter '{name}' — did you mean '{s}'?"),
        None => format!("unknown filter '{name}'"),
    };
    TemplateError::new(TemplateErrorKind::UnknownFilter, msg, column).with_filter(name)
}
