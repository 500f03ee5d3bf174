//! What each operation does, in terms of the model and the store traits: no HTTP, no DynamoDB.

// Every public operation says what it does and what it refuses.
#![warn(missing_docs)]

mod audit;
mod caller;
mod clock;
pub mod company;
mod error;
pub mod events;
pub mod idempotency;
pub mod identities;
pub mod import;
pub mod imports_seen;
pub mod key_cache;
pub mod keys;
pub mod leaks;
pub mod paging;
pub mod usage;
pub mod verify;
pub mod verify_key;

#[cfg(test)]
mod tests;

pub use caller::{Caller, Credential, Me, Need, SealMaterial, authenticate};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::DomainError;
pub use key_cache::{Freshness, KeyCache, authenticate_as};
