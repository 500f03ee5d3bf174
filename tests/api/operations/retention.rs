//! Retention: deleted keys expire through TTL, and the stream function keeps counters exact,
//! reporting the first record it could not handle as a batch item failure.

use apikeys::entry::stream::handle_batch;
use apikeys::store::DynamoStore;
use aws_lambda_events::event::dynamodb::Event;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// events/retention_stream.json, with its key moved into `company` and given `event_id`.
fn ttl_removal(company: &str, event_id: &str) -> Event {
    let mut event: Value = serde_json::from_str(include_str!("../../../events/retention_stream.json")).unwrap();
    let record = &mut event["Records"][0];
    record["eventID"] = json!(event_id);
    record["dynamodb"]["OldImage"]["companyId"] = json!({ "S": company });
    serde_json::from_value(event).unwrap()
}

/// One batch of TTL removals of `company`'s keys, one record per event id, with sequence
/// numbers 1, 2, 3…
fn ttl_removals(company: &str, event_ids: &[&str]) -> Event {
    let mut batch = ttl_removal(company, event_ids[0]);
    batch.records = event_ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let mut record = ttl_removal(company, id).records.remove(0);
            record.change.sequence_number = Some(format!("{}", i + 1));
            record
        })
        .collect();
    batch
}

/// Three keys of the app's company, deleted: counters (active 1 for the root key, inactive 3).
async fn three_deleted_keys(app: &TestApp) {
    for _ in 0..3 {
        let id = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
        app.delete_key(&id).await;
    }
    assert_eq!(app.counters().await, (1, 3));
}

/// The sequence numbers a stream answer reports as failed.
fn failed(answer: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    answer.batch_item_failures.iter().map(|f| f.item_identifier.clone().unwrap_or_default()).collect()
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
    let answer = handle_batch(&app.app.store, event.clone()).await.unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(app.counters().await, (1, 0));
    let replayed = handle_batch(&app.app.store, event).await.unwrap();
    assert!(replayed.batch_item_failures.is_empty(), "a redelivered batch succeeds: {replayed:?}");
    assert_eq!(app.counters().await, (1, 0), "a redelivered batch changes nothing");
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
        let answer = handle_batch(&app.app.store, event).await.unwrap();
        assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    }
    assert_eq!(app.counters().await, (1, 0));
}

#[tokio::test]
async fn a_failing_record_is_reported_as_a_batch_item_failure_and_its_retry_is_harmless() {
    let app = spawn_app().await;
    three_deleted_keys(&app).await;
    // The second record's event id makes its stream marker's key longer than DynamoDB allows
    // (2048 bytes), so DynamoDB refuses that record's write: a record that fails, for real.
    let too_long = "x".repeat(3000);
    let batch = ttl_removals(app.company.as_str(), &["event-a", &too_long, "event-c"]);
    let answer = handle_batch(&app.app.store, batch).await.unwrap();
    assert_eq!(failed(&answer), ["2"], "the first failed record's sequence number: {answer:?}");
    assert_eq!(app.counters().await, (1, 2), "the record before it counted, the one after it not tried");
    // Serialised as Lambda reads it.
    assert_eq!(serde_json::to_value(&answer).unwrap(), json!({ "batchItemFailures": [{ "itemIdentifier": "2" }] }));

    // Lambda retries from the failed record on (here with the record's problem gone), and a
    // bisected or replayed batch may hold records already counted: each still counts once.
    let retried = ttl_removals(app.company.as_str(), &["event-a", "event-b", "event-c"]);
    let answer = handle_batch(&app.app.store, retried.clone()).await.unwrap();
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    assert_eq!(app.counters().await, (1, 0));
    handle_batch(&app.app.store, retried).await.unwrap();
    assert_eq!(app.counters().await, (1, 0), "replaying the whole batch changes nothing");
}

#[tokio::test]
async fn a_batch_against_an_unreachable_table_reports_its_first_record() {
    let app = spawn_app().await;
    three_deleted_keys(&app).await;
    let missing = DynamoStore::new(app.client.clone(), "no-such-table");
    let batch = ttl_removals(app.company.as_str(), &["event-x", "event-y"]);
    let answer = handle_batch(&missing, batch.clone()).await.unwrap();
    assert_eq!(failed(&answer), ["1"], "{answer:?}");

    // Without a sequence number there is nothing to report: the whole batch fails.
    let mut anonymous = batch;
    anonymous.records[0].change.sequence_number = None;
    assert!(handle_batch(&missing, anonymous).await.is_err());
    assert_eq!(app.counters().await, (1, 3), "nothing counted");
}
