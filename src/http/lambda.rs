//! Running as Lambda: one endpoint per function. State is built once per
//! process, outside the handler.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, service_fn};

use crate::config::{self, App};

use super::handlers;
use super::routes::Endpoint;

pub async fn run_endpoint(endpoint: Endpoint) -> Result<(), Error> {
    config::init_logging();
    let app = Arc::new(App::from_env().await);
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handlers::handle(&app, endpoint, req).await) }
    }))
    .await
}
