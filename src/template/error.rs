//! `TemplateError`: the one error type of the template layer, with a kind and a column.

/// What went wrong, so callers can map errors without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TemplateErrorKind {
    /// The template text does not follow the grammar (including unknown roots).
    Syntax,
    /// A filter name that is not in the registry.
    UnknownFilter,
    /// A filter called with too few or too many arguments.
    FilterArity,
    /// A filter got an input or argument of the wrong type or an unusable value.
    FilterType,
    /// Division by zero or a result outside the decimal range.
    Arithmetic,
    /// A `map` expression that does not parse.
    Expression,
    /// A comparison or logic operator that does not exist (`=`, `&&`, `gt`).
    UnknownOperator,
    /// Values that cannot be compared that way (`5 > 'abc'`, `null < 3`).
    Comparison,
}

/// A template error. `column` is 1-based and counts characters (not bytes) from the start
/// of the template source, newlines included, so a multi-line template still has one axis.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (column {column})")]
pub struct TemplateError {
    pub kind: TemplateErrorKind,
    pub message: String,
    pub column: usize,
    /// The filter name when the error is about a filter.
    pub filter: Option<String>,
}

impl TemplateError {
    pub fn new(kind: TemplateErrorKind, message: impl Into<String>, column: usize) -> Self {
        TemplateError {
            kind,
            message: message.into(),
            column,
            filter: None,
        }
    }

    pub fn with_filter(mut self, name: &str) -> Self {
        self.filter = Some(name.to_string());
        self
    }
}

/// Converts a byte offset into the 1-based character column used in errors.
pub(crate) fn column_at(src: &str, byte: usize) -> usize {
    let byte = byte.min(src.len());
    // A byte offset always comes from our own scanning, so it sits on a char boundary;
    // the fallback only guards against a future mistake turning into a panic.
    src.get(..byte).map_or(byte, |s| s.chars().count()) + 1
}
