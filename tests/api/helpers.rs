//! One `spawn_app()` per test: its own table (random name) on DynamoDB Local, its own client,
//! clock and company, so tests run in parallel and never share state.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use apikeys::domain::ManualClock;
use apikeys::domain::keys::create_root_key;
use apikeys::entry::config::{App, sdk_config};
use apikeys::entry::local::dispatch;
use apikeys::model::CompanyId;
use apikeys::store::DynamoStore;
use apikeys::store::calls::CallCounter;
use apikeys::store::table::create_table;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, TimeDelta, Utc};
use lambda_http::http::{HeaderMap, Method, Request as HttpRequest, StatusCode};
use lambda_http::{Body, Request};
use serde_json::Value;

pub const CLIENT_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));

pub struct TestApp {
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub calls: CallCounter,
    pub client: Client,
    pub table: String,
    pub company: CompanyId,
    /// A root key of `company` with `keys:*`.
    pub root_key: String,
}

#[derive(Debug)]
pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestResponse {
    /// The error code of a JSON error answer.
    pub fn error_code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or_default()
    }

    pub fn error_field(&self) -> &str {
        self.body["error"]["field"].as_str().unwrap_or_default()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }
}

/// The SDK configuration the service would build from this process's environment (the test
/// DynamoDB Local that `make test` starts), for clients with interceptors of the tests' own.
pub async fn test_sdk_config() -> aws_config::SdkConfig {
    let settings = apikeys::settings::Settings::from_env().expect("the test environment's settings");
    sdk_config(&settings.database).await
}

/// A client as the service would build it, changed by `configure` (an interceptor, another
/// endpoint): for an app of a test's own on a test's table.
pub async fn test_client(
    configure: impl FnOnce(aws_sdk_dynamodb::config::Builder) -> aws_sdk_dynamodb::config::Builder,
) -> Client {
    Client::from_conf(configure(aws_sdk_dynamodb::config::Builder::from(&test_sdk_config().await)).build())
}

/// The app as it is when DynamoDB cannot be reached: same table name, a port nothing listens on.
pub async fn app_with_unreachable_database(table: &str) -> App {
    let client = test_client(|b| b.endpoint_url("http://127.0.0.1:9")).await;
    App::new(DynamoStore::new(client, table), Arc::new(ManualClock::new(start_time())))
}

/// A committed sample event, `events/<name>.json`.
pub fn read_event(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("events/{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// An HTTP event with `root_key` as its credential (the committed events hold a placeholder);
/// an event without headers (the stream's, the custom resource's) is left as it is.
pub fn with_root_key(mut event: Value, root_key: &str) -> Value {
    if event.get("headers").is_some() {
        event["headers"]["authorization"] = serde_json::json!(format!("Bearer {root_key}"));
    }
    event
}

/// The ids a list page shows, in its order.
pub fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_owned()).collect()
}

pub fn start_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
}

/// The key with its last character changed (never to itself): well formed in shape, its
/// checksum fails.
pub fn mistyped(key: &str) -> String {
    let mut chars: Vec<char> = key.chars().collect();
    if let Some(last) = chars.last_mut() {
        *last = if *last == '2' { '3' } else { '2' };
    }
    chars.into_iter().collect()
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::now_v7().simple())
}

pub async fn spawn_app() -> TestApp {
    assert!(
        std::env::var("DYNAMODB_ENDPOINT").is_ok(),
        "these tests need DynamoDB Local: run them with `make test`, which starts one"
    );
    let calls = CallCounter::default();
    let config = aws_sdk_dynamodb::config::Builder::from(&test_sdk_config().await).interceptor(calls.clone()).build();
    let client = Client::from_conf(config);
    let table = unique("test");
    create_table(&client, &table).await.expect("create the test table");
    let clock = Arc::new(ManualClock::new(start_time()));
    let app = App::new(DynamoStore::new(client.clone(), &table), clock.clone());
    let company = CompanyId::parse(&unique("acme"), "company").unwrap();
    let root_key = root_key_of(&app, &company).await;
    calls.take();
    TestApp { app, clock, calls, client, table, company, root_key }
}

async fn root_key_of(app: &App, company: &CompanyId) -> String {
    let created = create_root_key(&app.store, company.clone(), None, app.clock.now()).await.expect("root key");
    created.plaintext.expect("a new key's secret").expose().to_owned()
}

/// The app served over HTTP by the local server on a free port of 127.0.0.1, until dropped.
pub struct Served {
    /// `http://127.0.0.1:<port>`, the API's root.
    pub base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    pub async fn serve(&self) -> Served {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("a free port");
        let base = format!("http://{}", listener.local_addr().expect("a bound address"));
        let server = tokio::spawn(apikeys::entry::local::serve(self.app.clone(), listener, std::future::pending()));
        Served { base, server }
    }

    /// Another function instance on the same table and clock: caches of its own.
    pub fn other_instance(&self) -> TestApp {
        TestApp {
            app: App::new(DynamoStore::new(self.client.clone(), &self.table), self.clock.clone()),
            clock: Arc::clone(&self.clock),
            calls: self.calls.clone(),
            client: self.client.clone(),
            table: self.table.clone(),
            company: self.company.clone(),
            root_key: self.root_key.clone(),
        }
    }

    /// A root key of another company, in the same table.
    pub async fn other_company_root_key(&self) -> (CompanyId, String) {
        let company = CompanyId::parse(&unique("rival"), "company").unwrap();
        let key = root_key_of(&self.app, &company).await;
        (company, key)
    }

    /// Forgets the calls counted so far. Every write of a request (`lastUsedAt` included) is
    /// done before its answer, so there is nothing to wait for.
    pub async fn settle_calls(&self) {
        self.calls.take();
    }

    /// The DynamoDB calls made since the last look: all of them, since none runs after the answer.
    pub async fn calls_made(&self) -> Vec<String> {
        self.calls.take()
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(TimeDelta::seconds(seconds));
    }

    /// Sends a request through the local stack (routes, authorizer, handler) in process.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        let mut builder = HttpRequest::builder().method(method).uri(path);
        if let Some(key) = key {
            builder = builder.header("authorization", format!("Bearer {key}"));
        }
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = body.map_or(Body::Empty, |b| Body::Text(b.to_string()));
        self.send_request(builder.body(body).unwrap()).await
    }

    pub async fn send_request(&self, request: Request) -> TestResponse {
        let response = dispatch(&self.app, CLIENT_IP, request).await;
        let (parts, body) = response.into_parts();
        let body =
            if body.is_empty() { Value::Null } else { serde_json::from_slice(&body).expect("every answer is JSON") };
        TestResponse { status: parts.status, headers: parts.headers, body }
    }

    /// For building many requests at once.
    pub async fn post_keys(&self, body: &Value) -> TestResponse {
        self.send(Method::POST, "/keys", Some(&self.root_key), Some(body), &[]).await
    }

    /// Creates a key that must succeed and returns its answer body.
    pub async fn create_key(&self, body: &Value) -> Value {
        let response = self.post_keys(body).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        response.body
    }

    /// Creates a key (201 asserted) and answers its id and its secret.
    pub async fn create_key_pair(&self, body: &Value) -> (String, String) {
        let created = self.create_key(body).await;
        (created["id"].as_str().unwrap().to_owned(), created["key"].as_str().unwrap().to_owned())
    }

    pub async fn get_key(&self, id: &str) -> TestResponse {
        self.send(Method::GET, &format!("/keys/{id}"), Some(&self.root_key), None, &[]).await
    }

    pub async fn list_keys(&self, query: &str) -> TestResponse {
        self.send(Method::GET, &format!("/keys{query}"), Some(&self.root_key), None, &[]).await
    }

    pub async fn patch_key(&self, id: &str, body: &Value, headers: &[(&str, &str)]) -> TestResponse {
        self.send(Method::PATCH, &format!("/keys/{id}"), Some(&self.root_key), Some(body), headers).await
    }

    pub async fn delete_key(&self, id: &str) -> TestResponse {
        self.send(Method::DELETE, &format!("/keys/{id}"), Some(&self.root_key), None, &[]).await
    }

    pub async fn roll_key(&self, id: &str, body: Option<&Value>) -> TestResponse {
        self.send(Method::POST, &format!("/keys/{id}/roll"), Some(&self.root_key), body, &[]).await
    }

    pub async fn verify(&self, body: &Value) -> TestResponse {
        let response = self.send(Method::POST, "/keys/verify", Some(&self.root_key), Some(body), &[]).await;
        assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
        response
    }

    /// The raw item of a key, straight from the table.
    pub async fn stored_item(
        &self,
        pk: &str,
        sk: &str,
    ) -> Option<std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(pk.into()))
            .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(sk.into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap();
        out.item
    }

    /// The company's counters item: (active, inactive).
    pub async fn counters(&self) -> (i64, i64) {
        let item = self.stored_item(&format!("COMPANY#{}", self.company), "COUNTERS").await.unwrap_or_default();
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
        (number("active"), number("inactive"))
    }

    /// Every item in the table: for checks that nothing was half-written.
    pub async fn item_count(&self) -> usize {
        self.client.scan().table_name(&self.table).send().await.unwrap().items.unwrap_or_default().len()
    }
}

/// Like `spawn_app`, with a client whose first `conflicts` transactions are answered by a
/// `TransactionCanceledException` (`TransactionConflict`) without reaching the table: what AWS
/// answers when two transactions touch one item at once, which DynamoDB Local never does.
pub async fn spawn_app_with_conflicts(conflicts: usize) -> TestApp {
    let mut app = spawn_app().await;
    app.script_transactions(vec![TransactionFault::Conflict; conflicts]).await;
    app
}

impl TestApp {
    /// From now on, the client's next `TransactWriteItems` meet `faults`, one each, in order
    /// (an `UpdateConflict` is met by the next `UpdateItem`, a `PutRefused` by the next
    /// `PutItem`); then they pass untouched. Other calls always pass.
    pub async fn script_transactions(&mut self, faults: Vec<TransactionFault>) {
        let base = test_sdk_config().await;
        let inner = base.http_client().expect("the SDK config carries an HTTP client");
        let injector = transaction_faults::Injector { inner, script: Arc::new(std::sync::Mutex::new(faults.into())) };
        let config = aws_sdk_dynamodb::config::Builder::from(&base)
            .http_client(injector)
            .interceptor(self.calls.clone())
            .build();
        self.client = Client::from_conf(config);
        self.app = App::new(DynamoStore::new(self.client.clone(), &self.table), self.clock.clone());
    }
}

pub use transaction_faults::TransactionFault;

mod transaction_faults {
    use std::collections::VecDeque;
    use std::sync::{Arc, Mutex};

    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;

    const CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","Message":"Transaction cancelled, please refer cancellation reasons for specific reasons [TransactionConflict]","CancellationReasons":[{"Code":"TransactionConflict","Message":"Transaction is ongoing for the item"}]}"#;
    const IN_PROGRESS: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionInProgressException","Message":"Transaction is in progress"}"#;
    const UPDATE_CONFLICT: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionConflictException","Message":"Transaction is ongoing for the item"}"#;
    const PUT_REFUSED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","Message":"Requested resource not found"}"#;

    /// What one transaction meets.
    #[derive(Debug, Clone, Copy)]
    pub enum TransactionFault {
        /// Answered `TransactionCanceledException` (`TransactionConflict`) without reaching the table.
        Conflict,
        /// Answered `TransactionInProgressException` without reaching the table: what DynamoDB
        /// answers while an attempt with the same `ClientRequestToken` is still being applied.
        InProgress,
        /// Forwarded and applied; then its answer is lost (a reset connection).
        LoseAnswer,
        /// Met by the next `UpdateItem` instead: answered `TransactionConflictException` without
        /// reaching the table, what AWS answers an update of an item a transaction holds.
        UpdateConflict,
        /// Met by the next `PutItem` instead: answered with an error the SDK does not retry,
        /// without reaching the table (a plain put that failed).
        PutRefused,
    }

    #[derive(Debug, Clone)]
    pub struct Injector {
        pub inner: SharedHttpClient,
        pub script: Arc<Mutex<VecDeque<TransactionFault>>>,
    }

    #[derive(Debug)]
    struct Connector {
        inner: SharedHttpConnector,
        script: Arc<Mutex<VecDeque<TransactionFault>>>,
    }

    impl HttpClient for Injector {
        fn http_connector(
            &self,
            settings: &HttpConnectorSettings,
            components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            SharedHttpConnector::new(Connector {
                inner: self.inner.http_connector(settings, components),
                script: self.script.clone(),
            })
        }
    }

    fn answer(body: &'static str) -> HttpResponse {
        let mut response = HttpResponse::new(400u16.try_into().unwrap(), SdkBody::from(body));
        response.headers_mut().insert("content-type", "application/x-amz-json-1.0");
        response
    }

    impl HttpConnector for Connector {
        fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
            let target = |name: &str| request.headers().get("x-amz-target").is_some_and(|t| t.ends_with(name));
            let (is_transaction, is_update, is_put) =
                (target(".TransactWriteItems"), target(".UpdateItem"), target(".PutItem"));
            let fault = {
                let mut script = self.script.lock().unwrap();
                let meets = match script.front() {
                    Some(TransactionFault::UpdateConflict) => is_update,
                    Some(TransactionFault::PutRefused) => is_put,
                    Some(_) => is_transaction,
                    None => false,
                };
                if meets { script.pop_front() } else { None }
            };
            match fault {
                None => self.inner.call(request),
                Some(TransactionFault::UpdateConflict) => HttpConnectorFuture::ready(Ok(answer(UPDATE_CONFLICT))),
                Some(TransactionFault::PutRefused) => HttpConnectorFuture::ready(Ok(answer(PUT_REFUSED))),
                Some(TransactionFault::Conflict) => HttpConnectorFuture::ready(Ok(answer(CONFLICT))),
                Some(TransactionFault::InProgress) => HttpConnectorFuture::ready(Ok(answer(IN_PROGRESS))),
                Some(TransactionFault::LoseAnswer) => {
                    let sent = self.inner.call(request);
                    HttpConnectorFuture::new(async move {
                        let response = sent.await?;
                        assert!(response.status().is_success(), "the transaction committed");
                        let lost =
                            std::io::Error::new(std::io::ErrorKind::ConnectionReset, "answer lost after the commit");
                        Err(ConnectorError::io(lost.into()))
                    })
                }
            }
        }
    }
}

/// A spawned app for tests driven from synchronous code (proptest's runners): its own runtime,
/// and a live key of its company (made for USER_ID) for the operations on an existing key.
pub struct BlockingApp {
    pub runtime: tokio::runtime::Runtime,
    pub app: TestApp,
    pub key_id: String,
}

impl BlockingApp {
    pub fn new(user_id: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let (app, key_id) = runtime.block_on(async {
            let app = spawn_app().await;
            let created = app.create_key(&serde_json::json!({ "userId": user_id })).await;
            let id = created["id"].as_str().unwrap().to_owned();
            (app, id)
        });
        Self { runtime, app, key_id }
    }

    /// One request through the routes, authorizer and handlers, as the local server serves it.
    pub fn dispatch(&self, request: HttpRequest<Body>) -> lambda_http::Response<Body> {
        self.runtime.block_on(dispatch(&self.app.app, CLIENT_IP, request))
    }
}

/// A CloudWatch Logs subscription delivery of `lines` (as the aggregator gets it: gzip, then
/// base64, under `awslogs.data`), each event with an id of its own, all logged at `at`.
pub fn log_batch(lines: &[&str], at: DateTime<Utc>) -> Value {
    use base64::Engine;
    use std::io::Write;
    let events: Vec<Value> = lines
        .iter()
        .map(|line| {
            serde_json::json!({
                "id": uuid::Uuid::now_v7().as_u128().to_string(),
                "timestamp": at.timestamp_millis(),
                "message": line,
            })
        })
        .collect();
    let data = serde_json::json!({
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/apikeys/verify_key",
        "logStream": "2030/01/01/verify_key[$LATEST]0a1b2c3d",
        "subscriptionFilters": ["apikeys-VerifyUsageSubscription"],
        "logEvents": events,
    });
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gzip.write_all(data.to_string().as_bytes()).unwrap();
    let compressed = gzip.finish().unwrap();
    serde_json::json!({ "awslogs": { "data": base64::engine::general_purpose::STANDARD.encode(compressed) } })
}

/// What a tracing subscriber printed, kept in memory for a test to read.
#[derive(Clone, Default)]
pub struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// A `MakeWriter` for `tracing_subscriber::fmt::layer().with_writer(…)`.
    pub fn writer(&self) -> impl Fn() -> Captured + 'static {
        let captured = self.clone();
        move || captured.clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
