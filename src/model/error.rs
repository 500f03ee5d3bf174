//! The one error type of the model: which input was wrong and why, so the API can name it.

/// What was wrong with a named input (a body field, a list entry or a query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblem {
    Invalid,
    Missing,
    Unknown,
    ReadOnly,
    TooMany,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub problem: FieldProblem,
    pub message: String,
}

impl FieldError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, FieldProblem::Invalid, message)
    }
    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self::new(field, FieldProblem::Missing, message)
    }
    pub fn unknown(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is not a field of this request");
        Self::new(field, FieldProblem::Unknown, message)
    }
    pub fn read_only(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is read-only and set by the server");
        Self::new(field, FieldProblem::ReadOnly, message)
    }
    pub fn too_many(field: impl Into<String>, max: usize) -> Self {
        let field = field.into();
        let message = format!("{field} holds at most {max} entries");
        Self::new(field, FieldProblem::TooMany, message)
    }
    fn new(field: impl Into<String>, problem: FieldProblem, message: impl Into<String>) -> Self {
        Self { field: field.into(), problem, message: message.into() }
    }
}
