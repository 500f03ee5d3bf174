//! Storage, one trait per capability so each operation asks for only what it uses.
//! `dynamo` implements them all on one DynamoDB table; `table` defines that table.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::model::{ApiKey, AuditEvent, CompanyId, KeyId, Quota, RateLimit, SecretHash, StatusFilter, Window};

pub mod calls;
pub mod dynamo;
pub mod items;
pub mod paging;
pub mod records;
pub mod table;

pub use dynamo::DynamoStore;
pub use paging::{PageOutcome, PageWindow};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database did not answer, or refused for capacity; nothing was written.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// An item could not be read back as the model; a bug or a hand-edited item.
    #[error("stored item unreadable: {0}")]
    Corrupt(String),
}

pub trait KeyReader: Sync {
    /// Strongly consistent: a key just written is seen.
    fn get_key(
        &self,
        company: &CompanyId,
        id: &KeyId,
    ) -> impl Future<Output = Result<Option<ApiKey>, StoreError>> + Send;
}

/// A stored first answer to a request that carried an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// Hash of company and header: the header itself is not stored.
    pub lookup: String,
    /// Hash of what the request asked for, to tell a retry from a different request.
    pub fingerprint: String,
    /// The first answer, sealed with a key derived from the header so the table alone cannot open it.
    pub sealed_response: Vec<u8>,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    Inserted,
    IdTaken,
    /// Another request with the same `Idempotency-Key` got there first.
    IdempotencyKeyTaken,
}

pub trait KeyCreator: Sync {
    /// The key, its lookup item, the company counter, the audit record and the idempotency
    /// record, all or nothing.
    fn insert_key(
        &self,
        key: &ApiKey,
        audit: &AuditEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;
}

pub trait IdempotencyReader: Sync {
    fn find_idempotency(
        &self,
        lookup: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}

/// A change from one saved version of a key to the next.
pub struct KeyChange<'a> {
    pub before: &'a ApiKey,
    pub after: &'a ApiKey,
    pub audit: &'a AuditEvent,
    /// The quota's settings changed so that uses counted so far no longer apply.
    pub reset_quota_usage: bool,
    /// Refuse the change if it takes away the company's last active admin key
    /// (`ApiKey::is_company_admin`), checked against the company's counter in the same write.
    pub keep_an_admin: bool,
    /// The answer to store for the request's `Idempotency-Key`, in the same transaction.
    pub idempotency: Option<&'a IdempotencyRecord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved,
    /// The key is no longer at `before.version`.
    VersionConflict,
    /// The change would leave the company with no active admin key, and `keep_an_admin` was set.
    LastAdmin,
    /// Another request with the same `Idempotency-Key` got there first.
    IdempotencyKeyTaken,
}

pub trait KeyWriter: Sync {
    /// Key, lookup items (added, refreshed, removed), counters and audit record, all or nothing,
    /// only if the key is still at `before.version`.
    fn save_change(&self, change: KeyChange<'_>) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;
}

pub trait KeyLister: Sync {
    /// A company's keys of a status (or all), by creation; `total` from the counters.
    fn list_keys(
        &self,
        company: &CompanyId,
        status: StatusFilter,
        window: PageWindow<'_>,
    ) -> impl Future<Output = Result<PageOutcome<ApiKey>, StoreError>> + Send;
}

pub trait AuditReader: Sync {
    /// A key's audit events, by time; `total` is one per saved version of the key.
    fn list_events(
        &self,
        company: &CompanyId,
        key: &KeyId,
        window: PageWindow<'_>,
    ) -> impl Future<Output = Result<PageOutcome<AuditEvent>, StoreError>> + Send;
}

pub trait CounterKeeper: Sync {
    /// Takes a key that TTL removed out of the company's counters, once per stream event
    /// however often the stream delivers it. `false` if that event was already counted.
    fn forget_expired_key(
        &self,
        event_id: &str,
        company: &CompanyId,
        status: crate::model::KeyStatus,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// What a secret's lookup item holds: a copy of its key as of the last management write.
#[derive(Debug, Clone)]
pub struct SecretRecord {
    pub hash: SecretHash,
    pub key: ApiKey,
}

pub trait SecretLookup: Sync {
    /// Strongly consistent: a key deleted or rolled a moment ago already answers so.
    fn find_secret(&self, hash: &SecretHash) -> impl Future<Output = Result<Option<SecretRecord>, StoreError>> + Send;

    /// Two lookups in one strongly consistent round trip (a verify's caller and the key it
    /// verifies): neither read waits for the other. The same hash twice is read once.
    fn find_secret_pair(
        &self,
        first: &SecretHash,
        second: &SecretHash,
    ) -> impl Future<Output = Result<(Option<SecretRecord>, Option<SecretRecord>), StoreError>> + Send;
}

/// The limits a verify must pass, with the window and period `now` falls in.
#[derive(Debug, Clone, Copy)]
pub struct UsageRequest<'a> {
    pub key: &'a ApiKey,
    pub now: DateTime<Utc>,
    pub rate: Option<(RateLimit, Window)>,
    pub quota: Option<(Quota, i64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageOutcome {
    Admitted { rate_used: Option<u64>, quota_used: Option<u64> },
    RateLimited,
    QuotaExceeded,
}

pub trait UsageRecorder: Sync {
    /// Counts one use against each limit, or none if any limit is reached.
    fn consume(&self, request: UsageRequest<'_>) -> impl Future<Output = Result<UsageOutcome, StoreError>> + Send;

    /// Records `lastUsedAt` (at most once a minute per key). Awaited before the answer: Lambda
    /// freezes the process once the handler returns, so nothing may be left running. A failure
    /// is logged by its code and never fails the answer.
    fn touch_last_used(&self, key: &ApiKey, now: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}
