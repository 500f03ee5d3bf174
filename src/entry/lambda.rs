//! Running as Lambda: one endpoint per function. State is built once per process, outside the
//! handler. Each invocation runs in a `request` span naming the function and the Lambda request
//! id, which every log line of that invocation carries.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, RequestExt, service_fn};
use tracing::Instrument;

use crate::entry::config;

use super::http::routes::{CONSOLE_FUNCTION, Endpoint};
use super::http::{console, handlers};

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

/// The console's function: its page and assets, for `GET /console` and `GET /console/{asset}`.
/// It reads no table and needs no state.
pub async fn run_console() -> Result<(), Error> {
    config::init_logging(&crate::settings::Settings::from_env()?.logging);
    lambda_http::run(service_fn(move |req: Request| {
        let span = request_span(CONSOLE_FUNCTION, req.lambda_context_ref().map_or("", |c| c.request_id.as_str()));
        async move { Ok::<_, Infallible>(console::answer(req.method(), req.uri().path())) }.instrument(span)
    }))
    .await
}

/// The span of one invocation: the function (the binary's name, as in the route table) and the
/// Lambda request id.
fn request_span(function: &'static str, request_id: &str) -> tracing::Span {
    tracing::info_span!("request", function, requestId = request_id)
}
