//! `Custom::ApiKey`, the custom resource other stacks declare their keys with: its protocol
//! (Create, Update, Delete and their answers), a request delivered twice, what it refuses, its
//! secrets (behind `OwnedSecrets`, standing in for Secrets Manager) and its answer PUT to a
//! local listener. The template side is in deploy.rs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use apikeys::entry::api_key_resource::{self, ApiKeyResource};
use apikeys::entry::custom_resource::{Answer, OwnedSecrets, ResponseUrlPolicy, send_answer};
use apikeys::entry::http::routes::API_KEY_FUNCTION;
use apikeys::model::CompanyId;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::operations::deploy::{assert_answers, receive_one};

/// The secret name prefix the tests' function has (template.yaml: `<stack>/api-keys/`).
const PREFIX: &str = "apikeys/api-keys/";

/// Secrets Manager's place: the secrets by name (ARN, value), or a refusal like an IAM denial.
#[derive(Default)]
struct Secrets {
    stored: Mutex<BTreeMap<String, (String, Value)>>,
    writes: Mutex<usize>,
    refuse: bool,
}

impl OwnedSecrets for Secrets {
    async fn create_secret(&self, name: &str, description: &str, value: String) -> Result<String, String> {
        if self.refuse {
            return Err("AccessDeniedException: not authorized to perform secretsmanager:CreateSecret".into());
        }
        assert!(!description.contains("sk_"), "the description holds no key: {description}");
        let value: Value = serde_json::from_str(&value).expect("the secret is JSON");
        *self.writes.lock().unwrap() += 1;
        let mut stored = self.stored.lock().unwrap();
        let arn = stored
            .get(name)
            .map_or_else(|| format!("arn:aws:secretsmanager:eu-west-1:1:secret:{name}-AbCdEf"), |s| s.0.clone());
        stored.insert(name.to_owned(), (arn.clone(), value));
        Ok(arn)
    }

    async fn secret_arn(&self, name: &str) -> Result<String, String> {
        let stored = self.stored.lock().unwrap();
        stored.get(name).map(|s| s.0.clone()).ok_or_else(|| "ResourceNotFoundException: no such secret".into())
    }

    async fn delete_secret(&self, name: &str) -> Result<(), String> {
        self.stored.lock().unwrap().remove(name);
        Ok(())
    }
}

impl Secrets {
    /// The secret of `company`'s key `key_id`, if it exists.
    fn of(&self, company: &str, key_id: &str) -> Option<Value> {
        self.stored.lock().unwrap().get(&format!("{PREFIX}{company}/{key_id}")).map(|s| s.1.clone())
    }

    fn count(&self) -> usize {
        self.stored.lock().unwrap().len()
    }

    fn writes(&self) -> usize {
        *self.writes.lock().unwrap()
    }
}

/// The function of a stack that lets other stacks mint for `companies`, answering on S3 only.
fn stack_for(companies: &[&CompanyId], management_keys: bool) -> ApiKeyResource {
    let companies = companies.iter().map(|c| (*c).clone()).collect();
    ApiKeyResource::new(companies, management_keys, PREFIX.into(), ResponseUrlPolicy::s3_only())
}

/// events/api_key_resource.json for the test app's company, with a RequestId of its own.
fn request(app: &TestApp, request_type: &str) -> Value {
    let mut event = read_event(API_KEY_FUNCTION);
    event["RequestType"] = json!(request_type);
    event["RequestId"] = json!(uuid::Uuid::now_v7().to_string());
    event["ResourceProperties"]["companyId"] = json!(app.company.as_str());
    event
}

/// An Update of the resource `created` answered, from `old` properties to `new`.
fn update(app: &TestApp, created: &Answer, old: &Value, new: Value) -> Value {
    let mut event = request(app, "Update");
    event["PhysicalResourceId"] = created.body["PhysicalResourceId"].clone();
    event["OldResourceProperties"] = old["ResourceProperties"].clone();
    event["ResourceProperties"] = new;
    event
}

async fn answer_of(app: &TestApp, stack: &ApiKeyResource, secrets: &Secrets, request: &Value) -> Answer {
    let now = app.app.clock.now();
    api_key_resource::handle(stack, &app.app.store, secrets, now, request.clone()).await.unwrap()
}

/// What verify answers for `key`, asked by the app's root key.
async fn verify(app: &TestApp, key: &str) -> Value {
    let body = json!({ "key": key, "ip": "203.0.113.7" });
    let verdict = app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&body), &[]).await;
    assert_eq!(verdict.status, StatusCode::OK, "{:?}", verdict.body);
    verdict.body
}

async fn get(app: &TestApp, key_id: &str) -> Value {
    let got = app.send(Method::GET, &format!("/keys/{key_id}"), Some(&app.root_key), None, &[]).await;
    assert_eq!(got.status, StatusCode::OK, "{:?}", got.body);
    got.body
}

/// How many keys the app's company has, the app's root key included.
async fn keys_of(app: &TestApp) -> u64 {
    let listed = app.send(Method::GET, "/keys?status=all", Some(&app.root_key), None, &[]).await;
    listed.body["total"].as_u64().expect("a total")
}

#[tokio::test]
async fn create_makes_the_declared_key_and_its_secret_and_answers_only_ids() {
    let app = spawn_app().await;
    let (stack, secrets) = (stack_for(&[&app.company], false), Secrets::default());
    let create = request(&app, "Create");
    let answer = answer_of(&app, &stack, &secrets, &create).await;
    assert_answers(&answer, &create, "SUCCESS");

    let data = &answer.body["Data"];
    let key_id = data["KeyId"].as_str().expect("Data.KeyId").to_owned();
    assert_eq!(answer.body["PhysicalResourceId"], json!(format!("{}/{key_id}", app.company)));
    let secret = secrets.of(app.company.as_str(), &key_id).expect("the key's secret");
    let key = secret["key"].as_str().expect("the key in the secret").to_owned();
    assert_eq!((&secret["companyId"], &secret["keyId"]), (&json!(app.company.as_str()), &json!(key_id)));
    assert_eq!(
        data["SecretArn"],
        json!(format!("arn:aws:secretsmanager:eu-west-1:1:secret:{PREFIX}{}/{key_id}-AbCdEf", app.company))
    );
    assert_eq!(data["CompanyId"], json!(app.company.as_str()));
    assert!(key.starts_with(data["KeyPrefix"].as_str().unwrap()), "{data}");
    assert!(!answer.body.to_string().contains(&key), "the key is never in the answer");

    // The key is the properties' key, numbers as numbers.
    let got = get(&app, &key_id).await;
    assert_eq!(got["userId"], "billing-service");
    assert_eq!(got["rateLimit"], json!({ "limit": 100, "periodSeconds": 60 }));
    assert_eq!((got["quota"]["max"].as_u64(), got["tags"].clone()), (Some(100000), json!(["billing", "prod"])));
    assert_eq!(verify(&app, &key).await["code"], "VALID");

    // The audit trail names the stack, as an operator.
    let events = app.send(Method::GET, &format!("/keys/{key_id}/events"), Some(&app.root_key), None, &[]).await;
    let created = &events.body["data"][0];
    assert_eq!((&created["action"], &created["actorType"]), (&json!("created"), &json!("operator")));
    assert_eq!(created["actor"], create["StackId"]);
}

#[tokio::test]
async fn a_create_delivered_twice_mints_one_key_and_a_stranger_with_its_request_id_opens_nothing() {
    let app = spawn_app().await;
    let (stack, secrets) = (stack_for(&[&app.company], false), Secrets::default());
    let create = request(&app, "Create");
    let first = answer_of(&app, &stack, &secrets, &create).await;
    let again = answer_of(&app, &stack, &secrets, &create).await;
    assert_answers(&again, &create, "SUCCESS");
    assert_eq!(first.body["Data"], again.body["Data"], "the same key both times");
    assert_eq!((secrets.count(), secrets.writes()), (1, 2), "one secret, written again with the same key");
    assert_eq!(keys_of(&app).await, 2, "the root key and one minted key");

    // The same RequestId under another ResponseURL (someone who read the RequestId, not the
    // presigned URL): the sealed first answer does not open, nothing more is minted or written.
    let mut forged = create.clone();
    let url = forged["ResponseURL"].as_str().unwrap().replace("Signature=example", "Signature=other");
    forged["ResponseURL"] = json!(url);
    let answer = answer_of(&app, &stack, &secrets, &forged).await;
    assert_answers(&answer, &forged, "FAILED");
    assert_eq!((secrets.count(), secrets.writes(), keys_of(&app).await), (1, 2, 2));
}

#[tokio::test]
async fn an_update_patches_what_changed_and_a_new_rotation_rolls_the_key_into_the_secret() {
    let app = spawn_app().await;
    let (stack, secrets) = (stack_for(&[&app.company], false), Secrets::default());
    let create = request(&app, "Create");
    let created = answer_of(&app, &stack, &secrets, &create).await;
    let key_id = created.body["Data"]["KeyId"].as_str().unwrap().to_owned();
    let first_key = secrets.of(app.company.as_str(), &key_id).unwrap()["key"].as_str().unwrap().to_owned();

    // Changed description, tags dropped: a patch; the secret stays as it was.
    let mut props = create["ResourceProperties"].clone();
    props["description"] = json!("renamed");
    props.as_object_mut().unwrap().remove("tags");
    let patch = update(&app, &created, &create, props.clone());
    let answer = answer_of(&app, &stack, &secrets, &patch).await;
    assert_answers(&answer, &patch, "SUCCESS");
    assert_eq!(answer.body["PhysicalResourceId"], created.body["PhysicalResourceId"]);
    assert_eq!(answer.body["Data"], created.body["Data"], "same key, same secret");
    let got = get(&app, &key_id).await;
    assert_eq!((got["description"].clone(), got["tags"].clone()), (json!("renamed"), json!([])));
    assert_eq!(secrets.writes(), 1);

    // A new rotation: a new secret in the same secret, the old one in its grace period.
    let mut rotated = props.clone();
    rotated["rotation"] = json!("2");
    let roll = update(&app, &created, &patch, rotated);
    let answer = answer_of(&app, &stack, &secrets, &roll).await;
    assert_answers(&answer, &roll, "SUCCESS");
    assert_eq!(answer.body["PhysicalResourceId"], created.body["PhysicalResourceId"]);
    let new_key = secrets.of(app.company.as_str(), &key_id).unwrap()["key"].as_str().unwrap().to_owned();
    assert_ne!(new_key, first_key);
    assert!(new_key.starts_with(answer.body["Data"]["KeyPrefix"].as_str().unwrap()));
    assert_eq!(answer.body["Data"]["SecretArn"], created.body["Data"]["SecretArn"]);
    assert_eq!(verify(&app, &new_key).await["code"], "VALID");
    assert_eq!(verify(&app, &first_key).await["valid"], true, "gracePeriodSeconds 3600");
    // The same update delivered again rolls nothing more.
    answer_of(&app, &stack, &secrets, &roll).await;
    assert_eq!(secrets.of(app.company.as_str(), &key_id).unwrap()["key"], json!(new_key));
}

#[tokio::test]
async fn a_new_user_id_or_company_is_a_new_key_and_delete_deletes_the_old_one_and_its_secret() {
    let app = spawn_app().await;
    let other = CompanyId::parse(&unique("globex"), "company").unwrap();
    let (stack, secrets) = (stack_for(&[&app.company, &other], false), Secrets::default());
    let create = request(&app, "Create");
    let created = answer_of(&app, &stack, &secrets, &create).await;
    let old_id = created.body["Data"]["KeyId"].as_str().unwrap().to_owned();
    let old_key = secrets.of(app.company.as_str(), &old_id).unwrap()["key"].as_str().unwrap().to_owned();

    for (field, value) in [("userId", json!("another-service")), ("companyId", json!(other.as_str()))] {
        let mut props = create["ResourceProperties"].clone();
        props[field] = value;
        let replace = update(&app, &created, &create, props);
        let answer = answer_of(&app, &stack, &secrets, &replace).await;
        assert_answers(&answer, &replace, "SUCCESS");
        assert_ne!(answer.body["PhysicalResourceId"], created.body["PhysicalResourceId"], "{field}: a new key");
    }
    assert_eq!(secrets.count(), 3, "each key has its secret");
    let listed = crate::table_reads::scan_prefix(&app.client, &app.table, &format!("KEY#{other}#")).await;
    assert_eq!(listed.len(), 1, "the key moved to the other company");

    // CloudFormation then deletes the old resource: the key never verifies again, its secret is
    // gone; a Delete delivered again, and one of a resource that made nothing, succeed.
    let mut delete = request(&app, "Delete");
    delete["PhysicalResourceId"] = created.body["PhysicalResourceId"].clone();
    for _ in 0..2 {
        let answer = answer_of(&app, &stack, &secrets, &delete).await;
        assert_answers(&answer, &delete, "SUCCESS");
        assert_eq!(answer.body["PhysicalResourceId"], created.body["PhysicalResourceId"]);
    }
    assert_eq!(verify(&app, &old_key).await["valid"], false);
    assert_eq!(get(&app, &old_id).await["status"], "inactive");
    assert!(secrets.of(app.company.as_str(), &old_id).is_none());
    assert_eq!(secrets.count(), 2);
    delete["PhysicalResourceId"] = json!("BillingKey-not-created-1");
    assert_answers(&answer_of(&app, &stack, &secrets, &delete).await, &delete, "SUCCESS");
}

/// No key of the app's company but its root key.
async fn nothing_minted(app: &TestApp) -> bool {
    keys_of(app).await == 1
}

#[tokio::test]
async fn a_stack_cannot_mint_for_another_company_nor_a_management_key_unless_allowed() {
    let app = spawn_app().await;
    let secrets = Secrets::default();
    let elsewhere = CompanyId::parse("globex", "company").unwrap();
    // A company the parameter does not name, on Create and on Update.
    for request_type in ["Create", "Update"] {
        let mut refused = request(&app, request_type);
        refused["PhysicalResourceId"] = json!(format!("{}/earlier", app.company));
        refused["OldResourceProperties"] = refused["ResourceProperties"].clone();
        let answer = answer_of(&app, &stack_for(&[&elsewhere], true), &secrets, &refused).await;
        assert_answers(&answer, &refused, "FAILED");
        assert!(answer.body["Reason"].as_str().unwrap().contains("ApiKeyResourceCompanies"), "{}", answer.body);
    }
    // A keys: permission, while the stack does not allow them: 403's reason, nothing made.
    let mut admin = request(&app, "Create");
    admin["ResourceProperties"]["acl"] = json!([{ "permissions": ["keys:*"] }]);
    let answer = answer_of(&app, &stack_for(&[&app.company], false), &secrets, &admin).await;
    assert_answers(&answer, &admin, "FAILED");
    assert!(answer.body["Reason"].as_str().unwrap().contains("keys:*"), "{}", answer.body);
    // Bad properties, named: an unknown one, a value the API refuses, a huge one.
    for (field, value) in
        [("Status", json!("x")), ("rateLimit", json!({ "limit": "lots" })), ("description", json!("d".repeat(100_000)))]
    {
        let mut bad = request(&app, "Create");
        bad["ResourceProperties"][field] = value;
        let answer = answer_of(&app, &stack_for(&[&app.company], true), &secrets, &bad).await;
        assert_answers(&answer, &bad, "FAILED");
        let reason = answer.body["Reason"].as_str().unwrap();
        assert!(reason.contains(field) && reason.len() <= 1500, "{reason}");
    }
    assert!(nothing_minted(&app).await && secrets.count() == 0);

    // Allowed by the stack: the management key is made.
    let answer = answer_of(&app, &stack_for(&[&app.company], true), &secrets, &admin).await;
    assert_answers(&answer, &admin, "SUCCESS");
    let got = get(&app, answer.body["Data"]["KeyId"].as_str().unwrap()).await;
    assert_eq!(got["acl"][0]["permissions"], json!(["keys:*"]));
}

#[tokio::test]
async fn a_key_whose_secret_cannot_be_written_is_named_so_the_rollback_deletes_it() {
    let app = spawn_app().await;
    let stack = stack_for(&[&app.company], false);
    let refusing = Secrets { refuse: true, ..Secrets::default() };
    let create = request(&app, "Create");
    let answer = answer_of(&app, &stack, &refusing, &create).await;
    assert_answers(&answer, &create, "FAILED");
    assert!(answer.body["Reason"].as_str().unwrap().contains("AccessDeniedException"), "{}", answer.body);
    assert!(!answer.body.to_string().contains("sk_"), "{}", answer.body);
    let physical = answer.body["PhysicalResourceId"].as_str().unwrap();
    let (company, key_id) = physical.split_once('/').expect("the key's physical id");
    assert_eq!(company, app.company.as_str());

    let mut rollback = request(&app, "Delete");
    rollback["PhysicalResourceId"] = json!(physical);
    let answer = answer_of(&app, &stack, &Secrets::default(), &rollback).await;
    assert_answers(&answer, &rollback, "SUCCESS");
    assert_eq!(get(&app, key_id).await["status"], "inactive");
}

#[tokio::test]
async fn nothing_is_done_for_a_response_url_that_is_not_cloudformation_s() {
    let app = spawn_app().await;
    let (stack, secrets) = (stack_for(&[&app.company], false), Secrets::default());
    for url in [
        "https://attacker.example.com/stack?X-Amz-Signature=c0ffee",
        "https://attacker-bucket.s3.amazonaws.com/stack?X-Amz-Signature=c0ffee",
        "http://127.0.0.1:9/stack?X-Amz-Signature=c0ffee",
    ] {
        let mut forged = request(&app, "Create");
        forged["ResponseURL"] = json!(url);
        let error =
            api_key_resource::handle(&stack, &app.app.store, &secrets, app.app.clock.now(), forged).await.unwrap_err();
        assert!(error.contains("ResponseURL") && !error.contains("c0ffee"), "{url}: {error}");
    }
    assert!(nothing_minted(&app).await && secrets.count() == 0);
}

#[tokio::test]
async fn the_answer_goes_to_the_listener_and_at_trace_no_line_holds_the_key() {
    use tracing_subscriber::layer::SubscriberExt;
    let app = spawn_app().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let local = ResponseUrlPolicy::allowing_local_http(&address);
    let stack = ApiKeyResource::new(vec![app.company.clone()], false, PREFIX.into(), local);
    let secrets = Secrets::default();
    let mut create = request(&app, "Create");
    create["ResponseURL"] = json!(format!("http://{address}/stack/BillingKey?X-Amz-Signature=example"));

    // Everything the process would log at TRACE, but the lines it never logs.
    let printed = Captured::default();
    let writer = printed.writer();
    let filter = tracing_subscriber::filter::filter_fn(|meta| !apikeys::entry::config::never_logged(meta));
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::Layer::with_filter(tracing_subscriber::fmt::layer().with_writer(writer), filter));
    let guard = tracing::subscriber::set_default(subscriber);
    let answer = answer_of(&app, &stack, &secrets, &create).await;
    let (received, sent) = tokio::join!(receive_one(listener, 200), send_answer(&answer));
    drop(guard);
    sent.unwrap();
    let (head, body) = received;
    assert!(head.starts_with("PUT /stack/BillingKey?X-Amz-Signature=example HTTP/1.1"), "{head}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), answer.body);

    let key_id = answer.body["Data"]["KeyId"].as_str().unwrap();
    let key = secrets.of(app.company.as_str(), key_id).unwrap()["key"].as_str().unwrap().to_owned();
    let printed = printed.text();
    assert!(printed.contains("key minted into Secrets Manager"), "{printed}");
    let hash = apikeys::model::PlaintextKey::parse(&key).unwrap().1.hash();
    assert!(!printed.contains(&key), "the key was printed:\n{printed}");
    assert!(!printed.contains(hash.as_str()), "the key's hash was printed:\n{printed}");
}
