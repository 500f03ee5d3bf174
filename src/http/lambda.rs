//! Running as Lambda: one endpoint per function, or the authorizer. State is built once per
//! process, outside the handler.

use std::convert::Infallible;
use std::sync::Arc;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2CustomAuthorizerV2Request;
use lambda_http::{Error, LambdaEvent, Request, service_fn};

use crate::config::{self, App};

use super::routes::Endpoint;
use super::{authorizer, handlers};

pub async fn run_endpoint(endpoint: Endpoint) -> Result<(), Error> {
    config::init_logging();
    let app = Arc::new(App::from_env().await);
    lambda_http::run(service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handlers::handle(&app, endpoint, req).await) }
    }))
    .await
}

pub async fn run_authorizer() -> Result<(), Error> {
    config::init_logging();
    let app = Arc::new(App::from_env().await);
    // Boxed: the runtime's future type is deep enough to overflow the compiler's layout query.
    Box::pin(lambda_http::lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayV2CustomAuthorizerV2Request>| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(authorizer::respond(&app, &event.payload).await) }
        },
    )))
    .await
}
