//! `Custom::RootKey`, a CloudFormation custom resource: a pipeline gets a company's first root
//! key without a human. On Create (and on an Update that changes its properties) it creates the
//! company's root key in the table and writes it into a Secrets Manager secret, the only place
//! the key is kept; Delete leaves both alone (the table outlives the stack). Every request is
//! answered on its `ResponseURL`, failures included, so a stack never hangs on it; the key is
//! never logged nor put in the answer (`NoEcho`, and `Data` holds only its id).
//!
//! Anyone allowed to invoke the function can send it a request, so the request decides
//! neither whose key is minted nor where the answer goes. The company is the stack's
//! (`ROOT_KEY_COMPANY`, set by template.yaml from `RootKeyCompany`): a request whose `Company`
//! property names another is answered FAILED and mints nothing. An equal `Company` is
//! tolerated, and template.yaml keeps passing it, because a change of `RootKeyCompany` must
//! reach the resource as an Update (a changed environment alone sends none), and because
//! existing stacks then see no change of properties. The answer goes only to a presigned https
//! S3 URL (`ResponseUrl`); to anything else no answer is sent, nothing is minted, and the
//! handler fails, logging the URL without its query string (which holds the signature).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::domain::SealMaterial;
use crate::domain::keys::create_root_key_once;
use crate::model::{CompanyId, IdempotencyKey};
use crate::settings::Settings;
use crate::store::DynamoStore;

use super::config::App;
use super::custom_resource::{self, Envelope, Outcome};
pub use super::custom_resource::{Answer, ResponseUrl, ResponseUrlPolicy, SecretStore, SecretsManager, send_answer};

/// What a function instance mints, and where it may answer: from its settings, never from a
/// request.
#[derive(Debug, Clone)]
pub struct RootKeyResource {
    company: CompanyId,
    response_urls: ResponseUrlPolicy,
}

impl RootKeyResource {
    pub fn new(company: CompanyId, response_urls: ResponseUrlPolicy) -> Self {
        Self { company, response_urls }
    }
}

/// The resource's properties in template.yaml. `Company`, when there, must be the function's own
/// company (see the module's comment); it is compared with the old properties all the same, so
/// a change of company is an Update that mints.
#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
struct Properties {
    #[serde(default)]
    company: Option<String>,
    secret_id: String,
    #[serde(default)]
    table_name: Option<String>,
}

/// Handles one request: the answer to PUT on its response URL. An error, with nothing minted,
/// when no answer can be sent: the request is no custom resource request, or its response URL
/// is not one `resource` may answer on (logged without its query string).
pub async fn handle(
    resource: &RootKeyResource,
    store: &DynamoStore,
    secrets: &impl SecretStore,
    now: DateTime<Utc>,
    request: Value,
) -> Result<Answer, String> {
    let (envelope, response_url) = custom_resource::receive(request, &resource.response_urls)?;
    let outcome = decide(&resource.company, store, secrets, now, &envelope).await;
    Ok(custom_resource::answer(&envelope, response_url, outcome, true))
}

async fn decide(
    company: &CompanyId,
    store: &DynamoStore,
    secrets: &impl SecretStore,
    now: DateTime<Utc>,
    request: &Envelope,
) -> Outcome {
    let unchanged = request.unchanged_id();
    let properties = serde_json::from_value::<Properties>(request.resource_properties.clone());
    match (request.request_type.as_str(), properties) {
        // The key and the secret outlive the stack, as the table does.
        ("Delete", _) => Outcome::success(unchanged, json!({})),
        (_, Err(e)) => Outcome::failed(unchanged, format!("ResourceProperties: {e} (SecretId is required)")),
        ("Create" | "Update", Ok(Properties { company: Some(named), .. })) if named != company.as_str() => {
            let named: String = named.chars().take(64).collect();
            Outcome::failed(
                unchanged,
                format!(
                    "Company {named:?} is not the company this function mints for (ROOT_KEY_COMPANY): nothing minted"
                ),
            )
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
        ("Create" | "Update", Ok(properties)) => match mint(company, store, secrets, now, &properties, request).await {
            Ok((physical_id, data)) => Outcome::success(physical_id, data),
            Err(reason) => Outcome::failed(unchanged, reason),
        },
        (other, Ok(_)) => Outcome::failed(unchanged, format!("unknown RequestType {other}")),
    }
}

/// Creates the root key and stores it; the physical id names the key, `Data` its id only.
async fn mint(
    company: &CompanyId,
    store: &DynamoStore,
    secrets: &impl SecretStore,
    now: DateTime<Utc>,
    properties: &Properties,
    request: &Envelope,
) -> Result<(String, Value), String> {
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
    let secret = custom_resource::key_secret(company, key_id, key);
    secrets.put_secret(&properties.secret_id, secret).await.map_err(|e| {
        format!(
            "root key {key_id} of {company} was created but not stored in {}: {e}; its secret is lost, delete that key",
            properties.secret_id
        )
    })?;
    tracing::info!(company = %company, %key_id, "root key minted into Secrets Manager");
    Ok((format!("{company}/{key_id}"), json!({ "KeyId": key_id, "CompanyId": company.as_str() })))
}

/// The Lambda runner for the custom resource's function, on the settings read at start-up.
pub async fn run(settings: Settings) -> Result<(), lambda_http::Error> {
    let resource = RootKeyResource::new(settings.root_key_company()?, ResponseUrlPolicy::from_settings(&settings));
    custom_resource::serve(&settings, resource).await
}

impl custom_resource::CustomResource for RootKeyResource {
    fn answer<'a>(
        &'a self,
        app: &'a App,
        secrets: &'a SecretsManager,
        request: Value,
    ) -> impl Future<Output = Result<Answer, String>> + Send + 'a {
        handle(self, &app.store, secrets, app.clock.now(), request)
    }
}
