//! Running as Lambda: one binary for every function, each serving what its `FUNCTION` names (one
//! route, the console, the table's stream or a custom resource). State is built once per
//! process, outside the handler. Each invocation of a route or the console runs in a `request`
//! span naming the function and the Lambda request id, which every log line of that invocation
//! carries.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::{Error, Request, RequestExt, service_fn};
use tracing::Instrument;

use crate::entry::config;
use crate::settings::{Settings, SettingsError};

use super::http::routes::{CONSOLE_FUNCTION, Endpoint, LambdaFunction};
use super::http::{console, handlers};

/// The `lambda` binary: the settings read once, then the function `FUNCTION` names; without it,
/// or with a name the service has no function of, an error naming `FUNCTION` (Lambda reports it
/// as the function's init error).
pub async fn run() -> Result<(), Error> {
    let settings = Settings::from_env()?;
    match function_of(&settings)? {
        LambdaFunction::Endpoint(endpoint) => run_endpoint(settings, endpoint).await,
        LambdaFunction::Console => run_console(settings).await,
        LambdaFunction::RetentionStream => super::stream::run(settings).await,
        LambdaFunction::UsageAggregator => super::usage_aggregator::run(settings).await,
        LambdaFunction::RootKeyResource => super::root_key_resource::run(settings).await,
        LambdaFunction::ApiKeyResource => super::api_key_resource::run(settings).await,
        LambdaFunction::EventsStream => super::events::run(settings).await,
    }
}

/// The function `FUNCTION` names, as a value of the one function list.
fn function_of(settings: &Settings) -> Result<LambdaFunction, SettingsError> {
    let named = |problem: String| SettingsError { variable: "FUNCTION", problem };
    let raw = settings.function.as_deref().ok_or_else(|| {
        named("must be set for the lambda binary (the function it serves, as template.yaml sets it)".into())
    })?;
    LambdaFunction::from_name(raw).ok_or_else(|| {
        let names: Vec<&str> = LambdaFunction::all().map(LambdaFunction::name).collect();
        named(format!("must be one of {}, not '{raw}'", names.join(", ")))
    })
}

/// A route's function.
pub async fn run_endpoint(settings: Settings, endpoint: Endpoint) -> Result<(), Error> {
    let (app, _) = config::start_with(&settings).await;
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
pub async fn run_console(settings: Settings) -> Result<(), Error> {
    config::init_logging(&settings.logging);
    lambda_http::run(service_fn(move |req: Request| {
        let span = request_span(CONSOLE_FUNCTION, req.lambda_context_ref().map_or("", |c| c.request_id.as_str()));
        async move { Ok::<_, Infallible>(console::answer(req.method(), req.uri().path())) }.instrument(span)
    }))
    .await
}

/// The span of one invocation: the function (its name in the route table and its `FUNCTION`)
/// and the Lambda request id.
fn request_span(function: &'static str, request_id: &str) -> tracing::Span {
    tracing::info_span!("request", function, requestId = request_id)
}
