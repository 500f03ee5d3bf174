//! Entry points: the HTTP handlers (each authenticating its caller), the route table, the local server and the
//! Lambda runners.

pub mod console;
pub mod error;
pub mod handlers;
pub mod lambda;
pub mod local;
pub mod metrics;
pub mod request;
pub mod routes;

pub use routes::{Endpoint, ROUTES};
