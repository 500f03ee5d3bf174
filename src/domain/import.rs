//! `POST /keys/import`: keys that exist elsewhere, brought in by the hash of their plaintext.
//! Each is created as `create_key` creates one (the management rule, the caller's bounds, its
//! identity, its own transaction and idempotency record), but with the hash it was given and
//! no plaintext; its audit trail starts with `imported`.

use chrono::{DateTime, Utc};

use crate::model::{ApiKey, AuditAction, IdempotencyKey, ImportInput, ImportedKeyInput, KeyId};
use crate::store::{IdempotencyReader, IdentityReader, InsertOutcome, KeyCreator, KeyReader, UsageRecorder};

use super::audit::KeyChanges;
use super::idempotency::IdempotentRequest;
use super::keys::{
    KeySecret, WrittenKey, audit, fresh_key, identity_of_company, may_shadow, replay, replay_after_race, still_yours,
    unknown_identity,
};
use super::{Caller, DomainError};

/// An import as the API received it.
pub struct KeysImport {
    /// The parsed body: each entry a key to import or why it is not one.
    pub input: ImportInput,
    /// The request's `Idempotency-Key`: each entry is replayed on its own under a part of it
    /// (`IdempotencyKey::part`), so a retry imports nothing twice and answers the same ids.
    pub retry: Option<IdempotencyKey>,
}

/// Imports each entry on its own: its id, or why it was not imported (an entry's error never
/// stops the others). Each entry about to be written or replayed counts as one use of the
/// caller's limits, as a create does, so an entry over them is that entry's 429; an entry
/// refused before costs nothing.
pub async fn import_keys(
    store: &(impl KeyCreator + KeyReader + IdentityReader + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    request: KeysImport,
) -> Vec<Result<KeyId, DomainError>> {
    let mut answers = Vec::with_capacity(request.input.keys.len());
    for (index, entry) in request.input.keys.into_iter().enumerate() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(bad) => {
                answers.push(Err(bad.into()));
                continue;
            }
        };
        let retry = request.retry.as_ref().map(|header| header.part(index));
        // Boxed: a create's future (reads, a transaction, a replay) is large at TRACE.
        let answer = Box::pin(import_one(store, caller, now, entry, retry)).await;
        answers.push(answer);
    }
    answers
}

async fn import_one(
    store: &(impl KeyCreator + KeyReader + IdentityReader + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    entry: ImportedKeyInput,
    retry: Option<IdempotencyKey>,
) -> Result<KeyId, DomainError> {
    caller.may_manage(entry.input.policy.acl.as_ref())?;
    let idempotent = retry.as_ref().map(|header| IdempotentRequest::new(caller, header, "import", &entry));
    let key = imported_key(caller, entry, now);
    caller.bounds(&key)?;
    if let Some(earlier) = replay::<WrittenKey>(store, idempotent.as_ref(), now).await? {
        let earlier = still_yours(store, caller, earlier).await?;
        caller.charge(store, now).await?;
        return Ok(earlier.key.id);
    }
    if let Some(identity) = key.joins_identity_from(None) {
        identity_of_company(store, caller, identity).await?;
    }
    may_shadow(store, caller, None, &key).await?;
    caller.charge(store, now).await?;
    let event = audit(caller, &key, AuditAction::Imported, KeyChanges::whole(&key, now), now)?;
    let answer = WrittenKey { key, plaintext: None, as_of: now };
    let record = idempotent.as_ref().map(|r| r.record(&answer, now));
    match store.insert_key(&answer.key, &event, record.as_ref()).await? {
        InsertOutcome::Inserted => Ok(answer.key.id),
        InsertOutcome::SecretTaken => Err(DomainError::HashExists),
        InsertOutcome::UnknownIdentity => Err(unknown_identity()),
        // A generated id already taken (2^-74 a millisecond): nothing was written.
        InsertOutcome::IdTaken => Err(DomainError::Unavailable),
        InsertOutcome::IdempotencyKeyTaken => {
            let earlier: WrittenKey = replay_after_race(store, idempotent.as_ref(), now).await?;
            Ok(still_yours(store, caller, earlier).await?.key.id)
        }
    }
}

/// The key an entry describes: a secret key of the caller's company filed under the hash it
/// came with. Its `keyPrefix` is empty: the service never saw its plaintext.
fn imported_key(caller: &Caller, entry: ImportedKeyInput, now: DateTime<Utc>) -> ApiKey {
    let secret = KeySecret { key_prefix: String::new(), hash: entry.hash, publishable: None };
    fresh_key(caller, KeyId::generate(), entry.input, secret, now)
}
