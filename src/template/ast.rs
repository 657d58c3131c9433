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

/// `operand | filter: args | …`
#[derive(Debug, Clone)]
pub(crate) struct Expr {
    pub operand: Operand,
    pub filters: Vec<FilterCall>,
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
}

impl Root {
    pub(crate) const NAMES: &'static str = "input, steps, variables, run, workflow, runId, now";

    pub(crate) fn from_name(name: &str) -> Option<Root> {
        Some(match name {
            "input" => Root::Input,
            "steps" => Root::Steps,
            "variables" => Root::Variables,
            "run" => Root::Run,
            "workflow" => Root::Workflow,
            "runId" => Root::RunId,
            "now" => Root::Now,
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
}

#[derive(Debug, Clone)]
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
