//! `Custom::RootKey`, a CloudFormation custom resource: a pipeline gets a company's first root
//! key without a human. On Create (and on an Update that changes its properties) it creates the
//! company's root key in the table and writes it into a Secrets Manager secret, the only place
//! the key is kept; Delete leaves both alone (the table outlives the stack). Every request is
//! answered on its `ResponseURL`, failures included, so a stack never hangs on it; the key is
//! never logged nor put in the answer (`NoEcho`, and `Data` holds only its id).

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use serde::Deserialize;
use serde_json::{Value, json};

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;

use crate::domain::SealMaterial;
use crate::domain::keys::create_root_key_once;
use crate::model::{CompanyId, IdempotencyKey};
use crate::store::DynamoStore;

/// Where the minted key goes: Secrets Manager in AWS.
pub trait SecretStore: Sync {
    /// Stores `value` as the secret's current value. The error must not contain the value.
    fn put_secret(&self, secret_id: &str, value: String) -> impl Future<Output = Result<(), String>> + Send;
}

/// `PutSecretValue` on the secret the template creates.
pub struct SecretsManager(aws_sdk_secretsmanager::Client);

impl SecretsManager {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self(aws_sdk_secretsmanager::Client::new(config))
    }
}

impl SecretStore for SecretsManager {
    async fn put_secret(&self, secret_id: &str, value: String) -> Result<(), String> {
        self.0.put_secret_value().secret_id(secret_id).secret_string(value).send().await.map(|_| ()).map_err(
            |e| match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
            },
        )
    }
}

/// The fields of a CloudFormation custom resource request this resource reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    request_type: String,
    #[serde(rename = "ResponseURL")]
    response_url: String,
    stack_id: String,
    request_id: String,
    logical_resource_id: String,
    #[serde(default)]
    physical_resource_id: Option<String>,
    #[serde(default)]
    resource_properties: Value,
    #[serde(default)]
    old_resource_properties: Option<Value>,
}

/// The resource's properties in template.yaml.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Properties {
    company: String,
    secret_id: String,
    #[serde(default)]
    table_name: Option<String>,
}

/// What the answer to CloudFormation says.
#[derive(Debug)]
struct Outcome {
    failure: Option<String>,
    physical_id: String,
    data: Value,
}

impl Outcome {
    fn success(physical_id: String, data: Value) -> Self {
        Self { failure: None, physical_id, data }
    }

    fn failed(physical_id: String, reason: String) -> Self {
        Self { failure: Some(reason), physical_id, data: json!({}) }
    }
}

/// Characters of a failure's reason in the answer (CloudFormation's limit is 4096 bytes in all).
const MAX_REASON: usize = 1500;

/// A request, and where its answer goes.
#[derive(Debug)]
pub struct Answer {
    pub response_url: String,
    /// The JSON CloudFormation expects on the response URL.
    pub body: Value,
}

/// Handles one request: the answer to PUT on its response URL. An error only when the request
/// has no response URL (or is no custom resource request), so that no answer can be sent.
pub async fn handle(
    store: &DynamoStore,
    secrets: &impl SecretStore,
    now: DateTime<Utc>,
    request: Value,
) -> Result<Answer, String> {
    let envelope: Envelope =
        serde_json::from_value(request).map_err(|e| format!("not a CloudFormation custom resource request: {e}"))?;
    let outcome = decide(store, secrets, now, &envelope).await;
    match &outcome.failure {
        None => {
            tracing::info!(request = %envelope.request_type, physical_id = %outcome.physical_id, "answered SUCCESS")
        }
        Some(reason) => tracing::error!(request = %envelope.request_type, %reason, "answered FAILED"),
    }
    // CloudFormation takes at most 4096 bytes of answer.
    let reason: String = outcome.failure.as_deref().unwrap_or("done").chars().take(MAX_REASON).collect();
    let body = json!({
        "Status": if outcome.failure.is_none() { "SUCCESS" } else { "FAILED" },
        "Reason": reason,
        "PhysicalResourceId": outcome.physical_id,
        "StackId": envelope.stack_id,
        "RequestId": envelope.request_id,
        "LogicalResourceId": envelope.logical_resource_id,
        "NoEcho": true,
        "Data": outcome.data,
    });
    Ok(Answer { response_url: envelope.response_url, body })
}

async fn decide(store: &DynamoStore, secrets: &impl SecretStore, now: DateTime<Utc>, request: &Envelope) -> Outcome {
    // A physical id for answers that made nothing: CloudFormation's later Delete of it is a no-op.
    let unchanged = request
        .physical_resource_id
        .clone()
        .unwrap_or_else(|| format!("{}-not-created-{}", request.logical_resource_id, request.request_id));
    let properties = serde_json::from_value::<Properties>(request.resource_properties.clone());
    match (request.request_type.as_str(), properties) {
        // The key and the secret outlive the stack, as the table does.
        ("Delete", _) => Outcome::success(unchanged, json!({})),
        (_, Err(e)) => {
            Outcome::failed(unchanged, format!("ResourceProperties: {e} (Company and SecretId are required)"))
        }
        ("Update", Ok(properties))
            if request
                .old_resource_properties
                .clone()
                .and_then(|old| serde_json::from_value::<Properties>(old).ok())
                .is_some_and(|old| old == properties) =>
        {
            Outcome::success(unchanged, json!({}))
        }
        ("Create" | "Update", Ok(properties)) => match mint(store, secrets, now, &properties, request).await {
            Ok((physical_id, data)) => Outcome::success(physical_id, data),
            Err(reason) => Outcome::failed(unchanged, reason),
        },
        (other, Ok(_)) => Outcome::failed(unchanged, format!("unknown RequestType {other}")),
    }
}

/// Creates the root key and stores it; the physical id names the key, `Data` its id only.
async fn mint(
    store: &DynamoStore,
    secrets: &impl SecretStore,
    now: DateTime<Utc>,
    properties: &Properties,
    request: &Envelope,
) -> Result<(String, Value), String> {
    let company = CompanyId::parse(&properties.company, "Company")
        .map_err(|e| format!("Company {:?}: {}", properties.company, e.message))?;
    let description = format!("root key minted by CloudFormation stack {}", request.stack_id);
    // A request delivered again (Lambda's retries, CloudFormation's) gets the same key back,
    // not a second root key.
    let header = IdempotencyKey::parse(&format!("cloudformation-{}", request.request_id))
        .map_err(|e| format!("RequestId {:?}: {}", request.request_id, e.message))?;
    // The redelivered request carries the same presigned ResponseURL, which the table never
    // holds: it seals the replayed plaintext, so a table reader who learns the RequestId opens nothing.
    let seal = SealMaterial::of(&request.response_url);
    let created = create_root_key_once(store, company.clone(), Some(description), now, Some((header, seal)))
        .await
        .map_err(|e| format!("could not create the root key of {company}: {e}"))?;
    let key = created.plaintext.as_ref().ok_or("the created key has no secret")?.expose();
    let key_id = created.key.id.as_str();
    let secret = json!({ "companyId": company.as_str(), "keyId": key_id, "key": key }).to_string();
    secrets.put_secret(&properties.secret_id, secret).await.map_err(|e| {
        format!(
            "root key {key_id} of {company} was created but not stored in {}: {e}; its secret is lost, delete that key",
            properties.secret_id
        )
    })?;
    tracing::info!(company = %company, %key_id, "root key minted into Secrets Manager");
    Ok((format!("{company}/{key_id}"), json!({ "KeyId": key_id, "CompanyId": company.as_str() })))
}

/// PUTs the answer on the response URL (a presigned S3 URL in AWS; plain http is accepted for
/// tests), three attempts.
pub async fn send_answer(answer: &Answer) -> Result<(), String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| format!("TLS roots: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
    let body = Bytes::from(answer.body.to_string());
    let mut problem = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
        }
        // S3 checks the content type against the presigned URL's, which names none.
        let request = hyper::Request::put(answer.response_url.as_str())
            .header("content-type", "")
            .header("content-length", body.len())
            .body(Full::new(body.clone()))
            .map_err(|e| format!("response URL: {e}"))?;
        match tokio::time::timeout(Duration::from_secs(10), client.request(request)).await {
            Ok(Ok(response)) if response.status().is_success() => return Ok(()),
            Ok(Ok(response)) => problem = format!("the response URL answered {}", response.status()),
            Ok(Err(e)) => problem = format!("the response URL could not be reached: {e}"),
            Err(_) => problem = "the response URL did not answer within 10 s".into(),
        }
    }
    Err(problem)
}

/// The Lambda runner for the custom resource's function.
pub async fn run() -> Result<(), lambda_http::Error> {
    let (_, app, config) = crate::entry::config::start_with_sdk_config().await?;
    let app = std::sync::Arc::new(app);
    let secrets = std::sync::Arc::new(SecretsManager::new(&config));
    lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event: lambda_http::LambdaEvent<Value>| {
        let (app, secrets) = (app.clone(), secrets.clone());
        // Boxed: the future of the whole key creation is too deep a type for the runtime's.
        Box::pin(async move {
            let answer = handle(&app.store, secrets.as_ref(), app.clock.now(), event.payload).await?;
            send_answer(&answer).await?;
            Ok::<_, lambda_http::Error>(json!({ "Status": answer.body["Status"] }))
        })
    }))
    .await
}
