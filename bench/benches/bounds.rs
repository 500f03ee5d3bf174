//! The largest verify the caps allow (issue 9, bounded work), in process like inprocess.rs: the
//! verify_key function on a key whose ACL is at every cap, asked the most the caps let a request
//! ask, shaped so matching does the most lookups it can (every requested name probes every
//! wildcard length before the longest grants it). DynamoDB's one answer (the key's lookup item)
//! is recorded once from DynamoDB Local and replayed. Beside it: the same function and key
//! asked nothing (the floor), and the matching alone (`Acl::allows`).
//!
//! Alone: `make bench-verify` (a few seconds once built); also part of `make bench`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use apikeys::domain::ManualClock;
use apikeys::entry::http::routes::Endpoint;
use apikeys::model::acl::{
    MAX_ACL_ENTRIES, MAX_ACL_PERMISSIONS, MAX_ACL_SCOPE_VALUES, MAX_PERMISSION_LEN, MAX_REQUESTED_PERMISSIONS,
    MAX_REQUESTED_SCOPE_VALUES, MAX_SCOPE_VALUE_LEN,
};
use apikeys::model::{Acl, VerifyInput};
use apikeys_bench::{Mode, body_of, endpoint_service, event, fixture, invoke, status_of, write_json};
use criterion::Criterion;
use serde_json::{Value, json};

const DIMENSIONS: [&str; 4] = ["customFieldName", "productId", "planId", "organizationId"];

fn padded(head: String, len: usize) -> String {
    let pad = len - head.len();
    format!("{head}{}", "x".repeat(pad))
}

/// Wildcards of 64 lengths in the first entry (every one a prefix a request could match, only the
/// longest matching), its scope `*` in every dimension; the other entries hold the scope values
/// (a request never names them, so they admit nothing but are still read).
fn largest_acl() -> Value {
    let longest = MAX_ACL_PERMISSIONS;
    let mut wildcards: Vec<String> = (1..longest).map(|n| format!("{}*", "r".repeat(n))).collect();
    wildcards.push(format!("{}*", "q".repeat(longest)));
    let mut entries = vec![json!({
        "scope": DIMENSIONS.iter().map(|d| (d.to_string(), json!(["*"]))).collect::<serde_json::Map<_, _>>(),
        "permissions": wildcards,
    })];
    let values_left = MAX_ACL_SCOPE_VALUES - DIMENSIONS.len();
    let per_entry = values_left.div_ceil(MAX_ACL_ENTRIES - 1);
    let mut values = (0..values_left).map(|i| padded(format!("v{i}."), MAX_SCOPE_VALUE_LEN));
    for _ in 1..MAX_ACL_ENTRIES {
        let list: Vec<String> = values.by_ref().take(per_entry).collect();
        entries.push(json!({ "scope": { "productId": list }, "permissions": [] }));
    }
    Value::Array(entries)
}

/// The most a verify may ask: 50 names of 128 characters, 100 values of 128 in each dimension.
fn largest_request(key: &str) -> Value {
    let permissions: Vec<String> =
        (0..MAX_REQUESTED_PERMISSIONS).map(|i| format!("{}{i:03}", "q".repeat(MAX_PERMISSION_LEN - 3))).collect();
    let scope: serde_json::Map<String, Value> = DIMENSIONS
        .iter()
        .map(|d| {
            let values: Vec<String> =
                (0..MAX_REQUESTED_SCOPE_VALUES).map(|i| padded(format!("{d}{i}."), MAX_SCOPE_VALUE_LEN)).collect();
            (d.to_string(), json!(values))
        })
        .collect();
    json!({ "key": key, "permissions": permissions, "scope": scope })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let now = chrono::Utc::now();
    let clock = Arc::new(ManualClock::new(chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()));
    let (fx, largest, floor) = rt.block_on(async {
        let fx = fixture(clock).await;
        let ctx = fx.authorization.clone();
        let create =
            event("POST /keys", "/keys", "", None, Some(&json!({ "userId": "u", "acl": largest_acl() })), &ctx);
        let created = invoke(endpoint_service(fx.app.clone(), Endpoint::CreateKey), &create).await;
        assert_eq!(status_of(&created), 201, "{}", String::from_utf8_lossy(&created));
        let key = body_of(&created)["key"].as_str().unwrap().to_owned();
        let verify = |body: &Value| event("POST /keys/verify", "/keys/verify", "", None, Some(body), &ctx);
        let (largest, floor) = (verify(&largest_request(&key)), verify(&json!({ "key": key })));
        let service = endpoint_service(fx.app.clone(), Endpoint::VerifyKey);
        // Once before recording, so lastUsedAt is fresh for the frozen clock and no write follows.
        invoke(service.clone(), &floor).await;
        fx.tape.set_mode(Mode::Record);
        invoke(service.clone(), &floor).await;
        fx.tape.set_mode(Mode::Replay);
        for (name, event) in [("largest", &largest), ("floor", &floor)] {
            let answer = invoke(service.clone(), event).await;
            assert_eq!(status_of(&answer), 200, "{name}: {}", String::from_utf8_lossy(&answer));
            assert_eq!(body_of(&answer)["code"], "VALID", "{name}");
        }
        fx.calls.take();
        (fx, largest, floor)
    });
    let sent: Value = serde_json::from_slice(&largest).unwrap();
    let body_text = sent["body"].as_str().unwrap().to_owned();
    let input = VerifyInput::parse(serde_json::from_str(&body_text).unwrap()).expect("within the caps");
    let acl = Acl::parse(serde_json::from_value(largest_acl()).unwrap(), "acl").expect("within the caps");
    let (allowed, lookups) = acl.allows_counted(&input.permissions, &input.scope);
    assert!(allowed);
    write_json("bounds.json", &json!({ "request_bytes": body_text.len(), "lookups": lookups }));

    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
        .configure_from_args();
    let mut group = c.benchmark_group("bounds");
    let service = endpoint_service(fx.app.clone(), Endpoint::VerifyKey);
    group.bench_function("verify_key_largest", |b| b.to_async(&rt).iter(|| invoke(service.clone(), &largest)));
    group.bench_function("verify_key_floor", |b| b.to_async(&rt).iter(|| invoke(service.clone(), &floor)));
    group.bench_function("parse_largest", |b| {
        b.iter(|| VerifyInput::parse(serde_json::from_str(black_box(&body_text)).unwrap()).unwrap())
    });
    group.bench_function("match_largest", |b| {
        b.iter(|| black_box(&acl).allows(black_box(&input.permissions), black_box(&input.scope)))
    });
    group.finish();
    c.final_summary();
}
