#![warn(missing_docs)]

//! Storage, one trait per capability so each operation asks for only what it uses.
//! `dynamo` implements them all on one DynamoDB table; `table` defines that table, `items` how
//! each item is addressed, `records` what each item holds, `attributes` what both build on, `paging` which items a list reads.

use std::future::Future;

use chrono::{DateTime, Utc};

use crate::model::company::{CompanyEvent, CompanySettings, CompanySettingsChange};
use crate::model::usage::{UsageBucket, UsageIncrement, UsageOwner, UsageRange};
use crate::model::{
    ApiKey, AuditEvent, CompanyId, Identity, IdentityId, KeyId, NamedLimit, Quota, RateLimit, SecretHash, StatusFilter,
    Window,
};

pub mod attributes;
pub mod calls;
pub mod dynamo;
pub mod items;
pub mod paging;
pub mod records;
pub mod table;

pub use dynamo::DynamoStore;

#[cfg(test)]
pub mod memory;

#[derive(Debug, thiserror::Error)]
/// Why a store call gave no answer; the domain turns either into a 503 or a 500.
pub enum StoreError {
    /// The database did not answer, or refused for capacity; nothing was written.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// An item could not be read back as the model; a bug or a hand-edited item.
    #[error("stored item unreadable: {0}")]
    Corrupt(String),
}

/// Reads one key by its company and id (get, and every management write's read before it).
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
    /// When the record lapses: a request after it is a new request, whatever TTL has removed yet.
    pub expires_at: DateTime<Utc>,
}

/// What a create's transaction did, named by the write whose condition refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// Every item was written.
    Inserted,
    /// A key of the company already has the (custom) id; nothing was written.
    IdTaken,
    /// Another request with the same `Idempotency-Key` got there first.
    IdempotencyKeyTaken,
    /// The key names an identity that is not (or no longer) one of its company's; nothing was
    /// written.
    UnknownIdentity,
    /// A key of some company (which is not told) already has this secret's hash: for an imported
    /// key, its hash was imported or made before; nothing was written.
    SecretTaken,
}

/// Creates keys.
pub trait KeyCreator: Sync {
    /// The key, its lookup item (only if no key has its hash), the company counter (and, for a
    /// key whose audit record says `imported`, the company's count of imported keys), its
    /// identity's count (only if the identity exists, live, in the key's company), the audit
    /// record and the idempotency record, all or nothing.
    fn insert_key(
        &self,
        key: &ApiKey,
        audit: &AuditEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> impl Future<Output = Result<InsertOutcome, StoreError>> + Send;
}

/// Tells whether a company holds imported keys, so verify looks up a presented string that is
/// not in the service's format only for a company that may have one.
pub trait ImportLedger: Sync {
    /// Whether the company ever imported a key (strongly consistent).
    fn has_imported(&self, company: &CompanyId) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

/// Reads the first answer stored for an `Idempotency-Key`.
pub trait IdempotencyReader: Sync {
    /// Strongly consistent, by `IdempotencyRecord::lookup`; a lapsed record may still be found
    /// (TTL removes it late): the caller compares `expires_at`.
    fn find_idempotency(
        &self,
        lookup: &str,
    ) -> impl Future<Output = Result<Option<IdempotencyRecord>, StoreError>> + Send;
}

/// A change from one saved version of a key to the next.
pub struct KeyChange<'a> {
    /// The key as read, whose `version` the write is conditioned on.
    pub before: &'a ApiKey,
    /// The key to save, its `version` one more.
    pub after: &'a ApiKey,
    /// The record of the change, written in the same transaction.
    pub audit: &'a AuditEvent,
    /// The quota's settings changed so that uses counted so far no longer apply.
    pub reset_quota_usage: bool,
    /// Refuse the change if it takes away the company's last active admin key
    /// (`ApiKey::is_company_admin`), checked against the company's counter in the same write.
    pub keep_an_admin: bool,
    /// The answer to store for the request's `Idempotency-Key`, in the same transaction.
    pub idempotency: Option<&'a IdempotencyRecord>,
}

/// What a management write's transaction did, named by the write whose condition refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Every item was written.
    Saved,
    /// The key is no longer at `before.version`.
    VersionConflict,
    /// The change would leave the company with no active admin key, and `keep_an_admin` was set.
    LastAdmin,
    /// Another request with the same `Idempotency-Key` got there first.
    IdempotencyKeyTaken,
    /// The key would be counted by an identity that is not (or no longer) one of its company's
    /// (named anew, or re-activated with an identity deleted since).
    UnknownIdentity,
}

/// Saves changes to existing keys (update, status, roll, delete).
pub trait KeyWriter: Sync {
    /// Key, lookup items (added, refreshed, removed), counters (the company's and those of the
    /// identities it leaves or joins) and audit record, all or nothing, only if the key is still
    /// at `before.version`.
    fn save_change(&self, change: KeyChange<'_>) -> impl Future<Output = Result<SaveOutcome, StoreError>> + Send;
}

/// Counts a company's active admin keys, so a write that would take the last one away can be
/// refused before it costs the caller anything (the write's own condition still decides races).
pub trait AdminCounter: Sync {
    /// The company's active secret keys that reach all of `keys:`, as its counters item holds them.
    fn active_admins(&self, company: &CompanyId) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// Which items a list reads and what it answers: defined with the rest of paging.
pub use paging::{PageOutcome, PageWindow};

/// A written key as an idempotent answer seals it: the key as its item stores it, so a sealed
/// answer is held to the store's names.
pub use records::SealedKeyRecord;

/// An identity as its item stores it, and as an idempotent identity write seals it.
pub use records::IdentityRecord;

/// Lists a company's keys.
pub trait KeyLister: Sync {
    /// A company's keys of a status (or all), by creation; `total` from the counters. With
    /// `identity`, only that identity's keys of the status (`UnknownOwner` if it is none of
    /// the company's), `total` from its counts; an identity's list takes no `skip`.
    fn list_keys(
        &self,
        company: &CompanyId,
        status: StatusFilter,
        identity: Option<&IdentityId>,
        window: PageWindow<'_>,
    ) -> impl Future<Output = Result<PageOutcome<ApiKey>, StoreError>> + Send;
}

/// Reads identities: one by id, or by its `externalId`. A deleted identity is none.
pub trait IdentityReader: Sync {
    /// Strongly consistent: an identity just written is seen, one just deleted is not.
    fn get_identity(
        &self,
        company: &CompanyId,
        id: &IdentityId,
    ) -> impl Future<Output = Result<Option<Identity>, StoreError>> + Send;

    /// The company's identity with this `externalId`, strongly consistent.
    fn find_identity(
        &self,
        company: &CompanyId,
        external_id: &str,
    ) -> impl Future<Output = Result<Option<Identity>, StoreError>> + Send;
}

/// What an identity write's transaction did, named by the write whose condition refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityOutcome {
    /// Every item was written.
    Written,
    /// The identity is no longer at the version read (changed, deleted, or, for a delete, its
    /// keys' counts moved): read it again.
    Changed,
    /// Another identity of the company has the `externalId`.
    ExternalIdTaken,
    /// Another request with the same `Idempotency-Key` got there first.
    IdempotencyKeyTaken,
}

/// A write to an identity: its state as read (`None` for a create) and after.
pub struct IdentityWrite<'a> {
    /// The identity as read, whose `version` (and, for a delete, key counts) the write is
    /// conditioned on; `None`: it is new.
    pub before: Option<&'a Identity>,
    /// The identity to save; `None`: delete it.
    pub after: Option<&'a Identity>,
    /// When the write happens (for the idempotency record's condition).
    pub now: DateTime<Utc>,
    /// The answer to store for the request's `Idempotency-Key`, in the same transaction.
    pub idempotency: Option<&'a IdempotencyRecord>,
}

/// Writes identities: create, change, delete, each with its `externalId` kept unique.
pub trait IdentityWriter: Sync {
    /// Creates (`before` none), changes or deletes (`after` none) an identity with its
    /// `externalId`'s uniqueness item, its listing, the company's count of identities and the
    /// idempotency record, all or nothing. A delete is refused while an active key names it;
    /// while inactive keys do, it leaves a tombstone that counts them and reads as absent.
    fn write_identity(
        &self,
        write: IdentityWrite<'_>,
    ) -> impl Future<Output = Result<IdentityOutcome, StoreError>> + Send;
}

/// Lists a company's identities.
pub trait IdentityLister: Sync {
    /// The company's identities by creation; `total` from the company's counters.
    fn list_identities(
        &self,
        company: &CompanyId,
        window: PageWindow<'_>,
    ) -> impl Future<Output = Result<PageOutcome<Identity>, StoreError>> + Send;
}

/// Lists a key's audit events.
pub trait AuditReader: Sync {
    /// A key's audit events, by time; `total` is one per saved version of the key.
    fn list_events(
        &self,
        company: &CompanyId,
        key: &KeyId,
        window: PageWindow<'_>,
    ) -> impl Future<Output = Result<PageOutcome<AuditEvent>, StoreError>> + Send;
}

/// Keeps the company counters exact when keys leave the table by TTL rather than by a write.
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
    /// The hash the lookup item is filed under: the key's current secret, or its previous one
    /// during a roll's grace period.
    pub hash: SecretHash,
    /// The key as of the last management write (usage attributes as of the last verify).
    pub key: ApiKey,
}

/// Finds keys by the hash of a presented secret: verify's and the caller check's one read.
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

/// Whose named limit a use counts against: the key's own, or its identity's, which every key
/// of the identity shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitOwner<'a> {
    /// The verified key's own limit.
    Key,
    /// The limit of the key's identity.
    Identity(&'a IdentityId),
}

/// A named limit a verify applies: whose, which, the window `now` falls in, and what the use
/// costs it.
#[derive(Debug, Clone, Copy)]
pub struct NamedTake<'a> {
    /// The key, or its identity.
    pub owner: LimitOwner<'a>,
    /// The limit as its owner holds it.
    pub limit: &'a NamedLimit,
    /// The window `now` falls in.
    pub window: Window,
    /// What the use costs it.
    pub cost: u64,
}

/// The limits a verify must pass, with the window and period `now` falls in.
#[derive(Debug, Clone, Copy)]
pub struct UsageRequest<'a> {
    /// The key used.
    pub key: &'a ApiKey,
    /// When it is used (the clock's time, for `lastUsedAt`).
    pub now: DateTime<Utc>,
    /// The key's rate limit and the window `now` falls in, if it has one.
    pub rate: Option<(RateLimit, Window)>,
    /// The named limits applied, in the order they are checked (after `rate`, before `quota`).
    pub named: &'a [NamedTake<'a>],
    /// The key's quota and the period `now` falls in, if it has one.
    pub quota: Option<(Quota, i64)>,
    /// What the use costs the quota: 0 consumes nothing (a quota already used up still
    /// refuses); the rate limit counts every use as one.
    pub cost: u64,
}

impl UsageRequest<'_> {
    /// Whether the use has anything to count.
    pub fn counts_anything(&self) -> bool {
        self.rate.is_some() || self.quota.is_some() || !self.named.is_empty()
    }
}

/// Whether a use was counted, and if so how much of each limit it leaves used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageOutcome {
    /// Counted against every limit the key has.
    Admitted {
        /// Uses of the rate window so far, this one included (`None`: no rate limit).
        rate_used: Option<u64>,
        /// What each named limit's window has counted, this use included, in `named`'s order.
        named_used: Vec<u64>,
        /// Uses of the quota period so far, this one included (`None`: no quota).
        quota_used: Option<u64>,
        /// Whether the same writes set the key's `lastUsedAt` (else the caller refreshes it).
        last_used_written: bool,
    },
    /// A rate window is full; nothing was counted.
    RateLimited {
        /// The named limit that refused, by its place in `named`; `None`: the key's `rateLimit`.
        refused: Option<usize>,
        /// What each named limit's window has counted, as the refusal found it (empty when
        /// they were not read).
        named_used: Vec<u64>,
    },
    /// The quota period has less left than the use costs; nothing was counted.
    QuotaExceeded {
        /// Uses of the quota period so far, as the refusal found them.
        quota_used: u64,
        /// What each named limit's window has counted, as the refusal found it (empty when
        /// they were not read).
        named_used: Vec<u64>,
    },
}

/// Counts verifies against a key's limits and records when it was last used.
pub trait UsageRecorder: Sync {
    /// Counts one use against every limit, or against none if any refuses it: all or nothing,
    /// under any concurrency.
    fn consume(&self, request: UsageRequest<'_>) -> impl Future<Output = Result<UsageOutcome, StoreError>> + Send;

    /// Records `lastUsedAt` (at most once a minute per key). Awaited before the answer: Lambda
    /// freezes the process once the handler returns, so nothing may be left running. A failure
    /// is logged by its code and never fails the answer.
    fn touch_last_used(&self, key: &ApiKey, now: DateTime<Utc>) -> impl Future<Output = ()> + Send;
}

/// What adding a batch's usage did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageAdded {
    /// Items whose counts grew.
    pub written: usize,
    /// Items of the batch found already added (a redelivered batch): none of their counts grew.
    pub already_added: usize,
}

/// Hourly and daily verification counts of keys and identities.
pub trait UsageHistory: Sync {
    /// Adds the increments of the batch named `batch` (the same name for the same verifications,
    /// however often they are delivered): exactly once, whatever was added of it before.
    fn add_usage(
        &self,
        batch: &str,
        increments: &[UsageIncrement],
    ) -> impl Future<Output = Result<UsageAdded, StoreError>> + Send;

    /// The owner's buckets in the range, in time order, none empty.
    fn read_usage(
        &self,
        company: &CompanyId,
        owner: &UsageOwner,
        range: &UsageRange,
    ) -> impl Future<Output = Result<Vec<UsageBucket>, StoreError>> + Send;
}

/// Reads a company's settings (its key prefix and leak policy).
pub trait CompanySettingsReader: Sync {
    /// Strongly consistent; a company that never changed them has the defaults (version 0).
    fn company_settings(&self, company: &CompanyId)
    -> impl Future<Output = Result<CompanySettings, StoreError>> + Send;
}

/// One change of a company's settings, as the domain planned it.
#[derive(Debug, Clone, Copy)]
pub struct SettingsChange<'a> {
    /// Whose.
    pub company: &'a CompanyId,
    /// As read: the write is conditioned on its version.
    pub before: &'a CompanySettings,
    /// To save, its version one more.
    pub after: &'a CompanySettings,
    /// The fields that differ from `before` to `after` (at least one), for the audit record.
    pub changes: &'a CompanySettingsChange,
    /// Who changed them (a key's id, or `operator`), for the company's audit record.
    pub actor: &'a str,
    /// When.
    pub now: DateTime<Utc>,
    /// The answer to store for the request's `Idempotency-Key`, in the same transaction.
    pub idempotency: Option<&'a IdempotencyRecord>,
}

/// What a settings write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsOutcome {
    /// Saved, with the prefix claimed and the audit record written.
    Saved,
    /// The settings are no longer at `before.version`.
    VersionConflict,
    /// Another company holds the new prefix.
    PrefixTaken,
    /// Another request with the same `Idempotency-Key` got there first.
    IdempotencyKeyTaken,
}

/// Writes a company's settings: the settings, the claim of its prefix (one company per
/// prefix, so a scanner's match names one company), its audit record and the idempotency
/// record, all or nothing.
pub trait CompanySettingsWriter: Sync {
    /// Saves `change.after` only if the settings are still at `change.before.version`.
    fn save_company_settings(
        &self,
        change: SettingsChange<'_>,
    ) -> impl Future<Output = Result<SettingsOutcome, StoreError>> + Send;
}

/// Reads a company's audit trail: the changes of its settings.
pub trait CompanyAuditReader: Sync {
    /// The company's audit records in the window (its `take` at most, so a page is bounded),
    /// from its own partition only; `total` is one per saved version of its settings.
    fn list_company_events(
        &self,
        company: &CompanyId,
        window: PageWindow<'_>,
    ) -> impl Future<Output = Result<PageOutcome<CompanyEvent>, StoreError>> + Send;
}

/// The leak reports handled, each by the name of the report (its token, url and source), so
/// the same report again is answered as the first whatever happened to the key since.
pub trait LeakLedger: Sync {
    /// Whether the report named `report` was handled (strongly consistent).
    fn leak_handled(&self, report: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Records that the report was handled, kept 30 days.
    fn record_leak_handled(
        &self,
        report: &str,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}
