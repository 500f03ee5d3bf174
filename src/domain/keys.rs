//! The management operations: create, get, list, update, delete and roll.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};

use crate::model::{
    Acl, ApiKey, AuditAction, AuditEvent, Change, CreateKeyInput, IdempotencyKey, KeyId, KeyStatus, KeyType,
    PageRequest, PlaintextKey, PreviousSecret, Quota, QuotaUsage, RollInput, UpdateKeyInput,
};
use crate::store::{
    AuditReader, IdempotencyReader, InsertOutcome, KeyChange, KeyCreator, KeyLister, KeyReader, KeyWriter, PageWindow,
    SaveOutcome, UsageRecorder,
};

use super::idempotency::IdempotentRequest;
use super::paging::{Page, page};
use super::{Caller, DomainError};

/// Optimistic writes retry on a fresh read this many times before giving up with 409.
const MAX_WRITE_ATTEMPTS: usize = 10;

/// A create as the API received it.
pub struct NewKey {
    pub id: Option<KeyId>,
    pub input: CreateKeyInput,
    pub retry: Option<Retry>,
}

/// What a write request carries to be recognised when retried: its `Idempotency-Key` and its
/// JSON body (`Null` without one).
#[derive(Debug, Clone)]
pub struct Retry {
    pub header: IdempotencyKey,
    pub body: Value,
}

/// What a write answers: the key as shown (with its plaintext after a create or roll; `Null`
/// for a delete) and its version for the `ETag`. A retry with the same `Idempotency-Key` gets
/// exactly this again, so it is built before the write and stored sealed with it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    pub body: Value,
    pub version: Option<u64>,
}

impl Answer {
    fn key(key: &ApiKey, plaintext: Option<&PlaintextKey>, now: DateTime<Utc>) -> Result<Self, DomainError> {
        let view = key.view(now);
        let body = match plaintext {
            Some(plaintext) => to_json(view.with_plaintext(plaintext))?,
            None => to_json(view)?,
        };
        Ok(Self { body, version: Some(key.version) })
    }

    fn nothing() -> Self {
        Self { body: Value::Null, version: None }
    }

    /// The id of the key answered, for `Location`.
    pub fn id(&self) -> &str {
        self.body.get("id").and_then(Value::as_str).unwrap_or_default()
    }
}

/// Creates a key. The management rule is checked before anything else, a replay included: a
/// replayed answer holds a secret, so it goes only to a caller allowed to make that key.
pub async fn create_key(
    store: &(impl KeyCreator + KeyReader + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    request: NewKey,
) -> Result<Answer, DomainError> {
    caller.may_manage(request.input.acl.as_ref())?;
    caller.charge(store, now).await?;
    let operation = format!("create {}", request.id.as_ref().map_or("", KeyId::as_str));
    let idempotent = request.retry.as_ref().map(|r| IdempotentRequest::new(caller, &r.header, &operation, &r.body));
    if let Some(earlier) = replay(store, idempotent.as_ref(), now).await? {
        return still_yours(store, caller, earlier).await;
    }
    let (key, plaintext) = new_key(caller, request.id, request.input, now);
    let answer = Answer::key(&key, Some(&plaintext), now)?;
    let audit = audit(caller, &key, AuditAction::Created, without_volatile(answer.body.clone()), now);
    let record = idempotent.as_ref().map(|r| r.record(&answer, now));
    match store.insert_key(&key, &audit, record.as_ref()).await? {
        InsertOutcome::Inserted => Ok(answer),
        InsertOutcome::IdTaken => Err(DomainError::AlreadyExists(key.id.to_string())),
        InsertOutcome::IdempotencyKeyTaken => {
            still_yours(store, caller, replay_after_race(store, idempotent.as_ref(), now).await?).await
        }
    }
}

/// A replayed create hands out the key's secret again: only while the caller may still manage
/// that key as it is now (an admin may have given it `keys:*` since), and while it exists.
async fn still_yours(store: &impl KeyReader, caller: &Caller, earlier: Answer) -> Result<Answer, DomainError> {
    let id =
        KeyId::parse(earlier.id(), "id").map_err(|_| DomainError::Internal("a stored answer without id".into()))?;
    let now_stored = store.get_key(&caller.company, &id).await?.ok_or(DomainError::NotFound)?;
    caller.may_manage(now_stored.acl.as_ref())?;
    Ok(earlier)
}

/// The first answer to this request, if it carried an `Idempotency-Key` already answered;
/// 422 if that header was used for another request.
async fn replay(
    store: &impl IdempotencyReader,
    request: Option<&IdempotentRequest>,
    now: DateTime<Utc>,
) -> Result<Option<Answer>, DomainError> {
    let Some(request) = request else { return Ok(None) };
    let Some(record) = store.find_idempotency(request.lookup()).await? else { return Ok(None) };
    match request.replay(&record, now) {
        None => Ok(None),
        Some(Err(())) => Err(DomainError::IdempotencyMismatch),
        Some(Ok(answer)) => Ok(Some(answer)),
    }
}

/// A concurrent request with the same header committed first: its answer, once readable.
async fn replay_after_race(
    store: &impl IdempotencyReader,
    request: Option<&IdempotentRequest>,
    now: DateTime<Utc>,
) -> Result<Answer, DomainError> {
    replay(store, request, now).await?.ok_or(DomainError::RequestInProgress)
}

fn new_key(caller: &Caller, id: Option<KeyId>, input: CreateKeyInput, now: DateTime<Utc>) -> (ApiKey, PlaintextKey) {
    let plaintext = PlaintextKey::generate(input.key_type);
    let key = ApiKey {
        id: id.unwrap_or_else(KeyId::generate),
        company_id: caller.company.clone(),
        user_id: input.user_id,
        description: input.description,
        key_type: input.key_type,
        key_prefix: plaintext.visible_prefix().to_owned(),
        secret_hash: plaintext.hash(),
        publishable_key: (input.key_type == KeyType::Publishable).then(|| plaintext.clone()),
        previous_secret: None,
        whitelisted_ips: input.whitelisted_ips,
        acl: input.acl,
        expires_at: input.expires_at,
        rate_limit: input.rate_limit,
        quota: input.quota.map(|q| Quota { max: q.max, renewal_seconds: q.renewal_seconds, started_at: now }),
        tags: input.tags,
        metadata: input.metadata,
        status: KeyStatus::Active,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        last_used_at: None,
        quota_usage: QuotaUsage::default(),
        version: 1,
    };
    (key, plaintext)
}

/// The operator's way to make a company's first root key: a key whose ACL grants `keys:*`.
pub async fn create_root_key(
    store: &(impl KeyCreator + KeyReader + IdempotencyReader + UsageRecorder),
    company: crate::model::CompanyId,
    description: Option<String>,
    now: DateTime<Utc>,
) -> Result<Answer, DomainError> {
    create_root_key_once(store, company, description, now, None).await
}

/// `create_root_key` for a caller that may be asked twice (a redelivered CloudFormation
/// request): the same `retry` gets the same key and secret again instead of a second key.
pub async fn create_root_key_once(
    store: &(impl KeyCreator + KeyReader + IdempotencyReader + UsageRecorder),
    company: crate::model::CompanyId,
    description: Option<String>,
    now: DateTime<Utc>,
    retry: Option<Retry>,
) -> Result<Answer, DomainError> {
    let input = CreateKeyInput { user_id: "root".into(), description, acl: Some(Acl::root()), ..Default::default() };
    create_key(store, &Caller::operator(company), now, NewKey { id: None, input, retry }).await
}

pub async fn get_key(
    store: &(impl KeyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    id: &KeyId,
) -> Result<ApiKey, DomainError> {
    caller.charge(store, now).await?;
    store.get_key(&caller.company, id).await?.ok_or(DomainError::NotFound)
}

/// A page of the company's keys, newest first, of the status the request asks for.
pub async fn list_keys(
    store: &(impl KeyLister + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    request: &PageRequest,
) -> Result<Page<ApiKey>, DomainError> {
    caller.charge(store, now).await?;
    let outcome = store.list_keys(&caller.company, request.status, PageWindow::of(request)).await?;
    page(request, outcome, "a key of this company", |k| &k.id)
}

/// A key's audit trail, newest first, paged like the key list.
pub async fn list_events(
    store: &(impl AuditReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    key: &KeyId,
    request: &PageRequest,
) -> Result<Page<AuditEvent>, DomainError> {
    caller.charge(store, now).await?;
    let outcome = store.list_events(&caller.company, key, PageWindow::of(request)).await?;
    page(request, outcome, "an event of this key", |e| &e.id)
}

/// Applies a PATCH. Without `If-Match`, a concurrent change is merged by reapplying on the
/// fresh key; with it, a stale version is refused.
pub async fn update_key(
    store: &(impl KeyReader + KeyWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
    input: &UpdateKeyInput,
) -> Result<Answer, DomainError> {
    let write = Write { operation: "update", shows_key: true };
    write_with_retry(store, caller, now, target, write, |before| {
        if before.is_deleted() {
            return Err(DomainError::Conflict("a deleted key cannot be changed or re-activated".into()));
        }
        if input.is_empty() {
            return Ok(None);
        }
        if caller.actor == before.id.as_str() && changes_own_guards(input) {
            return Err(DomainError::Forbidden(
                "a key cannot change its own rateLimit, quota, expiresAt or whitelistedIPs; another key must".into(),
            ));
        }
        let (after, reset_quota_usage) = apply_update(before, input, now);
        caller.may_manage(after.acl.as_ref())?;
        let action = if input.status.is_set() && after.status != before.status && only_status(input) {
            AuditAction::StatusChanged
        } else {
            AuditAction::Updated
        };
        Ok(Some(Planned { after, action, extra: Map::new(), reset_quota_usage, plaintext: None }))
    })
    .await
}

/// The settings that hold a key back: a key may not change its own, or every root key could
/// lift what an admin set on it.
fn changes_own_guards(input: &UpdateKeyInput) -> bool {
    input.rate_limit.is_set() || input.quota.is_set() || input.expires_at.is_set() || input.whitelisted_ips.is_set()
}

fn only_status(input: &UpdateKeyInput) -> bool {
    UpdateKeyInput { status: Change::Keep, ..input.clone() }.is_empty()
}

fn apply_update(before: &ApiKey, input: &UpdateKeyInput, now: DateTime<Utc>) -> (ApiKey, bool) {
    fn set<T: Clone>(field: &mut T, change: &Change<T>) {
        if let Change::Set(value) = change {
            *field = value.clone();
        }
    }
    let mut after = before.clone();
    set(&mut after.description, &input.description);
    set(&mut after.whitelisted_ips, &input.whitelisted_ips);
    set(&mut after.acl, &input.acl);
    set(&mut after.expires_at, &input.expires_at);
    set(&mut after.rate_limit, &input.rate_limit);
    set(&mut after.tags, &input.tags);
    set(&mut after.metadata, &input.metadata);
    set(&mut after.status, &input.status);
    let mut reset_quota_usage = false;
    if let Change::Set(quota) = &input.quota {
        after.quota = quota.map(|q| match before.quota {
            // Same renewal: uses so far still count, so a lower max lowers what remains.
            Some(old) if old.renewal_seconds == q.renewal_seconds => Quota { max: q.max, ..old },
            _ => {
                reset_quota_usage = true;
                Quota { max: q.max, renewal_seconds: q.renewal_seconds, started_at: now }
            }
        });
        if after.quota.is_none() {
            reset_quota_usage = true;
        }
        if reset_quota_usage {
            after.quota_usage = QuotaUsage::default();
        }
    }
    (after, reset_quota_usage)
}

/// Soft delete: the key turns inactive for good and stops verifying, old secrets included.
/// Deleting a deleted key succeeds again.
pub async fn delete_key(
    store: &(impl KeyReader + KeyWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
) -> Result<Answer, DomainError> {
    let write = Write { operation: "delete", shows_key: false };
    write_with_retry(store, caller, now, target, write, |before| {
        if before.is_deleted() {
            return Ok(None);
        }
        let mut after = before.clone();
        after.status = KeyStatus::Inactive;
        after.deleted_at = Some(now);
        after.previous_secret = None;
        let action = AuditAction::Deleted;
        Ok(Some(Planned { after, action, extra: Map::new(), reset_quota_usage: false, plaintext: None }))
    })
    .await
}

/// A new secret for the same key; the old one keeps verifying for the grace period, never past
/// the key's own expiry. Only one old secret is kept: rolling again ends the previous grace.
pub async fn roll_key(
    store: &(impl KeyReader + KeyWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
    input: RollInput,
) -> Result<Answer, DomainError> {
    let write = Write { operation: "roll", shows_key: true };
    write_with_retry(store, caller, now, target, write, |before| {
        if before.is_deleted() {
            return Err(DomainError::Conflict("a deleted key cannot be rolled".into()));
        }
        let plaintext = PlaintextKey::generate(before.key_type);
        let mut after = before.clone();
        after.secret_hash = plaintext.hash();
        after.key_prefix = plaintext.visible_prefix().to_owned();
        after.publishable_key = (before.key_type == KeyType::Publishable).then(|| plaintext.clone());
        let grace_end = now + TimeDelta::seconds(input.grace_period_seconds as i64);
        let valid_until = before.expires_at.map_or(grace_end, |expiry| expiry.min(grace_end));
        after.previous_secret =
            (valid_until > now).then(|| PreviousSecret { hash: before.secret_hash.clone(), valid_until });
        let mut extra = Map::new();
        extra.insert("gracePeriodSeconds".into(), input.grace_period_seconds.into());
        extra.insert(
            "previousSecretValidUntil".into(),
            serde_json::json!(after.previous_secret.as_ref().map(|p| p.valid_until)),
        );
        let action = AuditAction::Rolled;
        Ok(Some(Planned { after, action, extra, reset_quota_usage: false, plaintext: Some(plaintext) }))
    })
    .await
}

/// A write planned from the key as read: the new state, what to record of it, and the new
/// secret a roll hands out.
struct Planned {
    after: ApiKey,
    action: AuditAction,
    extra: Map<String, Value>,
    reset_quota_usage: bool,
    plaintext: Option<PlaintextKey>,
}

/// The key a write acts on, and how the request guards it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub id: &'a KeyId,
    /// The version from `If-Match`: a write on any other version is refused, not merged.
    pub if_match: Option<u64>,
    /// The request says it means to remove the company's last active admin key (`?force=true`).
    pub force: bool,
    /// The request's `Idempotency-Key` and body, to answer a retry with the first answer.
    pub retry: Option<&'a Retry>,
}

impl<'a> Target<'a> {
    /// A plain write: no version pinned, no lock-out allowed, not idempotent.
    pub fn key(id: &'a KeyId) -> Self {
        Self { id, if_match: None, force: false, retry: None }
    }
}

/// Which write, for idempotency fingerprints, and whether its answer shows the key.
struct Write {
    operation: &'static str,
    shows_key: bool,
}

/// Read, check, plan, write only if the key did not change meanwhile; on a conflict, read and
/// plan again, unless the caller pinned a version (then the conflict is theirs to resolve).
/// The checks, in order: the management rule on the key as it is, the caller's own limits
/// (counted once), a replay of an earlier answer to the same `Idempotency-Key`, `If-Match`,
/// then the write's own plan (which checks the rule on the key as it would be).
async fn write_with_retry(
    store: &(impl KeyReader + KeyWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
    write: Write,
    mut plan: impl FnMut(&ApiKey) -> Result<Option<Planned>, DomainError>,
) -> Result<Answer, DomainError> {
    let operation = format!("{} {}", write.operation, target.id);
    let idempotent = target.retry.map(|r| IdempotentRequest::new(caller, &r.header, &operation, &r.body));
    let answer_for = |key: &ApiKey, plaintext: Option<&PlaintextKey>| {
        if write.shows_key { Answer::key(key, plaintext, now) } else { Ok(Answer::nothing()) }
    };
    let mut charged = false;
    let mut charge_once = async || -> Result<(), DomainError> {
        if !charged {
            caller.charge(store, now).await?;
            charged = true;
        }
        Ok(())
    };
    for _ in 0..MAX_WRITE_ATTEMPTS {
        let before = store.get_key(&caller.company, target.id).await?.ok_or(DomainError::NotFound)?;
        caller.may_manage(before.acl.as_ref())?;
        if let Some(earlier) = replay(store, idempotent.as_ref(), now).await? {
            charge_once().await?;
            return Ok(earlier);
        }
        if target.if_match.is_some_and(|v| v != before.version) {
            return Err(DomainError::StaleVersion);
        }
        // The plan checks the rule on the key as it would be: a refusal there costs nothing.
        let planned = plan(&before)?;
        charge_once().await?;
        let Some(Planned { mut after, action, extra, reset_quota_usage, plaintext }) = planned else {
            return answer_for(&before, None);
        };
        after.updated_at = now;
        after.version = before.version + 1;
        let mut changes = changed_fields(&before, &after, now)?;
        changes.extend(extra);
        let audit = audit(caller, &after, action, changes, now);
        let answer = answer_for(&after, plaintext.as_ref())?;
        let record = idempotent.as_ref().map(|r| r.record(&answer, now));
        let change = KeyChange {
            before: &before,
            after: &after,
            audit: &audit,
            reset_quota_usage,
            keep_an_admin: !target.force,
            idempotency: record.as_ref(),
        };
        match store.save_change(change).await? {
            SaveOutcome::Saved => return Ok(answer),
            SaveOutcome::VersionConflict if target.if_match.is_some() && idempotent.is_none() => {
                return Err(DomainError::StaleVersion);
            }
            // With a header, the conflict may be a concurrent twin of this request: read again.
            SaveOutcome::VersionConflict => continue,
            SaveOutcome::LastAdmin => return Err(DomainError::Conflict(LAST_ADMIN.into())),
            SaveOutcome::IdempotencyKeyTaken => return replay_after_race(store, idempotent.as_ref(), now).await,
        }
    }
    Err(DomainError::Conflict("the key kept changing concurrently; try again".into()))
}

/// Why a write that would leave the company without an active admin key is refused.
pub const LAST_ADMIN: &str = "this is the company's last active key holding keys:*: without it no key could manage \
     the others. Send ?force=true to do it anyway (the operator CLI can always mint a new root key)";

fn to_json(value: impl serde::Serialize) -> Result<Value, DomainError> {
    serde_json::to_value(value).map_err(|e| DomainError::Internal(e.to_string()))
}

/// Fields that change by themselves or hold secrets are not changes worth recording.
fn without_volatile(view: Value) -> Map<String, Value> {
    let Value::Object(mut map) = view else { return Map::new() };
    for field in ["key", "updatedAt", "lastUsedAt", "createdAt", "companyId", "id"] {
        map.remove(field);
    }
    map
}

/// The fields whose shown value differs between two versions, with their new values.
fn changed_fields(before: &ApiKey, after: &ApiKey, now: DateTime<Utc>) -> Result<Map<String, Value>, DomainError> {
    let old = without_volatile(to_json(before.view(now))?);
    let new = without_volatile(to_json(after.view(now))?);
    Ok(new.into_iter().filter(|(field, value)| old.get(field) != Some(value)).collect())
}

fn audit(
    caller: &Caller,
    key: &ApiKey,
    action: AuditAction,
    changes: Map<String, Value>,
    now: DateTime<Utc>,
) -> AuditEvent {
    AuditEvent {
        id: KeyId::generate(),
        company_id: key.company_id.clone(),
        key_id: key.id.clone(),
        action,
        actor: caller.actor.clone(),
        at: now,
        changes,
    }
}
