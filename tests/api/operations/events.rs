//! Lifecycle events: the `lifecycle_events` function on stream records built from the items the
//! API wrote in DynamoDB Local, publishing through the real SDK to a local stand-in for
//! EventBridge (awsJson1_1 `AWSEvents.PutEvents`) and EventBridge Scheduler (restJson1
//! `POST/PUT/DELETE /schedules/{Name}`) that records every request and keeps the schedules.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use apikeys::domain::ManualClock;
use apikeys::entry::events::{AwsPublisher, handle_batch};
use apikeys::entry::http::routes::EVENTS_FUNCTION;
use apikeys::settings::{EventSettings, LifecycleEvents};
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::DynamoDbEventResponse;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::TimeDelta;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Captured, TestApp, read_event, spawn_app, test_sdk_config};

type Item = HashMap<String, AttributeValue>;

const BUS_ARN: &str = "arn:aws:events:us-east-1:123456789012:event-bus/apikeys-test";
const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/apikeys-scheduler";
const GROUP: &str = "apikeys-key-expiry";
const DEAD_LETTER_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:apikeys-StreamFailureQueue";

/// One request the stand-in received: method, path (query included), `X-Amz-Target`, body.
#[derive(Debug, Clone)]
struct Received {
    method: String,
    path: String,
    target: String,
    body: Value,
}

#[derive(Default)]
struct StandInState {
    received: Vec<Received>,
    /// The schedules that exist, by name: the last body that made or replaced each.
    schedules: BTreeMap<String, Value>,
    /// Events (by `eventId`) whose PutEvents entry is refused.
    refused: HashSet<String>,
    /// Schedule puts whose `ScheduleExpression` holds the text, answered with (status, error type).
    schedule_answers: Vec<(String, u16, &'static str)>,
    /// Moved on by so much at each such answer: a call that took a while.
    clock_on_answer: Option<(Arc<ManualClock>, TimeDelta)>,
}

/// The stand-in, serving on 127.0.0.1 until dropped.
struct StandIn {
    url: String,
    state: Arc<Mutex<StandInState>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StandIn {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(StandInState::default()));
        let shared = state.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else { return };
                tokio::spawn(serve_connection(socket, shared.clone()));
            }
        });
        Self { url, state, server }
    }

    async fn publisher(&self) -> AwsPublisher {
        let settings = EventSettings {
            eventbridge_endpoint: Some(self.url.clone()),
            scheduler_endpoint: Some(self.url.clone()),
            expiring_days: 7,
            ..EventSettings::default()
        };
        let target = LifecycleEvents {
            bus_arn: BUS_ARN.into(),
            schedule_group: GROUP.into(),
            scheduler_role_arn: ROLE_ARN.into(),
            scheduler_dead_letter_arn: DEAD_LETTER_ARN.into(),
        };
        AwsPublisher::new(&test_sdk_config().await, &settings, target)
    }

    /// Every request so far, and forgets them.
    fn take(&self) -> Vec<Received> {
        std::mem::take(&mut self.state.lock().unwrap().received)
    }

    fn schedules(&self) -> BTreeMap<String, Value> {
        self.state.lock().unwrap().schedules.clone()
    }

    fn refuse(&self, event_id: &str) {
        self.state.lock().unwrap().refused.insert(event_id.to_owned());
    }

    /// Answers a schedule put whose expression holds `expression` with `status` and `error`.
    fn answer_schedules(&self, expression: &str, status: u16, error: &'static str) {
        self.state.lock().unwrap().schedule_answers.push((expression.to_owned(), status, error));
    }
}

/// Requests of one kept-alive connection, each answered as the service would.
async fn serve_connection(mut socket: tokio::net::TcpStream, state: Arc<Mutex<StandInState>>) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
        let header = |name: &str| {
            head.lines()
                .find_map(|l| {
                    l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
                })
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().unwrap_or(0);
        while buffer.len() < head_end + 4 + length {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Vec<u8> = buffer[head_end + 4..head_end + 4 + length].to_vec();
        buffer.drain(..head_end + 4 + length);
        let mut request_line = head.lines().next().unwrap_or_default().split(' ');
        let (method, path) = (request_line.next().unwrap_or_default(), request_line.next().unwrap_or_default());
        let received = Received {
            method: method.to_owned(),
            path: path.to_owned(),
            target: header("x-amz-target"),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        };
        let (status, error_type, answer) = answer(&mut state.lock().unwrap(), received);
        let content_type =
            if answer.get("Entries").is_some() { "application/x-amz-json-1.1" } else { "application/json" };
        let error_header = error_type.map_or(String::new(), |t| format!("x-amzn-errortype: {t}\r\n"));
        let text = answer.to_string();
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\n{error_header}content-length: {}\r\n\r\n{text}",
            text.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// The stand-in's answer to one request: (status, error type, body).
fn answer(state: &mut StandInState, request: Received) -> (u16, Option<&'static str>, Value) {
    state.received.push(request.clone());
    if request.target == "AWSEvents.PutEvents" {
        let entries = request.body["Entries"].as_array().cloned().unwrap_or_default();
        let mut failed = 0;
        let answers: Vec<Value> = entries
            .iter()
            .enumerate()
            .map(|(n, entry)| {
                let detail: Value = serde_json::from_str(entry["Detail"].as_str().unwrap_or("{}")).unwrap_or_default();
                if state.refused.contains(detail["eventId"].as_str().unwrap_or_default()) {
                    failed += 1;
                    json!({ "ErrorCode": "InternalException", "ErrorMessage": "refused by the stand-in" })
                } else {
                    json!({ "EventId": format!("standin-{}-{n}", state.received.len()) })
                }
            })
            .collect();
        return (200, None, json!({ "FailedEntryCount": failed, "Entries": answers }));
    }
    let Some(name) = request.path.strip_prefix("/schedules/").map(|p| p.split('?').next().unwrap_or(p).to_owned())
    else {
        return (404, Some("UnknownOperationException"), json!({ "Message": "no such operation" }));
    };
    if matches!(request.method.as_str(), "POST" | "PUT") {
        let expression = request.body["ScheduleExpression"].as_str().unwrap_or_default();
        if let Some((_, status, error)) = state.schedule_answers.iter().find(|(text, _, _)| expression.contains(text)) {
            if let Some((clock, by)) = &state.clock_on_answer {
                clock.advance(*by);
            }
            return (*status, Some(*error), json!({ "Message": format!("{error} from the stand-in") }));
        }
    }
    let arn = json!({ "ScheduleArn": format!("arn:aws:scheduler:us-east-1:123456789012:schedule/{GROUP}/{name}") });
    let exists = state.schedules.contains_key(&name);
    match (request.method.as_str(), exists) {
        ("POST", true) => (409, Some("ConflictException"), json!({ "Message": "the schedule exists" })),
        ("POST" | "PUT", false) if request.method == "PUT" => {
            (404, Some("ResourceNotFoundException"), json!({ "Message": "no such schedule" }))
        }
        ("POST" | "PUT", _) => {
            state.schedules.insert(name, request.body);
            (200, None, arn)
        }
        ("DELETE", true) => {
            state.schedules.remove(&name);
            (200, None, json!({}))
        }
        ("DELETE", false) => (404, Some("ResourceNotFoundException"), json!({ "Message": "no such schedule" })),
        _ => (400, Some("ValidationException"), json!({ "Message": "unexpected" })),
    }
}

/// A stream record as Lambda delivers it (from events/lifecycle_events.json's), of an item's
/// change: `old` and `new` its images, `seq` its sequence number.
fn record(event_id: &str, seq: usize, old: Option<&Item>, new: Option<&Item>) -> EventRecord {
    let mut record: EventRecord = serde_json::from_value(read_event(EVENTS_FUNCTION)["Records"][0].clone()).unwrap();
    record.event_id = event_id.to_owned();
    record.event_name = match (old, new) {
        (None, _) => "INSERT",
        (Some(_), Some(_)) => "MODIFY",
        (Some(_), None) => "REMOVE",
    }
    .to_owned();
    record.change.sequence_number = Some(seq.to_string());
    let image = |item: Option<&Item>| item.map(|i| serde_dynamo::Item::from(i.clone())).unwrap_or_default();
    let address = old.or(new).unwrap();
    record.change.keys = serde_dynamo::Item::from(Item::from([
        ("pk".into(), address["pk"].clone()),
        ("sk".into(), address["sk"].clone()),
    ]));
    record.change.old_image = image(old);
    record.change.new_image = image(new);
    record
}

fn batch(records: Vec<EventRecord>) -> Event {
    let mut event: Event = serde_json::from_value(read_event(EVENTS_FUNCTION)).unwrap();
    event.records = records;
    event
}

/// The INSERT records of every audit item of the key, in its trail's order, numbered from `first`.
async fn audit_records(app: &TestApp, key_id: &str, first: usize) -> Vec<EventRecord> {
    let items = app
        .client
        .query()
        .table_name(&app.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("EVENTS#{}#{key_id}", app.company)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    items
        .iter()
        .enumerate()
        .map(|(n, item)| record(&format!("audit-{}", first + n), first + n, None, Some(item)))
        .collect()
}

/// The entries of every PutEvents call received: (detail-type, detail), in order.
fn published(received: &[Received]) -> Vec<(String, Value)> {
    received
        .iter()
        .filter(|r| r.target == "AWSEvents.PutEvents")
        .flat_map(|r| r.body["Entries"].as_array().cloned().unwrap_or_default())
        .map(|entry| {
            assert_eq!(entry["Source"], "apikeys");
            assert_eq!(entry["EventBusName"], BUS_ARN);
            (
                entry["DetailType"].as_str().unwrap().to_owned(),
                serde_json::from_str(entry["Detail"].as_str().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

fn no_failure(answer: &DynamoDbEventResponse) {
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
}

fn key_id(created: &Value) -> String {
    created["id"].as_str().unwrap().to_owned()
}

/// The schedule calls received: (method, schedule name).
fn schedule_calls(received: &[Received]) -> Vec<(String, String)> {
    received
        .iter()
        .filter_map(|r| {
            let name = r.path.strip_prefix("/schedules/")?;
            Some((r.method.clone(), name.split('?').next().unwrap_or(name).to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn a_created_rolled_and_deleted_key_publishes_exactly_its_events_and_a_redelivery_the_same_ids() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    let created = app.create_key(&json!({ "userId": "u", "expiresAt": "2030-03-01T00:00:00Z" })).await;
    let id = key_id(&created);
    let rolled = app.roll_key(&id, None).await;
    assert_eq!(rolled.status, StatusCode::OK, "{:?}", rolled.body);
    assert_eq!(app.delete_key(&id).await.status, StatusCode::NO_CONTENT);

    // The trail's three records, and beside them changes no event follows (the key item's own).
    let mut records = audit_records(&app, &id, 1).await;
    assert_eq!(records.len(), 3);
    let key_item = app.stored_item(&format!("KEY#{}#{id}", app.company), "KEY").await.unwrap();
    records.insert(1, record("key-modify", 100, Some(&key_item), Some(&key_item)));
    let event = batch(records);
    let answer = handle_batch(&publisher, app.clock.as_ref(), 7, event.clone()).await.unwrap();
    no_failure(&answer);

    let received = stand_in.take();
    let events = published(&received);
    assert_eq!(types(&events), ["key.created", "key.rolled", "key.deleted"]);
    let trail = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await.body;
    let trail = trail["data"].as_array().unwrap().clone();
    let trail_ids: HashSet<&str> = trail.iter().map(|e| e["id"].as_str().unwrap()).collect();
    for (_, detail) in &events {
        assert_eq!(detail["companyId"], app.company.as_str());
        assert_eq!(detail["keyId"], id.as_str());
        assert_eq!(detail["actorType"], "key");
        assert_eq!(detail["actor"], trail[0]["actor"], "the actor of the audit record");
        assert!(trail_ids.contains(detail["eventId"].as_str().unwrap()), "the audit record's id: {detail}");
    }
    let fields = |n: usize| -> Vec<&str> {
        events[n].1["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect()
    };
    assert!(fields(0).contains(&"expiresAt") && fields(0).contains(&"userId"), "{:?}", fields(0));
    assert!(fields(1).contains(&"keyPrefix") && fields(1).contains(&"gracePeriodSeconds"), "{:?}", fields(1));
    assert!(fields(2).contains(&"status") && fields(2).contains(&"deletedAt"), "{:?}", fields(2));

    // Created: both schedules; deleted: both removed.
    let calls = schedule_calls(&received);
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(methods, ["POST", "POST", "DELETE", "DELETE"]);
    assert_eq!((&calls[0].1, &calls[1].1), (&calls[2].1, &calls[3].1));
    assert!(stand_in.schedules().is_empty(), "nothing is left scheduled for a deleted key");

    // The same batch again (Lambda's retry): the same event ids, in the same order.
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, event).await.unwrap());
    let again = published(&stand_in.take());
    let ids = |events: &[(String, Value)]| -> Vec<String> {
        events.iter().map(|(_, d)| d["eventId"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&again), ids(&events));
    assert!(stand_in.schedules().is_empty());

    // No detail, and nothing sent anywhere, holds a secret, a hash or a plaintext.
    let mut secrets: Vec<String> =
        [&created["key"], &rolled.body["key"]].iter().map(|k| k.as_str().unwrap().to_owned()).collect();
    for name in ["secretHash", "publishableKey", "lookupHash"] {
        secrets.extend(key_item.get(name).and_then(|v| v.as_s().ok()).cloned());
    }
    if let Some(previous) = key_item.get("previousSecret").and_then(|v| v.as_m().ok()) {
        secrets.extend(previous.get("hash").and_then(|v| v.as_s().ok()).cloned());
    }
    assert!(secrets.len() >= 3, "the plaintexts and the hash: {secrets:?}");
    let sent = format!("{received:?}");
    for secret in &secrets {
        assert!(!sent.contains(secret.as_str()), "a secret or hash was sent");
    }
    const DETAIL: [&str; 9] =
        ["eventId", "companyId", "keyId", "identityId", "actor", "actorType", "fields", "at", "expiresAt"];
    for (_, detail) in &events {
        assert!(detail.as_object().unwrap().keys().all(|k| DETAIL.contains(&k.as_str())), "{detail}");
    }
}

#[tokio::test]
async fn a_keys_expiry_is_scheduled_replaced_published_when_due_and_removed() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    // The clock stands at 2030-01-01: the expiry two months on, key.expiring 7 days before it.
    let id = key_id(&app.create_key(&json!({ "userId": "u", "expiresAt": "2030-03-01T00:00:00Z" })).await);
    let records = audit_records(&app, &id, 1).await;
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    let received = stand_in.take();
    assert_eq!(types(&published(&received)), ["key.created"]);
    let schedules = stand_in.schedules();
    assert_eq!(schedules.len(), 2);
    let audit_id = published(&received)[0].1["eventId"].as_str().unwrap().to_owned();
    let mut expected = BTreeMap::new();
    for (kind, at) in [("expiring", "at(2030-02-22T00:00:00)"), ("expired", "at(2030-03-01T00:00:00)")] {
        let (name, body) = schedules.iter().find(|(name, _)| name.starts_with(&format!("key-{kind}-"))).unwrap();
        assert!(name.len() <= 64, "{name}");
        assert_eq!(body["ScheduleExpression"], at);
        assert_eq!(body["ScheduleExpressionTimezone"], "UTC");
        assert_eq!(body["ActionAfterCompletion"], "DELETE");
        assert_eq!(body["FlexibleTimeWindow"]["Mode"], "OFF");
        assert_eq!(body["GroupName"], GROUP);
        let target = &body["Target"];
        assert_eq!((target["Arn"].as_str(), target["RoleArn"].as_str()), (Some(BUS_ARN), Some(ROLE_ARN)));
        // What Scheduler cannot publish after a day of retries is kept, not dropped.
        assert_eq!(target["DeadLetterConfig"], json!({ "Arn": DEAD_LETTER_ARN }));
        assert_eq!(target["RetryPolicy"], json!({ "MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185 }));
        assert_eq!(
            target["EventBridgeParameters"],
            json!({ "DetailType": format!("key.{kind}"), "Source": "apikeys" })
        );
        let detail: Value = serde_json::from_str(target["Input"].as_str().unwrap()).unwrap();
        assert_eq!(detail["eventId"], format!("{audit_id}-{kind}"));
        assert_eq!(
            (detail["keyId"].as_str(), detail["expiresAt"].as_str()),
            (Some(id.as_str()), Some("2030-03-01T00:00:00Z"))
        );
        assert_eq!(detail["fields"], json!(["expiresAt"]));
        expected.insert(kind, name.clone());
    }

    // A new expiry replaces both (a create that meets the name is an update).
    let patched = app.patch_key(&id, &json!({ "expiresAt": "2030-06-01T00:00:00Z" }), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let records = audit_records(&app, &id, 1).await.split_off(1);
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    let received = stand_in.take();
    assert_eq!(types(&published(&received)), ["key.updated"]);
    let methods: Vec<String> = schedule_calls(&received).into_iter().map(|(m, _)| m).collect();
    assert_eq!(methods, ["POST", "PUT", "POST", "PUT"], "created, found to exist, replaced");
    let schedules = stand_in.schedules();
    assert_eq!(schedules[&expected["expiring"]]["ScheduleExpression"], "at(2030-05-25T00:00:00)");
    assert_eq!(schedules[&expected["expired"]]["ScheduleExpression"], "at(2030-06-01T00:00:00)");

    // Three days away: key.expiring is due already, published now and its schedule removed.
    let patched = app.patch_key(&id, &json!({ "expiresAt": "2030-01-04T00:00:00Z" }), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let records = audit_records(&app, &id, 1).await.split_off(2);
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    let events = published(&stand_in.take());
    assert_eq!(types(&events), ["key.updated", "key.expiring"]);
    assert_eq!(events[1].1["expiresAt"], "2030-01-04T00:00:00Z");
    let schedules = stand_in.schedules();
    assert_eq!(schedules.keys().collect::<Vec<_>>(), [&expected["expired"]]);

    // No expiry: nothing scheduled.
    let patched = app.patch_key(&id, &json!({ "expiresAt": null }), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let records = audit_records(&app, &id, 1).await.split_off(3);
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    assert_eq!(schedule_calls(&stand_in.take()).len(), 2);
    assert!(stand_in.schedules().is_empty());
}

#[tokio::test]
async fn an_identity_created_updated_and_deleted_publishes_its_events_and_its_keys_counts_none() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    let identity = app.create_identity("cust-1").await;
    let identity_id = identity["id"].as_str().unwrap().to_owned();
    let pk = format!("IDENTITY#{}#{identity_id}", app.company);
    let read = || app.stored_item(&pk, "IDENTITY");
    let made = read().await.unwrap();
    let key = key_id(&app.create_key(&json!({ "userId": "u", "identityId": identity_id })).await);
    let counted = read().await.unwrap();
    let patch = json!({ "meta": { "plan": "gold" } });
    let patched = app.identity(&app.root_key, Method::PATCH, &identity_id, Some(&patch)).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let changed = read().await.unwrap();
    assert_eq!(app.delete_key(&key).await.status, StatusCode::NO_CONTENT);
    let uncounted = read().await.unwrap();
    let deleted = app.identity(&app.root_key, Method::DELETE, &identity_id, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    let last = read().await;

    let mut records = vec![
        record("id-1", 1, None, Some(&made)),
        record("id-2", 2, Some(&made), Some(&counted)),
        record("id-3", 3, Some(&counted), Some(&changed)),
        record("id-4", 4, Some(&changed), Some(&uncounted)),
    ];
    // Deleted: the item goes, or stays as a tombstone.
    records.push(record("id-5", 5, Some(&uncounted), last.as_ref()));
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    let received = stand_in.take();
    let events = published(&received);
    assert_eq!(types(&events), ["identity.created", "identity.updated", "identity.deleted"]);
    let event_ids: Vec<&str> = events.iter().map(|(_, d)| d["eventId"].as_str().unwrap()).collect();
    assert_eq!(event_ids, ["id-1", "id-3", "id-5"], "the stream record's own id");
    assert_eq!(events[0].1["fields"], json!(["externalId"]));
    assert_eq!(events[1].1["fields"], json!(["meta"]));
    for (_, detail) in &events {
        assert_eq!(
            (detail["companyId"].as_str(), detail["identityId"].as_str()),
            (Some(app.company.as_str()), Some(identity_id.as_str()))
        );
        assert!(detail.get("keyId").is_none());
        assert!(!detail.to_string().contains("gold") && !detail.to_string().contains("cust-1"), "names, not values");
    }
    assert!(schedule_calls(&received).is_empty());
}

#[tokio::test]
async fn a_refused_entry_fails_its_record_and_events_go_ten_a_call() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    let id = key_id(&app.create_key(&json!({ "userId": "u" })).await);
    for n in 0..11 {
        let patched = app.patch_key(&id, &json!({ "description": format!("change {n}") }), &[]).await;
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    }
    let records = audit_records(&app, &id, 1).await;
    assert_eq!(records.len(), 12);
    let refused = records[10].change.new_image.clone();
    let refused: Item = refused.into();
    stand_in.refuse(refused["id"].as_s().unwrap());
    let answer = handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap();
    assert_eq!(serde_json::to_value(&answer).unwrap(), json!({ "batchItemFailures": [{ "itemIdentifier": "11" }] }));
    let received = stand_in.take();
    let calls: Vec<usize> = received
        .iter()
        .filter(|r| r.target == "AWSEvents.PutEvents")
        .map(|r| r.body["Entries"].as_array().unwrap().len())
        .collect();
    assert_eq!(calls, [10, 2], "PutEvents takes at most 10 entries");
}

#[tokio::test]
async fn an_unreadable_record_fails_for_a_retry_and_is_not_skipped() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    let id = key_id(&app.create_key(&json!({ "userId": "u" })).await);
    let patched = app.patch_key(&id, &json!({ "description": "changed" }), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let mut records = audit_records(&app, &id, 1).await;
    assert_eq!(records.len(), 2);
    // An audit item the model refuses (a hand edit, or a bug), between the two.
    let mut unreadable: Item = records[1].change.new_image.clone().into();
    unreadable.insert("action".into(), AttributeValue::S("not-an-action".into()));
    records.insert(1, record("unreadable", 7, None, Some(&unreadable)));
    let answer = handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        json!({ "batchItemFailures": [{ "itemIdentifier": "7" }] }),
        "retried, then kept in StreamFailureQueue: not skipped"
    );
    let events = published(&stand_in.take());
    assert_eq!(types(&events), ["key.created"], "the records before it only");
}

/// Two keys' creations with expiries, as records numbered from `first`: (first's id, records).
async fn created_with_expiries(app: &TestApp, expiries: &[&str], first: usize) -> (Vec<String>, Vec<EventRecord>) {
    let (mut ids, mut records) = (Vec::new(), Vec::new());
    for (n, expiry) in expiries.iter().enumerate() {
        let id = key_id(&app.create_key(&json!({ "userId": "u", "expiresAt": expiry })).await);
        records.extend(audit_records(app, &id, first + n).await);
        ids.push(id);
    }
    (ids, records)
}

#[tokio::test]
async fn a_schedule_refused_for_good_blocks_no_record_and_leaves_no_earlier_schedule() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    stand_in.answer_schedules("at(9999-", 400, "ValidationException");
    let (ids, records) = created_with_expiries(&app, &["2030-03-01T00:00:00Z"], 1).await;
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    assert_eq!(stand_in.schedules().len(), 2);
    _ = stand_in.take();

    // The API takes an expiry in year 9999; Scheduler does not. The key's events and the next
    // record's still go, and the schedules of its earlier expiry are removed.
    let patched = app.patch_key(&ids[0], &json!({ "expiresAt": "9999-12-31T00:00:00Z" }), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    let mut records = audit_records(&app, &ids[0], 1).await.split_off(1);
    let (others, next) = created_with_expiries(&app, &["2030-04-01T00:00:00Z"], 2).await;
    records.extend(next);
    let printed = Captured::default();
    let json = tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(printed.writer());
    let guard = tracing::subscriber::set_default(tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::registry(),
        json,
    ));
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    drop(guard);
    // The batch line the template's ExpirySchedulesRefusedMetricFilter reads, as Lambda's JSON
    // format prints it: `schedules_refused`, a number at the top level.
    let lines: Vec<Value> = printed.text().lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
    let batch_line = lines.iter().find(|line| line["message"] == "lifecycle events batch handled").unwrap();
    assert_eq!(batch_line["schedules_refused"], json!(2), "both schedules of the year-9999 expiry: {batch_line}");
    let events = published(&stand_in.take());
    assert_eq!(types(&events), ["key.updated", "key.created"]);
    assert_eq!(events[1].1["keyId"], others[0].as_str());
    let schedules = stand_in.schedules();
    assert_eq!(schedules.len(), 2, "the other key's two only: {schedules:?}");
    for schedule in schedules.values() {
        let detail: Value = serde_json::from_str(schedule["Target"]["Input"].as_str().unwrap()).unwrap();
        assert_eq!(detail["keyId"], others[0].as_str(), "the other key's");
    }

    // Refused after a while, by when it is due: published at once.
    stand_in.answer_schedules("at(2030-05-25", 400, "ValidationException");
    stand_in.state.lock().unwrap().clock_on_answer = Some((app.clock.clone(), TimeDelta::days(150)));
    let (_, records) = created_with_expiries(&app, &["2030-06-01T00:00:00Z"], 3).await;
    no_failure(&handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap());
    let events = published(&stand_in.take());
    assert_eq!(types(&events), ["key.created", "key.expiring"]);
}

#[tokio::test]
async fn a_throttled_failing_or_forbidden_schedule_call_fails_its_record_for_a_retry() {
    let app = spawn_app().await;
    let stand_in = StandIn::start().await;
    let publisher = stand_in.publisher().await;
    for (n, (status, error)) in
        [(429, "ThrottlingException"), (500, "InternalServerException"), (403, "AccessDeniedException")]
            .into_iter()
            .enumerate()
    {
        let month = format!("2030-0{}-", n + 3);
        stand_in.answer_schedules(&format!("at({month}"), status, error);
        let first = 10 * (n + 1);
        let (_, records) =
            created_with_expiries(&app, &["2031-01-01T00:00:00Z", &format!("{month}10T00:00:00Z")], first).await;
        let answer = handle_batch(&publisher, app.clock.as_ref(), 7, batch(records)).await.unwrap();
        assert_eq!(
            serde_json::to_value(&answer).unwrap(),
            json!({ "batchItemFailures": [{ "itemIdentifier": (first + 1).to_string() }] }),
            "{error}: retried"
        );
        assert_eq!(types(&published(&stand_in.take())), ["key.created"], "{error}: the record before it only");
    }
}
