//! Entry points: the HTTP handlers, the authorizer, the route table, the local server and the
//! Lambda runners.

pub mod authorizer;
pub mod error;
pub mod handlers;
pub mod lambda;
pub mod local;
pub mod metrics;
pub mod request;
pub mod routes;

pub use routes::{Endpoint, ROUTES};
