//! The identity operations: create, get, list, update and delete. Like the key operations they
//! authenticate → validate → authorize → charge → act, are retry-safe with `Idempotency-Key` and
//! guarded by `If-Match`; an identity's `externalId` is unique within its company, and an
//! identity with an active key cannot be deleted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{CreateIdentityInput, IdempotencyKey, Identity, IdentityId, PageRequest, UpdateIdentityInput};
use crate::store::{
    IdempotencyReader, IdentityLister, IdentityOutcome, IdentityReader, IdentityRecord, IdentityWrite, IdentityWriter,
    PageWindow, UsageRecorder,
};

use super::idempotency::IdempotentRequest;
use super::keys::{MAX_WRITE_ATTEMPTS, replay, replay_after_race};
use super::paging::{Page, page};
use super::{Caller, DomainError};

/// An identity as a write answers it, and as a retry with the same `Idempotency-Key` gets it
/// again: sealed in the store's record of it, never the HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenIdentity(pub Identity);

impl Serialize for WrittenIdentity {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        IdentityRecord::from_model(&self.0).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WrittenIdentity {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = IdentityRecord::deserialize(deserializer)?;
        record.into_model().map(Self).map_err(serde::de::Error::custom)
    }
}

/// The identity a write acts on, and how the request guards it.
#[derive(Debug, Clone, Copy)]
pub struct IdentityTarget<'a> {
    /// The identity written.
    pub id: &'a IdentityId,
    /// The version from `If-Match`: a write on any other version is refused, not merged.
    pub if_match: Option<u64>,
    /// The request's `Idempotency-Key`, to answer a retry with the first answer.
    pub retry: Option<&'a IdempotencyKey>,
}

fn identity_exists(external_id: &str) -> DomainError {
    DomainError::IdentityExists(external_id.to_owned())
}

/// Creates an identity. Its `externalId` already taken is refused before the caller is charged
/// (the write's own condition decides a race between two creates).
pub async fn create_identity(
    store: &(impl IdentityReader + IdentityWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    input: CreateIdentityInput,
    retry: Option<&IdempotencyKey>,
) -> Result<Identity, DomainError> {
    caller.may_write_identity(!input.parts.ratelimits.is_empty())?;
    let idempotent = retry.map(|header| IdempotentRequest::new(caller, header, "create identity", &input));
    if let Some(WrittenIdentity(earlier)) = replay(store, idempotent.as_ref(), now).await? {
        caller.charge(store, now).await?;
        return Ok(earlier);
    }
    if store.find_identity(&caller.company, &input.external_id).await?.is_some() {
        return Err(identity_exists(&input.external_id));
    }
    caller.charge(store, now).await?;
    let identity = Identity::new(caller.company.clone(), input, now);
    let record = idempotent.as_ref().map(|r| r.record(&WrittenIdentity(identity.clone()), now));
    let write = IdentityWrite { before: None, after: Some(&identity), now, idempotency: record.as_ref() };
    match store.write_identity(write).await? {
        IdentityOutcome::Written => Ok(identity),
        IdentityOutcome::ExternalIdTaken => Err(identity_exists(&identity.external_id)),
        IdentityOutcome::IdempotencyKeyTaken => {
            replay_after_race(store, idempotent.as_ref(), now).await.map(|WrittenIdentity(i)| i)
        }
        IdentityOutcome::Changed => Err(DomainError::Internal("a new identity was found changed".into())),
    }
}

/// One identity of the caller's company; another company's is as absent as one that never was.
pub async fn get_identity(
    store: &(impl IdentityReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    id: &IdentityId,
) -> Result<Identity, DomainError> {
    caller.charge(store, now).await?;
    store.get_identity(&caller.company, id).await?.ok_or(DomainError::NoIdentity)
}

/// A page of the company's identities, newest first; with `externalId`, the one that has it (a
/// page of one, or of none).
pub async fn list_identities(
    store: &(impl IdentityReader + IdentityLister + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    request: &PageRequest,
) -> Result<Page<Identity>, DomainError> {
    caller.charge(store, now).await?;
    if let Some(external_id) = &request.external_id {
        let found: Vec<Identity> = store.find_identity(&caller.company, external_id).await?.into_iter().collect();
        return Ok(Page { total: found.len() as u64, items: found, next: None, previous: None });
    }
    let outcome = store.list_identities(&caller.company, PageWindow::of(request)).await?;
    page(request, outcome, "an identity of this company", |i| i.id.as_cursor())
}

/// Applies a PATCH. Without `If-Match`, a concurrent change is merged by reapplying on the fresh
/// identity; with it, a stale version is refused. No key changes the named limits of the
/// identity it belongs to (403), as no key changes its own limits.
pub async fn update_identity(
    store: &(impl IdentityReader + IdentityWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: IdentityTarget<'_>,
    input: &UpdateIdentityInput,
) -> Result<Identity, DomainError> {
    caller.may_write_identity(input.changes_limits())?;
    let write =
        IdentityWriteOf { operation: "update", input, answer: |after: Option<Identity>| after.map(WrittenIdentity) };
    write_identity_with_retry(store, caller, now, target, &write, |before| {
        if input.changes_limits() && belongs_to(caller, &before.id) {
            return Err(DomainError::Forbidden(
                "a key cannot change the named limits of the identity it belongs to; another key must".into(),
            ));
        }
        let after = input.apply(before);
        Ok((after != *before).then_some(Some(after)))
    })
    .await?
    .map(|WrittenIdentity(identity)| identity)
    .ok_or_else(|| DomainError::Internal(format!("an update of identity {} answered no identity", target.id)))
}

/// Deletes an identity: refused (409) while an active key belongs to it. Its inactive keys keep
/// naming it (and cannot be re-activated with it). Deleting it again is 404, but for a retry
/// under the same `Idempotency-Key`, which gets the first answer.
pub async fn delete_identity(
    store: &(impl IdentityReader + IdentityWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: IdentityTarget<'_>,
) -> Result<(), DomainError> {
    caller.may_write_identity(true)?;
    let write = IdentityWriteOf { operation: "delete", input: &(), answer: |_: Option<Identity>| () };
    write_identity_with_retry(store, caller, now, target, &write, |before| {
        if before.keys.active > 0 {
            return Err(DomainError::Conflict(format!(
                "{} active key(s) belong to this identity: delete or deactivate them, or move them to another \
                 identity, first",
                before.keys.active
            )));
        }
        Ok(Some(None))
    })
    .await
}

/// Whether the caller is a key that belongs to `identity`.
fn belongs_to(caller: &Caller, identity: &IdentityId) -> bool {
    caller.key.as_deref().and_then(|key| key.policy.identity_id.as_ref()) == Some(identity)
}

/// Which identity write: its name and parsed input (what tells a retry from another request
/// under the same `Idempotency-Key`), and what it answers given the identity it leaves.
struct IdentityWriteOf<'a, I, F> {
    operation: &'static str,
    input: &'a I,
    answer: F,
}

/// Read, check, plan, write only if the identity did not change meanwhile; on a conflict, read
/// and plan again, unless the caller pinned a version. The plan answers `None` for nothing to
/// write, `Some(None)` to delete, `Some(Some(after))` to save. The checks, in order: a replay of
/// an earlier answer, `If-Match`, the plan's own rules, a taken `externalId`; the caller is
/// charged once, after all of them pass.
async fn write_identity_with_retry<A: Serialize + serde::de::DeserializeOwned>(
    store: &(impl IdentityReader + IdentityWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: IdentityTarget<'_>,
    write: &IdentityWriteOf<'_, impl Serialize, impl Fn(Option<Identity>) -> A>,
    plan: impl Fn(&Identity) -> Result<Option<Option<Identity>>, DomainError>,
) -> Result<A, DomainError> {
    let operation = format!("{} identity {}", write.operation, target.id);
    let idempotent = target.retry.map(|header| IdempotentRequest::new(caller, header, &operation, write.input));
    let mut charged = false;
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let before = store.get_identity(&caller.company, target.id).await?;
        // A retry is answered even once the identity is gone (a delete's retry).
        if let Some(earlier) = replay(store, idempotent.as_ref(), now).await? {
            if !charged {
                caller.charge(store, now).await?;
            }
            return Ok(earlier);
        }
        let before = before.ok_or(DomainError::NoIdentity)?;
        if target.if_match.is_some_and(|v| v != before.version) {
            return Err(DomainError::StaleVersion);
        }
        let planned = plan(&before)?;
        if let Some(Some(after)) = &planned
            && after.external_id != before.external_id
            && store.find_identity(&caller.company, &after.external_id).await?.is_some()
        {
            return Err(identity_exists(&after.external_id));
        }
        if !charged {
            caller.charge(store, now).await?;
            charged = true;
        }
        let Some(planned) = planned else { return Ok((write.answer)(Some(before))) };
        let after = planned.map(|after| Identity { version: before.version + 1, updated_at: now, ..after });
        let answer = (write.answer)(after.clone());
        let record = idempotent.as_ref().map(|r| r.record(&answer, now));
        let change = IdentityWrite { before: Some(&before), after: after.as_ref(), now, idempotency: record.as_ref() };
        match store.write_identity(change).await? {
            IdentityOutcome::Written => return Ok(answer),
            IdentityOutcome::Changed if target.if_match.is_some() && idempotent.is_none() => {
                return Err(DomainError::StaleVersion);
            }
            IdentityOutcome::Changed => continue,
            IdentityOutcome::ExternalIdTaken => {
                return Err(identity_exists(after.as_ref().map_or("", |a| a.external_id.as_str())));
            }
            IdentityOutcome::IdempotencyKeyTaken => {
                return replay_after_race(store, idempotent.as_ref(), now).await;
            }
        }
    }
    Err(DomainError::Conflict("the identity kept changing concurrently; try again".into()))
}
