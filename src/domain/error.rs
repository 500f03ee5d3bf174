//! What can go wrong in an operation, in the domain's words; `http::error` maps it to statuses.

use crate::model::FieldError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    Forbidden(String),
    /// Absent, or another company's: the two are never told apart.
    #[error("no key with this id")]
    NotFound,
    #[error("this company already has a key with id '{0}'")]
    AlreadyExists(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the key has changed since the version in If-Match")]
    StaleVersion,
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    #[error("a request with this Idempotency-Key is still in progress; retry it")]
    RequestInProgress,
    #[error("{0}")]
    RateLimited(String),
    #[error("the database is unavailable; nothing was changed")]
    Unavailable,
    #[error("internal error")]
    Internal(String),
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => DomainError::Unavailable,
            StoreError::Corrupt(detail) => DomainError::Internal(detail),
        }
    }
}
