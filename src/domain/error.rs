//! What can go wrong in an operation, in the domain's words; `http::error` maps it to statuses.

use crate::model::FieldError;
use crate::store::StoreError;

/// Each variant is one answer the API gives (its status and code are `http::error`'s); the
/// message is shown to the caller, so it never carries a secret, a hash or a database message.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A bad input, named (400).
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// No usable credential: missing, malformed, unknown, inactive, expired, from a refused IP,
    /// or publishable (401). A refused key is named only by its verify code.
    #[error("{0}")]
    Unauthenticated(String),
    /// A known caller without the route's permission, acting on a key stronger than itself, or
    /// changing its own limits (403).
    #[error("{0}")]
    Forbidden(String),
    /// A previous secret, in its grace period, asked to govern: to create or change a key that
    /// holds a `keys:` permission (403 `secret_retiring`).
    #[error("{0}")]
    SecretRetiring(String),
    /// A key holding `keys:` permissions would be looser than the caller that makes or changes
    /// it (403 `forbidden`, naming the field).
    #[error("{message}")]
    OutOfBounds {
        /// The field that must be tightened.
        field: &'static str,
        /// What it must be.
        message: String,
    },
    /// Absent, or another company's: the two are never told apart.
    #[error("no key with this id")]
    NotFound,
    /// No identity of the caller's company has this id (404): absent, deleted, or another
    /// company's, never told apart.
    #[error("no identity with this id")]
    NoIdentity,
    /// An `externalId` another identity of the company has (409 `identity_exists`); holds it.
    #[error("this company already has an identity with externalId '{0}'")]
    IdentityExists(String),
    /// A custom id the company already uses (409 `key_exists`); holds the id.
    #[error("this company already has a key with id '{0}'")]
    AlreadyExists(String),
    /// An imported key's hash is already some key's, of this company or another, which is never
    /// told (409 `key_exists`).
    #[error("a key with this hash already exists")]
    HashExists,
    /// The key's state forbids the write (deleted; the company's last admin key without
    /// `force`), or the write kept losing races with others (409 `conflict`).
    #[error("{0}")]
    Conflict(String),
    /// `If-Match` named a version that is no longer current (412).
    #[error("the key has changed since the version in If-Match")]
    StaleVersion,
    /// An `Idempotency-Key` reused for another operation, key or body (422).
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    /// A twin request holds the `Idempotency-Key` and has not answered yet (409).
    #[error("a request with this Idempotency-Key is still in progress; retry it")]
    RequestInProgress,
    /// The caller's own root key is over its rate limit or quota (429); nothing was done.
    #[error("{0}")]
    RateLimited(String),
    /// DynamoDB did not answer, or refused for capacity (503); nothing was written.
    #[error("the database is unavailable; nothing was changed")]
    Unavailable,
    /// A bug or corrupt data (500). The detail is logged, never shown: the caller sees only
    /// "internal error".
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
