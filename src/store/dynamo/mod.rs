//! The DynamoDB adapter: every store trait on one table; `paging` reads its lists.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{Delete, KeysAndAttributes, Put, TransactWriteItem, Update};
use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{ApiKey, AuditEvent, CompanyId, IdentityId, KeyId, KeyStatus, SecretHash, StatusFilter};
use crate::settings::{DEFAULT_RETENTION_DAYS, DEFAULT_USAGE_RETENTION_DAYS};

use self::paging::{Entries, Listing};
use super::items::{self, Item, address, n};
use super::records::{CountersRecord, IdempotencyItem, IdentityRecord, KeyRecord};
use super::table::{COMPANY_INDEX, IDENTITY_INDEX, PARTITION_KEY, STATUS_INDEX, TTL_ATTRIBUTE};
use super::{
    AdminCounter, AuditReader, CounterKeeper, IdempotencyReader, IdempotencyRecord, ImportLedger, InsertOutcome,
    KeyChange, KeyCreator, KeyLister, KeyReader, KeyWriter, PageOutcome, PageWindow, SaveOutcome, SecretLookup,
    SecretRecord, StoreError,
};

mod company;
mod identities;
mod paging;
mod usage;
mod usage_history;

/// The most a best-effort `lastUsedAt` write may add to an answer.
const LAST_USED_BUDGET: Duration = Duration::from_secs(1);
/// Transactions cancelled by a concurrent transaction on the same item (a company's counter)
/// are retried this many times, with jittered backoff, before the request gets a 503.
const MAX_TRANSACTION_ATTEMPTS: u32 = 6;
const CONDITION_FAILED: &str = "ConditionalCheckFailed";

/// Every store trait on one DynamoDB table (`table::create_table`), through one SDK client.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    retention: TimeDelta,
    /// How long usage counts stay after their bucket ends.
    usage_retention: TimeDelta,
}

/// How one write moves a company's counters: keys by status, and active admin keys.
#[derive(Debug, Clone, Copy, Default)]
struct CounterMoves {
    active: i64,
    inactive: i64,
    admins: i64,
    /// Keys imported by the write (never taken back: the company has held imported keys).
    imported: i64,
    /// Refuse the write if it would bring the admin count to zero.
    keep_an_admin: bool,
}

impl CounterMoves {
    /// From a key's state before (`None`: it did not exist) to after.
    fn between(before: Option<&ApiKey>, after: &ApiKey, keep_an_admin: bool) -> Self {
        let is = |key: Option<&ApiKey>, wanted: KeyStatus| i64::from(key.is_some_and(|k| k.status == wanted));
        let admin = |key: Option<&ApiKey>| i64::from(key.is_some_and(ApiKey::is_company_admin));
        Self {
            active: is(Some(after), KeyStatus::Active) - is(before, KeyStatus::Active),
            inactive: is(Some(after), KeyStatus::Inactive) - is(before, KeyStatus::Inactive),
            admins: admin(Some(after)) - admin(before),
            imported: 0,
            keep_an_admin,
        }
    }

    fn is_none(&self) -> bool {
        self.active == 0 && self.inactive == 0 && self.admins == 0
    }
}

/// How one write moves the key counts of the identities its key leaves and joins: a key is
/// counted by the identity it names, under its status, until it is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IdentityMove<'a> {
    identity: &'a IdentityId,
    active: i64,
    inactive: i64,
}

impl<'a> IdentityMove<'a> {
    /// From a key's state before (`None`: it did not exist) to after; no move where nothing moves.
    fn between(before: Option<&'a ApiKey>, after: &'a ApiKey) -> Vec<Self> {
        let mut moves: Vec<Self> = Vec::new();
        let counted = |key: &'a ApiKey, by: i64, moves: &mut Vec<Self>| {
            let Some((identity, status)) = key.counted_by() else { return };
            let at = match moves.iter().position(|m| m.identity == identity) {
                Some(at) => at,
                None => {
                    moves.push(Self { identity, active: 0, inactive: 0 });
                    moves.len() - 1
                }
            };
            match status {
                KeyStatus::Active => moves[at].active += by,
                KeyStatus::Inactive => moves[at].inactive += by,
            }
        };
        if let Some(before) = before {
            counted(before, -1, &mut moves);
        }
        counted(after, 1, &mut moves);
        moves.retain(|m| m.active != 0 || m.inactive != 0);
        moves
    }

    /// A key joins this identity's counts (as a new key, a re-activated one or one that names
    /// it anew): it must be a live identity of the company. A key only leaving its counts
    /// needs it to exist, which it does while it counts the key (a tombstone included).
    fn joins(&self) -> bool {
        self.active > 0 || self.inactive > 0
    }
}

/// The writes of one transaction, each tagged with what its condition failing would mean, so
/// an outcome is read by name rather than by a write's position in the list.
struct Writes<T> {
    items: Vec<TransactWriteItem>,
    meanings: Vec<Option<T>>,
}

impl<T: Copy> Writes<T> {
    fn new() -> Self {
        Self { items: Vec::new(), meanings: Vec::new() }
    }

    /// A write with no condition (or none whose failure the caller tells apart).
    fn push(&mut self, write: TransactWriteItem) {
        self.items.push(write);
        self.meanings.push(None);
    }

    /// A write whose failed condition means `meaning`.
    fn guarded(&mut self, write: TransactWriteItem, meaning: T) {
        self.items.push(write);
        self.meanings.push(Some(meaning));
    }

    /// What the first failed condition means; `None` if no tagged write's condition failed.
    fn meaning_of(&self, codes: &[String]) -> Option<T> {
        codes.iter().zip(&self.meanings).find(|(code, _)| *code == CONDITION_FAILED).and_then(|(_, meaning)| *meaning)
    }
}

enum Transaction<T> {
    Committed,
    /// Cancelled by a failed condition: what it meant (`None` for an untagged write's).
    Refused(Option<T>),
}

impl DynamoStore {
    /// The store of table `table`, keeping deleted keys `DEFAULT_RETENTION_DAYS`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            retention: TimeDelta::days(DEFAULT_RETENTION_DAYS),
            usage_retention: TimeDelta::days(DEFAULT_USAGE_RETENTION_DAYS),
        }
    }

    /// How long usage counts stay after their hour or day ends.
    pub fn with_usage_retention(mut self, retention: TimeDelta) -> Self {
        self.usage_retention = retention;
        self
    }

    /// How long a deleted key (and its lookup items) stays before TTL removes it.
    pub fn with_retention(mut self, retention: TimeDelta) -> Self {
        self.retention = retention;
        self
    }

    /// The SDK client, for the callers that need the table itself (the local server, tests).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// A strongly consistent read of one item: every read the service makes must see the last write.
    async fn get_item(&self, operation: &'static str, key: Item) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| unavailable(operation, &e))?;
        Ok(out.item)
    }

    fn put(&self, item: Item, condition: Option<&str>) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned));
        TransactWriteItem::builder().put(put.build().expect("table and item are set")).build()
    }

    fn counters_update(&self, company: &CompanyId, moves: CounterMoves) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(address(items::counters_pk(company), items::COUNTERS_SK)))
            .update_expression("ADD #active :active, #inactive :inactive, #admins :admins SET #schema = :schema")
            .expression_attribute_names("#schema", items::SCHEMA_VERSION_ATTRIBUTE)
            .expression_attribute_values(":schema", n(items::SCHEMA_VERSION))
            .expression_attribute_names("#active", CountersRecord::ACTIVE)
            .expression_attribute_names("#inactive", CountersRecord::INACTIVE)
            .expression_attribute_names("#admins", CountersRecord::ACTIVE_ADMINS)
            .expression_attribute_values(":active", n(moves.active))
            .expression_attribute_values(":inactive", n(moves.inactive))
            .expression_attribute_values(":admins", n(moves.admins));
        if moves.imported != 0 {
            update = update
                .update_expression(
                    "ADD #active :active, #inactive :inactive, #admins :admins, #imported :imported SET #schema = :schema",
                )
                .expression_attribute_names("#imported", CountersRecord::IMPORTED)
                .expression_attribute_values(":imported", n(moves.imported));
        }
        if moves.keep_an_admin && moves.admins < 0 {
            // Counted before this write: at least one admin must remain after it.
            update = update
                .condition_expression("#admins > :remaining")
                .expression_attribute_values(":remaining", n(-moves.admins));
        }
        TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
    }

    /// Moves the key counts of an identity of `company` by `moves`; the identity must exist
    /// (a tombstone counts the keys it still has), and be live for a key that joins it.
    fn identity_keys_update(&self, company: &CompanyId, moves: &IdentityMove<'_>) -> TransactWriteItem {
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(items::identity_address(company, moves.identity)))
            .update_expression("ADD #active :active, #inactive :inactive")
            .expression_attribute_names("#active", IdentityRecord::ACTIVE_KEYS)
            .expression_attribute_names("#inactive", IdentityRecord::INACTIVE_KEYS)
            .expression_attribute_values(":active", n(moves.active))
            .expression_attribute_values(":inactive", n(moves.inactive));
        update = if moves.joins() {
            update
                .condition_expression("attribute_exists(pk) AND attribute_not_exists(#deleted)")
                .expression_attribute_names("#deleted", IdentityRecord::DELETED_AT)
        } else {
            update.condition_expression("attribute_exists(pk)")
        };
        TransactWriteItem::builder().update(update.build().expect("table, key and expression are set")).build()
    }

    /// The record of a first answer, put only if no live record holds its header.
    fn idempotency_put(&self, record: &IdempotencyRecord, now: DateTime<Utc>) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(items::idempotency_item(record)))
            .condition_expression("attribute_not_exists(pk) OR #expires <= :now")
            .expression_attribute_names("#expires", IdempotencyItem::EXPIRES_AT)
            .expression_attribute_values(":now", n(now.timestamp()))
            .build()
            .expect("table and item are set");
        TransactWriteItem::builder().put(put).build()
    }

    fn retention_end(&self, key: &ApiKey) -> Option<DateTime<Utc>> {
        key.deleted_at.map(|at| at + self.retention)
    }

    /// Runs a transaction, retrying conflicts with other transactions; condition failures are
    /// returned for the caller to read.
    ///
    /// Every attempt of this call carries one `ClientRequestToken`, so a commit whose answer was
    /// lost is answered as committed rather than refused by its own writes' conditions. After a
    /// `TransactionConflict` nothing was committed, so the next attempt takes a fresh token.
    async fn transact<T: Copy>(
        &self,
        operation: &'static str,
        writes: Writes<T>,
    ) -> Result<Transaction<T>, StoreError> {
        let mut token = request_token();
        for attempt in 0..MAX_TRANSACTION_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.items.clone()))
                .client_request_token(&token)
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Transaction::Committed),
                Err(err) => err,
            };
            let retry = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => {
                    let codes: Vec<String> =
                        cancel.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None").to_owned()).collect();
                    if codes.iter().any(|c| c == CONDITION_FAILED) {
                        return Ok(Transaction::Refused(writes.meaning_of(&codes)));
                    }
                    token = request_token();
                    codes.iter().any(|c| c == "TransactionConflict")
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => true,
                _ => false,
            };
            if !retry {
                return Err(unavailable(operation, &err));
            }
            if attempt + 1 == MAX_TRANSACTION_ATTEMPTS {
                break;
            }
            tracing::info!(operation, attempt, "transaction conflicted; retrying");
            backoff(attempt).await;
        }
        Err(StoreError::Unavailable(format!("{operation}: transaction kept conflicting")))
    }
}

/// A `ClientRequestToken` (at most 36 characters), unique per call: 32 hex digits of a UUIDv7.
fn request_token() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

async fn backoff(attempt: u32) {
    let ceiling_ms = 10u64 << attempt.min(6);
    let jitter = rand::random_range(0..ceiling_ms);
    tokio::time::sleep(Duration::from_millis(ceiling_ms / 2 + jitter)).await;
}

/// Logs the failure by its error code only: DynamoDB messages can quote item keys, which for
/// lookup items embed a secret's hash.
pub(super) fn unavailable<E: ProvideErrorMetadata, R>(operation: &'static str, err: &SdkError<E, R>) -> StoreError {
    let code = match err {
        SdkError::ServiceError(service) => service.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timeout".to_owned(),
        SdkError::DispatchFailure(_) => "dispatch failure (connection)".to_owned(),
        SdkError::ResponseError(_) => "unreadable response".to_owned(),
        _ => "request construction".to_owned(),
    };
    tracing::error!(operation, code = %code, "DynamoDB call failed");
    StoreError::Unavailable(format!("{operation}: {code}"))
}

impl KeyReader for DynamoStore {
    async fn get_key(&self, company: &CompanyId, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        let found = self.get_item("get key", address(items::key_pk(company, id), items::KEY_SK)).await?;
        found.map(items::key_from_item).transpose()
    }
}

impl AdminCounter for DynamoStore {
    async fn active_admins(&self, company: &CompanyId) -> Result<u64, StoreError> {
        let counters = self.get_item("count admins", address(items::counters_pk(company), items::COUNTERS_SK)).await?;
        Ok(CountersRecord::count(counters.as_ref(), CountersRecord::ACTIVE_ADMINS))
    }
}

impl KeyCreator for DynamoStore {
    async fn insert_key(
        &self,
        key: &ApiKey,
        audit: &crate::model::AuditEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<InsertOutcome, StoreError> {
        // The first failed condition names the outcome: a twin request with the same header
        // (whose custom id is then taken too) must read as that, so its record comes first.
        let mut writes = Writes::new();
        if let Some(record) = idempotency {
            writes.guarded(self.idempotency_put(record, key.created_at), InsertOutcome::IdempotencyKeyTaken);
        }
        let new = Some("attribute_not_exists(pk)");
        writes.guarded(self.put(items::key_item(key, None)?, new), InsertOutcome::IdTaken);
        // A hash already filed: imported twice, or (2^-256) made twice; never overwrite another
        // key's lookup.
        writes.guarded(self.put(items::lookup_item(key, &key.secret_hash, None)?, new), InsertOutcome::SecretTaken);
        let imported = i64::from(audit.action == crate::model::AuditAction::Imported);
        writes.push(
            self.counters_update(&key.company_id, CounterMoves { imported, ..CounterMoves::between(None, key, false) }),
        );
        for moves in IdentityMove::between(None, key) {
            writes.guarded(self.identity_keys_update(&key.company_id, &moves), InsertOutcome::UnknownIdentity);
        }
        writes.push(self.put(items::audit_item(audit)?, None));
        for entry in items::key_listing_entries(key, None) {
            writes.push(self.put(entry, None));
        }
        writes.push(self.put(items::event_listing_entry(audit), None));
        match self.transact("create key", writes).await? {
            Transaction::Committed => Ok(InsertOutcome::Inserted),
            Transaction::Refused(Some(outcome)) => Ok(outcome),
            Transaction::Refused(None) => {
                Err(StoreError::Unavailable("create key: unexpected condition failure".into()))
            }
        }
    }
}

impl ImportLedger for DynamoStore {
    async fn has_imported(&self, company: &CompanyId) -> Result<bool, StoreError> {
        let counters = self.get_item("imported keys", address(items::counters_pk(company), items::COUNTERS_SK)).await?;
        Ok(CountersRecord::count(counters.as_ref(), CountersRecord::IMPORTED) > 0)
    }
}

impl IdempotencyReader for DynamoStore {
    async fn find_idempotency(&self, lookup: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        let found =
            self.get_item("idempotency record", address(items::idempotency_pk(lookup), items::IDEMPOTENCY_SK)).await?;
        Ok(found.map(|item| IdempotencyItem::into_model(lookup, item)))
    }
}

impl KeyWriter for DynamoStore {
    async fn save_change(&self, change: KeyChange<'_>) -> Result<SaveOutcome, StoreError> {
        let (before, after) = (change.before, change.after);
        let retention_end = self.retention_end(after);
        let mut attributes = items::key_attributes(after)?;
        attributes.extend(items::index_attributes(after));
        for usage in items::USAGE_ATTRIBUTES {
            if !(usage == KeyRecord::QUOTA_USAGE && change.reset_quota_usage) {
                attributes.remove(usage);
            }
        }
        if let Some(at) = retention_end {
            attributes.insert(TTL_ATTRIBUTE.to_owned(), n(at.timestamp()));
        }
        let mut update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(address(items::key_pk(&after.company_id, &after.id), items::KEY_SK)))
            .condition_expression("#version = :expected")
            .expression_attribute_names("#version", KeyRecord::VERSION)
            .expression_attribute_values(":expected", n(before.version));
        let mut assignments = Vec::with_capacity(attributes.len());
        for (i, (name, value)) in attributes.into_iter().enumerate() {
            assignments.push(format!("#a{i} = :a{i}"));
            update = update
                .expression_attribute_names(format!("#a{i}"), name)
                .expression_attribute_values(format!(":a{i}"), value);
        }
        // A key that leaves its identity's lists (deleted, or naming none) leaves its index too.
        let unlisted = if after.counted_by().is_none() {
            update = update
                .expression_attribute_names("#g3p", IDENTITY_INDEX.partition_key)
                .expression_attribute_names("#g3s", IDENTITY_INDEX.sort_key);
            " REMOVE #g3p, #g3s"
        } else {
            ""
        };
        let update = update
            .update_expression(format!("SET {}{unlisted}", assignments.join(", ")))
            .build()
            .expect("table, key and expression are set");
        let mut writes = Writes::new();
        writes.guarded(TransactWriteItem::builder().update(update).build(), SaveOutcome::VersionConflict);

        let live_after = after.live_secrets();
        for (hash, grace_end) in &live_after {
            writes.push(self.put(items::lookup_item(after, hash, retention_end.or(*grace_end))?, None));
        }
        for (hash, _) in before.live_secrets() {
            if !live_after.iter().any(|(h, _)| *h == hash) {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(address(items::secret_pk(hash), items::SECRET_SK)))
                    .build()
                    .expect("table and key are set");
                writes.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        let moves = CounterMoves::between(Some(before), after, change.keep_an_admin);
        if !moves.is_none() {
            writes.guarded(self.counters_update(&after.company_id, moves), SaveOutcome::LastAdmin);
        }
        for moves in IdentityMove::between(Some(before), after) {
            // Leaving an identity cannot fail (it exists while it counts the key): a failure
            // there reads as the key joining one that is gone, and the write is planned again.
            writes.guarded(self.identity_keys_update(&after.company_id, &moves), SaveOutcome::UnknownIdentity);
        }
        // The listing entries follow the key's status and retention; other changes leave them.
        if before.status != after.status {
            let pk = items::key_listing_pk(&before.company_id, Some(before.status));
            let delete = Delete::builder()
                .table_name(&self.table)
                .set_key(Some(address(pk, &items::key_listing_sk(before))))
                .build()
                .expect("table and key are set");
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        if before.status != after.status || self.retention_end(before) != retention_end {
            for entry in items::key_listing_entries(after, retention_end) {
                writes.push(self.put(entry, None));
            }
        }
        writes.push(self.put(items::audit_item(change.audit)?, None));
        writes.push(self.put(items::event_listing_entry(change.audit), None));
        if let Some(record) = change.idempotency {
            writes.guarded(self.idempotency_put(record, after.updated_at), SaveOutcome::IdempotencyKeyTaken);
        }
        match self.transact("save key", writes).await? {
            Transaction::Committed => Ok(SaveOutcome::Saved),
            Transaction::Refused(Some(outcome)) => Ok(outcome),
            Transaction::Refused(None) => Err(StoreError::Unavailable("save key: unexpected condition failure".into())),
        }
    }
}

impl DynamoStore {
    /// A strongly consistent BatchGetItem of a few items of the table, in one round trip; the
    /// items found, in no particular order. Keys DynamoDB leaves unprocessed (throttling) make
    /// the read unavailable rather than half-answered.
    pub(super) async fn batch_get(&self, operation: &'static str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        self.batch_get_only(operation, keys, &[]).await
    }

    /// `batch_get` of only the `attributes` named (and `pk`, to tell the items apart); none
    /// named, every attribute.
    pub(super) async fn batch_get_only(
        &self,
        operation: &'static str,
        keys: Vec<Item>,
        attributes: &[&str],
    ) -> Result<Vec<Item>, StoreError> {
        let mut wanted = KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true);
        if !attributes.is_empty() {
            let names: Vec<String> = (0..=attributes.len()).map(|i| format!("#a{i}")).collect();
            wanted = wanted.projection_expression(names.join(", "));
            for (name, attribute) in names.iter().zip(std::iter::once(&PARTITION_KEY).chain(attributes)) {
                wanted = wanted.expression_attribute_names(name, *attribute);
            }
        }
        let wanted = wanted.build().expect("keys are set");
        let out = self
            .client
            .batch_get_item()
            .request_items(&self.table, wanted)
            .send()
            .await
            .map_err(|e| unavailable(operation, &e))?;
        if out.unprocessed_keys().is_some_and(|u| !u.is_empty()) {
            return Err(StoreError::Unavailable(format!("{operation}: read throttled")));
        }
        Ok(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default())
    }
}

impl AuditReader for DynamoStore {
    async fn list_events(
        &self,
        company: &CompanyId,
        key: &KeyId,
        window: PageWindow<'_>,
    ) -> Result<PageOutcome<AuditEvent>, StoreError> {
        let pk = items::events_pk(company, key);
        let cursor = window.start.map(|id| address(pk.clone(), &items::event_sk(id)));
        let owner = address(items::key_pk(company, key), items::KEY_SK);
        let (owner, start) = self.page_context("list events", owner, cursor.clone()).await?;
        let Some(owner) = owner else { return Ok(PageOutcome::UnknownOwner) };
        if window.start.is_some() && start.is_none() {
            return Ok(PageOutcome::UnknownStart);
        }
        let entries = items::event_listing_pk(company, key);
        let entries_position = window.start.map(|id| address(entries.clone(), &items::event_listing_sk(id)));
        let after_entry = |entry: &Item| items::event_position_of_entry(entry, company, key);
        let listing = Listing {
            index: None,
            partition: pk,
            position: cursor,
            entries: Some(Entries { partition: entries, position: entries_position, after_entry: &after_entry }),
        };
        let items = self.query_pages("list events", listing, window, items::event_from_item).await?;
        let total = items::number(&owner, KeyRecord::VERSION).unwrap_or(0).max(0) as u64;
        Ok(PageOutcome::Listed { total, items })
    }
}

impl KeyLister for DynamoStore {
    async fn list_keys(
        &self,
        company: &CompanyId,
        status: StatusFilter,
        identity: Option<&IdentityId>,
        window: PageWindow<'_>,
    ) -> Result<PageOutcome<ApiKey>, StoreError> {
        if let Some(identity) = identity {
            return self.list_identity_keys(company, status, identity, window).await;
        }
        let counters_address = address(items::counters_pk(company), items::COUNTERS_SK);
        let start_address = window.start.map(|id| address(items::key_pk(company, id), items::KEY_SK));
        let (counters, start) = self.page_context("list keys", counters_address, start_address).await?;
        let start = start.map(items::key_from_item).transpose()?;
        if window.start.is_some() && start.is_none() {
            return Ok(PageOutcome::UnknownStart);
        }
        let CountersRecord { active, inactive } = CountersRecord::from_item(counters.as_ref());
        let (index, partition, total) = match status.status() {
            Some(KeyStatus::Active) => (STATUS_INDEX, items::status_index_pk(company, KeyStatus::Active), active),
            Some(KeyStatus::Inactive) => (STATUS_INDEX, items::status_index_pk(company, KeyStatus::Inactive), inactive),
            None => (COMPANY_INDEX, items::company_index_pk(company), active + inactive),
        };
        let position = start.as_ref().map(|k| items::page_position(k, index, &partition));
        let entries = items::key_listing_pk(company, status.status());
        let entries_position = start.as_ref().map(|k| address(entries.clone(), &items::key_listing_sk(k)));
        let after_entry = |entry: &Item| items::key_position_of_entry(entry, company, index, &partition);
        let listing = Listing {
            index: Some(index),
            partition: partition.clone(),
            position,
            entries: Some(Entries { partition: entries, position: entries_position, after_entry: &after_entry }),
        };
        let items = self.query_pages("list keys", listing, window, items::key_from_item).await?;
        Ok(PageOutcome::Listed { total, items })
    }
}

impl DynamoStore {
    /// An identity's keys of one status, from the identity index, by cursor: the identity item
    /// (its counts are the total) and the cursor key in one read, then one query.
    async fn list_identity_keys(
        &self,
        company: &CompanyId,
        status: StatusFilter,
        identity: &IdentityId,
        window: PageWindow<'_>,
    ) -> Result<PageOutcome<ApiKey>, StoreError> {
        let owner = items::identity_address(company, identity);
        let start_address = window.start.map(|id| address(items::key_pk(company, id), items::KEY_SK));
        let (owner, start) = self.page_context("list identity keys", owner, start_address).await?;
        let Some(owner) = owner.map(items::identity_from_item).transpose()?.flatten() else {
            return Ok(PageOutcome::UnknownOwner);
        };
        let start = start.map(items::key_from_item).transpose()?;
        if window.start.is_some() && start.is_none() {
            return Ok(PageOutcome::UnknownStart);
        }
        // `all` is refused by the request's parsing: one index partition per status.
        let status = status.status().unwrap_or(KeyStatus::Active);
        let total = match status {
            KeyStatus::Active => owner.keys.active,
            KeyStatus::Inactive => owner.keys.inactive,
        };
        let partition = items::identity_keys_pk(company, identity, status);
        let position = start.as_ref().map(|k| items::page_position(k, IDENTITY_INDEX, &partition));
        let listing = Listing { index: Some(IDENTITY_INDEX), partition, position, entries: None };
        let items = self.query_pages("list identity keys", listing, window, items::key_from_item).await?;
        Ok(PageOutcome::Listed { total, items })
    }
}

impl SecretLookup for DynamoStore {
    async fn find_secret(&self, hash: &SecretHash) -> Result<Option<SecretRecord>, StoreError> {
        let found = self.get_item("find secret", address(items::secret_pk(hash), items::SECRET_SK)).await?;
        found.map(items::secret_record).transpose()
    }

    async fn find_secret_pair(
        &self,
        first: &SecretHash,
        second: &SecretHash,
    ) -> Result<(Option<SecretRecord>, Option<SecretRecord>), StoreError> {
        let (first_pk, second_pk) = (items::secret_pk(first), items::secret_pk(second));
        // BatchGetItem refuses a list with the same key twice.
        let mut keys = vec![address(first_pk.clone(), items::SECRET_SK)];
        if second_pk != first_pk {
            keys.push(address(second_pk.clone(), items::SECRET_SK));
        }
        let mut found = self.batch_get("find secrets", keys).await?;
        let mut take = |pk: &str| {
            let at = found
                .iter()
                .position(|item| item.get(PARTITION_KEY).and_then(|v| v.as_s().ok()).map(String::as_str) == Some(pk));
            at.map(|i| found.swap_remove(i)).map(items::secret_record).transpose()
        };
        let first_record = take(&first_pk)?;
        let second_record = if second_pk == first_pk { first_record.clone() } else { take(&second_pk)? };
        Ok((first_record, second_record))
    }
}

/// A stream marker already there: this removal was counted before.
#[derive(Debug, Clone, Copy)]
struct AlreadyCounted;

impl CounterKeeper for DynamoStore {
    async fn forget_expired_key(
        &self,
        event_id: &str,
        company: &CompanyId,
        status: KeyStatus,
    ) -> Result<bool, StoreError> {
        let marker = items::stream_marker_item(event_id, Utc::now());
        let (active, inactive) = if status == KeyStatus::Active { (-1, 0) } else { (0, -1) };
        let moves = CounterMoves { active, inactive, ..CounterMoves::default() };
        let mut writes = Writes::new();
        writes.guarded(self.put(marker, Some("attribute_not_exists(pk)")), AlreadyCounted);
        writes.push(self.counters_update(company, moves));
        match self.transact("forget expired key", writes).await? {
            Transaction::Committed => Ok(true),
            Transaction::Refused(_) => Ok(false),
        }
    }
}
