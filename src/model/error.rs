//! The one error type of the model: which input was wrong and why, so the API can name it.

/// What was wrong with a named input (a body field, a list entry or a query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldProblem {
    /// Present but not a value the field accepts (type, grammar, range).
    Invalid,
    /// Required and absent (or `null`).
    Missing,
    /// Not a field of this request: refused rather than ignored, so a typo is never silently lost.
    Unknown,
    /// Set by the server (`id`, `createdAt`…) or fixed at creation (`userId`, `type`).
    ReadOnly,
    /// A list longer than its cap (docs/api.md, "Bounded work per request").
    TooMany,
}

/// A refused input, with enough to answer a 400 that names it: the API's error body carries
/// `field`, a code chosen from `problem`, and `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    /// The input as the caller wrote it, with its path: `acl[0].permissions[1]`, `If-Match`.
    pub field: String,
    /// What kind of wrong it is; the API's error code follows from it.
    pub problem: FieldProblem,
    /// A sentence for a person, saying what the field accepts.
    pub message: String,
}

impl FieldError {
    /// The field holds a value it does not accept; `message` says what it does accept.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(field, FieldProblem::Invalid, message)
    }
    /// A required field is absent or `null`.
    pub fn missing(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is required");
        Self::new(field, FieldProblem::Missing, message)
    }
    /// A field this request does not have (a typo, or a field of another operation).
    pub fn unknown(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is not a field of this request");
        Self::new(field, FieldProblem::Unknown, message)
    }
    /// A field the caller may not set: the server's, or fixed when the key was made.
    pub fn read_only(field: impl Into<String>) -> Self {
        let field = field.into();
        let message = format!("{field} is read-only and set by the server");
        Self::new(field, FieldProblem::ReadOnly, message)
    }
    /// A list over its cap of `max` entries.
    pub fn too_many(field: impl Into<String>, max: usize) -> Self {
        let field = field.into();
        let message = format!("{field} holds at most {max} entries");
        Self::new(field, FieldProblem::TooMany, message)
    }
    /// The same error about a field of a list entry: `acl` becomes `keys[3].acl`, and the
    /// message names it so.
    #[must_use]
    pub fn within(self, entry: &str) -> Self {
        let field = if self.field.is_empty() { entry.to_owned() } else { format!("{entry}.{}", self.field) };
        let message = format!("{entry}: {}", self.message);
        Self { field, message, ..self }
    }

    fn new(field: impl Into<String>, problem: FieldProblem, message: impl Into<String>) -> Self {
        Self { field: field.into(), problem, message: message.into() }
    }
}
