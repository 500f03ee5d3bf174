//! The storage schema, pinned: every kind of item the service writes, with the name and type of
//! each attribute (nested ones too), compared with tests/api/snapshots/item_layout.json. A
//! change to a model type that would change what is stored (a renamed field, a new one, another
//! type) fails here, so it is made on purpose, with a new `schemaVersion` and a way to read the
//! items already stored. `UPDATE_SNAPSHOTS=1` rewrites the snapshot after such a change.

use std::collections::BTreeMap;

use apikeys::model::KeyStatus;
use apikeys::store::CounterKeeper;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

const SNAPSHOT: &str = "tests/api/snapshots/item_layout.json";

/// An attribute's type, with the shape of what a map or list holds.
fn shape(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(_) => json!("S"),
        AttributeValue::N(_) => json!("N"),
        AttributeValue::B(_) => json!("B"),
        AttributeValue::Bool(_) => json!("BOOL"),
        AttributeValue::Null(_) => json!("NULL"),
        AttributeValue::M(map) => json!({ "M": item_shape(map) }),
        AttributeValue::L(list) => {
            let mut kinds: BTreeMap<String, Value> = BTreeMap::new();
            for element in list {
                let element = shape(element);
                kinds.insert(element.to_string(), element);
            }
            json!({ "L": kinds.into_values().collect::<Vec<_>>() })
        }
        other => json!(format!("{other:?}")),
    }
}

fn item_shape(item: &std::collections::HashMap<String, AttributeValue>) -> BTreeMap<String, Value> {
    item.iter().map(|(name, value)| (name.clone(), shape(value))).collect()
}

/// The kind of an item, from its keys: `KEY`, `SECRET`, `COUNTERS`, `RATE`, `IDEMPOTENCY`,
/// `EVENT`, `STREAM`, `HOUR`, `DAY`, `USAGEBATCH`, ….
fn kind(item: &std::collections::HashMap<String, AttributeValue>) -> String {
    let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
    sk.split('#').next().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn every_item_the_service_writes_has_the_pinned_layout() {
    let app = spawn_app().await;
    let full = json!({
        "userId": "user-1",
        "description": "every field",
        "expiresAt": "2031-01-01T00:00:00Z",
        "whitelistedIPs": ["203.0.113.0/24"],
        "acl": [{ "scope": { "productId": ["p1"], "planId": ["*"] }, "permissions": ["orders:*", "keys:read"] }],
        "rateLimit": { "limit": 100, "periodSeconds": 60 },
        "quota": { "max": 1000, "renewalSeconds": 86400 },
        "tags": ["a"],
        "metadata": { "plan": "gold", "seats": 3, "nested": { "on": true } },
        "ratelimits": [{ "name": "tokens", "limit": 1000, "periodSeconds": 60, "autoApply": false }],
    });
    // An identity with every field, and the full key belongs to it (its gsi3 attributes).
    let identity = json!({
        "externalId": "cust_42",
        "meta": { "plan": "gold", "seats": 3 },
        "ratelimits": [{ "name": "requests", "limit": 100, "periodSeconds": 60 }],
    });
    let identity = app
        .send(Method::POST, "/identities", Some(&app.root_key), Some(&identity), &[("idempotency-key", "i-1")])
        .await;
    assert_eq!(identity.status, StatusCode::CREATED, "{:?}", identity.body);
    let mut full = full;
    full["identityId"] = identity.body["id"].clone();
    let created =
        app.send(Method::POST, "/keys", Some(&app.root_key), Some(&full), &[("idempotency-key", "c-1")]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let roll = json!({ "gracePeriodSeconds": 3600 });
    let rolled = app.send(Method::POST, &format!("/keys/{id}/roll"), Some(&app.root_key), Some(&roll), &[]).await;
    assert_eq!(rolled.status, StatusCode::OK);
    let secret = rolled.body["key"].as_str().unwrap();
    // Every limit at once (rate, quota, the key's named limit, the identity's): one transaction.
    let asked = json!({ "key": secret, "ip": "203.0.113.9", "permissions": ["orders:read"], "ratelimits": [{ "name": "tokens" }] });
    let verified = app.verify(&asked).await;
    assert_eq!(verified.body["valid"], true, "{:?}", verified.body);
    assert!(app.app.store.forget_expired_key("stream-event-1", &app.company, KeyStatus::Inactive).await.unwrap());
    // Its usage, as the aggregator counts verify's line: the key's and the identity's hour and
    // day, and the batch's marker.
    let usage = apikeys::model::usage::Verification {
        company: app.company.clone(),
        key_id: apikeys::model::KeyId::parse(&id, "keyId").unwrap(),
        identity_id: Some(
            apikeys::model::IdentityId::parse(identity.body["id"].as_str().unwrap(), "identityId").unwrap(),
        ),
        outcome: apikeys::model::usage::Outcome::Valid,
        at: app.app.clock.now(),
    };
    apikeys::domain::usage::count_verifications(&app.app.store, "batch-1", &[usage]).await.unwrap();
    // The company's settings (on the counters item), its prefix's claim and its audit record;
    // a leak report's marker.
    let prefix = format!("p{}", &uuid::Uuid::now_v7().simple().to_string()[20..32]);
    let settings = json!({ "keyPrefix": prefix, "leakPolicy": "notify" });
    let patched = app.send(Method::PATCH, "/company", Some(&app.root_key), Some(&settings), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    use apikeys::store::LeakLedger;
    app.app.store.record_leak_handled("leak-report-0", app.app.clock.now()).await.unwrap();

    let items = app.client.scan().table_name(&app.table).send().await.unwrap().items.unwrap_or_default();
    // Per kind and attribute, every shape seen (the root key and the full key differ), sorted,
    // so the snapshot does not depend on the order of the scan.
    let mut seen: BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>> = BTreeMap::new();
    for item in &items {
        let entry = seen.entry(kind(item)).or_default();
        for (name, value) in item_shape(item) {
            entry.entry(name).or_default().insert(value.to_string(), value);
        }
    }
    let layout: BTreeMap<String, BTreeMap<String, Value>> = seen
        .into_iter()
        .map(|(kind, attributes)| {
            let attributes = attributes
                .into_iter()
                .map(|(name, shapes)| {
                    let mut shapes: Vec<Value> = shapes.into_values().collect();
                    let shape = if shapes.len() == 1 { shapes.remove(0) } else { json!({ "oneOf": shapes }) };
                    (name, shape)
                })
                .collect();
            (kind, attributes)
        })
        .collect();
    for (kind, attributes) in &layout {
        assert_eq!(attributes.get("schemaVersion"), Some(&json!("N")), "{kind} items carry their schema version");
    }
    let actual = serde_json::to_string_pretty(&layout).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SNAPSHOT);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &actual).unwrap();
    }
    let pinned = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        pinned == actual,
        "the stored layout changed; if on purpose, bump SCHEMA_VERSION, handle old items, and rerun with \
         UPDATE_SNAPSHOTS=1. Now:\n{actual}"
    );
}
