//! `Custom::ApiKey`, a CloudFormation custom resource for other stacks: a stack declares the API
//! key one of its services uses, next to that service, and reads the key from a Secrets Manager
//! secret the resource makes (`Data.SecretArn`). Create makes the key (through the same create
//! as `POST /keys`, its body the resource's properties) and its secret; Update patches what
//! changed (as `PATCH /keys/{keyId}`) and rolls the key when `rotation` changes; a change of
//! `companyId`, `id`, or a field a key keeps for life (`userId`, `type`) makes a new key (a new
//! physical id, so CloudFormation deletes the old one); Delete deletes the key (soft) and its
//! secret. The key's plaintext goes into the secret only: never into the answer, nor the logs.
//!
//! Anyone who may invoke the function can send it a request, so a request decides neither
//! which companies keys are minted for nor what they may do: the companies are this stack's
//! (`API_KEY_RESOURCE_COMPANIES`), and a key holding a `keys:` permission is refused unless the
//! stack allows it (`API_KEY_RESOURCE_MANAGEMENT_KEYS`). Answers go only where
//! `custom_resource::ResponseUrl` allows. Every write is idempotent by the request's `RequestId`
//! with its answer sealed under the request's presigned `ResponseURL`, so a request delivered
//! twice mints one key.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::domain::keys::{NewKey, Target, create_key, delete_key, roll_key, update_key};
use crate::domain::{Caller, DomainError, SealMaterial};
use crate::model::{CompanyId, CreateKeyInput, IdempotencyKey, KeyId, RollInput, UpdateKeyInput};
use crate::settings::{Settings, SettingsError};
use crate::store::DynamoStore;

use super::config::App;
use super::custom_resource::{self, Answer, Envelope, Outcome, OwnedSecrets, ResponseUrlPolicy, SecretsManager};

/// What a function instance may mint and where it may answer: from its settings, never from a
/// request.
#[derive(Debug, Clone)]
pub struct ApiKeyResource {
    companies: Vec<CompanyId>,
    management_keys: bool,
    secret_prefix: String,
    response_urls: ResponseUrlPolicy,
}

impl ApiKeyResource {
    /// Keys of `companies` only, with `keys:` permissions only if `management_keys`, their
    /// secrets named `<secret_prefix><companyId>/<keyId>`.
    pub fn new(
        companies: Vec<CompanyId>,
        management_keys: bool,
        secret_prefix: String,
        response_urls: ResponseUrlPolicy,
    ) -> Self {
        Self { companies, management_keys, secret_prefix, response_urls }
    }

    /// From the function's settings; `API_KEY_RESOURCE_SECRET_PREFIX` is required.
    pub fn from_settings(settings: &Settings) -> Result<Self, SettingsError> {
        let resource = &settings.api_key_resource;
        Ok(Self::new(
            resource.companies.clone(),
            resource.management_keys,
            settings.api_key_secret_prefix()?,
            ResponseUrlPolicy::from_settings(settings),
        ))
    }

    /// The caller a request acts as: the stack (its `StackId`, an operator-type actor in the
    /// audit trail) for `company`, which must be one this stack lets others mint for.
    fn caller(&self, company: &CompanyId, request: &Envelope) -> Result<Caller, String> {
        if !self.companies.contains(company) {
            return Err(format!(
                "companyId {company} is not a company this function mints keys for \
                 (ApiKeyResourceCompanies of the stack that serves Custom::ApiKey): nothing done"
            ));
        }
        let stack = &request.stack_id;
        if !stack.starts_with("arn:") || stack.len() > MAX_STACK_ID {
            return Err("StackId is not a CloudFormation stack's ARN: nothing done".into());
        }
        let operator = Caller::operator(company.clone());
        let permissions = if self.management_keys { operator.permissions.clone() } else { Vec::new() };
        // The presigned ResponseURL, which the table never holds, seals a replayed answer.
        let seal = SealMaterial::of(&request.response_url);
        Ok(Caller { actor: stack.clone(), permissions, seal, ..operator })
    }

    fn secret_name(&self, company: &CompanyId, key_id: &str) -> String {
        format!("{}{company}/{key_id}", self.secret_prefix)
    }
}

/// The longest `StackId` taken as the audit actor (a stack ARN is about 130 characters).
const MAX_STACK_ID: usize = 256;
/// The longest `rotation` value: it is compared, never stored.
const MAX_ROTATION: usize = 256;

/// The properties that are the resource's own; every other one (but `ServiceToken`) is a field
/// of the key's create body, under its API name.
const COMPANY: &str = "companyId";
const KEY_ID: &str = "id";
const ROTATION: &str = "rotation";
const GRACE: &str = "gracePeriodSeconds";

/// A resource's properties, read.
#[derive(Debug, Clone, PartialEq)]
struct Declared {
    company: CompanyId,
    /// A custom key id; `None`: a generated one.
    id: Option<KeyId>,
    /// Compared only: a change rolls the key.
    rotation: Option<String>,
    /// The grace period of a roll.
    roll: RollInput,
    /// The key's fields as `POST /keys` reads them, numbers restored.
    body: Map<String, Value>,
}

impl Declared {
    fn parse(properties: &Value) -> Result<Self, String> {
        let Value::Object(properties) = properties else {
            return Err("ResourceProperties must be an object".into());
        };
        let mut body = properties.clone();
        body.remove("ServiceToken");
        let text = |value: Option<Value>, name: &str| match value {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("{name} must be a string")),
        };
        let company = text(body.remove(COMPANY), COMPANY)?.ok_or("companyId is required")?;
        let company = CompanyId::parse(&company, COMPANY).map_err(|e| e.to_string())?;
        let id = text(body.remove(KEY_ID), KEY_ID)?.map(|id| KeyId::parse(&id, KEY_ID)).transpose();
        let rotation = text(body.remove(ROTATION), ROTATION)?;
        if rotation.as_ref().is_some_and(|r| r.chars().count() > MAX_ROTATION) {
            return Err(format!("rotation holds at most {MAX_ROTATION} characters"));
        }
        let mut grace = body.remove(GRACE);
        grace.iter_mut().for_each(restore_number);
        let roll = RollInput::parse(Some(json!({ GRACE: grace }))).map_err(|e| e.to_string())?;
        if let Some(unknown) = body.keys().find(|name| !CreateKeyInput::FIELDS.contains(&name.as_str())) {
            let unknown: String = unknown.chars().take(64).collect();
            return Err(format!(
                "{unknown:?} is not a property of Custom::ApiKey (companyId, id, rotation, gracePeriodSeconds, or a \
                 field of POST /keys: {})",
                CreateKeyInput::FIELDS.join(", ")
            ));
        }
        for object in ["rateLimit", "quota"] {
            if let Some(Value::Object(fields)) = body.get_mut(object) {
                fields.values_mut().for_each(restore_number);
            }
        }
        Ok(Self { company, id: id.map_err(|e| e.to_string())?, rotation, roll, body })
    }
}

/// CloudFormation hands every scalar property to the function as a string (`"100"` for 100):
/// a string of digits where the API reads a number is that number again.
fn restore_number(value: &mut Value) {
    if let Value::String(digits) = value
        && !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(number) = digits.parse::<u64>()
    {
        *value = json!(number);
    }
}

/// The PATCH body from `old` to `new`: each field that changed, and each one dropped cleared.
fn patch(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for name in old.keys().chain(new.keys()) {
        match (old.get(name), new.get(name)) {
            (before, after) if before == after => {}
            (_, Some(after)) => _ = patch.insert(name.clone(), after.clone()),
            (Some(_), None) => {
                let cleared = match name.as_str() {
                    "tags" => json!([]),
                    "metadata" => json!({}),
                    _ => Value::Null,
                };
                _ = patch.insert(name.clone(), cleared);
            }
            (None, None) => {}
        }
    }
    patch
}

/// `<companyId>/<keyId>`: the physical id of a resource that made a key.
fn physical_id(company: &CompanyId, key_id: &str) -> String {
    format!("{company}/{key_id}")
}

/// The key a physical id names; `None` for one that names no key (a failed create's).
fn key_of(physical_id: Option<&str>) -> Option<(CompanyId, KeyId)> {
    let (company, key_id) = physical_id?.split_once('/')?;
    Some((CompanyId::parse(company, COMPANY).ok()?, KeyId::try_from(key_id.to_owned()).ok()?))
}

/// The `Idempotency-Key` of one write of a request: a redelivered request's writes are
/// answered with their first answers.
fn retry_of(request: &Envelope, write: &str) -> Result<IdempotencyKey, String> {
    IdempotencyKey::parse(&format!("cloudformation-{}-{write}", request.request_id))
        .map_err(|e| format!("RequestId: {}", e.message))
}

/// Handles one request: the answer to PUT on its response URL. An error, with nothing done,
/// when no answer can be sent (see `custom_resource::receive`).
pub async fn handle(
    resource: &ApiKeyResource,
    store: &DynamoStore,
    secrets: &impl OwnedSecrets,
    now: DateTime<Utc>,
    request: Value,
) -> Result<Answer, String> {
    let (envelope, response_url) = custom_resource::receive(request, &resource.response_urls)?;
    let context = Context { resource, store, secrets, now, request: &envelope };
    let outcome = match envelope.request_type.as_str() {
        "Create" => context.create().await,
        "Update" => context.update().await,
        "Delete" => context.delete().await,
        other => Outcome::failed(envelope.unchanged_id(), format!("unknown RequestType {other}")),
    };
    // `Data` holds ids, the key's visible prefix and the secret's ARN, nothing secret: shown.
    Ok(custom_resource::answer(&envelope, response_url, outcome, false))
}

/// One request and what it acts on.
struct Context<'a, S> {
    resource: &'a ApiKeyResource,
    store: &'a DynamoStore,
    secrets: &'a S,
    now: DateTime<Utc>,
    request: &'a Envelope,
}

impl<S: OwnedSecrets> Context<'_, S> {
    fn failed(&self, reason: String) -> Outcome {
        Outcome::failed(self.request.unchanged_id(), reason)
    }

    async fn create(&self) -> Outcome {
        match Declared::parse(&self.request.resource_properties) {
            Ok(declared) => self.mint(&declared).await,
            Err(reason) => self.failed(format!("ResourceProperties: {reason}")),
        }
    }

    /// Makes the key and its secret. Once the key exists, a failure still names it as the
    /// physical id, so CloudFormation's rollback deletes it.
    async fn mint(&self, declared: &Declared) -> Outcome {
        let company = &declared.company;
        let made = async {
            let caller = self.resource.caller(company, self.request)?;
            let input =
                CreateKeyInput::parse(Value::Object(declared.body.clone()), self.now).map_err(|e| e.to_string())?;
            let request = NewKey { id: declared.id.clone(), input, retry: Some(retry_of(self.request, "create")?) };
            let created = create_key(self.store, &caller, self.now, request)
                .await
                .map_err(|e| format!("could not create the key: {e}"))?;
            serde_json::to_value(created.view()).map_err(|e| format!("the created key: {e}"))
        };
        let view = match made.await {
            Ok(view) => view,
            Err(reason) => return self.failed(reason),
        };
        let key_id = view["id"].as_str().unwrap_or_default();
        let physical = physical_id(company, key_id);
        match self.store_secret(company, &view).await {
            Ok(arn) => {
                tracing::info!(%company, %key_id, "key minted into Secrets Manager");
                Outcome::success(physical, data(&view, &arn))
            }
            Err(reason) => Outcome::failed(physical, reason),
        }
    }

    /// Writes the key's plaintext (in `view`, a create's or roll's) into its secret: the ARN.
    async fn store_secret(&self, company: &CompanyId, view: &Value) -> Result<String, String> {
        let key_id = view["id"].as_str().unwrap_or_default();
        let key = view["key"].as_str().ok_or("the key has no new secret")?;
        let name = self.resource.secret_name(company, key_id);
        let description = format!(
            "API key {key_id} of company {company}, declared as {} in stack {}",
            self.request.logical_resource_id, self.request.stack_id
        );
        let value = custom_resource::key_secret(company, key_id, key);
        self.secrets
            .create_secret(&name, &description, value)
            .await
            .map_err(|e| format!("key {key_id} of {company} was made but its secret {name} could not be written: {e}"))
    }

    async fn update(&self) -> Outcome {
        let new = match Declared::parse(&self.request.resource_properties) {
            Ok(new) => new,
            Err(reason) => return self.failed(format!("ResourceProperties: {reason}")),
        };
        let old = self.request.old_resource_properties.as_ref().and_then(|old| Declared::parse(old).ok());
        let current = key_of(self.request.physical_resource_id.as_deref());
        let (Some(old), Some((company, key_id))) = (old, current) else { return self.mint(&new).await };
        let changes = patch(&old.body, &new.body);
        let for_life = changes.keys().any(|name| !UpdateKeyInput::FIELDS.contains(&name.as_str()));
        if company != new.company || old.id != new.id || for_life {
            return self.mint(&new).await;
        }
        match self.change(&company, &key_id, &old, &new, changes).await {
            Ok(data) => Outcome::success(physical_id(&company, key_id.as_str()), data),
            Err(reason) => self.failed(reason),
        }
    }

    /// Patches the key's changed fields, then rolls it if `rotation` changed: the answer's data.
    async fn change(
        &self,
        company: &CompanyId,
        key_id: &KeyId,
        old: &Declared,
        new: &Declared,
        changes: Map<String, Value>,
    ) -> Result<Value, String> {
        let caller = self.resource.caller(company, self.request)?;
        let input = UpdateKeyInput::parse(Value::Object(changes), self.now).map_err(|e| e.to_string())?;
        let retry = retry_of(self.request, "update")?;
        let target = Target { retry: Some(&retry), ..Target::key(key_id) };
        let updated = update_key(self.store, &caller, self.now, target, &input)
            .await
            .map_err(|e| format!("could not change key {key_id} of {company}: {e}"))?;
        let mut view = serde_json::to_value(updated.view()).map_err(|e| format!("the changed key: {e}"))?;
        let arn = if old.rotation != new.rotation {
            let retry = retry_of(self.request, "roll")?;
            let target = Target { retry: Some(&retry), ..Target::key(key_id) };
            let rolled = roll_key(self.store, &caller, self.now, target, new.roll)
                .await
                .map_err(|e| format!("could not roll key {key_id} of {company}: {e}"))?;
            view = serde_json::to_value(rolled.view()).map_err(|e| format!("the rolled key: {e}"))?;
            let arn = self.store_secret(company, &view).await?;
            tracing::info!(%company, %key_id, "key rolled into Secrets Manager");
            arn
        } else {
            let name = self.resource.secret_name(company, key_id.as_str());
            self.secrets.secret_arn(&name).await.map_err(|e| {
                format!("the secret {name} of key {key_id} cannot be read: {e}; change rotation to write it again")
            })?
        };
        Ok(data(&view, &arn))
    }

    /// Deletes the key (soft: it never verifies again) and its secret. A physical id that names
    /// no key (a failed create's) has nothing to delete.
    async fn delete(&self) -> Outcome {
        let unchanged = self.request.unchanged_id();
        let Some((company, key_id)) = key_of(self.request.physical_resource_id.as_deref()) else {
            return Outcome::success(unchanged, json!({}));
        };
        let deleted = async {
            let caller = self.resource.caller(&company, self.request)?;
            match delete_key(self.store, &caller, self.now, Target::key(&key_id)).await {
                Ok(()) | Err(DomainError::NotFound) => {}
                Err(e) => return Err(format!("could not delete key {key_id} of {company}: {e}")),
            }
            let name = self.resource.secret_name(&company, key_id.as_str());
            self.secrets
                .delete_secret(&name)
                .await
                .map_err(|e| format!("key {key_id} of {company} was deleted but its secret {name} could not be: {e}"))
        };
        match deleted.await {
            Ok(()) => {
                tracing::info!(%company, %key_id, "key and its secret deleted");
                Outcome::success(unchanged, json!({}))
            }
            Err(reason) => self.failed(reason),
        }
    }
}

/// What `Fn::GetAtt` reads: the key's id, company and visible prefix, and its secret's ARN.
fn data(view: &Value, secret_arn: &str) -> Value {
    json!({
        "KeyId": view["id"],
        "CompanyId": view["companyId"],
        "KeyPrefix": view["keyPrefix"],
        "SecretArn": secret_arn,
    })
}

/// The Lambda runner for the resource's function, on the settings read at start-up.
pub async fn run(settings: Settings) -> Result<(), lambda_http::Error> {
    custom_resource::serve(&settings, ApiKeyResource::from_settings(&settings)?).await
}

impl custom_resource::CustomResource for ApiKeyResource {
    fn answer<'a>(
        &'a self,
        app: &'a App,
        secrets: &'a SecretsManager,
        request: Value,
    ) -> impl Future<Output = Result<Answer, String>> + Send + 'a {
        handle(self, &app.store, secrets, app.clock.now(), request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_the_api_s_fields_with_cloudformation_s_strings_turned_back_into_numbers() {
        let declared = Declared::parse(&json!({
            "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:f",
            "companyId": "acme",
            "id": "billing",
            "userId": "svc",
            "rateLimit": { "limit": "100", "periodSeconds": "60" },
            "quota": { "max": "5000" },
            "metadata": { "team": "42" },
            "rotation": "2030-01",
            "gracePeriodSeconds": "3600",
        }))
        .unwrap();
        assert_eq!(declared.company.as_str(), "acme");
        assert_eq!(declared.id.as_ref().map(KeyId::as_str), Some("billing"));
        assert_eq!(declared.rotation.as_deref(), Some("2030-01"));
        assert_eq!(declared.roll.grace_period_seconds, 3600);
        assert_eq!(
            Value::Object(declared.body),
            json!({
                "userId": "svc",
                "rateLimit": { "limit": 100, "periodSeconds": 60 },
                "quota": { "max": 5000 },
                "metadata": { "team": "42" },
            }),
            "metadata is the stack's own: left as CloudFormation sends it"
        );
    }

    #[test]
    fn unknown_or_missing_properties_are_refused_by_name() {
        for (properties, named) in [
            (json!({ "userId": "svc" }), "companyId"),
            (json!({ "companyId": "acme", "userId": "svc", "status": "inactive" }), "status"),
            (json!({ "companyId": "acme", "userId": "svc", "Description": "x" }), "Description"),
            (json!({ "companyId": "not a company", "userId": "svc" }), "companyId"),
            (json!({ "companyId": "acme", "id": "verify", "userId": "svc" }), "id"),
            (json!({ "companyId": "acme", "gracePeriodSeconds": "999999999" }), "gracePeriodSeconds"),
            (json!({ "companyId": "acme", "rotation": "r".repeat(257) }), "rotation"),
            (json!(["companyId"]), "object"),
        ] {
            let error = Declared::parse(&properties).unwrap_err();
            assert!(error.contains(named), "{properties}: {error}");
        }
    }

    #[test]
    fn an_update_patches_what_changed_and_clears_what_was_dropped() {
        let old = json!({ "description": "a", "tags": ["x"], "metadata": { "k": "v" }, "rateLimit": { "limit": 1 } });
        let new = json!({ "description": "b", "expiresAt": "2031-01-01T00:00:00Z", "rateLimit": { "limit": 1 } });
        let (Value::Object(old), Value::Object(new)) = (old, new) else { unreachable!() };
        assert_eq!(
            Value::Object(patch(&old, &new)),
            json!({ "description": "b", "tags": [], "metadata": {}, "expiresAt": "2031-01-01T00:00:00Z" })
        );
        assert!(patch(&new, &new).is_empty());
    }

    #[test]
    fn a_physical_id_names_a_key_or_nothing() {
        let (company, key) = key_of(Some("acme/0193a5d0-0a1b-7c2d")).unwrap();
        assert_eq!((company.as_str(), key.as_str()), ("acme", "0193a5d0-0a1b-7c2d"));
        for none in [None, Some("ApiKey-not-created-5d7c"), Some("acme/a/b"), Some("a b/c"), Some("acme/")] {
            assert!(key_of(none).is_none(), "{none:?}");
        }
    }
}
