//! Process set-up shared by every entry point: the DynamoDB client, the app state, logging, and
//! the runtime loop of the functions that take events rather than HTTP requests.

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

use crate::domain::imports_seen::ImportsSeen;
use crate::domain::verify_key::KeptKeys;
use crate::domain::{Clock, KeyCache, SystemClock};
use crate::entry::local_usage::LocalFeed;
use crate::model::secret_scanning::TrustedKeys;
use crate::model::{CompanyId, KeyId};
use crate::settings::{DEFAULT_CALLER_CACHE_SECONDS, DatabaseSettings, LogSettings, Settings};
use crate::store::DynamoStore;

/// Everything a handler needs; built once per process, outside the handler, so the TLS
/// connection to DynamoDB is reused across invocations.
#[derive(Clone)]
pub struct App {
    pub store: DynamoStore,
    pub clock: Arc<dyn Clock>,
    /// The callers this instance authenticated, for `CALLER_CACHE_SECONDS`: shared by every
    /// request the process serves (one Lambda instance, or the local server).
    pub callers: Arc<KeyCache>,
    /// The keys this instance verified `VALID` without limits, for `VERIFY_CACHE_SECONDS` (0,
    /// off, unless set): shared like `callers`.
    pub verified: Arc<KeyCache>,
    /// Which companies hold imported keys, kept as long as callers are: shared like `callers`.
    pub imports: Arc<ImportsSeen>,
    /// The Lambda function's name (`AWS_LAMBDA_FUNCTION_NAME`), for its metrics; `None` outside
    /// Lambda, where no metric is printed.
    pub lambda_function: Option<Arc<str>>,
    /// Where verify sends its usage in the local server (which has no log group to subscribe
    /// to); `None` in Lambda, where its metric line carries it.
    pub usage_feed: Option<LocalFeed>,
    /// The keys a secret scanner's reports must be signed with (`SECRET_SCANNING_PUBLIC_KEYS`);
    /// `None`: every report is refused.
    pub scanning_keys: Option<Arc<TrustedKeys>>,
}

impl App {
    /// With the default caller cache (`DEFAULT_CALLER_CACHE_SECONDS`) and no verify cache.
    pub fn new(store: DynamoStore, clock: Arc<dyn Clock>) -> Self {
        let callers = Arc::new(KeyCache::callers(DEFAULT_CALLER_CACHE_SECONDS));
        let verified = Arc::new(KeyCache::verified_keys(0));
        let imports = Arc::new(ImportsSeen::new(DEFAULT_CALLER_CACHE_SECONDS));
        Self { store, clock, callers, verified, imports, lambda_function: None, usage_feed: None, scanning_keys: None }
    }

    /// With a caller cache of its own that keeps each caller `seconds` (0: none).
    pub fn with_caller_cache(self, seconds: u64) -> Self {
        Self { callers: Arc::new(KeyCache::callers(seconds)), imports: Arc::new(ImportsSeen::new(seconds)), ..self }
    }

    /// With a verify cache of its own that keeps each key verified `VALID` without limits
    /// `seconds` (0: none).
    pub fn with_verify_cache(self, seconds: u64) -> Self {
        Self { verified: Arc::new(KeyCache::verified_keys(seconds)), ..self }
    }

    /// What verify may take from this instance's memory.
    pub fn kept(&self) -> KeptKeys<'_> {
        KeptKeys { callers: &self.callers, verified: &self.verified, imports: &self.imports }
    }

    /// Forgets all this instance keeps of one key, which it has just changed, rolled or
    /// deleted (or tried to), so its next use is checked against the table.
    pub fn forget_key(&self, company: &CompanyId, id: &KeyId) {
        self.callers.forget_key(company, id);
        self.verified.forget_key(company, id);
    }

    /// The table and the retention from the settings, its client from `config` (built from the
    /// same settings by `sdk_config`); the system clock.
    pub fn from_settings(settings: &Settings, config: &aws_config::SdkConfig) -> Self {
        let client = Client::new(config);
        let retention = chrono::TimeDelta::days(settings.retention_days);
        let store = DynamoStore::new(client, &settings.table_name)
            .with_retention(retention)
            .with_usage_retention(chrono::TimeDelta::days(settings.usage_retention_days));
        let lambda_function = settings.lambda_function.as_deref().map(Arc::from);
        let app = Self::new(store, Arc::new(SystemClock))
            .with_caller_cache(settings.caller_cache_seconds)
            .with_verify_cache(settings.verify_cache_seconds);
        let scanning_keys = settings.secret_scanning_public_keys.clone().map(Arc::new);
        Self { lambda_function, scanning_keys, ..app }
    }
}

/// What every entry point does first: read the settings (an error names the variable), start
/// logging, and build the app.
pub async fn start() -> Result<(Settings, App), crate::settings::SettingsError> {
    let settings = Settings::from_env()?;
    let (app, _) = start_with(&settings).await;
    Ok((settings, app))
}

/// `start` from settings already read (the `lambda` binary reads them to learn its function),
/// also answering the SDK configuration the app's client was built from, for an entry point
/// with another AWS client (the root-key resource's Secrets Manager): the credential chain,
/// region and HTTPS client are set up once per cold start.
pub async fn start_with(settings: &Settings) -> (App, aws_config::SdkConfig) {
    init_logging(&settings.logging);
    let config = sdk_config(&settings.database).await;
    let app = App::from_settings(settings, &config);
    (app, config)
}

/// The Lambda runtime loop of a function that takes events rather than HTTP requests: `state`
/// built once at start-up, then each event's payload through `handler`, whose answer or error
/// is the invocation's.
pub async fn run_events<S, E, R, F, Fut>(state: S, handler: F) -> Result<(), lambda_http::Error>
where
    E: serde::de::DeserializeOwned,
    R: serde::Serialize,
    F: Fn(Arc<S>, E) -> Fut,
    Fut: Future<Output = Result<R, lambda_http::Error>>,
{
    let state = Arc::new(state);
    // Boxed: the runtime's future type is deep enough to overflow the compiler's layout query.
    Box::pin(lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event: lambda_http::LambdaEvent<E>| {
        handler(state.clone(), event.payload)
    })))
    .await
}

/// A request to DynamoDB that has not answered by then is a 503, well inside API Gateway's 30 s
/// (`OPERATION_TIMEOUT`: any AWS call's whole time, its retries included).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
/// The longest any AWS call of a function takes, its attempts included.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(8);

/// The AWS default chain, or DynamoDB Local when an endpoint is set; then region and
/// credentials default to dummies so no AWS configuration is needed. Tests and tools add their
/// own interceptors to it.
pub async fn sdk_config(database: &DatabaseSettings) -> aws_config::SdkConfig {
    let endpoint = database.endpoint.as_deref();
    let http_client =
        aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client).timeout_config(timeouts);
    if let Some(endpoint) = &endpoint {
        loader = loader.endpoint_url(*endpoint);
        if !database.region_set {
            loader = loader.region(Region::new("us-east-1"));
        }
        if !database.credentials_set {
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

/// Logging as Lambda does it. The level: `AWS_LAMBDA_LOG_LEVEL` when set, else `RUST_LOG`
/// (default `info`). The format: `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) when set, else JSON
/// in Lambda (`AWS_LAMBDA_FUNCTION_NAME` set) and text elsewhere. JSON lines carry the
/// message at the top level and the spans they were logged in (`spans`: the invocation's
/// `request` span with `function` and `requestId`, see `entry::lambda`, then the SDK's own), so
/// every line of one request can be found together. Always to stderr,
/// so stdout carries only the CLI's JSON and the embedded metrics. `never_logged` lines are
/// dropped at every level.
pub fn init_logging(settings: &LogSettings) {
    let directives = settings.lambda_level.or(settings.rust_log.as_deref()).unwrap_or("info");
    let filter = EnvFilter::try_new(directives).unwrap_or_else(|e| {
        eprintln!("RUST_LOG: {e}; logging at info");
        EnvFilter::new("info")
    });
    let filter = filter.and(filter_fn(|meta| !never_logged(meta)));
    let in_lambda = settings.in_lambda;
    let json = settings.json.unwrap_or(in_lambda);
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
