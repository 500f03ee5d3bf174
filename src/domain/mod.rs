//! What each operation does, in terms of the model and the store traits: no HTTP, no DynamoDB.

// Every public operation says what it does and what it refuses.
#![warn(missing_docs)]

mod audit;
mod caller;
pub mod caller_cache;
mod clock;
mod error;
pub mod idempotency;
pub mod identities;
pub mod keys;
pub mod paging;
pub mod verify;
pub mod verify_key;

#[cfg(test)]
mod tests;

pub use caller::{Caller, Credential, Me, Need, SealMaterial, authenticate};
pub use caller_cache::{CallerCache, Freshness, authenticate_as};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::DomainError;
