//! Integration tests against DynamoDB Local, through the same routes, authorizer and handlers
//! as the local server (and, per function, as Lambda).

mod helpers;
mod lambda_harness;
mod table_reads;

mod company;
mod contract;
mod cost;
mod identities;
mod keys;
mod operations;
mod security;
