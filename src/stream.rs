//! The table's stream function: when TTL removes a deleted key after its retention, the
//! company's counters must forget it too, so `total` stays exact without a recount.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use serde::Deserialize;

use crate::model::{CompanyId, KeyStatus};
use crate::store::CounterKeeper;
use crate::store::StoreError;
use crate::store::items::KEY_SK;

/// What a removed key item's old image tells: whose it was and which counter held it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemovedKey {
    sk: String,
    company_id: CompanyId,
    status: KeyStatus,
}

/// TTL deletions are REMOVE records made by the DynamoDB service itself.
fn removed_by_ttl(record: &EventRecord) -> bool {
    record.event_name == "REMOVE"
        && record
            .user_identity
            .as_ref()
            .is_some_and(|who| who.type_ == "Service" && who.principal_id == "dynamodb.amazonaws.com")
}

/// Handles one batch; returns how many keys it took out of the counters. Items other than keys,
/// and removals not made by TTL, are ignored (a delete through the API already moved the counters).
pub async fn handle_batch(store: &impl CounterKeeper, event: Event) -> Result<usize, StoreError> {
    let mut forgotten = 0;
    for record in event.records.iter().filter(|r| removed_by_ttl(r)) {
        let Ok(key) = serde_dynamo::from_item::<_, RemovedKey>(record.change.old_image.clone()) else { continue };
        if key.sk != KEY_SK {
            continue;
        }
        if store.forget_expired_key(&record.event_id, &key.company_id, key.status).await? {
            forgotten += 1;
        }
    }
    tracing::info!(records = event.records.len(), forgotten, "stream batch handled");
    Ok(forgotten)
}

/// The Lambda runner for the stream function.
pub async fn run() -> Result<(), lambda_http::Error> {
    crate::config::init_logging();
    let app = std::sync::Arc::new(crate::config::App::from_env().await);
    lambda_http::lambda_runtime::run(lambda_http::service_fn(move |event: lambda_http::LambdaEvent<Event>| {
        let app = app.clone();
        async move { handle_batch(&app.store, event.payload).await.map_err(lambda_http::Error::from) }
    }))
    .await
}
