//! The HTTP API as handlers (each authenticating its caller) and one route table, served alike by
//! the Lambda runners (`entry::lambda`) and the local server (`entry::local`).

pub mod console;
pub mod error;
pub mod handlers;
pub mod metrics;
mod paging;
pub mod request;
pub mod routes;

pub use routes::{Endpoint, ROUTES};
