//! Running as Lambda: one endpoint per function. State is built once per process, outside the
//! handler. Each invocation runs in a `request` span naming the function and the Lambda request
//! id, which every log line of that invocation carries.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, RequestExt, service_fn};
use tracing::Instrument;

use crate::config;

use super::handlers;
use super::routes::Endpoint;

pub async fn run_endpoint(endpoint: Endpoint) -> Result<(), Error> {
    let (_, app) = config::start().await?;
    let app = Arc::new(app);
    let function = endpoint.route().function;
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        let span = request_span(function, req.lambda_context_ref().map_or("", |c| c.request_id.as_str()));
        async move { Ok::<_, Infallible>(handlers::handle(&app, endpoint, req).await) }.instrument(span)
    }))
    .await
}

/// The span of one invocation: the function (the binary's name, as in the route table) and the
/// Lambda request id.
pub fn request_span(function: &'static str, request_id: &str) -> tracing::Span {
    tracing::info_span!("request", function, requestId = request_id)
}
