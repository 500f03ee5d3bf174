//! API-key service: issue, list, revoke and verify API keys, as Lambda functions over one
//! DynamoDB table.
//!
//! Layers, outermost last: `model` (values and their rules), `domain` (what each operation
//! does), `store` (the DynamoDB adapter behind one trait per capability) and the entry points
//! (`http`: handlers, routes, local server, Lambda runners; `stream`; `root_key_resource`;
//! `cli`), which read their `settings` once. `src/bin` holds one small binary per function.

// "Never panic on input": outside tests, no `unwrap()` and no `panic!` in the library (an
// invariant that cannot fail says why in an `expect`). Here rather than in Cargo.toml's
// [lints], which would also hold every test and test helper to it.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::panic))]

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod model;
pub mod root_key_resource;
pub mod settings;
pub mod store;
pub mod stream;
