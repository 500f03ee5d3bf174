//! API-key service: issue, list, revoke and verify API keys, as Lambda functions over one
//! DynamoDB table.
//!
//! Layers, outermost last: `model` (values and their rules), `domain` (what each operation
//! does), `store` (the DynamoDB adapter behind one trait per capability) and `http` (handlers,
//! authorizer, routes, local server). `src/bin` holds one small binary per Lambda function.

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod model;
pub mod root_key_resource;
pub mod store;
pub mod stream;
