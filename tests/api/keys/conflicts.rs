//! Transactions cancelled by a concurrent transaction (`TransactionConflict`, seen only on AWS)
//! are retried, bounded, and never leave anything half-written.

use lambda_http::http::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app_with_conflicts;

#[tokio::test]
async fn a_conflicted_create_is_retried_and_lands_once() {
    let app = spawn_app_with_conflicts(2).await;
    let created = app.post_keys(&json!({ "userId": "u" })).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let transactions = app.calls_made().await.iter().filter(|c| *c == "TransactWriteItems").count();
    assert!(transactions >= 3, "two conflicts, then the create (and maybe lastUsedAt): {transactions}");
    assert_eq!(app.counters().await, (2, 0));
    assert_eq!(app.get_key(created.body["id"].as_str().unwrap()).await.status, StatusCode::OK);
}

#[tokio::test]
async fn endless_conflicts_give_503_and_write_nothing() {
    let app = spawn_app_with_conflicts(1000).await;
    let items = app.item_count().await;
    let refused = app.post_keys(&json!({ "userId": "u" })).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"));
    assert_eq!(app.item_count().await, items);
    assert_eq!(app.counters().await, (1, 0));
}
