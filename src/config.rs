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

/// The Lambda runtime's own TRACE lines: `lambda_runtime` logs every raw event (`raw JSON event
/// received from Lambda`, with its `authorization` and `x-api-key` headers and the body a verify
/// carries) and the response metadata; `lambda_http` and the runtime's API client may log
/// requests. Never logged, whatever `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` asks.
pub fn is_lambda_payload_dump(meta: &Metadata<'_>) -> bool {
    const TARGETS: [&str; 3] = ["lambda_runtime", "lambda_http", "lambda_runtime_api_client"];
    *meta.level() == Level::TRACE && TARGETS.iter().any(|t| meta.target().split("::").next() == Some(*t))
}

/// Lines that may hold a plaintext key, a key's hash or an `Authorization` value at any level.
pub fn never_logged(meta: &Metadata<'_>) -> bool {
    is_sdk_body_dump(meta) || is_lambda_payload_dump(meta)
}

/// Lambda's application log level (`AWS_LAMBDA_LOG_LEVEL`, what the template's LoggingConfig
/// sets) as a filter directive; `FATAL` is `error`, the highest tracing has.
fn lambda_log_level(value: &str) -> Option<&'static str> {
    Some(match value.trim().to_ascii_uppercase().as_str() {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "ERROR" | "FATAL" => "error",
        _ => return None,
    })
}

/// Logging as Lambda does it. The level: `AWS_LAMBDA_LOG_LEVEL` when set, else `RUST_LOG`
/// (default `info`). The format: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) when set, else JSON
/// in Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) and text elsewhere. JSON lines carry the
/// message at the top level and the spans they were logged in (`spans`: the invocation's
/// `request` span with `function` and `requestId`, see `http::lambda`, then the SDK's own), so
/// every line of one request can be found together. Always to stderr,
/// so stdout carries only the CLI's JSON and the embedded metrics. `never_logged` lines are
/// dropped at every level.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().and_then(|l| lambda_log_level(&l));
    let filter = match level {
        Some(level) => EnvFilter::new(level),
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    }
    .and(filter_fn(|meta| !never_logged(meta)));
    let in_lambda = std::env::var("AWS_LAMBDA_FUNCTION_NAME").is_ok();
    let json = match std::env::var("AWS_LAMBDA_LOG_FORMAT") {
        Ok(format) => format.trim().eq_ignore_ascii_case("json"),
        Err(_) => in_lambda,
    };
    let text = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false);
    let _ = if json {
        let json = text.json().flatten_event(true).with_current_span(false).with_span_list(true);
        tracing_subscriber::registry().with(json.with_filter(filter)).try_init()
    } else if in_lambda {
        // CloudWatch stamps each line itself.
        tracing_subscriber::registry().with(text.without_time().with_filter(filter)).try_init()
    } else {
        tracing_subscriber::registry().with(text.with_filter(filter)).try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_log_levels_map_to_filters() {
        assert_eq!(lambda_log_level("TRACE"), Some("trace"));
        assert_eq!(lambda_log_level("warn"), Some("warn"));
        assert_eq!(lambda_log_level("FATAL"), Some("error"));
        assert_eq!(lambda_log_level("verbose"), None);
    }
}
