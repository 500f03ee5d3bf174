//! In process, with the store's round trip taken out: each function's own cost per request
//! against a bare lambda_http echo function in the same harness, and key material alone.
//!
//! Every function runs as `lambda_http::run` would run it, less the Runtime API's HTTP: the
//! API Gateway event's JSON through lambda_http's adapter into the handler, the answer back to
//! JSON. DynamoDB's answers are recorded once from DynamoDB Local (the `Tape`), then replayed
//! with no network, so the SDK still builds, signs and parses every call.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use apikeys::domain::ManualClock;
use apikeys::entry::http::routes::Endpoint;
use apikeys::entry::local::dispatch;
use apikeys::model::{KeyType, PlaintextKey};
use apikeys_bench::{
    CLIENT_IP, Fixture, Mode, body_of, echo_service, endpoint_service, event, fixture, invoke, status_of,
};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use criterion::Criterion;
use lambda_http::http::{Method, Request as HttpRequest};
use lambda_http::{Body, Request};
use serde_json::{Value, json};

struct Case {
    name: &'static str,
    endpoint: Option<Endpoint>,
    event: Vec<u8>,
    expect: u16,
}

async fn create(fx: &Fixture, body: Value) -> Value {
    let answer = invoke(
        endpoint_service(fx.app.clone(), Endpoint::CreateKey),
        &event("POST /keys", "/keys", "", None, Some(&body), &fx.authorization),
    )
    .await;
    assert_eq!(status_of(&answer), 201, "{}", String::from_utf8_lossy(&answer));
    body_of(&answer)
}

fn verify_request(root_key: &str, key: &str) -> Request {
    HttpRequest::builder()
        .method(Method::POST)
        .uri("/keys/verify")
        .header("authorization", format!("Bearer {root_key}"))
        .header("content-type", "application/json")
        .body(Body::Text(json!({ "key": key }).to_string()))
        .unwrap()
}

/// Makes the keys each case works on, records DynamoDB's answers for every case, and checks
/// that each case answers as it should when replayed.
async fn setup() -> (Fixture, Vec<Case>, String, apikeys::entry::config::App) {
    let now = chrono::Utc::now();
    let clock = Arc::new(ManualClock::new(chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()));
    let fx = fixture(clock).await;
    let ctx = fx.authorization.clone();
    let user = json!({ "userId": "user-1", "description": "bench" });
    // A full first page for the list (25 of 30 keys).
    for _ in 0..28 {
        create(&fx, user.clone()).await;
    }
    let target = create(&fx, user.clone()).await;
    let (target_id, target_key) =
        (target["id"].as_str().unwrap().to_owned(), target["key"].as_str().unwrap().to_owned());
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(create(&fx, user.clone()).await["id"].as_str().unwrap().to_owned());
    }
    let (patch_id, delete_id, roll_id) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    let cases = vec![
        Case {
            name: "echo",
            endpoint: None,
            event: event("POST /keys/verify", "/keys/verify", "", None, Some(&json!({ "key": target_key })), &ctx),
            expect: 200,
        },
        Case {
            name: "create_key",
            endpoint: Some(Endpoint::CreateKey),
            event: event("POST /keys", "/keys", "", None, Some(&user), &ctx),
            expect: 201,
        },
        Case {
            name: "get_key",
            endpoint: Some(Endpoint::GetKey),
            event: event("GET /keys/{keyId}", &format!("/keys/{target_id}"), "", Some(&target_id), None, &ctx),
            expect: 200,
        },
        Case {
            name: "list_keys",
            endpoint: Some(Endpoint::ListKeys),
            event: event("GET /keys", "/keys", "limit=25", None, None, &ctx),
            expect: 200,
        },
        Case {
            name: "update_key",
            endpoint: Some(Endpoint::UpdateKey),
            event: event(
                "PATCH /keys/{keyId}",
                &format!("/keys/{patch_id}"),
                "",
                Some(&patch_id),
                Some(&json!({ "description": "patched", "tags": ["prod"] })),
                &ctx,
            ),
            expect: 200,
        },
        Case {
            name: "delete_key",
            endpoint: Some(Endpoint::DeleteKey),
            event: event("DELETE /keys/{keyId}", &format!("/keys/{delete_id}"), "", Some(&delete_id), None, &ctx),
            expect: 204,
        },
        Case {
            name: "roll_key",
            endpoint: Some(Endpoint::RollKey),
            event: event(
                "POST /keys/{keyId}/roll",
                &format!("/keys/{roll_id}/roll"),
                "",
                Some(&roll_id),
                Some(&json!({ "gracePeriodSeconds": 0 })),
                &ctx,
            ),
            expect: 200,
        },
        Case {
            name: "verify_key",
            endpoint: Some(Endpoint::VerifyKey),
            event: event("POST /keys/verify", "/keys/verify", "", None, Some(&json!({ "key": target_key })), &ctx),
            expect: 200,
        },
    ];
    let uncached = (*fx.app).clone().with_caller_cache(0);
    // Verify once before recording, so lastUsedAt is fresh for the (frozen) clock and the
    // recorded answers need no background write.
    invoke(endpoint_service(fx.app.clone(), Endpoint::VerifyKey), &cases[7].event).await;
    dispatch(&fx.app, CLIENT_IP, verify_request(&fx.root_key, &target_key)).await;
    fx.tape.set_mode(Mode::Record);
    for case in &cases {
        if let Some(endpoint) = case.endpoint {
            let answer = invoke(endpoint_service(fx.app.clone(), endpoint), &case.event).await;
            assert_eq!(status_of(&answer), case.expect, "{}: {}", case.name, String::from_utf8_lossy(&answer));
        }
    }
    dispatch(&fx.app, CLIENT_IP, verify_request(&fx.root_key, &target_key)).await;
    // And verify by a caller the instance does not keep: its one BatchGetItem of both items.
    dispatch(&uncached, CLIENT_IP, verify_request(&fx.root_key, &target_key)).await;
    fx.tape.set_mode(Mode::Replay);
    eprintln!("recorded DynamoDB answers: {:?}", fx.tape.keys());
    fx.calls.take();
    for case in &cases {
        let answer = match case.endpoint {
            Some(endpoint) => invoke(endpoint_service(fx.app.clone(), endpoint), &case.event).await,
            None => invoke(echo_service(), &case.event).await,
        };
        assert_eq!(status_of(&answer), case.expect, "replayed {}: {}", case.name, String::from_utf8_lossy(&answer));
        eprintln!("replayed {:<11} -> {} with DynamoDB calls {:?}", case.name, case.expect, fx.calls.take());
    }
    let answer = dispatch(&fx.app, CLIENT_IP, verify_request(&fx.root_key, &target_key)).await;
    assert_eq!(answer.status(), 200);
    eprintln!("replayed local stack verify -> 200 with DynamoDB calls {:?}", fx.calls.take());
    let answer = dispatch(&uncached, CLIENT_IP, verify_request(&fx.root_key, &target_key)).await;
    assert_eq!(answer.status(), 200);
    eprintln!("replayed local stack verify, caller not kept -> 200 with DynamoDB calls {:?}", fx.calls.take());
    (fx, cases, target_key, uncached)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (fx, cases, target_key, uncached) = rt.block_on(setup());
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();

    let mut keys = c.benchmark_group("keys");
    let sample = PlaintextKey::generate(KeyType::Secret);
    keys.bench_function("generate", |b| b.iter(|| black_box(PlaintextKey::generate(KeyType::Secret))));
    keys.bench_function("hash", |b| b.iter(|| black_box(black_box(&sample).hash())));
    keys.bench_function("parse", |b| b.iter(|| black_box(PlaintextKey::parse(black_box(sample.expose())))));
    keys.finish();

    let mut lambda = c.benchmark_group("lambda");
    for case in &cases {
        match case.endpoint {
            None => {
                let service = echo_service();
                lambda.bench_function(case.name, |b| b.to_async(&rt).iter(|| invoke(service.clone(), &case.event)));
            }
            Some(endpoint) => {
                let service = endpoint_service(fx.app.clone(), endpoint);
                lambda.bench_function(case.name, |b| b.to_async(&rt).iter(|| invoke(service.clone(), &case.event)));
            }
        }
    }
    lambda.finish();

    // The local server's whole stack for one verify, less its HTTP: routes, then the handler,
    // which authenticates its caller (kept by the instance) and reads the key's lookup item,
    // replayed; and the same with no caller kept: both lookup items in one BatchGetItem.
    let mut local = c.benchmark_group("local");
    local.bench_function("verify_key", |b| {
        b.to_async(&rt).iter(|| dispatch(&fx.app, CLIENT_IP, verify_request(&fx.root_key, &target_key)))
    });
    local.bench_function("verify_key_caller_not_kept", |b| {
        b.to_async(&rt).iter(|| dispatch(&uncached, CLIENT_IP, verify_request(&fx.root_key, &target_key)))
    });
    local.finish();

    // The SDK alone: one replayed GetItem of a lookup item, no handler around
    // it: what every store call costs a function before DynamoDB is even reached.
    let mut sdk = c.benchmark_group("sdk");
    // (The caller's root key: each write reads it with a GetItem, so its answer is recorded.)
    let (_, plaintext) = PlaintextKey::parse(&fx.root_key).expect("the root key parses");
    let lookup_pk = format!("SECRET#{}", plaintext.hash().as_str());
    let (_, target) = PlaintextKey::parse(&target_key).expect("the target key parses");
    let target_pk = format!("SECRET#{}", target.hash().as_str());
    sdk.bench_function("get_item", |b| {
        b.to_async(&rt).iter(|| async {
            let out = fx
                .client
                .get_item()
                .table_name(&fx.table)
                .key("pk", AttributeValue::S(lookup_pk.clone()))
                .key("sk", AttributeValue::S("SECRET".into()))
                .consistent_read(true)
                .send()
                .await
                .expect("replayed GetItem");
            black_box(out)
        })
    });
    // And the one BatchGetItem verify makes: the caller's and the verified key's lookup items.
    let pair = [lookup_pk.clone(), target_pk];
    sdk.bench_function("batch_get_item", |b| {
        b.to_async(&rt).iter(|| async {
            let keys = pair
                .iter()
                .map(|pk| {
                    HashMap::from([
                        ("pk".to_owned(), AttributeValue::S(pk.clone())),
                        ("sk".to_owned(), AttributeValue::S("SECRET".into())),
                    ])
                })
                .collect();
            let wanted = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().unwrap();
            let out = fx
                .client
                .batch_get_item()
                .request_items(&fx.table, wanted)
                .send()
                .await
                .expect("replayed BatchGetItem");
            black_box(out)
        })
    });
    // The list page's Query (its 26 items, as recorded), through the SDK alone.
    let page_query = || {
        fx.client
            .query()
            .table_name(&fx.table)
            .index_name(apikeys::store::table::STATUS_INDEX.name)
            .key_condition_expression("#p = :p")
            .expression_attribute_names("#p", apikeys::store::table::STATUS_INDEX.partition_key)
            .expression_attribute_values(":p", AttributeValue::S(format!("COMPANY#{}#STATUS#active", fx.company)))
            .scan_index_forward(false)
            .limit(26)
            .send()
    };
    sdk.bench_function("query_list_page", |b| {
        b.to_async(&rt).iter(|| async { black_box(page_query().await.expect("replayed Query")) })
    });
    sdk.finish();

    // What a list page does with its items once the SDK has parsed them: each item to a key
    // (the store's records), then each key to its view and the page to JSON.
    let items = rt.block_on(page_query()).expect("replayed Query").items.unwrap_or_default();
    assert!(items.len() > 25, "the recorded list page, one more than its limit: {}", items.len());
    let keys: Vec<_> =
        items.iter().cloned().map(apikeys::store::items::key_from_item).collect::<Result<_, _>>().expect("keys");
    let now = chrono::Utc::now();
    let mut list = c.benchmark_group("list");
    list.bench_function("decode_items", |b| {
        b.iter(|| {
            for item in black_box(&items) {
                black_box(apikeys::store::items::key_from_item(item.clone()).expect("a key"));
            }
        })
    });
    list.bench_function("clone_items", |b| b.iter(|| black_box(black_box(&items).clone())));
    list.bench_function("views_to_json", |b| {
        b.iter(|| {
            let views: Vec<_> = black_box(&keys).iter().map(|k| k.view(now)).collect();
            black_box(serde_json::to_string(&views).expect("JSON"))
        })
    });
    list.finish();
    c.final_summary();
}
