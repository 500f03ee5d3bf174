//! The table's stream function: when TTL removes a deleted key after its retention, the
//! company's counters must forget it too, so `total` stays exact without a recount.
//!
//! Failures are reported per record (`FunctionResponseTypes: [ReportBatchItemFailures]` in
//! template.yaml): the answer names the first record that failed, so Lambda checkpoints the ones
//! before it and retries from there. Replaying a record is harmless (its stream marker).

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};

use crate::store::items::removed_key;
use crate::store::{CounterKeeper, StoreError};

/// TTL deletions are REMOVE records made by the DynamoDB service itself.
fn removed_by_ttl(record: &EventRecord) -> bool {
    record.event_name == "REMOVE"
        && record
            .user_identity
            .as_ref()
            .is_some_and(|who| who.type_ == "Service" && who.principal_id == "dynamodb.amazonaws.com")
}

/// One record: `true` if it took a key out of the counters. Items other than keys, and removals
/// not made by TTL, are ignored (a delete through the API already moved the counters).
async fn handle_record(store: &impl CounterKeeper, record: &EventRecord) -> Result<bool, StoreError> {
    if !removed_by_ttl(record) {
        return Ok(false);
    }
    let Some((company, status)) = removed_key(record.change.old_image.clone()) else { return Ok(false) };
    store.forget_expired_key(&record.event_id, &company, status).await
}

/// Handles one batch in order and stops at the first record that fails: the answer names that
/// record's sequence number (the records after it are not tried, Lambda sends them again). An
/// error only when the failed record has no sequence number to report, so the whole batch is
/// retried.
pub async fn handle_batch(store: &impl CounterKeeper, event: Event) -> Result<DynamoDbEventResponse, StoreError> {
    let mut answer = DynamoDbEventResponse::default();
    let mut forgotten = 0;
    for record in &event.records {
        match handle_record(store, record).await {
            Ok(counted) => forgotten += usize::from(counted),
            Err(e) => {
                let Some(sequence_number) = record.change.sequence_number.clone() else {
                    tracing::error!(event_id = %record.event_id, error = %e, "stream record failed, without a sequence number");
                    return Err(e);
                };
                tracing::error!(event_id = %record.event_id, %sequence_number, error = %e, "stream record failed");
                let mut failure = DynamoDbBatchItemFailure::default();
                failure.item_identifier = Some(sequence_number);
                answer.batch_item_failures.push(failure);
                break;
            }
        }
    }
    tracing::info!(
        records = event.records.len(),
        forgotten,
        failed = answer.batch_item_failures.len(),
        "stream batch handled"
    );
    Ok(answer)
}

/// The Lambda runner for the stream function, on the settings read at start-up.
pub async fn run(settings: crate::settings::Settings) -> Result<(), lambda_http::Error> {
    let (app, _) = crate::entry::config::start_with(&settings).await;
    crate::entry::config::run_events(app, |app, event: Event| async move {
        handle_batch(&app.store, event).await.map_err(lambda_http::Error::from)
    })
    .await
}
