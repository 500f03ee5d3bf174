//! The CloudFormation custom resource protocol, shared by the service's custom resources
//! (`Custom::RootKey`, `Custom::ApiKey`): the request's envelope, where its answer may go
//! (`ResponseUrl`: presigned https S3 URLs into CloudFormation's own buckets, whatever the
//! request says), the answer's JSON and its PUT, the Lambda runner, and the Secrets Manager
//! calls behind traits so tests can stand in for them.
//!
//! Anyone allowed to invoke a resource's function can send it a request, so a request never
//! decides where its answer goes: to any other URL nothing is done and no answer is sent, and
//! the error shows the URL without its query string (which holds the signature).

use std::time::Duration;

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use bytes::Bytes;
use http_body_util::Full;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::entry::config::App;
use crate::model::CompanyId;
use crate::settings::Settings;

/// Where a minted key goes: Secrets Manager in AWS. Errors never contain the value.
pub trait SecretStore: Sync {
    /// Stores `value` as the current value of an existing secret (a name or an ARN).
    fn put_secret(&self, secret_id: &str, value: String) -> impl Future<Output = Result<(), String>> + Send;
}

/// Secrets a resource makes and removes itself, named by it: create, find, delete.
pub trait OwnedSecrets: Sync {
    /// Creates the secret `name` holding `value`, or, if one of that name exists (a request
    /// delivered again), makes `value` its current value. Its ARN.
    fn create_secret(
        &self,
        name: &str,
        description: &str,
        value: String,
    ) -> impl Future<Output = Result<String, String>> + Send;

    /// The ARN of the secret `name`.
    fn secret_arn(&self, name: &str) -> impl Future<Output = Result<String, String>> + Send;

    /// Deletes the secret `name` at once, without a recovery window; one already gone is no
    /// error.
    fn delete_secret(&self, name: &str) -> impl Future<Output = Result<(), String>> + Send;
}

/// A minted key as its secret holds it: JSON `{"companyId", "keyId", "key"}`.
pub fn key_secret(company: &CompanyId, key_id: &str, key: &str) -> String {
    json!({ "companyId": company.as_str(), "keyId": key_id, "key": key }).to_string()
}

/// Secrets Manager's API.
pub struct SecretsManager(aws_sdk_secretsmanager::Client);

impl SecretsManager {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self(aws_sdk_secretsmanager::Client::new(config))
    }
}

/// An SDK error as `code: message`, which names no secret value.
fn sdk_error<E: ProvideErrorMetadata + std::error::Error + 'static>(e: &SdkError<E>) -> String {
    match (e.code(), e.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
    }
}

impl SecretStore for SecretsManager {
    async fn put_secret(&self, secret_id: &str, value: String) -> Result<(), String> {
        let put = self.0.put_secret_value().secret_id(secret_id).secret_string(value).send().await;
        put.map(|_| ()).map_err(|e| sdk_error(&e))
    }
}

impl OwnedSecrets for SecretsManager {
    async fn create_secret(&self, name: &str, description: &str, value: String) -> Result<String, String> {
        let created =
            self.0.create_secret().name(name).description(description).secret_string(value.clone()).send().await;
        match created {
            Ok(out) => out.arn.ok_or_else(|| format!("CreateSecret of {name} answered no ARN")),
            Err(e) if e.code() == Some("ResourceExistsException") => {
                let put = self.0.put_secret_value().secret_id(name).secret_string(value).send().await;
                put.map_err(|e| sdk_error(&e))?.arn.ok_or_else(|| format!("PutSecretValue of {name} answered no ARN"))
            }
            Err(e) => Err(sdk_error(&e)),
        }
    }

    async fn secret_arn(&self, name: &str) -> Result<String, String> {
        let described = self.0.describe_secret().secret_id(name).send().await.map_err(|e| sdk_error(&e))?;
        described.arn.ok_or_else(|| format!("DescribeSecret of {name} answered no ARN"))
    }

    async fn delete_secret(&self, name: &str) -> Result<(), String> {
        match self.0.delete_secret().secret_id(name).force_delete_without_recovery(true).send().await {
            Err(e) if e.code() != Some("ResourceNotFoundException") => Err(sdk_error(&e)),
            _ => Ok(()),
        }
    }
}

/// Where answers may be sent besides presigned https S3 URLs: nowhere in AWS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseUrlPolicy {
    /// A `host:port` also answered on over plain http: a test's or `make sam-local`'s listener.
    local_http_host: Option<String>,
}

impl ResponseUrlPolicy {
    /// Presigned https S3 URLs only: what a deployed function runs with.
    pub fn s3_only() -> Self {
        Self::default()
    }

    /// Also `http://<host:port>/…` (still with a presign parameter): for tests, which call
    /// this, and for `make sam-local`, whose generated template alone sets
    /// `ROOT_KEY_LOCAL_RESPONSE_HOST` (see `Settings`).
    pub fn allowing_local_http(host_and_port: &str) -> Self {
        Self { local_http_host: Some(host_and_port.to_ascii_lowercase()) }
    }

    /// From the settings: `ROOT_KEY_LOCAL_RESPONSE_HOST` when set (beside DynamoDB Local only),
    /// which both custom resources' functions read.
    pub fn from_settings(settings: &Settings) -> Self {
        settings.root_key_local_response_host.as_deref().map_or_else(Self::s3_only, Self::allowing_local_http)
    }
}

/// A `ResponseURL` the function may answer on: https, an S3 endpoint's host
/// (`<bucket>.s3.amazonaws.com`, `<bucket>.s3.<region>.amazonaws.com`,
/// `<bucket>.s3-<region>.amazonaws.com`, the same under `amazonaws.com.cn`), no user info, no
/// port but 443, and a query carrying a presign signature (`X-Amz-Signature` or `Signature`).
/// Its `Debug` leaves the query out: the signature is never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseUrl(String);

impl std::fmt::Debug for ResponseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ResponseUrl").field(&without_query(&self.0)).finish()
    }
}

impl ResponseUrl {
    /// Checks `raw`; an error says why, showing the URL without its query string.
    pub fn parse(raw: &str, policy: &ResponseUrlPolicy) -> Result<Self, String> {
        let refuse = |why: &str| format!("ResponseURL {} refused: {why}", without_query(raw));
        let uri: hyper::Uri = raw.parse().map_err(|_| refuse("not a URL"))?;
        let authority = uri.authority().ok_or_else(|| refuse("no host"))?;
        if authority.as_str().contains('@') {
            return Err(refuse("user info in the URL"));
        }
        match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("https") => {
                if authority.port_u16().is_some_and(|p| p != 443) {
                    return Err(refuse("a port other than 443"));
                }
                if !is_s3_host(&authority.host().to_ascii_lowercase()) {
                    return Err(refuse("the host is not an S3 endpoint"));
                }
            }
            Some("http")
                if policy.local_http_host.as_deref() == Some(authority.as_str().to_ascii_lowercase().as_str()) => {}
            _ => return Err(refuse("not https")),
        }
        let query = uri.query().unwrap_or_default();
        let signed = form_urlencoded::parse(query.as_bytes())
            .any(|(name, value)| matches!(&*name, "X-Amz-Signature" | "Signature") && !value.is_empty());
        if !signed {
            return Err(refuse("not presigned (no X-Amz-Signature or Signature in the query)"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A URL as it may be logged: without its query string or fragment, which carry the signature,
/// nor any user info (a password).
fn without_query(raw: &str) -> String {
    let shown = raw.split(['?', '#']).next().unwrap_or_default();
    let shown = match shown.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
            format!("{scheme}://{host}{path}")
        }
        None => shown.to_owned(),
    };
    shown.chars().take(200).collect()
}

/// `cloudformation-custom-resource-response-<region>.s3[.<region>|-<region>].amazonaws.com[.cn]`,
/// lower case.
fn is_s3_host(host: &str) -> bool {
    let Some(prefix) = host.strip_suffix(".amazonaws.com").or_else(|| host.strip_suffix(".amazonaws.com.cn")) else {
        return false;
    };
    let labels: Vec<&str> = prefix.split('.').collect();
    let label_ok =
        |l: &&str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !labels.iter().all(label_ok) {
        return false;
    }
    let endpoint_labels = match labels.as_slice() {
        [.., "s3", region] if is_region(region) => 2,
        [.., "s3"] => 1,
        [.., last] if last.strip_prefix("s3-").is_some_and(is_region) => 1,
        _ => return false,
    };
    // One bucket before the endpoint, and CloudFormation's own: a presigned URL into any other
    // bucket (an attacker's) is not where a stack's answer goes.
    labels.len() == endpoint_labels + 1 && labels[0].starts_with(CLOUDFORMATION_RESPONSE_BUCKET)
}

/// The prefix of the buckets CloudFormation hands custom resources their presigned answer URLs in.
const CLOUDFORMATION_RESPONSE_BUCKET: &str = "cloudformation-custom-resource-response-";

/// `us-east-1`, `us-gov-west-1`, `cn-north-1`: letters, then words, then a number.
fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    match parts.as_slice() {
        [area, words @ .., number] if !words.is_empty() => {
            area.len() == 2
                && area.bytes().all(|b| b.is_ascii_lowercase())
                && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
                && !number.is_empty()
                && number.bytes().all(|b| b.is_ascii_digit())
        }
        _ => false,
    }
}

/// The fields of a CloudFormation custom resource request the resources read.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    pub request_type: String,
    #[serde(rename = "ResponseURL")]
    pub response_url: String,
    pub stack_id: String,
    pub request_id: String,
    pub logical_resource_id: String,
    #[serde(default)]
    pub physical_resource_id: Option<String>,
    #[serde(default)]
    pub resource_properties: Value,
    #[serde(default)]
    pub old_resource_properties: Option<Value>,
}

impl Envelope {
    /// The physical id of an answer that made nothing: the request's own, else one that names
    /// nothing, so CloudFormation's later Delete of it is a no-op.
    pub fn unchanged_id(&self) -> String {
        self.physical_resource_id
            .clone()
            .unwrap_or_else(|| format!("{}-not-created-{}", self.logical_resource_id, self.request_id))
    }
}

/// What the answer to CloudFormation says.
#[derive(Debug)]
pub struct Outcome {
    pub failure: Option<String>,
    pub physical_id: String,
    pub data: Value,
}

impl Outcome {
    pub fn success(physical_id: String, data: Value) -> Self {
        Self { failure: None, physical_id, data }
    }

    pub fn failed(physical_id: String, reason: String) -> Self {
        Self { failure: Some(reason), physical_id, data: json!({}) }
    }
}

/// Characters of a failure's reason in the answer (CloudFormation's limit is 4096 bytes in all).
const MAX_REASON: usize = 1500;

/// A request, and where its answer goes.
#[derive(Debug)]
pub struct Answer {
    pub response_url: ResponseUrl,
    /// The JSON CloudFormation expects on the response URL.
    pub body: Value,
}

/// Reads a request and the URL its answer goes to. An error, before anything is done, when no
/// answer can be sent: the request is no custom resource request, or its response URL is not
/// one `policy` allows (logged without its query string).
pub fn receive(request: Value, policy: &ResponseUrlPolicy) -> Result<(Envelope, ResponseUrl), String> {
    let envelope: Envelope =
        serde_json::from_value(request).map_err(|e| format!("not a CloudFormation custom resource request: {e}"))?;
    let response_url = ResponseUrl::parse(&envelope.response_url, policy).inspect_err(|problem| {
        tracing::error!(request = %envelope.request_type, %problem, "no answer can be sent: nothing done");
    })?;
    Ok((envelope, response_url))
}

/// The answer to `envelope`'s request. `no_echo` masks `Data` where CloudFormation shows it.
pub fn answer(envelope: &Envelope, response_url: ResponseUrl, outcome: Outcome, no_echo: bool) -> Answer {
    match &outcome.failure {
        None => {
            tracing::info!(request = %envelope.request_type, physical_id = %outcome.physical_id, "answered SUCCESS")
        }
        Some(reason) => tracing::error!(request = %envelope.request_type, %reason, "answered FAILED"),
    }
    let reason: String = outcome.failure.as_deref().unwrap_or("done").chars().take(MAX_REASON).collect();
    let body = json!({
        "Status": if outcome.failure.is_none() { "SUCCESS" } else { "FAILED" },
        "Reason": reason,
        "PhysicalResourceId": outcome.physical_id,
        "StackId": envelope.stack_id,
        "RequestId": envelope.request_id,
        "LogicalResourceId": envelope.logical_resource_id,
        "NoEcho": no_echo,
        "Data": outcome.data,
    });
    Answer { response_url, body }
}

/// PUTs the answer on the response URL (a presigned https S3 URL; plain http only to the local
/// listener a `ResponseUrlPolicy` allowed), three attempts.
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

/// A custom resource: the answer to one CloudFormation request, given the table's app and
/// Secrets Manager.
pub trait CustomResource: Send + Sync + 'static {
    fn answer<'a>(
        &'a self,
        app: &'a App,
        secrets: &'a SecretsManager,
        request: Value,
    ) -> impl Future<Output = Result<Answer, String>> + Send + 'a;
}

/// The Lambda runner of a custom resource's function: the table and Secrets Manager from the
/// settings, then each event through `resource`, its answer PUT on its response URL. The
/// function's result is the answer's status alone.
pub async fn serve(settings: &Settings, resource: impl CustomResource) -> Result<(), lambda_http::Error> {
    let (app, config) = crate::entry::config::start_with(settings).await;
    if let Some(host) = &settings.root_key_local_response_host {
        tracing::warn!(%host, "ROOT_KEY_LOCAL_RESPONSE_HOST: answers may go over plain http to this host (local testing)");
    }
    let secrets = SecretsManager::new(&config);
    crate::entry::config::run_events((resource, app, secrets), |state, request: Value| async move {
        let (resource, app, secrets) = state.as_ref();
        // Boxed: the future of a whole key creation is too deep a type for the runtime's.
        let answer = Box::pin(resource.answer(app, secrets, request)).await?;
        send_answer(&answer).await?;
        Ok(json!({ "Status": answer.body["Status"] }))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIGNED: &str = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=7200&X-Amz-Signature=c0ffee";

    #[test]
    fn presigned_https_s3_urls_are_answered_on() {
        for host in [
            "cloudformation-custom-resource-response-euwest1.s3-eu-west-1.amazonaws.com",
            "cloudformation-custom-resource-response-useast1.s3.amazonaws.com",
            "cloudformation-custom-resource-response-uswest2.s3.us-west-2.amazonaws.com",
            "cloudformation-custom-resource-response-cnnorth1.s3.cn-north-1.amazonaws.com.cn",
            "cloudformation-custom-resource-response-govwest1.s3-us-gov-west-1.amazonaws.com",
            "CloudFormation-Custom-Resource-Response-EUWest1.S3.EU-WEST-1.AmazonAWS.com",
        ] {
            let url = format!("https://{host}/arn%3Aaws%3Acloudformation/stack%7CRootKey%7C1{SIGNED}");
            assert_eq!(ResponseUrl::parse(&url, &ResponseUrlPolicy::s3_only()).map(|u| u.0), Ok(url.clone()));
        }
        let v2 = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x?AWSAccessKeyId=A&Expires=1&Signature=abc%3D";
        let parsed = ResponseUrl::parse(v2, &ResponseUrlPolicy::s3_only()).unwrap();
        assert_eq!(
            format!("{parsed:?}"),
            r#"ResponseUrl("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x")"#,
            "no signature"
        );
        let port = format!("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com:443/x{SIGNED}");
        assert!(ResponseUrl::parse(&port, &ResponseUrlPolicy::s3_only()).is_ok());
    }

    #[test]
    fn anything_else_is_refused_without_showing_the_query() {
        for url in [
            format!("http://b.s3.amazonaws.com/x{SIGNED}"),
            format!("https://example.com/x{SIGNED}"),
            format!("https://s3.amazonaws.com.example.com/x{SIGNED}"),
            format!("https://b.s3.amazonaws.com.evil/x{SIGNED}"),
            format!("https://b.amazonaws.com/x{SIGNED}"),
            format!("https://attacker-bucket.s3.amazonaws.com/x{SIGNED}"),
            format!("https://x.cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x{SIGNED}"),
            format!("https://s3.amazonaws.com/x{SIGNED}"),
            format!("https://s3.eu-west-1.amazonaws.com/x{SIGNED}"),
            format!("https://b.s3.notaregion.amazonaws.com/x{SIGNED}"),
            format!("https://b.s3-eu.amazonaws.com/x{SIGNED}"),
            format!("https://b.lambda.eu-west-1.amazonaws.com/x{SIGNED}"),
            format!("https://user:c0ffee@b.s3.amazonaws.com/x{SIGNED}"),
            format!("https://b.s3.amazonaws.com:8443/x{SIGNED}"),
            format!("ftp://b.s3.amazonaws.com/x{SIGNED}"),
            format!("http://127.0.0.1:9000/x{SIGNED}"),
            "https://b.s3.amazonaws.com/x".to_owned(),
            "https://b.s3.amazonaws.com/x?X-Amz-Signature=".to_owned(),
            "https://b.s3.amazonaws.com/x?x-amz-signature-not=c0ffee".to_owned(),
            "not a url".to_owned(),
            String::new(),
        ] {
            let error = ResponseUrl::parse(&url, &ResponseUrlPolicy::s3_only()).unwrap_err();
            assert!(error.starts_with("ResponseURL "), "{error}");
            assert!(!error.contains("Signature=") && !error.contains("c0ffee"), "{url}: {error}");
        }
    }

    #[test]
    fn plain_http_only_to_the_allowed_local_host_and_still_presigned() {
        let local = ResponseUrlPolicy::allowing_local_http("127.0.0.1:9000");
        assert!(ResponseUrl::parse(&format!("http://127.0.0.1:9000/x{SIGNED}"), &local).is_ok());
        let s3 = format!("https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x{SIGNED}");
        assert!(ResponseUrl::parse(&s3, &local).is_ok());
        for refused in [
            format!("http://127.0.0.1:9001/x{SIGNED}"),
            format!("http://127.0.0.1/x{SIGNED}"),
            format!("http://localhost:9000/x{SIGNED}"),
            "http://127.0.0.1:9000/x".to_owned(),
        ] {
            assert!(ResponseUrl::parse(&refused, &local).is_err(), "{refused}");
        }
    }
}
