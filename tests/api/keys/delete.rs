//! DELETE /keys/{keyId}: soft delete, repeatable, never verifies again.

use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn delete_is_soft_and_repeatable() {
    let app = spawn_app().await;
    let created = app.create_key(&json!({ "userId": "u" })).await;
    let id = created["id"].as_str().unwrap();
    app.advance(5);

    let deleted = app.delete_key(id).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, serde_json::Value::Null);
    let shown = app.get_key(id).await.body;
    assert_eq!(shown["status"], "inactive");
    assert_eq!(shown["deletedAt"], "2030-01-01T00:00:05Z");
    assert_eq!(app.counters().await, (1, 1));

    app.advance(5);
    assert_eq!(app.delete_key(id).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get_key(id).await.body["deletedAt"], "2030-01-01T00:00:05Z", "the first delete's time stays");
    assert_eq!(app.counters().await, (1, 1));

    let verdict = app.verify(&json!({ "key": created["key"] })).await;
    assert_eq!(verdict.body["code"], "INACTIVE");
    assert_eq!(verdict.body["valid"], false);
}

#[tokio::test]
async fn twenty_parallel_deletes_all_succeed_and_count_once() {
    let app = spawn_app().await;
    let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    let deletes = (0..20).map(|_| app.delete_key(&id));
    for response in futures::future::join_all(deletes).await {
        assert_eq!(response.status, StatusCode::NO_CONTENT, "{:?}", response.body);
    }
    assert_eq!(app.counters().await, (1, 1), "total dropped by exactly one");
    assert_eq!(app.list_keys("").await.body["total"], 1);
    assert_eq!(app.list_keys("?status=inactive").await.body["total"], 1);
}

#[tokio::test]
async fn absent_and_foreign_keys_cannot_be_deleted() {
    let app = spawn_app().await;
    assert_eq!(app.delete_key("nope").await.status, StatusCode::NOT_FOUND);
    let (_, rival_key) = app.other_company_root_key().await;
    let rivals = app.send(Method::POST, "/keys", Some(&rival_key), Some(&json!({ "userId": "r" })), &[]).await;
    let foreign = app.delete_key(rivals.body["id"].as_str().unwrap()).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    let still = app
        .send(Method::POST, "/keys/verify", Some(&rival_key), Some(&json!({ "key": rivals.body["key"] })), &[])
        .await;
    assert_eq!(still.body["code"], "VALID", "the other company's key is untouched");
}

#[tokio::test]
async fn a_delete_is_one_read_and_one_transaction() {
    let app = spawn_app().await;
    let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    app.settle_calls().await;
    app.delete_key(&id).await;
    assert_eq!(app.calls_made().await, vec!["GetItem", "GetItem", "TransactWriteItems"]);
}
