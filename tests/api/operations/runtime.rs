//! The real function binaries under the Lambda Runtime API of `lambda_harness`, on the sample
//! events of events/, against DynamoDB Local: what runs in AWS is what is tested here.
//!
//! Each test has its own table holding company `acme` (the events' company) and a root key of it
//! made here; the events get that key as their `Authorization` header (their
//! `requestContext.authorizer` block, where present, is kept as it is).

use apikeys::domain::keys::create_root_key;
use apikeys::model::{CompanyId, PlaintextKey};
use apikeys::store::DynamoStore;
use apikeys::store::table::create_table;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{Value, json};

use crate::helpers::{read_event, unique, with_root_key};
use crate::lambda_harness::Function;

/// A table of its own with company `acme` and a root key of it.
struct Stage {
    client: Client,
    table: String,
    store: DynamoStore,
    root_key: String,
}

impl Stage {
    async fn new() -> Stage {
        assert!(std::env::var("DYNAMODB_ENDPOINT").is_ok(), "run with `make test`, which starts DynamoDB Local");
        let client = aws_sdk_dynamodb::Client::new(&crate::helpers::test_sdk_config().await);
        let table = unique("lambda");
        create_table(&client, &table).await.expect("create the table");
        let store = DynamoStore::new(client.clone(), &table);
        let root_key = Stage::root_key_of(&store).await;
        Stage { client, table, store, root_key }
    }

    async fn root_key_of(store: &DynamoStore) -> String {
        let company = CompanyId::parse("acme", "company").unwrap();
        let created = create_root_key(store, company, None, chrono::Utc::now()).await.expect("a root key of acme");
        created.plaintext.expect("a new key's secret").expose().to_owned()
    }

    async fn start(&self, function: &str, extra: &[(&str, &str)]) -> Function {
        Function::start(function, &self.table, extra).await
    }

    /// events/<name>.json with this stage's root key as its credential.
    fn event(&self, name: &str) -> Value {
        with_root_key(read_event(name), &self.root_key)
    }

    async fn last_used_at(&self, key_id: &str) -> Option<String> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("KEY#acme#{key_id}")))
            .key("sk", AttributeValue::S("KEY".into()))
            .consistent_read(true)
            .send()
            .await
            .unwrap()
            .item?;
        item.get("lastUsedAt").and_then(|v| v.as_s().ok()).cloned()
    }
}

/// An event's JSON body, replaced.
fn with_body(mut event: Value, body: &Value) -> Value {
    event["body"] = json!(body.to_string());
    event
}

/// The Lambda request ids of the `request` spans of `function` in JSON log lines (each line
/// lists its spans, outermost first).
fn request_ids(printed: &str, function: &str) -> std::collections::BTreeSet<String> {
    let lines: Vec<Value> = printed.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "JSON log lines in Lambda:\n{printed}");
    lines
        .iter()
        .flat_map(|line| line["spans"].as_array().cloned().unwrap_or_default())
        .filter(|span| span["name"] == "request")
        .map(|span| {
            assert_eq!(span["function"], function, "{span}");
            span["requestId"].as_str().filter(|id| !id.is_empty()).expect("a request id").to_owned()
        })
        .collect()
}

/// One function, one event: its answer, the process stopped.
async fn answer(stage: &Stage, function: &str, event: Value) -> (u16, Value) {
    let mut running = stage.start(function, &[]).await;
    let answer = running.call(event).await;
    running.wait_for_next(2).await;
    assert_eq!(running.left_running(), Vec::<usize>::new(), "{function}: DynamoDB calls in flight after the answer");
    running.stop().await;
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_answers_its_sample_event() {
    let stage = Stage::new().await;

    let (status, created) = answer(&stage, "create_custom_key", stage.event("create_custom_key")).await;
    assert_eq!((status, created["id"].as_str()), (201, Some("billing-svc")), "{created}");
    assert!(created["key"].as_str().is_some_and(|k| k.starts_with("sk_")));

    let (status, created) = answer(&stage, "create_key", stage.event("create_key")).await;
    assert_eq!(status, 201, "{created}");
    let secret = created["key"].as_str().expect("the new secret").to_owned();
    assert_eq!(created["rateLimit"]["limit"], 100);

    let (status, got) = answer(&stage, "get_key", stage.event("get_key")).await;
    assert_eq!((status, got["id"].as_str(), got["userId"].as_str()), (200, Some("billing-svc"), Some("user_42")));
    assert!(got.get("key").is_none(), "a secret is shown only when made");

    let (status, listed) = answer(&stage, "list_keys", stage.event("list_keys")).await;
    assert_eq!((status, listed["total"].as_u64(), listed["count"].as_u64()), (200, Some(3), Some(3)), "{listed}");

    let (status, updated) = answer(&stage, "update_key", stage.event("update_key")).await;
    assert_eq!((status, updated["description"].as_str()), (200, Some("Billing service, rotated monthly")));
    assert_eq!(updated["rateLimit"]["limit"], 200);

    let (status, events) = answer(&stage, "list_key_events", stage.event("list_key_events")).await;
    assert_eq!((status, events["total"].as_u64()), (200, Some(2)), "created and updated: {events}");

    let verify = stage.event("verify_key");
    let mut body: Value = serde_json::from_str(verify["body"].as_str().unwrap()).unwrap();
    body["key"] = json!(secret);
    let (status, verdict) = answer(&stage, "verify_key", with_body(verify, &body)).await;
    assert_eq!(
        (status, verdict["valid"].as_bool(), verdict["code"].as_str()),
        (200, Some(true), Some("VALID")),
        "{verdict}"
    );
    assert_eq!(verdict["keyId"], created["id"]);

    let (status, rolled) = answer(&stage, "roll_key", stage.event("roll_key")).await;
    assert_eq!(status, 200, "{rolled}");
    assert!(rolled["key"].as_str().is_some_and(|k| k.starts_with("sk_")), "the new secret is shown");

    let (status, deleted) = answer(&stage, "delete_key", stage.event("delete_key")).await;
    assert_eq!((status, deleted), (204, Value::Null));

    let mut stream = stage.start("retention_stream", &[]).await;
    let outcome = stream.invoke(stage.event("retention_stream")).await;
    stream.stop().await;
    let handled = outcome.unwrap_or_else(|e| panic!("the stream function failed: {e}"));
    // The record's key is not in the table; the batch is handled and nothing fails.
    assert!(handled.is_number() || handled["batchItemFailures"].as_array().is_some_and(|f| f.is_empty()), "{handled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_used_at_is_in_the_table_when_verify_has_answered_and_nothing_runs_after() {
    let stage = Stage::new().await;
    let verified = Stage::root_key_of(&stage.store).await;
    let verified_id = {
        let (_, plaintext) = PlaintextKey::parse(&verified).unwrap();
        let record = apikeys::store::SecretLookup::find_secret(&stage.store, &plaintext.hash()).await.unwrap();
        record.expect("the key just made").key.id.to_string()
    };
    assert_eq!(stage.last_used_at(&verified_id).await, None);

    let mut function = stage.start("verify_key", &[]).await;
    let (status, verdict) = function.call(with_body(stage.event("verify_key"), &json!({ "key": verified }))).await;
    assert_eq!((status, verdict["code"].as_str()), (200, Some("VALID")), "{verdict}");
    // Asked for the next event, the process is frozen: whatever it left running is not running.
    function.wait_for_next(2).await;
    assert_eq!(function.left_running(), Vec::<usize>::new(), "DynamoDB calls still in flight after the answer");
    assert!(stage.last_used_at(&verified_id).await.is_some(), "lastUsedAt written before the answer");
    function.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_level_nothing_printed_holds_a_key_its_hash_or_the_authorization_header() {
    let stage = Stage::new().await;
    let trace = [("RUST_LOG", "trace"), ("AWS_LAMBDA_LOG_LEVEL", "TRACE")];
    let mut secrets = vec![stage.root_key.clone()];
    let mut printed = String::new();

    let mut create = stage.start("create_custom_key", &trace).await;
    let (status, created) = create.call(stage.event("create_custom_key")).await;
    assert_eq!(status, 201, "{created}");
    secrets.push(created["key"].as_str().unwrap().to_owned());
    printed += &create.stop().await.all();

    let mut verify = stage.start("verify_key", &trace).await;
    for key in [&secrets[1], &stage.root_key] {
        let (status, verdict) = verify.call(with_body(stage.event("verify_key"), &json!({ "key": key }))).await;
        assert_eq!(status, 200, "{verdict}");
    }
    let verify_output = verify.stop().await.all();
    assert_eq!(request_ids(&verify_output, "verify_key").len(), 2, "one request span per invocation");
    printed += &verify_output;

    let mut roll = stage.start("roll_key", &trace).await;
    let (status, rolled) = roll.call(stage.event("roll_key")).await;
    assert_eq!(status, 200, "{rolled}");
    secrets.push(rolled["key"].as_str().unwrap().to_owned());
    printed += &roll.stop().await.all();

    assert!(printed.lines().count() > 20, "trace level logs plenty:\n{printed}");
    for secret in &secrets {
        let hash = PlaintextKey::parse(secret).unwrap().1.hash();
        for (what, needle) in [("a plaintext key", secret.as_str()), ("a key's hash", hash.as_str())] {
            let found = printed.lines().find(|line| line.contains(needle));
            assert!(found.is_none(), "{what} was printed: {}", found.unwrap_or_default());
        }
    }
    let found = printed.lines().find(|line| line.to_ascii_lowercase().contains("bearer "));
    assert!(found.is_none(), "an Authorization header value was printed: {}", found.unwrap_or_default());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_trace_level_a_signed_leak_report_prints_no_token_nor_either_of_its_hashes() {
    use sha2::{Digest, Sha256};
    let stage = Stage::new().await;
    let leaked = Stage::root_key_of(&stage.store).await;
    let scanner = crate::security::leaks::Scanner::new();
    let document = scanner.document();
    let report = json!([{ "token": leaked, "type": "apikeys_secret", "url": "https://github.com/o/r/blob/x/.env", "source": "content" }]);
    let mut event = with_body(stage.event("secret_scanning_github"), &report);
    let body = event["body"].as_str().unwrap().to_owned();
    event["headers"]["content-length"] = json!(body.len().to_string());
    event["headers"]["github-public-key-identifier"] = json!(scanner.id);
    event["headers"]["github-public-key-signature"] = json!(scanner.sign(body.as_bytes()));

    let trace = [("RUST_LOG", "trace"), ("AWS_LAMBDA_LOG_LEVEL", "TRACE"), ("SECRET_SCANNING_PUBLIC_KEYS", &document)];
    let mut function = stage.start("secret_scanning_github", &trace).await;
    let (status, feedback) = function.call(event).await;
    let printed = function.stop().await.all();
    let reported_hash = hex::encode(Sha256::digest(leaked.as_bytes()));
    assert_eq!(status, 200, "{feedback}");
    assert_eq!(
        feedback,
        json!([{ "token_hash": reported_hash, "token_type": "apikeys_secret", "label": "true_positive" }])
    );

    assert!(printed.lines().count() > 10, "trace level logs plenty:\n{printed}");
    let stored_hash = PlaintextKey::parse(&leaked).unwrap().1.hash();
    for (what, needle) in
        [("the token", leaked.as_str()), ("its stored hash", stored_hash.as_str()), ("its token_hash", &reported_hash)]
    {
        let found = printed.lines().find(|line| line.contains(needle));
        assert!(found.is_none(), "{what} was printed: {}", found.unwrap_or_default());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_log_level_wins_over_rust_log_and_the_text_format_is_text() {
    let stage = Stage::new().await;
    let quiet = [("RUST_LOG", "trace"), ("AWS_LAMBDA_LOG_LEVEL", "WARN")];
    let mut function = stage.start("list_keys", &quiet).await;
    assert_eq!(function.call(stage.event("list_keys")).await.0, 200);
    let printed = function.stop().await.stderr;
    let below_warn: Vec<&String> =
        printed.iter().filter(|l| ["\"TRACE\"", "\"DEBUG\"", "\"INFO\""].iter().any(|lvl| l.contains(lvl))).collect();
    assert!(below_warn.is_empty(), "AWS_LAMBDA_LOG_LEVEL=WARN, yet: {below_warn:?}");

    let text = [("AWS_LAMBDA_LOG_LEVEL", "DEBUG"), ("AWS_LAMBDA_LOG_FORMAT", "Text")];
    let mut function = stage.start("list_keys", &text).await;
    assert_eq!(function.call(stage.event("list_keys")).await.0, 200);
    let printed = function.stop().await.stderr;
    assert!(printed.iter().any(|l| l.contains("DEBUG")), "DEBUG lines: {printed:?}");
    assert!(printed.iter().all(|l| serde_json::from_str::<Value>(l).is_err()), "text, not JSON: {printed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_verify_prints_its_outcome_as_one_embedded_metric_line_that_the_aggregator_counts_once() {
    let stage = Stage::new().await;
    let unknown = PlaintextKey::generate(apikeys::model::KeyType::Secret);
    let mut function = stage.start("verify_key", &[]).await;
    let mut root_key_id = String::new();
    for key in [stage.root_key.as_str(), unknown.expose(), stage.root_key.as_str()] {
        let (status, body) = function.call(with_body(stage.event("verify_key"), &json!({ "key": key }))).await;
        assert_eq!(status, 200);
        if let Some(id) = body["keyId"].as_str() {
            root_key_id = id.to_owned();
        }
    }
    let output = function.stop().await;
    let printed: Vec<&String> = output.stdout.iter().filter(|line| line.contains("\"_aws\"")).collect();
    let metrics: Vec<Value> = printed.iter().filter_map(|line| serde_json::from_str::<Value>(line).ok()).collect();
    let codes: Vec<&str> =
        metrics.iter().filter_map(|m| m["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"].as_str()).collect();
    assert_eq!(codes, ["VALID", "NOT_FOUND", "VALID"], "one line per verify, on stdout:\n{}", output.all());
    for (metric, code) in metrics.iter().zip(&codes) {
        let directive = &metric["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            (directive["Namespace"].as_str(), &directive["Dimensions"]),
            (Some("ApiKeys/Verify"), &json!([["FunctionName"]]))
        );
        assert_eq!((metric["FunctionName"].as_str(), metric[*code].as_u64()), (Some("apikeys-verify_key"), Some(1)));
        let usage = if *code == "NOT_FOUND" {
            Value::Null
        } else {
            json!({ "company": "acme", "keyId": root_key_id, "identityId": null, "outcome": code })
        };
        assert_eq!(metric.get("usage").cloned().unwrap_or(Value::Null), usage, "no key to count for NOT_FOUND");
        assert_eq!(metric.as_object().unwrap().len(), 3 + usize::from(!usage.is_null()), "nothing else: {metric}");
    }
    assert!(output.stderr.iter().all(|l| !l.contains("_aws")), "metrics go to stdout, logs to stderr");

    // The lines as the subscription filter delivers them, to the aggregator binary, twice.
    let batch = crate::helpers::log_batch(&printed.iter().map(|l| l.as_str()).collect::<Vec<_>>(), chrono::Utc::now());
    let mut aggregator = stage.start("usage_aggregator", &[]).await;
    let first = aggregator.invoke(batch.clone()).await.expect("the batch is counted");
    assert_eq!(first, json!({ "written": 2, "alreadyAdded": 0 }), "the key's hour and day");
    let again = aggregator.invoke(batch.clone()).await.expect("the batch is answered again");
    assert_eq!(again, json!({ "written": 0, "alreadyAdded": 2 }), "a redelivery adds nothing");
    aggregator.stop().await;
    let mut usage = stage.start("key_usage", &[]).await;
    let mut event = stage.event("key_usage");
    event["pathParameters"]["keyId"] = json!(root_key_id);
    event["rawPath"] = json!(format!("/keys/{root_key_id}/usage"));
    event["requestContext"]["http"]["path"] = event["rawPath"].clone();
    // The last 24 hours (the default): the lines were just logged.
    event["rawQueryString"] = json!("");
    event.as_object_mut().unwrap().remove("queryStringParameters");
    let (status, body) = usage.call(event).await;
    usage.stop().await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["totals"], json!({ "VALID": 2 }), "counted once though delivered twice: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_a_function_cannot_read_is_posted_as_an_error_and_the_next_is_served() {
    let stage = Stage::new().await;
    let mut stream = stage.start("retention_stream", &[]).await;
    let refused = stream.invoke(json!({ "Records": "not a list" })).await;
    let error = refused.expect_err("an unreadable batch is an invocation error");
    assert!(error["errorType"].as_str().is_some_and(|t| !t.is_empty()), "{error}");
    assert!(stream.invoke(stage.event("retention_stream")).await.is_ok(), "the next event is served");
    stream.stop().await;

    let mut get = stage.start("get_key", &[]).await;
    let refused = get.invoke(json!({ "version": "2.0", "headers": 42 })).await;
    assert!(refused.is_err(), "{refused:?}");
    let (status, body) = get.call(stage.event("get_key")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "no billing-svc in this table");
    get.stop().await;
}
