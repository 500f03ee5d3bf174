//! What the typed records, fingerprints and sealed answers must not do, seen as an attacker
//! would: an item changed by hand (or left by an older layout) is read as no more than
//! it says (a key item without an `acl` holds no permission, never every permission); the same
//! `Idempotency-Key` on another target is another request; no audit record or idempotency
//! record holds a secret or its hash in clear.

use apikeys::model::PlaintextKey;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};
use crate::table_reads::scan_prefix;

/// Takes `acl` out of a key's item and out of its secret's lookup item (verify reads the copy).
async fn remove_acl(app: &TestApp, key_id: &str, secret: &str) {
    let hash = PlaintextKey::parse(secret).unwrap().1.hash();
    let items = [(format!("KEY#{}#{key_id}", app.company), "KEY"), (format!("SECRET#{}", hash.as_str()), "SECRET")];
    for (pk, sk) in items {
        app.client
            .update_item()
            .table_name(&app.table)
            .key("pk", AttributeValue::S(pk))
            .key("sk", AttributeValue::S(sk.into()))
            .update_expression("REMOVE acl")
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_root_key_whose_items_lost_their_acl_can_manage_nothing() {
    let app = spawn_app().await;
    let admin = app.create_key(&json!({ "userId": "admin", "acl": [{ "permissions": ["keys:*"] }] })).await;
    let (admin_id, admin_secret) = (admin["id"].as_str().unwrap(), admin["key"].as_str().unwrap());
    remove_acl(&app, admin_id, admin_secret).await;
    let items = app.item_count().await;

    let list = app.send(Method::GET, "/keys", Some(admin_secret), None, &[]).await;
    assert_eq!(list.status, StatusCode::FORBIDDEN, "{:?}", list.body);
    let create = json!({ "userId": "x", "acl": [{ "permissions": ["keys:*"] }] });
    let created = app.send(Method::POST, "/keys", Some(admin_secret), Some(&create), &[]).await;
    assert_eq!(created.status, StatusCode::FORBIDDEN, "{:?}", created.body);
    assert_eq!(app.item_count().await, items, "nothing written");

    // Read back by the API, the key shows no ACL (null), not a widened one.
    let shown = app.get_key(admin_id).await;
    assert_eq!((shown.status, &shown.body["acl"]), (StatusCode::OK, &serde_json::Value::Null));
}

/// The typed fingerprint still tells requests apart by their target: the same header and body
/// on another custom id is another request (422), and creates nothing.
#[tokio::test]
async fn the_same_header_and_body_on_another_custom_id_is_another_request() {
    let app = spawn_app().await;
    let header = [("idempotency-key", "custom-create")];
    let body = json!({ "userId": "svc" });
    let first = app.send(Method::POST, "/keys/svc-a", Some(&app.root_key), Some(&body), &header).await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let items = app.item_count().await;
    let other = app.send(Method::POST, "/keys/svc-b", Some(&app.root_key), Some(&body), &header).await;
    assert_eq!((other.status, other.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));
    assert!(other.body.get("key").is_none(), "no secret in the refusal");
    let plain = app.send(Method::POST, "/keys", Some(&app.root_key), Some(&body), &header).await;
    assert_eq!(plain.status, StatusCode::UNPROCESSABLE_ENTITY, "nor on a generated id");
    assert_eq!(app.item_count().await, items, "nothing written");
    assert_eq!(app.get_key("svc-b").await.status, StatusCode::NOT_FOUND);
}

/// Every audit record a key's life writes (create, roll with grace, patch, roll again, delete),
/// for a secret and a publishable key: no plaintext and no hash of any of its secrets, though
/// the records are computed from the typed key rather than from its view.
#[tokio::test]
async fn no_audit_record_holds_a_secret_or_its_hash() {
    let app = spawn_app().await;
    let mut needles = Vec::new();
    for body in [json!({ "userId": "s" }), json!({ "userId": "p", "type": "publishable" })] {
        let created = app.create_key(&body).await;
        let id = created["id"].as_str().unwrap().to_owned();
        needles.push(created["key"].as_str().unwrap().to_owned());
        for grace in [600, 0] {
            let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": grace }))).await;
            assert_eq!(rolled.status, StatusCode::OK, "{:?}", rolled.body);
            needles.push(rolled.body["key"].as_str().unwrap().to_owned());
            let patched = app.patch_key(&id, &json!({ "description": format!("after {grace}") }), &[]).await;
            assert_eq!(patched.status, StatusCode::OK);
        }
        assert_eq!(app.delete_key(&id).await.status, StatusCode::NO_CONTENT);
    }
    let hashes: Vec<String> =
        needles.iter().map(|n| PlaintextKey::parse(n).unwrap().1.hash().as_str().to_owned()).collect();
    needles.extend(hashes);
    let events = scan_prefix(&app.client, &app.table, "EVENTS#").await;
    assert_eq!(
        events.len(),
        1 + 2 * 6,
        "the root key's creation; create, two rolls, two patches and a delete for each key"
    );
    for event in events {
        let text = format!("{event:?}");
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "an audit record holds {}…: {text}", &needle[..7]);
        }
    }
}

/// A sealed answer holds the whole key (its hashes included): none of it is in clear in the
/// idempotency record, whose only other attributes are hashes of the request.
#[tokio::test]
async fn an_idempotency_record_holds_no_secret_or_hash_in_clear() {
    let app = spawn_app().await;
    let created = app.create_key(&json!({ "userId": "s" })).await;
    let (id, first) = (created["id"].as_str().unwrap(), created["key"].as_str().unwrap());
    let path = format!("/keys/{id}/roll");
    let header = [("idempotency-key", "roll-with-grace")];
    let body = json!({ "gracePeriodSeconds": 600 });
    let rolled = app.send(Method::POST, &path, Some(&app.root_key), Some(&body), &header).await;
    assert_eq!(rolled.status, StatusCode::OK, "{:?}", rolled.body);
    let second = rolled.body["key"].as_str().unwrap();
    let mut needles: Vec<String> = vec![first.into(), second.into()];
    needles.extend([first, second].map(|k| PlaintextKey::parse(k).unwrap().1.hash().as_str().to_owned()));
    let records = scan_prefix(&app.client, &app.table, "IDEMPOTENCY#").await;
    assert_eq!(records.len(), 1);
    for record in records {
        let mut text = format!("{record:?}");
        if let Some(AttributeValue::B(blob)) = record.get("response") {
            text.push_str(&String::from_utf8_lossy(blob.as_ref()));
        }
        for needle in &needles {
            assert!(!text.contains(needle.as_str()), "the record holds {}… in clear", &needle[..7]);
        }
    }
}
