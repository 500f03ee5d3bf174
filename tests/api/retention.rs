//! Retention: deleted keys expire through TTL, and the stream function keeps counters exact.

use apikeys::stream::handle_batch;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// events/retention_stream.json, with its key moved into `company` and given `event_id`.
fn ttl_removal(company: &str, event_id: &str) -> aws_lambda_events::event::dynamodb::Event {
    let mut event: Value = serde_json::from_str(include_str!("../../events/retention_stream.json")).unwrap();
    let record = &mut event["Records"][0];
    record["eventID"] = json!(event_id);
    record["dynamodb"]["OldImage"]["companyId"] = json!({ "S": company });
    serde_json::from_value(event).unwrap()
}

#[tokio::test]
async fn a_deleted_key_carries_a_ttl_of_the_retention_period() {
    let app = spawn_app().await;
    let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    let live = app.stored_item(&format!("KEY#{}#{id}", app.company), "KEY").await.unwrap();
    assert!(!live.contains_key("ttl"), "a live key never expires");
    app.delete_key(&id).await;
    let item = app.stored_item(&format!("KEY#{}#{id}", app.company), "KEY").await.unwrap();
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    assert_eq!(ttl, crate::helpers::start_time().timestamp() + 30 * 24 * 3600, "RETENTION_DAYS defaults to 30");
}

#[tokio::test]
async fn a_ttl_removal_is_taken_out_of_the_counters_exactly_once() {
    let app = spawn_app().await;
    let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    app.delete_key(&id).await;
    assert_eq!(app.counters().await, (1, 1));

    let event = ttl_removal(app.company.as_str(), "event-1");
    assert_eq!(handle_batch(&app.app.store, event.clone()).await.unwrap(), 1);
    assert_eq!(app.counters().await, (1, 0));
    assert_eq!(handle_batch(&app.app.store, event).await.unwrap(), 0, "a redelivered batch changes nothing");
    assert_eq!(app.counters().await, (1, 0));
    assert_eq!(app.list_keys("?status=all").await.body["total"], 1);
}

#[tokio::test]
async fn removals_not_made_by_ttl_and_other_items_are_ignored() {
    let app = spawn_app().await;
    let mut by_user = ttl_removal(app.company.as_str(), "event-2");
    by_user.records[0].user_identity = None;
    let mut lookup = ttl_removal(app.company.as_str(), "event-3");
    lookup.records[0].change.old_image = serde_dynamo::to_item(json!({ "pk": "SECRET#ab", "sk": "SECRET" })).unwrap();
    for event in [by_user, lookup] {
        assert_eq!(handle_batch(&app.app.store, event).await.unwrap(), 0);
    }
    assert_eq!(app.counters().await, (1, 0));
}
