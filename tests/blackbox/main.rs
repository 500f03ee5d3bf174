//! The black-box suite: the HTTP contract of README.md, docs/api.md and openapi.yaml, checked
//! through HTTP alone against any base URL (docs/operations.md, "The black-box suite").
//!
//! `APIKEYS_BASE_URL` unset: the local server is started in process on a free port, on a fresh
//! table of DYNAMODB_ENDPOINT, with root keys of two companies minted for it. Set: the suite
//! talks to that URL with `APIKEYS_ROOT_KEY` and `APIKEYS_OTHER_ROOT_KEY` (root keys with
//! `keys:*` of two different companies), and `APIKEYS_SERVED_BY` (`local`, `sam` or `deployed`)
//! says whose known differences apply (differences.rs). Every check makes its own keys and
//! deletes them at its end, so checks run in parallel and against a shared stack.

mod client;
mod differences;
mod target;

mod auth;
mod crud;
mod identities;
mod input;
mod leaks;
mod lifecycle;
mod paging;
mod permissions;
mod preconditions;
mod retries;
mod routes;
mod usage;
mod verify;
