//! The local server: the route table and the handlers, as API Gateway and Lambda run them, and
//! the console's page, on one port.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequestContext;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;
use tokio::net::TcpListener;

use crate::entry::config::App;
use crate::entry::local_usage::LocalFeed;

use super::http::error::ApiError;
use super::http::request::max_body_bytes;
use super::http::routes::{RouteMatch, is_console_path, match_route};
use super::http::{console, handlers};

/// One request through route matching and the handler. The tests call this
/// directly; the TCP server below calls it for every request.
pub async fn dispatch(app: &App, peer: IpAddr, req: Request) -> Response<Body> {
    if is_console_path(req.uri().path()) {
        return console::answer(req.method(), req.uri().path());
    }
    let (route, params) = match match_route(req.method(), req.uri().path()) {
        RouteMatch::Found(route, params) => (route, params),
        RouteMatch::MethodNotAllowed(allowed) => {
            let allowed = allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
            return ApiError::MethodNotAllowed { method: req.method().to_string(), allowed }.into_response();
        }
        RouteMatch::NotFound => return ApiError::NoRoute.into_response(),
    };
    let user_agent = req.headers().get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let context = json!({
        "routeKey": format!("{} {}", route.method, route.path),
        "stage": "$default",
        "requestId": uuid::Uuid::now_v7().to_string(),
        "http": {
            "method": req.method().as_str(),
            "path": req.uri().path(),
            "protocol": "HTTP/1.1",
            "sourceIp": peer.to_string(),
            "userAgent": user_agent,
        },
    });
    let context: ApiGatewayV2httpRequestContext = match serde_json::from_value(context) {
        Ok(context) => context,
        Err(e) => return ApiError::Domain(crate::domain::DomainError::Internal(e.to_string())).into_response(),
    };
    let req = req
        .with_path_parameters(params.into_iter().collect::<HashMap<String, String>>())
        .with_request_context(RequestContext::ApiGatewayV2(context));
    handlers::handle(app, route.endpoint, req).await
}

/// Reads a hyper request into the lambda_http shape, refusing bodies over the limit unread.
async fn from_hyper(app: &App, peer: IpAddr, req: hyper::Request<Incoming>) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let endpoint = match match_route(&parts.method, parts.uri.path()) {
        RouteMatch::Found(route, _) => Some(route.endpoint),
        _ => None,
    };
    let limit = max_body_bytes(endpoint);
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return ApiError::PayloadTooLarge(limit).into_response(),
    };
    let body = match String::from_utf8(bytes.to_vec()) {
        Ok(text) if text.is_empty() => Body::Empty,
        Ok(text) => Body::Text(text),
        Err(not_text) => Body::Binary(not_text.into_bytes()),
    };
    dispatch(app, peer, Request::from_parts(parts, body)).await
}

fn to_hyper(response: Response<Body>) -> hyper::Response<Full<Bytes>> {
    let (parts, body) = response.into_parts();
    hyper::Response::from_parts(parts, Full::new(Bytes::from(body.to_vec())))
}

/// Serves until `shutdown` completes.
/// Verify's usage is counted in process (`LocalFeed`), as the usage aggregator counts it in AWS.
pub async fn serve(app: App, listener: TcpListener, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let usage_feed = app.usage_feed.clone().unwrap_or_else(|| LocalFeed::start(app.store.clone()));
    let app = Arc::new(App { usage_feed: Some(usage_feed), ..app });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
        };
        let app = app.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let app = app.clone();
                async move { Ok::<_, Infallible>(to_hyper(from_hyper(&app, peer.ip(), req).await)) }
            });
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}
