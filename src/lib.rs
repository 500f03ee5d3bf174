//! API-key service: issue, list, revoke and verify API keys, as Lambda functions over one
//! DynamoDB table.
//!
//! Layers, outermost last: `model` (values and their rules), `domain` (what each operation
//! does), `store` (the DynamoDB adapter behind one trait per capability) and `entry`, every way
//! in (the HTTP handlers and route table, the Lambda runners, the local server, the stream, the
//! root-key resource and the CLI), which read their `settings` once. `src/bin` holds three small
//! binaries: `lambda` (every Lambda function, the one its `FUNCTION` names), `apikeys` (the CLI)
//! and `local_server`. Nothing imports upward.

// "Never panic on input": outside tests, no `unwrap()` and no `panic!` in the library (an
// invariant that cannot fail says why in an `expect`). Here rather than in Cargo.toml's
// [lints], which would also hold every test and test helper to it.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::panic))]

pub mod domain;
pub mod entry;
pub mod model;
pub mod settings;
pub mod store;
