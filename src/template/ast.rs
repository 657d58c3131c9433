//! The parsed form of a template: text parts and `{{ … }}` expressions with their columns.

use super::expr::MapExpr;
use super::filters::FilterDef;
use serde_json::Value;

/// One piece of a template string.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    Text(String),
    Expr(Expr),
}

/// An expression: a filter chain, or comparisons and logic over chains.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Chain(Chain),
    Not(Box<Expr>),
    /// `and` / `or`, evaluated left to right with short-circuit.
    Logic {
        op: Logic,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Compare {
        op: CmpOp,
        left: Box<Expr>,
        right: Box<Expr>,
        /// Column of the operator, for run-time errors.
        column: usize,
    },
}

/// `head | filter: args | …`
#[derive(Debug, Clone)]
pub(crate) struct Chain {
    pub head: Head,
    pub filters: Vec<FilterCall>,
}

#[derive(Debug, Clone)]
pub(crate) enum Head {
    Operand(Operand),
    /// `( expression )`
    Group(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Logic {
    And,
    Or,
}

/// The comparison operators (Liquid's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    Contains,
}

impl CmpOp {
    /// Every operator a template knows, as listed in errors about unknown ones.
    pub(crate) const ALL: &'static str = "> >= < <= == != contains and or not";

    pub(crate) fn parse(text: &str) -> Option<CmpOp> {
        Some(match text {
            ">" => CmpOp::Gt,
            ">=" => CmpOp::Ge,
            "<" => CmpOp::Lt,
            "<=" => CmpOp::Le,
            "==" => CmpOp::Eq,
            "!=" => CmpOp::Ne,
            "contains" => CmpOp::Contains,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Contains => "contains",
        }
    }
}

/// What a mistaken operator most likely meant (`=` → `==`, `&&` → `and`).
pub(crate) fn operator_hint(text: &str) -> Option<&'static str> {
    Some(match text {
        "=" | "===" | "eq" => "==",
        "!==" | "<>" | "ne" => "!=",
        "=>" | "gte" | "ge" => ">=",
        "=<" | "lte" | "le" => "<=",
        "gt" => ">",
        "lt" => "<",
        "&&" | "&" => "and",
        "||" => "or",
        "!" => "not",
        _ => return None,
    })
}

impl Expr {
    /// Every path in the expression (filter arguments and dynamic keys included), with
    /// whether it sits at the head of a chain that goes through `default` (a value the
    /// author expected to be missing).
    pub(crate) fn visit_paths<'e>(&'e self, f: &mut impl FnMut(&'e Path, bool)) {
        match self {
            Expr::Chain(c) => {
                let defaulted = c.filters.iter().any(|fc| fc.def.name == "default");
                match &c.head {
                    Head::Operand(Operand::Path(p)) => p.visit(defaulted, f),
                    Head::Operand(Operand::Literal(_)) => {}
                    Head::Group(e) => e.visit_paths(f),
                }
                for fc in &c.filters {
                    for op in fc.args.iter().chain(fc.kwargs.iter().map(|(_, op)| op)) {
                        if let Operand::Path(p) = op {
                            p.visit(false, f);
                        }
                    }
                }
            }
            Expr::Not(e) => e.visit_paths(f),
            Expr::Logic { left, right, .. } | Expr::Compare { left, right, .. } => {
                left.visit_paths(f);
                right.visit_paths(f);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Operand {
    Literal(Value),
    Path(Path),
}

/// The names a path may start with; anything else is a syntax error at parse time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Input,
    Steps,
    Variables,
    Run,
    Workflow,
    RunId,
    Now,
    /// A loop's item or index variable (`invoice.id`): the name is the path's first key.
    Local,
    /// `callbacks.<stepId>.url`: the URL that completes a callback `wait` step.
    Callbacks,
}

impl Root {
    pub(crate) const NAMES: &'static str =
        "input, steps, variables, run, workflow, runId, now, callbacks";

    pub(crate) fn from_name(name: &str) -> Option<Root> {
        Some(match name {
            "input" => Root::Input,
            "steps" => Root::Steps,
            "variables" => Root::Variables,
            "run" => Root::Run,
            "workflow" => Root::Workflow,
            "runId" => Root::RunId,
            "now" => Root::Now,
            "callbacks" => Root::Callbacks,
            _ => return None,
        })
    }
}

/// A step into a value: `.name` / `["name"]` (`.0` indexes arrays too) or `[3]`
/// (negative counts from the end of an array).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    Key(String),
    Index(i64),
    /// `[input.country]`: the key (or index) is the value of another path.
    Dynamic(Box<Path>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    pub root: Root,
    pub segs: Vec<Seg>,
    /// The path as written, for "unresolved path" warnings.
    pub text: String,
}

impl Path {
    /// The step id of a `steps.X…` path.
    pub(crate) fn step_ref(&self) -> Option<&str> {
        match (self.root, self.segs.first()) {
            (Root::Steps, Some(Seg::Key(id))) => Some(id),
            _ => None,
        }
    }

    /// The step id of a `callbacks.X…` path.
    pub(crate) fn callback_ref(&self) -> Option<&str> {
        match (self.root, self.segs.first()) {
            (Root::Callbacks, Some(Seg::Key(id))) => Some(id),
            _ => None,
        }
    }

    /// This path and the paths in its dynamic keys.
    fn visit<'e>(&'e self, defaulted: bool, f: &mut impl FnMut(&'e Path, bool)) {
        f(self, defaulted);
        for seg in &self.segs {
            if let Seg::Dynamic(p) = seg {
                p.visit(false, f);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct FilterCall {
    pub def: &'static FilterDef,
    pub args: Vec<Operand>,
    /// Keyword arguments (`allow_false: true`), in the order written.
    pub kwargs: Vec<(String, Operand)>,
    /// Column of the filter name, for run-time errors.
    pub column: usize,
    /// A `map` expression given as a literal, parsed once at parse time.
    pub map_expr: Option<MapExpr>,
}
