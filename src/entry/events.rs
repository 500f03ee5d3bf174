//! The lifecycle events' function (`lifecycle_events`) on the table's stream: each audit
//! record a key's write inserts becomes its `key.*` event, each change of an identity item its
//! `identity.*` event, published to EventBridge; and each key's `key.expiring` and
//! `key.expired` one-time schedules (EventBridge Scheduler) follow its `expiresAt`
//! (`domain::events` decides what; this module reads the records and carries it out).
//!
//! At least once: a record is done when its schedules are made and its events accepted. The
//! answer names the first record that failed (`ReportBatchItemFailures`), so Lambda retries
//! from it; records after it may be published twice, with the same `eventId`. The work of a
//! batch is bounded: at most 3 events and 2 schedule calls a record, events sent 10 a call.

use std::future::Future;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::events::{EventPlan, ExpirySchedule, ScheduleChange, of_audit, of_identity};
use crate::model::events::{EVENT_SOURCE, LifecycleEvent};
use crate::settings::{EventSettings, LifecycleEvents};
use crate::store::items::{StreamImage, stream_image};

/// PutEvents takes at most this many entries a call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// A publishing call that failed as a whole (the service refused it or could not be reached).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// Where events go and schedules are kept: EventBridge and EventBridge Scheduler
/// (`AwsPublisher`), or a test's own.
pub trait Publisher: Send + Sync {
    /// Publishes up to `MAX_ENTRIES_PER_CALL` events in one call; answers, for each in order,
    /// `None` if it was accepted or its error code.
    fn put_events(
        &self,
        events: &[LifecycleEvent],
    ) -> impl Future<Output = Result<Vec<Option<String>>, PublishError>> + Send;
    /// Creates the schedule, or replaces the one of its name.
    fn put_schedule(&self, schedule: &ExpirySchedule) -> impl Future<Output = Result<(), PublishError>> + Send;
    /// Deletes the schedule of that name; one that does not exist is no error.
    fn remove_schedule(&self, name: &str) -> impl Future<Output = Result<(), PublishError>> + Send;
}

/// What one record asks for (an unreadable record asks for nothing and is logged: retrying it
/// would not make it readable).
fn plan_of(record: &EventRecord, now: DateTime<Utc>, expiring_days: u32) -> EventPlan {
    let read = |image: &serde_dynamo::Item| match stream_image(image.clone()) {
        Ok(read) => Some(read),
        Err(e) => {
            tracing::error!(event_id = %record.event_id, error = %e, "stream record unreadable, skipped");
            None
        }
    };
    let (Some(new), Some(old)) = (read(&record.change.new_image), read(&record.change.old_image)) else {
        return EventPlan::default();
    };
    match (old, new) {
        (StreamImage::Other, StreamImage::Audit(audit)) if record.event_name == "INSERT" => {
            of_audit(&audit, now, expiring_days)
        }
        (
            old @ (StreamImage::Identity(_) | StreamImage::Other),
            new @ (StreamImage::Identity(_) | StreamImage::Other),
        ) => {
            let live = |image: StreamImage| match image {
                StreamImage::Identity(identity) => identity,
                StreamImage::Audit(_) | StreamImage::Other => None,
            };
            let at = record.change.approximate_creation_date_time;
            let event = of_identity(&record.event_id, live(old).as_ref(), live(new).as_ref(), at);
            EventPlan { events: event.into_iter().collect(), schedules: Vec::new() }
        }
        _ => EventPlan::default(),
    }
}

/// Handles one batch: every record's schedules, in order, stopping at the first that fails;
/// then the events of the records before it, 10 a call, stopping at the first call with a
/// failed entry. The answer names the first record that failed; an error only when that record
/// has no sequence number to report, so the whole batch is retried.
pub async fn handle_batch(
    publisher: &impl Publisher,
    now: DateTime<Utc>,
    expiring_days: u32,
    event: Event,
) -> Result<DynamoDbEventResponse, PublishError> {
    let plans: Vec<EventPlan> = event.records.iter().map(|r| plan_of(r, now, expiring_days)).collect();
    let mut failed: Option<(usize, PublishError)> = None;
    'records: for (index, plan) in plans.iter().enumerate() {
        for change in &plan.schedules {
            let done = match change {
                ScheduleChange::Put(schedule) => publisher.put_schedule(schedule).await,
                ScheduleChange::Remove(name) => publisher.remove_schedule(name).await,
            };
            if let Err(e) = done {
                failed = Some((index, e));
                break 'records;
            }
        }
    }
    let publishable = failed.as_ref().map_or(plans.len(), |(index, _)| *index);
    let entries: Vec<(usize, &LifecycleEvent)> =
        plans[..publishable].iter().enumerate().flat_map(|(i, plan)| plan.events.iter().map(move |e| (i, e))).collect();
    let mut published = 0;
    for chunk in entries.chunks(MAX_ENTRIES_PER_CALL) {
        let events: Vec<LifecycleEvent> = chunk.iter().map(|(_, e)| (*e).clone()).collect();
        let first_failed = match publisher.put_events(&events).await {
            Ok(outcomes) => chunk.iter().enumerate().find_map(|(n, (record, _))| {
                // An answer with fewer entries than sent leaves the rest unconfirmed: failed.
                match outcomes.get(n) {
                    Some(None) => None,
                    Some(Some(code)) => Some((*record, PublishError(format!("entry refused: {code}")))),
                    None => Some((*record, PublishError("entry not answered".into()))),
                }
            }),
            Err(e) => Some((chunk[0].0, e)),
        };
        if let Some((record, e)) = first_failed {
            if failed.as_ref().is_none_or(|(index, _)| record < *index) {
                failed = Some((record, e));
            }
            break;
        }
        published += chunk.len();
    }
    let mut answer = DynamoDbEventResponse::default();
    if let Some((index, e)) = failed {
        let record = &event.records[index];
        let Some(sequence_number) = record.change.sequence_number.clone() else {
            tracing::error!(event_id = %record.event_id, error = %e, "lifecycle event record failed, without a sequence number");
            return Err(e);
        };
        tracing::error!(event_id = %record.event_id, %sequence_number, error = %e, "lifecycle event record failed");
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number);
        answer.batch_item_failures.push(failure);
    }
    tracing::info!(
        records = event.records.len(),
        published,
        failed = answer.batch_item_failures.len(),
        "lifecycle events batch handled"
    );
    Ok(answer)
}

/// EventBridge and EventBridge Scheduler through the AWS SDK.
#[derive(Debug, Clone)]
pub struct AwsPublisher {
    events: aws_sdk_eventbridge::Client,
    scheduler: aws_sdk_scheduler::Client,
    target: LifecycleEvents,
}

impl AwsPublisher {
    /// Clients from the SDK configuration the app's DynamoDB client was built from (its
    /// credentials, region and HTTPS client), at the settings' endpoints if a test set them.
    pub fn new(config: &aws_config::SdkConfig, settings: &EventSettings, target: LifecycleEvents) -> Self {
        // The shared configuration's endpoint is DynamoDB Local's when one is set: never theirs.
        let mut events = aws_sdk_eventbridge::config::Builder::from(config);
        events.set_endpoint_url(settings.eventbridge_endpoint.clone());
        let mut scheduler = aws_sdk_scheduler::config::Builder::from(config);
        scheduler.set_endpoint_url(settings.scheduler_endpoint.clone());
        Self {
            events: aws_sdk_eventbridge::Client::from_conf(events.build()),
            scheduler: aws_sdk_scheduler::Client::from_conf(scheduler.build()),
            target,
        }
    }

    fn detail_json(event: &LifecycleEvent) -> Result<String, PublishError> {
        serde_json::to_string(&event.detail).map_err(|e| PublishError(e.to_string()))
    }

    fn schedule_target(&self, event: &LifecycleEvent) -> Result<aws_sdk_scheduler::types::Target, PublishError> {
        use aws_sdk_scheduler::types::{EventBridgeParameters, Target};
        let parameters = EventBridgeParameters::builder()
            .detail_type(event.event_type.detail_type())
            .source(EVENT_SOURCE)
            .build()
            .map_err(|e| PublishError(e.to_string()))?;
        Target::builder()
            .arn(&self.target.bus_arn)
            .role_arn(&self.target.scheduler_role_arn)
            .input(Self::detail_json(event)?)
            .event_bridge_parameters(parameters)
            .build()
            .map_err(|e| PublishError(e.to_string()))
    }
}

/// A schedule's `at(…)` expression (UTC), rounded up to the second so it never fires early.
pub fn at_expression(at: DateTime<Utc>) -> String {
    let second = if at.timestamp_subsec_nanos() > 0 { at + TimeDelta::seconds(1) } else { at };
    format!("at({})", second.format("%Y-%m-%dT%H:%M:%S"))
}

/// An SDK error as one line (its service error code where it has one).
fn sdk_error<E: std::error::Error + 'static>(error: &E) -> PublishError {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    PublishError(text)
}

impl Publisher for AwsPublisher {
    async fn put_events(&self, events: &[LifecycleEvent]) -> Result<Vec<Option<String>>, PublishError> {
        use aws_sdk_eventbridge::types::PutEventsRequestEntry;
        let entries = events
            .iter()
            .map(|event| {
                Ok(PutEventsRequestEntry::builder()
                    .event_bus_name(&self.target.bus_arn)
                    .source(EVENT_SOURCE)
                    .detail_type(event.event_type.detail_type())
                    .detail(Self::detail_json(event)?)
                    .build())
            })
            .collect::<Result<Vec<_>, PublishError>>()?;
        let answer = self.events.put_events().set_entries(Some(entries)).send().await.map_err(|e| sdk_error(&e))?;
        Ok(answer.entries().iter().map(|entry| entry.error_code().map(str::to_owned)).collect())
    }

    async fn put_schedule(&self, schedule: &ExpirySchedule) -> Result<(), PublishError> {
        use aws_sdk_scheduler::types::{ActionAfterCompletion, FlexibleTimeWindow, FlexibleTimeWindowMode};
        let window = FlexibleTimeWindow::builder()
            .mode(FlexibleTimeWindowMode::Off)
            .build()
            .map_err(|e| PublishError(e.to_string()))?;
        let target = self.schedule_target(&schedule.event)?;
        let created = self
            .scheduler
            .create_schedule()
            .name(&schedule.name)
            .group_name(&self.target.schedule_group)
            .schedule_expression(at_expression(schedule.at))
            .schedule_expression_timezone("UTC")
            .flexible_time_window(window.clone())
            .action_after_completion(ActionAfterCompletion::Delete)
            .target(target.clone())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // One of that name exists (an earlier expiry, or this record delivered again):
            // replaced as a whole.
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conflict_exception()) => self
                .scheduler
                .update_schedule()
                .name(&schedule.name)
                .group_name(&self.target.schedule_group)
                .schedule_expression(at_expression(schedule.at))
                .schedule_expression_timezone("UTC")
                .flexible_time_window(window)
                .action_after_completion(ActionAfterCompletion::Delete)
                .target(target)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| sdk_error(&e)),
            Err(e) => Err(sdk_error(&e)),
        }
    }

    async fn remove_schedule(&self, name: &str) -> Result<(), PublishError> {
        let deleted = self.scheduler.delete_schedule().name(name).group_name(&self.target.schedule_group).send().await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(sdk_error(&e)),
        }
    }
}

/// The Lambda runner of the lifecycle events' function, on the settings read at start-up.
pub async fn run(settings: crate::settings::Settings) -> Result<(), lambda_http::Error> {
    let target = settings.lifecycle_events()?;
    crate::entry::config::init_logging(&settings.logging);
    let config = crate::entry::config::sdk_config(&settings.database).await;
    let publisher = std::sync::Arc::new(AwsPublisher::new(&config, &settings.events, target));
    let expiring_days = settings.events.expiring_days;
    // Boxed: the runtime's future type is deep enough to overflow the compiler's layout query.
    Box::pin(lambda_http::lambda_runtime::run(lambda_http::service_fn(
        move |event: lambda_http::LambdaEvent<Event>| {
            let publisher = publisher.clone();
            async move {
                let now = crate::domain::Clock::now(&crate::domain::SystemClock);
                handle_batch(publisher.as_ref(), now, expiring_days, event.payload)
                    .await
                    .map_err(lambda_http::Error::from)
            }
        },
    )))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_expressions_never_fire_early() {
        let exact = DateTime::parse_from_rfc3339("2030-06-01T12:00:00Z").unwrap().to_utc();
        assert_eq!(at_expression(exact), "at(2030-06-01T12:00:00)");
        let later = DateTime::parse_from_rfc3339("2030-06-01T12:00:00.250Z").unwrap().to_utc();
        assert_eq!(at_expression(later), "at(2030-06-01T12:00:01)");
    }
}
