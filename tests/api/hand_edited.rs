//! Items changed by hand (or left by an older layout) are read as no more than they say: a key
//! item without an `acl` holds no permission, never every permission.

use apikeys::model::PlaintextKey;
use aws_sdk_dynamodb::types::AttributeValue;
use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

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
