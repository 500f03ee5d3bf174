//! Bounded work per request: the caps on every list a write or a verify iterates,
//! pages that hold at most one page of items whatever the offset, and answers that stay under
//! Lambda's 6 MB response limit however large the caps let keys and audit events grow.

use std::sync::{Arc, Mutex};

use apikeys::entry::config::App;
use apikeys::entry::local::dispatch;
use apikeys::model::acl::{
    MAX_ACL_ENTRIES, MAX_ACL_PERMISSIONS, MAX_ACL_SCOPE_VALUES, MAX_PERMISSION_LEN, MAX_REQUESTED_PERMISSIONS,
    MAX_REQUESTED_SCOPE_VALUES, MAX_SCOPE_VALUE_LEN,
};
use apikeys::model::input::{MAX_DESCRIPTION_CHARS, MAX_METADATA_BYTES, MAX_TAG_CHARS, MAX_TAGS, MAX_USER_ID_CHARS};
use apikeys::model::ip::MAX_IP_RULES;
use apikeys::model::page::MAX_LIMIT;
use apikeys::model::{ApiKey, Dimension, KeyId};
use apikeys::store::items;
use apikeys::store::{DynamoStore, KeyReader};
use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::operation::query::{QueryInput, QueryOutput};
use aws_sdk_dynamodb::types::{PutRequest, Select, WriteRequest};
use aws_smithy_runtime_api::box_error::BoxError;
use chrono::TimeDelta;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{CLIENT_IP, TestApp, TestResponse, ids, spawn_app};

/// Lambda's limit on a synchronous function's answer, the whole JSON it returns to API Gateway.
const LAMBDA_RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Caps

/// The widest character JSON leaves as it is: 4 bytes of UTF-8, 4 bytes once more escaped.
const WIDE: &str = "\u{1D11E}";

fn long_name(tag: &str, i: usize, len: usize) -> String {
    let head = format!("{tag}{i}.");
    format!("{head}{}", "x".repeat(len - head.len()))
}

/// An ACL at every cap: the most entries, permissions and scope values, each as long as allowed,
/// every dimension present (empty lists where the values ran out).
fn maximal_acl() -> Value {
    let mut permissions = (0..MAX_ACL_PERMISSIONS).map(|i| long_name("perm", i, MAX_PERMISSION_LEN));
    let mut values = (0..MAX_ACL_SCOPE_VALUES).map(|i| long_name("v", i, MAX_SCOPE_VALUE_LEN));
    let per_entry = |total: usize| total.div_ceil(MAX_ACL_ENTRIES);
    let dimensions = Dimension::NAMES;
    let entries: Vec<Value> = (0..MAX_ACL_ENTRIES)
        .map(|_| {
            let scope: serde_json::Map<String, Value> = dimensions
                .iter()
                .map(|d| (d.to_string(), json!(values.by_ref().take(per_entry(MAX_ACL_SCOPE_VALUES)).collect::<Vec<_>>())))
                .collect();
            json!({ "scope": scope, "permissions": permissions.by_ref().take(per_entry(MAX_ACL_PERMISSIONS)).collect::<Vec<_>>() })
        })
        .collect();
    assert!(permissions.next().is_none() && values.next().is_none(), "every permission and value placed");
    Value::Array(entries)
}

/// A create body at every cap, in the characters that take the most room once the answer is
/// escaped for Lambda: 4-byte characters in free text, quotes in metadata (2 bytes each in the
/// 4096 of its JSON, 4 once escaped again).
pub(crate) fn maximal_key() -> Value {
    let ips: Vec<String> =
        (0..MAX_IP_RULES).map(|i| format!("fd12:3456:789a:bcde:f012:3456:{:04x}:ffff", 0x1000 + i)).collect();
    let quotes = (MAX_METADATA_BYTES - r#"{"m":""}"#.len()) / 2;
    json!({
        "userId": WIDE.repeat(MAX_USER_ID_CHARS),
        "description": WIDE.repeat(MAX_DESCRIPTION_CHARS),
        "type": "publishable",
        "whitelistedIPs": ips,
        "acl": maximal_acl(),
        "expiresAt": "2099-12-31T23:59:59.999999999Z",
        "rateLimit": { "limit": u32::MAX, "periodSeconds": 31_622_400 },
        "quota": { "max": u32::MAX, "renewalSeconds": 31_622_400 },
        "tags": vec![WIDE.repeat(MAX_TAG_CHARS); MAX_TAGS],
        "metadata": { "m": "\"".repeat(quotes) },
    })
}

/// The largest verify the caps allow, asking what `maximal_acl` grants (its longest names, in
/// the scope of its first entry, which lists `*` in every dimension).
fn maximal_verify(key: &str) -> Value {
    let permissions: Vec<String> = (0..MAX_REQUESTED_PERMISSIONS)
        .map(|i| long_name("perm", i % MAX_ACL_PERMISSIONS, MAX_PERMISSION_LEN))
        .collect();
    let values = |tag: &str| -> Vec<String> {
        (0..MAX_REQUESTED_SCOPE_VALUES).map(|i| long_name(tag, i, MAX_SCOPE_VALUE_LEN)).collect()
    };
    json!({
        "key": key,
        "ip": "fd12:3456:789a:bcde:f012:3456:1000:ffff",
        "permissions": permissions,
        "scope": { "customFieldName": values("c"), "productId": values("p"), "planId": values("l"), "organizationId": values("o") },
    })
}

/// A key whose ACL is at every cap and whose first entry admits any scope.
fn wildcard_first(mut body: Value) -> Value {
    let first = &mut body["acl"][0];
    first["permissions"] = json!(["perm*"]);
    for dimension in Dimension::NAMES {
        first["scope"][dimension] = json!(["*"]);
    }
    body
}

async fn send_verify(app: &TestApp, body: &Value) -> TestResponse {
    app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(body), &[]).await
}

#[tokio::test]
async fn a_key_at_every_cap_is_accepted_and_one_more_of_anything_is_a_400_naming_it() {
    let app = spawn_app().await;
    app.create_key(&maximal_key()).await;
    let items_before = app.item_count().await;
    let over = |edit: &dyn Fn(&mut Value)| {
        let mut body = maximal_key();
        edit(&mut body);
        body
    };
    let one_more = "y".repeat(MAX_PERMISSION_LEN);
    let cases: Vec<(Value, &str, &str)> = vec![
        (over(&|b| b["acl"].as_array_mut().unwrap().push(json!({ "permissions": [] }))), "acl", "too_many_entries"),
        (
            // Named where the count of the whole ACL goes over: the last entry holding permissions.
            over(&|b| b["acl"][0]["permissions"].as_array_mut().unwrap().push(json!(one_more))),
            "acl[15].permissions",
            "too_many_entries",
        ),
        (
            over(&|b| b["acl"][19]["permissions"].as_array_mut().unwrap().push(json!("x"))),
            "acl[19].permissions",
            "too_many_entries",
        ),
        (
            over(&|b| b["acl"][19]["scope"]["organizationId"].as_array_mut().unwrap().push(json!("x"))),
            "acl[19].scope.organizationId",
            "too_many_entries",
        ),
        (
            over(&|b| b["acl"][2]["scope"]["planId"][0] = json!("y".repeat(MAX_SCOPE_VALUE_LEN + 1))),
            "acl[2].scope.planId[0]",
            "invalid_field",
        ),
        (over(&|b| b["acl"][0]["scope"]["productId"][1] = json!("")), "acl[0].scope.productId[1]", "invalid_field"),
        (over(&|b| b["acl"][1]["scope"]["planId"][0] = json!("a\"b")), "acl[1].scope.planId[0]", "invalid_field"),
        (over(&|b| b["acl"][0]["permissions"][3] = json!("keys:x,*")), "acl[0].permissions[3]", "invalid_field"),
    ];
    for (body, field, code) in cases {
        let response = app.post_keys(&body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{field}: {:?}", response.body);
        assert_eq!((response.error_field(), response.error_code()), (field, code));
    }
    assert_eq!(app.item_count().await, items_before, "nothing was written");
}

#[tokio::test]
async fn the_largest_verify_the_caps_allow_is_answered_and_one_more_is_a_400_naming_it() {
    let app = spawn_app().await;
    let key = app.create_key(&wildcard_first(maximal_key())).await["key"].as_str().unwrap().to_owned();
    let largest = maximal_verify(&key);
    assert!(largest.to_string().len() > 50_000, "a body of {} bytes", largest.to_string().len());
    let answer = send_verify(&app, &largest).await;
    assert_eq!((answer.status, &answer.body["code"]), (StatusCode::OK, &json!("VALID")), "{:?}", answer.body);
    let mut outside = largest.clone();
    outside["permissions"][0] = json!("other:read");
    assert_eq!(send_verify(&app, &outside).await.body["code"], "FORBIDDEN");

    let over = |edit: &dyn Fn(&mut Value)| {
        let mut body = largest.clone();
        edit(&mut body);
        body
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (over(&|b| b["permissions"].as_array_mut().unwrap().push(json!("a"))), "permissions", "too_many_entries"),
        (over(&|b| b["permissions"][3] = json!("perm*")), "permissions[3]", "invalid_field"),
        (over(&|b| b["permissions"][4] = json!("a,b")), "permissions[4]", "invalid_field"),
        (over(&|b| b["permissions"][5] = json!("p".repeat(MAX_PERMISSION_LEN + 1))), "permissions[5]", "invalid_field"),
        (over(&|b| b["scope"]["planId"].as_array_mut().unwrap().push(json!("a"))), "scope.planId", "too_many_entries"),
        (over(&|b| b["scope"]["productId"][2] = json!("*")), "scope.productId[2]", "invalid_field"),
        (over(&|b| b["scope"]["productId"] = json!("")), "scope.productId", "invalid_field"),
        (
            over(&|b| b["scope"]["organizationId"][0] = json!("o".repeat(MAX_SCOPE_VALUE_LEN + 1))),
            "scope.organizationId[0]",
            "invalid_field",
        ),
    ];
    for (body, field, code) in cases {
        let response = send_verify(&app, &body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{field}: {:?}", response.body);
        assert_eq!((response.error_field(), response.error_code()), (field, code));
    }
}

// ---------------------------------------------------------------------------------------------
// The 6 MB answer limit

/// What Lambda returns for an answer with this body: API Gateway's proxy response, the body a
/// JSON string inside it (escaped once more), with room for the status and headers.
fn lambda_payload_bytes(body: &Value) -> usize {
    const ENVELOPE_AND_HEADERS: usize = 2048;
    serde_json::to_string(&Value::String(body.to_string())).unwrap().len() + ENVELOPE_AND_HEADERS
}

/// A full page of `item`s in the list envelope, with the longest links a page can have.
fn full_page(item: &Value) -> Value {
    let long_id = "k".repeat(64);
    json!({
        "status": 200, "total": u64::MAX, "count": MAX_LIMIT,
        "nextUrl": format!("/keys/{long_id}/events?limit={MAX_LIMIT}&status=inactive&startingAfter={long_id}"),
        "previousUrl": format!("/keys/{long_id}/events?limit={MAX_LIMIT}&status=inactive&offset=1000"),
        "data": vec![item.clone(); MAX_LIMIT as usize],
    })
}

/// Fills in what a key shown later can have and this one has not yet: every date set, at its
/// longest (nanoseconds).
fn with_every_date(mut view: Value) -> Value {
    for field in ["expiresAt", "createdAt", "updatedAt", "deletedAt", "lastUsedAt"] {
        view[field] = json!("2099-12-31T23:59:59.999999999Z");
    }
    view["quota"]["renewsAt"] = json!("2099-12-31T23:59:59.999999999Z");
    view
}

#[tokio::test]
async fn a_page_of_the_largest_keys_or_events_fits_lambdas_answer_limit() {
    let app = spawn_app().await;
    let created = app.create_key(&maximal_key()).await;
    let id = created["id"].as_str().unwrap();
    let view = with_every_date(app.get_key(id).await.body);
    assert!(view["key"].is_string(), "a publishable key shows its key in every answer");

    // Every change an event can record: everything at once, then a roll (its extra fields).
    let mut changed = maximal_key();
    for field in ["userId", "type"] {
        changed.as_object_mut().unwrap().remove(field);
    }
    changed["tags"] = json!(vec![WIDE.repeat(MAX_TAG_CHARS - 1); MAX_TAGS]);
    changed["status"] = json!("inactive");
    assert_eq!(app.patch_key(id, &changed, &[]).await.status, StatusCode::OK);
    assert_eq!(app.roll_key(id, Some(&json!({ "gracePeriodSeconds": 86_400 }))).await.status, StatusCode::OK);
    let events = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await.body;
    let mut largest_event = Value::Null;
    for event in events["data"].as_array().unwrap() {
        let mut event = event.clone();
        event["actor"] = json!("a".repeat(64));
        if event.to_string().len() > largest_event.to_string().len() {
            largest_event = event;
        }
    }
    // An event records at most the key's shown fields and a roll's two extra ones.
    let mut event_bound = largest_event.clone();
    let mut fields = with_every_date(view.clone()).as_object().unwrap().clone();
    fields.insert("gracePeriodSeconds".into(), json!(86_400));
    fields.insert("previousSecretValidUntil".into(), json!("2099-12-31T23:59:59.999999999Z"));
    event_bound["changes"] = Value::Object(fields);
    assert!(largest_event.to_string().len() <= event_bound.to_string().len());

    let keys_page = lambda_payload_bytes(&full_page(&view));
    let events_page = lambda_payload_bytes(&full_page(&event_bound));
    eprintln!(
        "largest key view {} bytes, event {} bytes; a page of {MAX_LIMIT}: keys {keys_page} bytes, events {events_page} \
         bytes as Lambda returns them (limit {LAMBDA_RESPONSE_LIMIT})",
        view.to_string().len(),
        event_bound.to_string().len(),
    );
    assert!(keys_page < LAMBDA_RESPONSE_LIMIT, "a keys page of {keys_page} bytes");
    assert!(events_page < LAMBDA_RESPONSE_LIMIT, "an events page of {events_page} bytes");
}

// ---------------------------------------------------------------------------------------------
// Pages hold one page of items, whatever the offset

/// One Query the store sent: whether it only counted, its limit, and how many items came back.
type LoggedQuery = (bool, Option<i32>, usize);

#[derive(Debug, Clone, Default)]
struct QueryLog(Arc<Mutex<Vec<LoggedQuery>>>);

impl QueryLog {
    fn take(&self) -> Vec<LoggedQuery> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Intercept for QueryLog {
    fn name(&self) -> &'static str {
        "QueryLog"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(query) = context.input().downcast_ref::<QueryInput>() {
            self.0.lock().unwrap().push((query.select() == Some(&Select::Count), query.limit(), 0));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        _: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let returned = context.output_or_error().and_then(|o| o.ok()).and_then(|o| o.downcast_ref::<QueryOutput>());
        if let (Some(out), Some(last)) = (returned, self.0.lock().unwrap().last_mut()) {
            last.2 = out.items().len();
        }
        Ok(())
    }
}

/// The same table and clock as `app`, through a client that logs its queries.
async fn logged(app: &TestApp) -> (App, QueryLog) {
    let log = QueryLog::default();
    let client = crate::helpers::test_client(|b| b.interceptor(log.clone())).await;
    (App::new(DynamoStore::new(client, &app.table), app.clock.clone()), log)
}

/// Writes `n` copies of a real key straight to the table (a second apart, each its own id) and
/// counts them as active: what a thousand creates would leave (key items and their listing
/// entries), in 25-item batches.
async fn seed_keys(app: &TestApp, n: usize) {
    let template = app.create_key(&json!({ "userId": "seed", "tags": ["t"] })).await;
    let id = KeyId::parse(template["id"].as_str().unwrap(), "id").unwrap();
    let key: ApiKey = app.app.store.get_key(&app.company, &id).await.unwrap().unwrap();
    let copies: Vec<ApiKey> = (0..n)
        .map(|i| ApiKey {
            id: KeyId::parse(&format!("seed-{i:05}"), "id").unwrap(),
            created_at: key.created_at + TimeDelta::seconds(1 + i as i64),
            ..key.clone()
        })
        .collect();
    let written: Vec<_> = copies
        .iter()
        .flat_map(|k| [items::key_item(k, None).unwrap()].into_iter().chain(items::key_listing_entries(k, None)))
        .collect();
    for batch in written.chunks(25) {
        let writes = batch
            .iter()
            .map(|item| {
                let put = PutRequest::builder().set_item(Some(item.clone())).build().unwrap();
                WriteRequest::builder().put_request(put).build()
            })
            .collect();
        let out = app.client.batch_write_item().request_items(&app.table, writes).send().await.unwrap();
        assert!(out.unprocessed_items().is_none_or(|u| u.is_empty()), "DynamoDB Local took the whole batch");
    }
    app.client
        .update_item()
        .table_name(&app.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("COMPANY#{}", app.company)))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("COUNTERS".into()))
        .update_expression("ADD active :n")
        .expression_attribute_values(":n", aws_sdk_dynamodb::types::AttributeValue::N(n.to_string()))
        .send()
        .await
        .unwrap();
}

async fn get(app: &App, root_key: &str, path: &str) -> Value {
    let request = lambda_http::http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header("authorization", format!("Bearer {root_key}"))
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = dispatch(app, CLIENT_IP, request).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    serde_json::from_slice(response.body()).unwrap()
}

#[tokio::test]
#[ignore = "heavy (over a thousand items written): make test runs it after the other tests, alone"]
async fn an_offset_page_is_exact_and_reads_no_item_it_does_not_show() {
    const KEYS: usize = 1_150;
    let app = spawn_app().await;
    seed_keys(&app, KEYS).await;
    let (logged_app, log) = logged(&app).await;

    // The whole list by cursors, which never skip: what every offset page must be a slice of.
    let mut everything = Vec::new();
    let mut next = Some(format!("/keys?limit={MAX_LIMIT}"));
    while let Some(path) = next {
        let page = get(&logged_app, &app.root_key, &path).await;
        everything.extend(ids(&page));
        next = page["nextUrl"].as_str().map(str::to_owned);
    }
    assert_eq!(everything.len(), KEYS + 2, "the seeded keys, the template and the root key");
    assert_eq!(everything[0], format!("seed-{:05}", KEYS - 1), "newest first");
    log.take();

    for (limit, offset) in [(100, 0), (100, 1), (100, 100), (100, 1000), (7, 1000), (25, 1000)] {
        let page = get(&logged_app, &app.root_key, &format!("/keys?limit={limit}&offset={offset}")).await;
        assert_eq!(ids(&page), everything[offset..offset + limit], "limit {limit}, offset {offset}");
        assert_eq!(page["total"], KEYS + 2);
        let queries = log.take();
        let (counted, read): (Vec<_>, Vec<_>) = queries.iter().partition(|(count, _, _)| *count);
        assert!(counted.iter().all(|(_, _, items)| *items == 0), "a counting query returns no item: {queries:?}");
        assert_eq!(counted.is_empty(), offset == 0, "only an offset is counted: {queries:?}");
        assert!(!read.is_empty() && read.len() <= 2, "the page is read in one query or two: {queries:?}");
        let held: usize = read.iter().map(|(_, _, items)| items).sum();
        assert!(held <= limit + 1, "{held} items read for a page of {limit} at offset {offset}: {queries:?}");
        assert!(read.iter().all(|(_, l, _)| l.is_some_and(|l| l as usize <= limit + 1)), "{queries:?}");
    }
    let beyond = get(&logged_app, &app.root_key, "/keys?limit=100&offset=1000&status=inactive").await;
    assert_eq!(beyond["count"], 0);
    assert!(log.take().iter().all(|(count, _, items)| *count && *items == 0), "an empty list is only counted");
}

#[tokio::test]
async fn an_offset_events_page_is_exact_and_reads_no_event_it_does_not_show() {
    let app = spawn_app().await;
    let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    for i in 0..12 {
        app.advance(1);
        assert_eq!(app.patch_key(&id, &json!({ "description": format!("d{i}") }), &[]).await.status, StatusCode::OK);
    }
    let (logged_app, log) = logged(&app).await;
    let path = format!("/keys/{id}/events");
    let everything = ids(&get(&logged_app, &app.root_key, &format!("{path}?limit=100")).await);
    assert_eq!(everything.len(), 13);
    log.take();
    for (limit, offset) in [(5, 0), (5, 1), (5, 5), (3, 10), (5, 13)] {
        let page = get(&logged_app, &app.root_key, &format!("{path}?limit={limit}&offset={offset}")).await;
        let end = (offset + limit).min(everything.len());
        assert_eq!(ids(&page), everything[offset..end], "limit {limit}, offset {offset}");
        let queries = log.take();
        let held: usize = queries.iter().filter(|(count, _, _)| !count).map(|(_, _, items)| items).sum();
        assert!(held <= limit + 1, "{held} events read for a page of {limit}: {queries:?}");
        assert!(queries.iter().filter(|(count, _, _)| *count).all(|(_, _, items)| *items == 0));
    }
}
