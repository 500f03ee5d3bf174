//! Shared set-up for the benchmarks (`make bench`, tools/devtools/bench.py): an app on DynamoDB Local
//! with a counting, recording client; API Gateway v2 events; a function invoked as the Lambda
//! runtime would (event JSON in, lambda_http adapter, response JSON out); percentiles.

pub mod tape;

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use apikeys::domain::Clock;
use apikeys::domain::keys::create_root_key;
use apikeys::entry::config::{App, sdk_config};
use apikeys::entry::http::handlers;
use apikeys::entry::http::routes::Endpoint;
use apikeys::model::CompanyId;
use apikeys::store::DynamoStore;
use apikeys::store::calls::CallCounter;
use apikeys::store::table::create_table;
use aws_sdk_dynamodb::Client;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body, Context, LambdaEvent, Request, Response, Service, service_fn};
use serde_json::{Map, Value, json};

pub use tape::{Mode, Tape, TapeClient};

pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

/// An app on its own table of DynamoDB Local, with a root key of its own company.
pub struct Fixture {
    pub app: Arc<App>,
    pub calls: CallCounter,
    pub tape: Tape,
    pub client: Client,
    pub table: String,
    pub company: CompanyId,
    pub root_key: String,
    /// `Bearer <root_key>`: the Authorization header every event carries (each function
    /// authenticates its caller itself).
    pub authorization: String,
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

/// Needs `DYNAMODB_ENDPOINT` (tools/devtools/bench.py starts a DynamoDB Local and sets it).
pub async fn fixture(clock: Arc<dyn Clock>) -> Fixture {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "the benchmarks need DynamoDB Local: run them with `make bench`"
    );
    let sdk = sdk_config(&apikeys::settings::Settings::from_env().expect("settings").database).await;
    let real = sdk.http_client().expect("sdk_config sets an HTTP client");
    let tape = Tape::default();
    let calls = CallCounter::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&sdk)
        .http_client(TapeClient::new(real, tape.clone()))
        .interceptor(calls.clone())
        .build();
    let client = Client::from_conf(config);
    let table = unique("bench");
    create_table(&client, &table).await.expect("create the bench table");
    let app = Arc::new(App::new(DynamoStore::new(client.clone(), &table), clock));
    let company = CompanyId::parse(&unique("acme"), "company").unwrap();
    let created = create_root_key(&app.store, company.clone(), None, app.clock.now()).await.expect("root key");
    let root_key = created.plaintext.expect("a new key's secret").expose().to_owned();
    let authorization = format!("Bearer {root_key}");
    calls.take();
    Fixture { app, calls, tape, client, table, company, root_key, authorization }
}

/// One API Gateway HTTP API (payload 2.0) event, as the function behind `route` receives it:
/// the caller's root key in its Authorization header.
pub fn event(
    route: &str,
    path: &str,
    query: &str,
    key_id: Option<&str>,
    body: Option<&Value>,
    authorization: &str,
) -> Vec<u8> {
    let (method, _) = route.split_once(' ').expect("METHOD /path");
    let mut headers = json!({
        "accept": "application/json",
        "host": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
        "user-agent": "bench/1.0",
        "x-forwarded-for": CLIENT_IP.to_string(),
        "x-forwarded-proto": "https",
        "authorization": authorization,
    });
    if body.is_some() {
        headers["content-type"] = json!("application/json");
    }
    let query_params: Map<String, Value> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_owned(), json!(v)))
        .collect();
    let mut event = json!({
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com",
            "domainPrefix": "a1b2c3d4e5",
            "http": { "method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": CLIENT_IP.to_string(), "userAgent": "bench/1.0" },
            "requestId": "CxZ803Hq7jMEwLg=",
            "routeKey": route,
            "stage": "$default",
            "time": "01/Dec/2025:09:30:12 +0000",
            "timeEpoch": 1764581412003u64
        },
        "isBase64Encoded": false
    });
    if !query_params.is_empty() {
        event["queryStringParameters"] = Value::Object(query_params);
    }
    if let Some(id) = key_id {
        event["pathParameters"] = json!({ "keyId": id });
    }
    if let Some(body) = body {
        event["body"] = json!(body.to_string());
    }
    serde_json::to_vec(&event).unwrap()
}

/// What one function does per request in `lambda_http::run`, less the Runtime API's HTTP:
/// the event's JSON into a `Request` (lambda_http's adapter), the service, the answer to JSON.
pub async fn invoke<S>(service: S, event: &[u8]) -> Vec<u8>
where
    S: Service<Request, Response = Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    let payload: LambdaRequest = serde_json::from_slice(event).expect("an API Gateway v2 event");
    let mut adapter: Adapter<'static, Response<Body>, S> = Adapter::from(service);
    let answer = adapter.call(LambdaEvent::new(payload, Context::default())).await.expect("infallible");
    serde_json::to_vec(&answer).expect("a serializable answer")
}

/// The `statusCode` of a function's JSON answer.
pub fn status_of(answer: &[u8]) -> u16 {
    serde_json::from_slice::<Value>(answer).ok().and_then(|v| v["statusCode"].as_u64()).unwrap_or(0) as u16
}

/// The `body` of a function's JSON answer, parsed.
pub fn body_of(answer: &[u8]) -> Value {
    let outer: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
    outer["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null)
}

/// The function of one endpoint, as src/http/lambda.rs runs it.
pub fn endpoint_service(
    app: Arc<App>,
    endpoint: Endpoint,
) -> impl Service<Request, Response = Response<Body>, Error = Infallible, Future: Send + 'static> + Clone {
    service_fn(move |req: Request| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(handlers::handle(&app, endpoint, req).await) }
    })
}

/// The bare baseline: a lambda_http function that answers with a copy of the request's body.
pub fn echo_service()
-> impl Service<Request, Response = Response<Body>, Error = Infallible, Future: Send + 'static> + Clone {
    service_fn(|req: Request| async move {
        let copy = match req.body() {
            Body::Text(text) => Body::Text(text.clone()),
            Body::Binary(bytes) => Body::Binary(bytes.clone()),
            _ => Body::Empty,
        };
        let mut response = Response::new(copy);
        response.headers_mut().insert("content-type", "application/json".parse().unwrap());
        Ok::<_, Infallible>(response)
    })
}

/// The `p`th percentile (0..=100) of sorted samples, nearest rank.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Where the harnesses leave their figures for bench/report.py: `BENCH_OUT`, else target/bench-out.
pub fn out_dir() -> PathBuf {
    let dir = std::env::var("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-out"));
    std::fs::create_dir_all(&dir).expect("create the bench output directory");
    dir
}

pub fn write_json(name: &str, value: &Value) {
    let path = out_dir().join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).expect("write bench output");
    eprintln!("wrote {}", path.display());
}
