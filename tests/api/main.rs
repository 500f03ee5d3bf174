//! Integration tests against DynamoDB Local, through the same routes, authorizer and handlers
//! as the local server (and, per function, as Lambda).

mod helpers;
mod item_layout;
mod lambda_harness;

mod api_key_resource;
mod attacker_view;
mod auth;
mod bounds;
mod caller_cache;
mod cli;
mod conflicts;
mod console;
mod create;
mod delete;
mod deploy;
mod docs_links;
mod errors;
mod faults;
mod fuzz;
mod get;
mod layers;
mod lifecycle;
mod list;
mod me;
mod offset_cost;
mod openapi;
mod permissions;
mod retention;
mod retries;
mod runtime;
mod schema;
mod secrets;
mod settings;
mod smoke;
mod table_reads;
mod takeover;
mod verify;
