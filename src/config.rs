//! Process set-up shared by every entry point: the DynamoDB client, the app state, logging.

use std::sync::Arc;
use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::Credentials;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, filter_fn};
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::domain::{Clock, SystemClock};
use crate::store::DynamoStore;
use crate::store::table::table_name_from_env;

/// Everything a handler needs; built once per process, outside the handler, so the TLS
/// connection to DynamoDB is reused across invocations.
#[derive(Clone)]
pub struct App {
    pub store: DynamoStore,
    pub clock: Arc<dyn Clock>,
}

impl App {
    pub fn new(store: DynamoStore, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// `TABLE_NAME`, `DYNAMODB_ENDPOINT`, `RETENTION_DAYS` from the environment.
    pub async fn from_env() -> Self {
        let store = DynamoStore::new(dynamodb_client().await, table_name_from_env()).with_retention_from_env();
        Self::new(store, Arc::new(SystemClock))
    }
}

/// A request to DynamoDB that has not answered by then is a 503, well inside API Gateway's 30 s.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The AWS default chain, or DynamoDB Local when `DYNAMODB_ENDPOINT` is set; then region and
/// credentials default to dummies so no AWS configuration is needed.
pub async fn dynamodb_client() -> Client {
    Client::new(&sdk_config().await)
}

/// The configuration `dynamodb_client` is built from, for clients with extra interceptors.
pub async fn sdk_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("DYNAMODB_ENDPOINT").ok().filter(|e| !e.is_empty());
    let http_client =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client).timeout_config(timeouts);
    if let Some(endpoint) = &endpoint {
        loader = loader.endpoint_url(endpoint);
        if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
            loader = loader.region(Region::new("us-east-1"));
        }
        if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
            loader = loader.credentials_provider(Credentials::new("local", "local", None, None, "dynamodb-local"));
        }
    }
    loader.load().await
}

/// At TRACE the AWS SDK's runtime dumps whole DynamoDB requests and answers, whose item keys
/// hold the SHA-256 of secret keys: those lines are never logged, whatever `RUST_LOG` asks.
pub fn is_sdk_body_dump(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::TRACE && meta.target().starts_with("aws_smithy_runtime")
}

/// JSON lines for CloudWatch in Lambda, readable text elsewhere; always to stderr, so the
/// CLI's stdout carries only its JSON. `RUST_LOG` filters (default `info`).
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info"))
        .and(filter_fn(|meta| !is_sdk_body_dump(meta)));
    let text = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok() {
        let json = text.json().with_current_span(false).without_time();
        tracing_subscriber::registry().with(json.with_filter(filter)).try_init()
    } else {
        tracing_subscriber::registry().with(text.with_ansi(false).with_filter(filter)).try_init()
    };
}
