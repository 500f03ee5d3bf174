//! What each key operation does: create, read, list, change, roll, delete and verify, with retries,
//! conflicts and the caller cache.

mod caller_cache;
mod conflicts;
mod create;
mod delete;
mod get;
mod import;
mod lifecycle;
mod list;
mod me;
mod named_limits;
mod retries;
mod secrets;
mod usage;
mod verify;
mod verify_cache;
