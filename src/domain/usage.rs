//! Usage: a key's or identity's verifications by hour or day, and the counting of a batch of
//! verifications as verify reported them.

use chrono::{DateTime, Utc};

use crate::model::usage::{self, OutcomeCounts, UsageBucket, UsageOwner, UsageRange, Verification};
use crate::model::{IdentityId, KeyId};
use crate::store::{IdentityReader, KeyReader, UsageAdded, UsageHistory, UsageRecorder};

use super::{Caller, DomainError};

/// A usage answer: the range asked, its buckets in time order (none empty) and their totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageReport {
    /// What was asked.
    pub range: UsageRange,
    /// The totals of `buckets`, by outcome.
    pub totals: OutcomeCounts,
    /// Every bucket of the range that counted something.
    pub buckets: Vec<UsageBucket>,
}

/// A key of the caller's company's usage; a key that is none of it is `NotFound`. A deleted
/// key's usage stays readable as long as the key is; what was counted before the key was made
/// (a custom id used again after an older key with it left the table) is not its.
pub async fn key_usage(
    store: &(impl KeyReader + UsageHistory + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    id: &KeyId,
    range: UsageRange,
) -> Result<UsageReport, DomainError> {
    caller.charge(store, now).await?;
    let key = store.get_key(&caller.company, id).await?.ok_or(DomainError::NotFound)?;
    report(store, caller, &UsageOwner::Key(id.clone()), range, key.created_at).await
}

/// An identity of the caller's company's usage: the verifications of all its keys; an
/// identity that is none of it (or deleted) is `NoIdentity`.
pub async fn identity_usage(
    store: &(impl IdentityReader + UsageHistory + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    id: &IdentityId,
    range: UsageRange,
) -> Result<UsageReport, DomainError> {
    caller.charge(store, now).await?;
    let identity = store.get_identity(&caller.company, id).await?.ok_or(DomainError::NoIdentity)?;
    report(store, caller, &UsageOwner::Identity(id.clone()), range, identity.created_at).await
}

/// The owner's buckets in the range, from the bucket it was made in.
async fn report(
    store: &impl UsageHistory,
    caller: &Caller,
    owner: &UsageOwner,
    range: UsageRange,
    made: DateTime<Utc>,
) -> Result<UsageReport, DomainError> {
    let mut buckets = store.read_usage(&caller.company, owner, &range).await?;
    let first = range.granularity.start_of(made);
    buckets.retain(|bucket| bucket.start >= first);
    Ok(UsageReport { range, totals: usage::totals(&buckets), buckets })
}

/// Counts a batch of verifications exactly once: `batch` names it (the same name for the
/// same verifications however often they are delivered), so a redelivered batch adds nothing.
pub async fn count_verifications(
    store: &impl UsageHistory,
    batch: &str,
    verifications: &[Verification],
) -> Result<UsageAdded, DomainError> {
    let increments = usage::tally(verifications);
    Ok(store.add_usage(batch, &increments).await?)
}
