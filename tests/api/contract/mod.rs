//! The contract and the code's shape: openapi.yaml against the answers, requests generated from it,
//! fuzzing, error bodies, the stored item layout, docs links, the layers.

mod docs_links;
mod errors;
mod fuzz;
mod item_layout;
mod layers;
pub mod openapi;
mod schema;
