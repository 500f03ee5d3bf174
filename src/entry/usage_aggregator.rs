//! The usage aggregator: verify prints one line per verification of a found key (its metric
//! line, `entry::http::metrics`, with a `usage` member); verify's log group has a subscription
//! filter that selects those lines and invokes this function with each batch of them. A batch
//! is counted into hourly and daily items exactly once: it is named by the hash of its log
//! events' ids, so a batch CloudWatch Logs delivers again adds nothing.
//!
//! The local server has no log group: it feeds the same counting in process
//! (`entry::local_usage`).

use aws_lambda_events::event::cloudwatch_logs::{LogEntry, LogsEvent};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::DomainError;
use crate::domain::usage::count_verifications;
use crate::model::usage::{Outcome, Verification};
use crate::model::{CompanyId, IdentityId, KeyId};
use crate::store::{UsageAdded, UsageHistory};

use super::http::metrics::NAMESPACE;

/// A verify line, as far as usage reads it: its metric directive and its `usage` member (the
/// other members are ignored). Read in one pass, with no JSON tree in between.
#[derive(Deserialize)]
struct VerifyLine {
    #[serde(rename = "_aws")]
    directive: Directive,
    /// The member `metrics::USAGE_MEMBER` names (the runtime test reads real lines through it).
    usage: UsageMember,
}

/// The directive of a verify line: only lines of verify's metric namespace count.
#[derive(Deserialize)]
struct Directive {
    #[serde(rename = "CloudWatchMetrics")]
    metrics: Vec<MetricSet>,
}

#[derive(Deserialize)]
struct MetricSet {
    #[serde(rename = "Namespace")]
    namespace: String,
}

/// The `usage` member of a verify line, as printed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMember {
    company: String,
    key_id: String,
    identity_id: Option<String>,
    outcome: String,
}

/// A log line's verification, when it is verify's metric line (namespace `ApiKeys/Verify`)
/// with a well-formed `usage`, logged within the years 2000 to 9999; any other line (a log
/// message, a line of another shape or function) is `None`.
pub fn verification_of(line: &str, at: DateTime<Utc>) -> Option<Verification> {
    if !(2000..=9999).contains(&chrono::Datelike::year(&at)) {
        return None;
    }
    let VerifyLine { directive, usage: member } = serde_json::from_str(line).ok()?;
    if !directive.metrics.iter().any(|m| m.namespace == NAMESPACE) {
        return None;
    }
    Some(Verification {
        company: CompanyId::parse(&member.company, "company").ok()?,
        // As stored: a key whose id became a reserved word later is still counted.
        key_id: KeyId::try_from(member.key_id).ok()?,
        identity_id: match member.identity_id {
            Some(id) => Some(IdentityId::parse(&id, "identityId").ok()?),
            None => None,
        },
        outcome: Outcome::from_code(&member.outcome)?,
        at,
    })
}

/// The name of a batch: the SHA-256 of its log events' ids, sorted (so the same events name
/// the same batch in any order). CloudWatch Logs gives each event a unique id and redelivers a
/// batch as it was.
pub fn batch_name(events: &[LogEntry]) -> String {
    let mut ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    let mut hash = Sha256::new();
    for id in ids {
        hash.update(id.as_bytes());
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

/// Counts one delivery of the subscription filter. Lines that are not usage lines are skipped
/// (and counted in the log line that reports the batch).
pub async fn handle_logs(store: &impl UsageHistory, event: &LogsEvent) -> Result<UsageAdded, DomainError> {
    // CloudWatch Logs' own check that it can deliver carries no verification.
    if event.aws_logs.data.message_type != "DATA_MESSAGE" {
        return Ok(UsageAdded { written: 0, already_added: 0 });
    }
    let events = &event.aws_logs.data.log_events;
    let verifications: Vec<Verification> = events
        .iter()
        .filter_map(|e| verification_of(&e.message, DateTime::from_timestamp_millis(e.timestamp)?))
        .collect();
    let added = count_verifications(store, &batch_name(events), &verifications).await?;
    tracing::info!(
        events = events.len(),
        verifications = verifications.len(),
        skipped = events.len() - verifications.len(),
        written = added.written,
        already_added = added.already_added,
        "usage batch counted"
    );
    Ok(added)
}

/// The Lambda runner for the aggregator, on the settings read at start-up: it answers
/// `{written, alreadyAdded}` (items). An error fails the invocation, and Lambda retries the same
/// batch (counted once all the same).
pub async fn run(settings: crate::settings::Settings) -> Result<(), lambda_http::Error> {
    let (app, _) = crate::entry::config::start_with(&settings).await;
    crate::entry::config::run_events(app, |app, event: LogsEvent| async move {
        let added = handle_logs(&app.store, &event).await.map_err(|e| e.to_string())?;
        Ok(serde_json::json!({ "written": added.written, "alreadyAdded": added.already_added }))
    })
    .await
}
