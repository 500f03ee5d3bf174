//! The lifecycle events' function (`lifecycle_events`) on the table's stream: each audit
//! record a key's write inserts becomes its `key.*` event, each change of an identity item its
//! `identity.*` event, published to EventBridge; and each key's `key.expiring` and
//! `key.expired` one-time schedules (EventBridge Scheduler) follow its `expiresAt`
//! (`domain::events` decides what; this module reads the records and carries it out).
//!
//! At least once: a record is done when its schedules are made and its events accepted. The
//! answer names the first record that failed (`ReportBatchItemFailures`), so Lambda retries
//! from it; records after it may be published twice, with the same `eventId`. The work of a
//! batch is bounded: at most 3 events and 6 Scheduler calls a record, events sent 10 a call.
//! An unreadable record fails; a schedule Scheduler refuses for good fails nothing.

use std::future::Future;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, TimeDelta, Utc};

use crate::domain::Clock;
use crate::domain::events::{EventPlan, ExpirySchedule, ScheduleChange, is_due, of_audit, of_identity};
use crate::model::events::{EVENT_SOURCE, LifecycleEvent};
use crate::settings::{EventSettings, LifecycleEvents};
use crate::store::StoreError;
use crate::store::items::{StreamImage, stream_image};

/// The most Scheduler calls one record makes: 2 schedules, each a create, an update when one of
/// its name exists, and a removal when it is refused for good (template.yaml's Timeout and
/// BatchSize are sized by it).
pub const MAX_SCHEDULER_CALLS_PER_RECORD: u64 = 6;
/// The most events one record publishes: its own, and its 2 expiry events when they are due.
pub const MAX_EVENTS_PER_RECORD: u64 = 3;

/// PutEvents takes at most this many entries a call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// How long Scheduler keeps retrying a schedule's event before its dead-letter queue (its most).
pub const SCHEDULE_RETRY_SECONDS: i32 = 86_400;
/// How many times Scheduler retries it (its most).
pub const SCHEDULE_RETRY_ATTEMPTS: i32 = 185;

/// A publishing call that failed as a whole (the service refused it or could not be reached).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PublishError(pub String);

/// A schedule call that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Scheduler refused the request for good (an answer 4xx other than throttling or a refusal
    /// of the function's own access, e.g. a `ValidationException` for an `expiresAt` in year
    /// 9999): the same request would be refused again. `code`: its error code, never its
    /// message (which may quote the request's values).
    #[error("refused: {code}")]
    Refused {
        /// The service's error code.
        code: String,
    },
    /// Anything else (throttled, a 5xx, a timeout, unreachable, access refused): worth retrying.
    #[error(transparent)]
    Failed(#[from] PublishError),
}

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
    fn put_schedule(&self, schedule: &ExpirySchedule) -> impl Future<Output = Result<(), ScheduleError>> + Send;
    /// Deletes the schedule of that name; one that does not exist is no error.
    fn remove_schedule(&self, name: &str) -> impl Future<Output = Result<(), ScheduleError>> + Send;
}

/// What one record asks for; an error for a record whose image the model refuses (an audit or
/// identity item it cannot read): that record fails, so Lambda retries it and at last keeps it
/// in StreamFailureQueue, whose alarm fires, rather than its event being lost unseen. The log
/// line and the error name the record and the error's kind only: the store's message may quote
/// the item's values.
fn plan_of(record: &EventRecord, now: DateTime<Utc>, expiring_days: u32) -> Result<EventPlan, PublishError> {
    let read = |image: &serde_dynamo::Item| {
        stream_image(image.clone()).map_err(|e| {
            let kind = match e {
                StoreError::Corrupt(_) => "corrupt",
                StoreError::Unavailable(_) => "unavailable",
            };
            tracing::error!(event_id = %record.event_id, kind, "stream record unreadable");
            PublishError(format!("stream record unreadable ({kind})"))
        })
    };
    let (new, old) = (read(&record.change.new_image)?, read(&record.change.old_image)?);
    Ok(plan_of_images(record, old, new, now, expiring_days))
}

/// What a record whose images were read asks for.
fn plan_of_images(
    record: &EventRecord,
    old: StreamImage,
    new: StreamImage,
    now: DateTime<Utc>,
    expiring_days: u32,
) -> EventPlan {
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

/// Handles one batch: every record's schedules, in order, stopping at the first record that
/// fails (unreadable, or a schedule call to retry); then the events of the records before it,
/// 10 a call, stopping at the first call with a failed entry. A schedule Scheduler refuses for
/// good fails nothing: its event is published at once if it is due, else it is logged and
/// counted (`schedules_refused`), and any schedule of the key's earlier expiry is removed, so
/// one key's odd expiry blocks neither its own events nor the records after it. The answer
/// names the first record that failed; an error only when that record has no sequence number to
/// report, so the whole batch is retried. `clock` is read for each record (a batch takes time).
pub async fn handle_batch(
    publisher: &impl Publisher,
    clock: &impl Clock,
    expiring_days: u32,
    event: Event,
) -> Result<DynamoDbEventResponse, PublishError> {
    let mut plans: Vec<EventPlan> = Vec::with_capacity(event.records.len());
    let mut failed: Option<(usize, PublishError)> = None;
    let mut refused = 0usize;
    'records: for (index, record) in event.records.iter().enumerate() {
        let mut plan = match plan_of(record, clock.now(), expiring_days) {
            Ok(plan) => plan,
            Err(e) => {
                failed = Some((index, e));
                break 'records;
            }
        };
        let mut due = Vec::new();
        for change in &plan.schedules {
            let done = match change {
                ScheduleChange::Put(schedule) => match publisher.put_schedule(schedule).await {
                    Err(ScheduleError::Refused { code }) => {
                        refused += 1;
                        // The expiry time is a value of the key's: the name and code only.
                        tracing::warn!(
                            event_id = %record.event_id, schedule = %schedule.name, %code,
                            "expiry schedule refused for good"
                        );
                        if is_due(schedule.at, clock.now()) {
                            due.push(schedule.event.clone());
                        }
                        // One of the key's earlier expiry would fire for an expiry it no longer has.
                        publisher.remove_schedule(&schedule.name).await
                    }
                    done => done,
                },
                ScheduleChange::Remove(name) => publisher.remove_schedule(name).await,
            };
            match done {
                Ok(()) => {}
                Err(ScheduleError::Refused { code }) => {
                    refused += 1;
                    tracing::warn!(event_id = %record.event_id, %code, "expiry schedule removal refused for good");
                }
                Err(ScheduleError::Failed(e)) => {
                    failed = Some((index, e));
                    break 'records;
                }
            }
        }
        plan.events.extend(due);
        plans.push(plan);
    }
    let entries: Vec<(usize, &LifecycleEvent)> =
        plans.iter().enumerate().flat_map(|(i, plan)| plan.events.iter().map(move |e| (i, e))).collect();
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
        schedules_refused = refused,
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
        use aws_sdk_scheduler::types::{DeadLetterConfig, EventBridgeParameters, RetryPolicy, Target};
        let parameters = EventBridgeParameters::builder()
            .detail_type(event.event_type.detail_type())
            .source(EVENT_SOURCE)
            .build()
            .map_err(|e| PublishError(e.to_string()))?;
        // Scheduler retries a PutEvents that fails (throttled, the bus unreachable) for up to a
        // day, then puts the event (its detail: ids and names, no value) in the dead-letter
        // queue, whose alarm fires, rather than dropping it.
        let retries = RetryPolicy::builder()
            .maximum_event_age_in_seconds(SCHEDULE_RETRY_SECONDS)
            .maximum_retry_attempts(SCHEDULE_RETRY_ATTEMPTS)
            .build();
        let dead_letter = DeadLetterConfig::builder().arn(&self.target.scheduler_dead_letter_arn).build();
        Target::builder()
            .arn(&self.target.bus_arn)
            .role_arn(&self.target.scheduler_role_arn)
            .input(Self::detail_json(event)?)
            .event_bridge_parameters(parameters)
            .retry_policy(retries)
            .dead_letter_config(dead_letter)
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

/// A Scheduler call's error: `Refused` for a 4xx answer other than throttling or a refusal of
/// the function's own credentials or access (those are a deployment's to fix, and must keep
/// failing, and so alarm, rather than drop every schedule); `Failed` for the rest.
fn schedule_error<E>(error: &aws_sdk_scheduler::error::SdkError<E>) -> ScheduleError
where
    E: aws_sdk_scheduler::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    const RETRIED: [&str; 8] = [
        "ThrottlingException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "IncompleteSignature",
    ];
    if let (Some(service), Some(raw)) = (error.as_service_error(), error.raw_response()) {
        let status = raw.status().as_u16();
        let code = service.code().unwrap_or("unknown");
        if (400..500).contains(&status) && !matches!(status, 401 | 403 | 408 | 429) && !RETRIED.contains(&code) {
            return ScheduleError::Refused { code: code.to_owned() };
        }
    }
    ScheduleError::Failed(sdk_error(error))
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

    async fn put_schedule(&self, schedule: &ExpirySchedule) -> Result<(), ScheduleError> {
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
                .map_err(|e| schedule_error(&e)),
            Err(e) => Err(schedule_error(&e)),
        }
    }

    async fn remove_schedule(&self, name: &str) -> Result<(), ScheduleError> {
        let deleted = self.scheduler.delete_schedule().name(name).group_name(&self.target.schedule_group).send().await;
        match deleted {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(schedule_error(&e)),
        }
    }
}

/// The Lambda runner of the lifecycle events' function, on the settings read at start-up.
pub async fn run(settings: crate::settings::Settings) -> Result<(), lambda_http::Error> {
    let target = settings.lifecycle_events()?;
    crate::entry::config::init_logging(&settings.logging);
    let config = crate::entry::config::sdk_config(&settings.database).await;
    let publisher = AwsPublisher::new(&config, &settings.events, target);
    let expiring_days = settings.events.expiring_days;
    crate::entry::config::run_events(publisher, move |publisher, batch: Event| async move {
        handle_batch(publisher.as_ref(), &crate::domain::SystemClock, expiring_days, batch)
            .await
            .map_err(lambda_http::Error::from)
    })
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
