//! The management operations: create, get, list, update, delete and roll. Each answers with
//! typed values (a key, a page, a `WrittenKey`); how they are shown is the entry points' business.

use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::model::company::KeyPrefix;
use crate::model::{
    Acl, ApiKey, AuditAction, AuditEvent, Change, CreateKeyInput, FieldError, IdempotencyKey, IdentityId, KeyId,
    KeyStatus, KeyType, KeyView, PageRequest, PlaintextKey, Policy, PreviousSecret, Quota, QuotaUsage, RollInput,
    SecretHash, UpdateKeyInput,
};
use crate::store::{
    AdminCounter, AuditReader, CompanySettingsReader, IdempotencyReader, IdentityReader, InsertOutcome, KeyChange,
    KeyCreator, KeyLister, KeyReader, KeyWriter, PageOutcome, PageWindow, SaveOutcome, SealedKeyRecord, UsageRecorder,
};

use super::audit::KeyChanges;
use super::idempotency::IdempotentRequest;
use super::paging::{Page, page};
use super::{Caller, DomainError, SealMaterial};

/// Optimistic writes retry on a fresh read this many times before giving up with 409.
pub(super) const MAX_WRITE_ATTEMPTS: usize = 10;

/// A create as the API received it.
pub struct NewKey {
    /// The id the caller chose (`POST /keys/{keyId}`), or `None` for a generated one.
    pub id: Option<KeyId>,
    /// The parsed body.
    pub input: CreateKeyInput,
    /// The request's `Idempotency-Key`: a retry under it gets the first answer, not a second key.
    pub retry: Option<IdempotencyKey>,
}

/// A key as a write answers it (create, update, roll). A retry with the same `Idempotency-Key`
/// gets exactly this again, so it is made before the write and stored sealed with it; its serde
/// form is the store's `SealedKeyRecord` (see `idempotency`), never the HTTP answer.
#[derive(Debug, Clone, PartialEq)]
pub struct WrittenKey {
    /// The key as the write left it (as it was, for a PATCH that changed nothing).
    pub key: ApiKey,
    /// The new secret, shown this once: after a create or a roll; `None` after an update.
    pub plaintext: Option<PlaintextKey>,
    /// When the answer was made. What a key shows that moves with time (its quota's remaining
    /// uses and renewal) is shown as of then, so a replay shows what the first answer showed.
    pub as_of: DateTime<Utc>,
}

impl WrittenKey {
    /// The key as the API shows it in this answer: as of the write, with its new secret if the
    /// write made one.
    pub fn view(&self) -> KeyView<'_> {
        let view = self.key.view(self.as_of);
        match &self.plaintext {
            Some(plaintext) => view.with_plaintext(plaintext),
            None => view,
        }
    }
}

impl Serialize for WrittenKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SealedKeyRecord::from_model(&self.key, self.plaintext.as_ref(), self.as_of).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for WrittenKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (key, plaintext, as_of) =
            SealedKeyRecord::deserialize(deserializer)?.into_model().map_err(serde::de::Error::custom)?;
        Ok(Self { key, plaintext, as_of })
    }
}

/// Creates a key. The management rule and the caller's bounds are checked before anything else,
/// a replay included (a replayed answer holds a secret, so it goes only to a caller allowed to
/// make that key); the caller is charged only once the call is allowed.
pub async fn create_key(
    store: &(impl KeyCreator + KeyReader + IdentityReader + IdempotencyReader + UsageRecorder + CompanySettingsReader),
    caller: &Caller,
    now: DateTime<Utc>,
    request: NewKey,
) -> Result<WrittenKey, DomainError> {
    caller.may_manage(request.input.policy.acl.as_ref())?;
    let operation = format!("create {}", request.id.as_ref().map_or("", KeyId::as_str));
    let idempotent = request.retry.as_ref().map(|h| IdempotentRequest::new(caller, h, &operation, &request.input));
    let custom = request.id.is_some();
    // The company's prefix, as it is now: a key made after a change takes the new one.
    let prefix = store.company_settings(&caller.company).await?.key_prefix;
    let (key, plaintext) = new_key(caller, request.id, request.input, prefix.as_ref(), now);
    caller.bounds(&key)?;
    // A replay is authorized like the first request before it is charged: refused, it is free.
    if let Some(earlier) = replay(store, idempotent.as_ref(), now).await? {
        let earlier = still_yours(store, caller, earlier).await?;
        caller.charge(store, now).await?;
        return Ok(earlier);
    }
    // A custom id the company already uses is refused before the call is charged (the insert's
    // condition still decides a race).
    if custom && store.get_key(&caller.company, &key.id).await?.is_some() {
        return Err(DomainError::AlreadyExists(key.id.to_string()));
    }
    // So is an identity that is none of the company's (the insert's condition decides a race
    // with its deletion).
    if let Some(identity) = key.joins_identity_from(None) {
        identity_of_company(store, caller, identity).await?;
    }
    may_shadow(store, caller, None, &key).await?;
    caller.charge(store, now).await?;
    let audit = audit(caller, &key, AuditAction::Created, KeyChanges::whole(&key, now), now)?;
    let answer = WrittenKey { key, plaintext: Some(plaintext), as_of: now };
    let record = idempotent.as_ref().map(|r| r.record(&answer, now));
    match store.insert_key(&answer.key, &audit, record.as_ref()).await? {
        InsertOutcome::Inserted => Ok(answer),
        InsertOutcome::IdTaken => Err(DomainError::AlreadyExists(answer.key.id.to_string())),
        InsertOutcome::UnknownIdentity => Err(unknown_identity()),
        // A fresh secret's hash already filed (2^-256): nothing was written; a retry makes another.
        InsertOutcome::SecretTaken => Err(DomainError::Unavailable),
        InsertOutcome::IdempotencyKeyTaken => {
            still_yours(store, caller, replay_after_race(store, idempotent.as_ref(), now).await?).await
        }
    }
}

/// Why a key cannot name an identity: it is no identity of the caller's company (absent, deleted,
/// or another company's, which are never told apart).
pub(super) fn unknown_identity() -> DomainError {
    FieldError::invalid("identityId", "identityId is not an identity of this company").into()
}

/// A key's own named limit with the name of one its identity holds replaces the identity's for
/// that key (verify applies the key's): so giving a key one, or moving a key that has one into
/// such an identity, reaches what the identity shares and takes what setting the identity's
/// limits takes, a caller holding all of `keys:` (403 naming `ratelimits`). A write that
/// changes neither the key's limits nor its identity reads nothing.
pub(super) async fn may_shadow(
    store: &impl IdentityReader,
    caller: &Caller,
    before: Option<&ApiKey>,
    after: &ApiKey,
) -> Result<(), DomainError> {
    let Some(identity) = &after.policy.identity_id else { return Ok(()) };
    let unchanged = before.is_some_and(|b| {
        b.policy.identity_id == after.policy.identity_id && b.policy.ratelimits == after.policy.ratelimits
    });
    if after.policy.ratelimits.is_empty() || unchanged {
        return Ok(());
    }
    // An identity that is none of the company's is refused by the join's own check.
    let Some(identity) = store.get_identity(&caller.company, identity).await? else { return Ok(()) };
    let shared = |name: &str| identity.parts.ratelimits.iter().any(|limit| limit.name == name);
    if let Some(own) = after.policy.ratelimits.iter().find(|own| shared(&own.name)) {
        caller.may_manage(Some(&Acl::root())).map_err(|_| DomainError::OutOfBounds {
            field: "ratelimits",
            message: format!(
                "the key's identity has a limit named {}, which a limit of the key's own would replace for it: only \
                 a key that holds all of keys: may do that, as only it may set the identity's limits",
                own.name
            ),
        })?;
    }
    Ok(())
}

/// Why a key whose identity was deleted while the key was inactive cannot be re-activated.
const IDENTITY_GONE: &str = "this key's identity was deleted while the key was inactive: name another identity \
     (or null) in the same PATCH to re-activate it";

/// Refuses, before the caller is charged, a write that would count a key in an identity that is
/// none of the caller's company.
pub(super) async fn identity_of_company(
    store: &impl IdentityReader,
    caller: &Caller,
    identity: &IdentityId,
) -> Result<(), DomainError> {
    match store.get_identity(&caller.company, identity).await? {
        Some(_) => Ok(()),
        None => Err(unknown_identity()),
    }
}

/// The refusal of a write whose key would join an identity that is gone: a 400 naming
/// `identityId` if the request named it, else a 409 (a key re-activated after its identity was
/// deleted).
fn identity_refusal(before: &ApiKey, after: &ApiKey) -> DomainError {
    if after.policy.identity_id != before.policy.identity_id {
        unknown_identity()
    } else {
        DomainError::Conflict(IDENTITY_GONE.into())
    }
}

/// A replayed create hands out the key's secret again: only while the caller may still manage
/// that key as it is now (an admin may have given it `keys:*` since), and while it exists.
pub(super) async fn still_yours(
    store: &impl KeyReader,
    caller: &Caller,
    earlier: WrittenKey,
) -> Result<WrittenKey, DomainError> {
    let now_stored = store.get_key(&caller.company, &earlier.key.id).await?.ok_or(DomainError::NotFound)?;
    caller.may_manage(now_stored.policy.acl.as_ref())?;
    Ok(earlier)
}

/// The first answer to this request, if it carried an `Idempotency-Key` already answered;
/// 422 if that header was used for another request.
pub(super) async fn replay<A: DeserializeOwned>(
    store: &impl IdempotencyReader,
    request: Option<&IdempotentRequest>,
    now: DateTime<Utc>,
) -> Result<Option<A>, DomainError> {
    let Some(request) = request else { return Ok(None) };
    let Some(record) = store.find_idempotency(request.lookup()).await? else { return Ok(None) };
    match request.replay(&record, now) {
        // A live record this caller cannot open (sealed under a secret since rolled): refused
        // here, before the call is charged, as the write's own condition would refuse it later.
        None if record.expires_at > now => Err(DomainError::RequestInProgress),
        None => Ok(None),
        Some(Err(())) => Err(DomainError::IdempotencyMismatch),
        Some(Ok(answer)) => Ok(Some(answer)),
    }
}

/// A concurrent request with the same header committed first: its answer, once readable.
pub(super) async fn replay_after_race<A: DeserializeOwned>(
    store: &impl IdempotencyReader,
    request: Option<&IdempotentRequest>,
    now: DateTime<Utc>,
) -> Result<A, DomainError> {
    replay(store, request, now).await?.ok_or(DomainError::RequestInProgress)
}

fn new_key(
    caller: &Caller,
    id: Option<KeyId>,
    input: CreateKeyInput,
    prefix: Option<&KeyPrefix>,
    now: DateTime<Utc>,
) -> (ApiKey, PlaintextKey) {
    let plaintext = PlaintextKey::generate_for(input.key_type, prefix);
    let secret = KeySecret {
        key_prefix: plaintext.visible_prefix().to_owned(),
        hash: plaintext.hash(),
        publishable: (input.key_type == KeyType::Publishable).then(|| plaintext.clone()),
    };
    (fresh_key(caller, id.unwrap_or_else(KeyId::generate), input, secret, now), plaintext)
}

/// What a new key is known by: its secret's hash, and what it shows of the secret.
pub(super) struct KeySecret {
    /// The `keyPrefix` it shows.
    pub key_prefix: String,
    /// What its lookup item is filed under.
    pub hash: SecretHash,
    /// A publishable key's plaintext, shown in every answer.
    pub publishable: Option<PlaintextKey>,
}

/// A new active key of the caller's company, as a create body describes it, made at `now`
/// (its quota counted from then).
pub(super) fn fresh_key(
    caller: &Caller,
    id: KeyId,
    input: CreateKeyInput,
    secret: KeySecret,
    now: DateTime<Utc>,
) -> ApiKey {
    ApiKey {
        id,
        company_id: caller.company.clone(),
        user_id: input.user_id,
        key_type: input.key_type,
        key_prefix: secret.key_prefix,
        secret_hash: secret.hash,
        publishable_key: secret.publishable,
        previous_secret: None,
        policy: Policy { quota: input.policy.quota.map(|q| q.starting(now)), ..input.policy },
        labels: input.labels,
        status: KeyStatus::Active,
        created_at: now,
        updated_at: now,
        deleted_at: None,
        last_used_at: None,
        quota_usage: QuotaUsage::default(),
        version: 1,
    }
}

/// The operator's way to make a company's first root key: a key whose ACL grants `keys:*`.
pub async fn create_root_key(
    store: &(impl KeyCreator + KeyReader + IdentityReader + IdempotencyReader + UsageRecorder + CompanySettingsReader),
    company: crate::model::CompanyId,
    description: Option<String>,
    now: DateTime<Utc>,
) -> Result<WrittenKey, DomainError> {
    create_root_key_once(store, company, description, now, None).await
}

/// `create_root_key` for a caller that may be asked twice (a redelivered CloudFormation
/// request): the same `retry` header with the same description gets the same key and secret
/// again instead of a second key. The operator presents no secret, so `seal` must be one the
/// asker holds and the table does not (a CloudFormation request's presigned `ResponseURL`):
/// the replayed answer holds the root key's plaintext, and the header alone (a RequestId) must
/// not open it for whoever can read the table.
pub async fn create_root_key_once(
    store: &(impl KeyCreator + KeyReader + IdentityReader + IdempotencyReader + UsageRecorder + CompanySettingsReader),
    company: crate::model::CompanyId,
    description: Option<String>,
    now: DateTime<Utc>,
    retry: Option<(IdempotencyKey, SealMaterial)>,
) -> Result<WrittenKey, DomainError> {
    let mut input = CreateKeyInput { user_id: "root".into(), ..Default::default() };
    input.policy.acl = Some(Acl::root());
    input.labels.description = description;
    let (retry, seal) = retry.map_or((None, SealMaterial::default()), |(header, seal)| (Some(header), seal));
    let caller = Caller { seal, ..Caller::operator(company) };
    create_key(store, &caller, now, NewKey { id: None, input, retry }).await
}

/// One key of the caller's company; another company's is as absent as a key that never was.
pub async fn get_key(
    store: &(impl KeyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    id: &KeyId,
) -> Result<ApiKey, DomainError> {
    caller.charge(store, now).await?;
    store.get_key(&caller.company, id).await?.ok_or(DomainError::NotFound)
}

/// A page of the company's keys, newest first, of the status the request asks for; with an
/// identity, that identity's keys only (an identity that is none of the company's is a 400
/// naming `identityId`).
pub async fn list_keys(
    store: &(impl KeyLister + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    request: &PageRequest,
) -> Result<Page<ApiKey>, DomainError> {
    caller.charge(store, now).await?;
    let identity = request.identity.as_ref();
    let outcome = store.list_keys(&caller.company, request.status, identity, PageWindow::of(request)).await?;
    if identity.is_some() && matches!(outcome, PageOutcome::UnknownOwner) {
        return Err(unknown_identity());
    }
    page(request, outcome, "a key of this company", |k| k.id.clone())
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
    page(request, outcome, "an event of this key", |e| e.id.clone())
}

/// Applies a PATCH. Without `If-Match`, a concurrent change is merged by reapplying on the
/// fresh key; with it, a stale version is refused.
pub async fn update_key(
    store: &(impl KeyReader + KeyWriter + AdminCounter + IdentityReader + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
    input: &UpdateKeyInput,
) -> Result<WrittenKey, DomainError> {
    let write = Write { operation: "update", input, answer: shown_as_of(now) };
    write_with_retry(store, caller, now, target, write, |before| {
        if before.is_deleted() {
            return Err(DomainError::Conflict("a deleted key cannot be changed or re-activated".into()));
        }
        if input.is_empty() {
            return Ok(None);
        }
        if caller.actor == before.id.as_str() && Policy::guards(&input.policy) {
            let guarded: Vec<&str> = Policy::guarded_fields().collect();
            return Err(DomainError::Forbidden(format!(
                "a key cannot change its own {}; another key must",
                guarded.join(", ")
            )));
        }
        let (after, reset_quota_usage) = apply_update(before, input, now);
        caller.may_manage(after.policy.acl.as_ref())?;
        // Deactivating takes power away: it is the one change a bounded caller may make to a
        // key looser than itself.
        if !(only_status(input) && after.status == KeyStatus::Inactive) {
            caller.bounds(&after)?;
        }
        if reset_quota_usage {
            caller.may_reset_quota_of(&after)?;
        }
        // Fields set to the values they hold: nothing to write, no audit event, same ETag.
        if after == *before {
            return Ok(None);
        }
        let action = if input.status.is_set() && after.status != before.status && only_status(input) {
            AuditAction::StatusChanged
        } else {
            AuditAction::Updated
        };
        Ok(Some(Planned { after, action, reset_quota_usage, rolled: None, leak: None }))
    })
    .await
}

fn only_status(input: &UpdateKeyInput) -> bool {
    UpdateKeyInput { status: Change::Keep, ..input.clone() }.is_empty()
}

fn apply_update(before: &ApiKey, input: &UpdateKeyInput, now: DateTime<Utc>) -> (ApiKey, bool) {
    let mut after = before.clone();
    input.policy.apply(&mut after.policy);
    input.labels.apply(&mut after.labels);
    if let Change::Set(status) = input.status {
        after.status = status;
    }
    let mut reset_quota_usage = false;
    if let Change::Set(quota) = &input.policy.quota {
        after.policy.quota = quota.map(|q| match before.policy.quota {
            // Same renewal: uses so far still count, so a lower max lowers what remains.
            Some(old) if old.renewal_seconds == q.renewal_seconds => Quota { max: q.max, ..old },
            _ => {
                reset_quota_usage = true;
                q.starting(now)
            }
        });
        if after.policy.quota.is_none() {
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
    store: &(impl KeyReader + KeyWriter + AdminCounter + IdentityReader + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
) -> Result<(), DomainError> {
    // A delete shows nothing, so nothing but its success is sealed for a retry.
    let write = Write { operation: "delete", input: &(), answer: |_: ApiKey, _: Option<PlaintextKey>| () };
    write_with_retry(store, caller, now, target, write, |before| {
        if before.is_deleted() {
            return Ok(None);
        }
        let mut after = before.clone();
        after.status = KeyStatus::Inactive;
        after.deleted_at = Some(now);
        after.previous_secret = None;
        let action = AuditAction::Deleted;
        Ok(Some(Planned { after, action, reset_quota_usage: false, rolled: None, leak: None }))
    })
    .await
}

/// Where a secret scanner found a key's secret, as it reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeakReport {
    /// The public place (a commit's URL, a paste).
    pub url: Option<String>,
    /// What found it (`content`, `commit`, …, as the scanner names it).
    pub source: Option<String>,
}

/// What a leak report of a key's secret did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakOutcome {
    /// The key was live: its company's policy was applied and the leak audited.
    Handled,
    /// The key was already deleted: nothing to do.
    AlreadyDeleted,
}

/// Applies the company's leak policy to a live key whose secret (current, or previous in its
/// grace period) was reported in public: `revoke` deletes it at once, even the company's last
/// admin key (a leaked admin key is worse than a lock-out the operator CLI undoes); `notify`
/// leaves it active. Either way the audit records `leaked` with where it was found, as the
/// operator. The same report again within the idempotency window (`header`, derived from the
/// report) is answered as the first and writes nothing; a deleted key is left alone.
pub async fn report_leak(
    store: &(impl KeyReader + KeyWriter + AdminCounter + IdentityReader + IdempotencyReader + UsageRecorder),
    key: &ApiKey,
    policy: crate::model::company::LeakPolicy,
    report: &LeakReport,
    header: &IdempotencyKey,
    now: DateTime<Utc>,
) -> Result<LeakOutcome, DomainError> {
    if key.is_deleted() {
        return Ok(LeakOutcome::AlreadyDeleted);
    }
    let caller = Caller::operator(key.company_id.clone());
    let target = Target { id: &key.id, if_match: None, force: true, retry: Some(header) };
    let write = Write { operation: "leak", input: report, answer: |_: ApiKey, _: Option<PlaintextKey>| () };
    write_with_retry(store, &caller, now, target, write, |before| {
        if before.is_deleted() {
            return Ok(None);
        }
        let mut after = before.clone();
        if policy == crate::model::company::LeakPolicy::Revoke {
            after.status = KeyStatus::Inactive;
            after.deleted_at = Some(now);
            after.previous_secret = None;
        }
        let leak = Some(report.clone());
        Ok(Some(Planned { after, action: AuditAction::Leaked, reset_quota_usage: false, rolled: None, leak }))
    })
    .await?;
    Ok(LeakOutcome::Handled)
}

/// A new secret for the same key; the old one keeps verifying for the grace period, never past
/// the key's own expiry. Only one old secret is kept: rolling again ends the previous grace.
pub async fn roll_key(
    store: &(
         impl KeyReader
         + KeyWriter
         + AdminCounter
         + IdentityReader
         + IdempotencyReader
         + UsageRecorder
         + CompanySettingsReader
     ),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
    input: RollInput,
) -> Result<WrittenKey, DomainError> {
    // The new secret takes the company's prefix as it is now.
    let prefix = store.company_settings(&caller.company).await?.key_prefix;
    let write = Write { operation: "roll", input: &input, answer: shown_as_of(now) };
    write_with_retry(store, caller, now, target, write, |before| {
        if before.is_deleted() {
            return Err(DomainError::Conflict("a deleted key cannot be rolled".into()));
        }
        let plaintext = PlaintextKey::generate_for(before.key_type, prefix.as_ref());
        let mut after = before.clone();
        after.secret_hash = plaintext.hash();
        after.key_prefix = plaintext.visible_prefix().to_owned();
        after.publishable_key = (before.key_type == KeyType::Publishable).then(|| plaintext.clone());
        let grace_end = now + TimeDelta::seconds(input.grace_period_seconds as i64);
        let valid_until = before.policy.expires_at.map_or(grace_end, |expiry| expiry.min(grace_end));
        after.previous_secret = (valid_until > now).then(|| PreviousSecret {
            hash: before.secret_hash.clone(),
            valid_until,
            key_prefix: before.key_prefix.clone(),
        });
        caller.bounds(&after)?;
        let rolled = Rolled { plaintext, grace_period_seconds: input.grace_period_seconds };
        Ok(Some(Planned {
            after,
            action: AuditAction::Rolled,
            reset_quota_usage: false,
            rolled: Some(rolled),
            leak: None,
        }))
    })
    .await
}

/// A write planned from the key as read: the new state, what to record of it, and what a roll
/// adds.
struct Planned {
    after: ApiKey,
    action: AuditAction,
    reset_quota_usage: bool,
    rolled: Option<Rolled>,
    /// Where a reported leak was found, for its audit record.
    leak: Option<LeakReport>,
}

/// What a roll adds to its write: the new secret it hands out, and the grace it gave the old
/// one, which its audit record shows.
struct Rolled {
    plaintext: PlaintextKey,
    grace_period_seconds: u64,
}

/// The key a write acts on, and how the request guards it.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The key written.
    pub id: &'a KeyId,
    /// The version from `If-Match`: a write on any other version is refused, not merged.
    pub if_match: Option<u64>,
    /// The request says it means to remove the company's last active admin key (`?force=true`).
    pub force: bool,
    /// The request's `Idempotency-Key`, to answer a retry with the first answer. The request
    /// is told from another under the same header by its parsed input, not its bytes.
    pub retry: Option<&'a IdempotencyKey>,
}

impl<'a> Target<'a> {
    /// A plain write: no version pinned, no lock-out allowed, not idempotent.
    pub fn key(id: &'a KeyId) -> Self {
        Self { id, if_match: None, force: false, retry: None }
    }
}

/// Which write: its name and parsed input (what tells a retry from another request under the
/// same `Idempotency-Key`), and what it answers, given the key it leaves and a roll's secret.
struct Write<'a, I, F> {
    operation: &'static str,
    input: &'a I,
    answer: F,
}

/// The answer of a write that shows the key, made at `now`.
fn shown_as_of(now: DateTime<Utc>) -> impl Fn(ApiKey, Option<PlaintextKey>) -> WrittenKey {
    move |key, plaintext| WrittenKey { key, plaintext, as_of: now }
}

/// Read, check, plan, write only if the key did not change meanwhile; on a conflict, read and
/// plan again, unless the caller pinned a version (then the conflict is theirs to resolve).
/// The checks, in order: the management rule on the key as it is, a replay of an earlier answer
/// to the same `Idempotency-Key`, `If-Match`, then the write's own plan (which checks the rule
/// and the caller's bounds on the key as it would be); the caller's own limits are counted
/// (once) only after all of them pass.
async fn write_with_retry<A: Serialize + DeserializeOwned>(
    store: &(impl KeyReader + KeyWriter + AdminCounter + IdentityReader + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: Target<'_>,
    write: Write<'_, impl Serialize, impl Fn(ApiKey, Option<PlaintextKey>) -> A>,
    mut plan: impl FnMut(&ApiKey) -> Result<Option<Planned>, DomainError>,
) -> Result<A, DomainError> {
    let operation = format!("{} {}", write.operation, target.id);
    let idempotent = target.retry.map(|header| IdempotentRequest::new(caller, header, &operation, write.input));
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
        caller.may_manage(before.policy.acl.as_ref())?;
        if let Some(earlier) = replay(store, idempotent.as_ref(), now).await? {
            charge_once().await?;
            return Ok(earlier);
        }
        if target.if_match.is_some_and(|v| v != before.version) {
            return Err(DomainError::StaleVersion);
        }
        // The plan checks the rule on the key as it would be: a refusal there costs nothing.
        let planned = plan(&before)?;
        if let Some(planned) = &planned
            && takes_an_admin_away(&before, &planned.after, target.force)
            && store.active_admins(&caller.company).await? <= 1
        {
            return Err(DomainError::Conflict(LAST_ADMIN.into()));
        }
        // A key that would join an identity that is none of the company's is refused for free
        // too (the write's own condition still decides a race with the identity's deletion).
        if let Some(planned) = &planned
            && let Some(identity) = planned.after.joins_identity_from(Some(&before))
            && store.get_identity(&caller.company, identity).await?.is_none()
        {
            return Err(identity_refusal(&before, &planned.after));
        }
        if let Some(planned) = &planned {
            may_shadow(store, caller, Some(&before), &planned.after).await?;
        }
        charge_once().await?;
        let Some(Planned { mut after, action, reset_quota_usage, rolled, leak }) = planned else {
            return Ok((write.answer)(before, None));
        };
        after.updated_at = now;
        after.version = before.version + 1;
        let mut changes = KeyChanges::between(&before, &after, now);
        if let Some(rolled) = &rolled {
            changes = changes.rolled(rolled.grace_period_seconds, &after);
        }
        if let Some(leak) = &leak {
            changes = changes.leaked(leak.url.as_deref(), leak.source.as_deref());
        }
        let audit = audit(caller, &after, action, changes, now)?;
        let answer = (write.answer)(after.clone(), rolled.map(|r| r.plaintext));
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
            SaveOutcome::UnknownIdentity => return Err(identity_refusal(&before, &after)),
            SaveOutcome::IdempotencyKeyTaken => return replay_after_race(store, idempotent.as_ref(), now).await,
        }
    }
    Err(DomainError::Conflict("the key kept changing concurrently; try again".into()))
}

/// Whether a write turns an active admin key into something else without `?force=true`: then
/// the company's admin count is read first, so taking the last one away is refused for free
/// (the write's own condition on the counters still decides a race).
fn takes_an_admin_away(before: &ApiKey, after: &ApiKey, force: bool) -> bool {
    !force && before.is_company_admin() && !after.is_company_admin()
}

/// Why a write that would leave the company without an active admin key is refused.
pub const LAST_ADMIN: &str = "this is the company's last active key holding keys:*: without it no key could manage \
     the others. Send ?force=true to do it anyway (the operator CLI can always mint a new root key)";

/// The record of a write, made with the write so that both are saved or neither is.
pub(super) fn audit(
    caller: &Caller,
    key: &ApiKey,
    action: AuditAction,
    changes: KeyChanges,
    now: DateTime<Utc>,
) -> Result<AuditEvent, DomainError> {
    Ok(AuditEvent {
        id: KeyId::generate(),
        company_id: key.company_id.clone(),
        key_id: key.id.clone(),
        action,
        actor: caller.actor.clone(),
        actor_type: caller.actor_type(),
        actor_secret: caller.secret.clone(),
        at: now,
        changes: changes.into_map()?,
    })
}
