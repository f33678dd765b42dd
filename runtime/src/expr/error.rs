//! The errors of the expression language: at compile time (with a byte offset) and per feature.

/// A problem in an expression's source, found when compiling.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} at column {}", .offset + 1)]
pub struct ExprError {
    /// What is wrong (lowercase, no trailing period).
    pub message: String,
    /// Byte offset of the problem in the source (the source length for "unexpected end").
    pub offset: usize,
}

impl ExprError {
    pub(crate) fn new(message: impl Into<String>, offset: usize) -> ExprError {
        ExprError {
            message: message.into(),
            offset,
        }
    }
}

/// A failure while evaluating an expression on a feature (a type error, an overflow, a
/// division by zero).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    /// What went wrong (lowercase, no trailing period).
    pub message: String,
}
