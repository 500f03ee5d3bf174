//! How each kind of item is addressed (its keys, index keys and TTL), and the items built from
//! the records of `records`, which alone name the attributes. Every item carries `schemaVersion`.
//!
//! | item | pk | sk | also |
//! |---|---|---|---|
//! | key | `KEY#<company>#<id>` | `KEY` | gsi1 `COMPANY#<company>` / created, gsi2 `COMPANY#<company>#STATUS#<status>` / created |
//! | secret lookup | `SECRET#<sha256>` | `SECRET` | a copy of the key, for the one-read verify |
//! | counters | `COMPANY#<company>` | `COUNTERS` | `active`, `inactive`, `activeAdmins` |
//! | rate window | `RATE#<company>#<id>#<window>` | `RATE` | `used`, ttl at window end |
//! | idempotency | `IDEMPOTENCY#<hash>` | `IDEMPOTENCY` | fingerprint, sealed answer, ttl |
//! | stream marker | `STREAM#<eventId>` | `STREAM` | a TTL removal already counted; ttl 2 days |
//! | audit event | `EVENTS#<company>#<id>` | `EVENT#<eventId>` (UUID v7, time-ordered) | the event; kept after the key |
//! | key listing entry | `LISTING#<company>` and `LISTING#<company>#STATUS#<status>` | `LISTED#<created>#<id>` | nothing else (an offset is counted over these); the key's ttl |
//! | event listing entry | `EVENTLISTING#<company>#<id>` | `LISTED#<eventId>` | nothing else; kept like the event |
//! | identity | `IDENTITY#<company>#<id>` | `IDENTITY` | gsi1 `IDENTITIES#<company>` / created; `activeKeys`, `inactiveKeys`; `deletedAt` on a tombstone |
//! | externalId | `IDENTITYEXTERNAL#<company>#<sha256 of externalId>` | `IDENTITYEXTERNAL` | `identityId`: the one identity that has it |
//! | identity listing entry | `IDENTITYLISTING#<company>` | `LISTED#<created>#<id>` | nothing else (an offset is counted over these) |
//! | key prefix claim | `KEYPREFIX#<prefix>` | `KEYPREFIX` | `companyId`: the one company whose keys start `<prefix>_` |
//! | leak report marker | `LEAKREPORT#leak-report-<sha256 of token, url, source>` | `LEAKREPORT` | a secret scanning report handled; ttl 30 days |
//! | company audit record | `COMPANYEVENTS#<company>` | `EVENT#<eventId>` (UUID v7) | a change of the company's settings: actor, time, the fields changed |
//! | usage counts | `USAGE#<company>#KEY#<id>` or `USAGE#<company>#IDENTITY#<id>` | `HOUR#<start>` or `DAY#<start>` | a count per outcome code (`VALID`…); ttl `UsageRetentionDays` after the bucket |
//! | usage batch marker | `USAGEBATCH#<batch>#<part>` | `USAGEBATCH` | a part of a batch of verifications already counted; ttl 16 days after its last bucket |
//!
//! A key that names an identity and is not deleted also carries gsi3
//! `IDENTITYKEYS#<company>#<identity>#STATUS#<status>` / created.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use crate::model::company::CompanyEvent;
use crate::model::usage::{Granularity, UsageOwner};
use crate::model::{ApiKey, AuditEvent, CompanyId, Identity, IdentityId, KeyId, KeyStatus, SecretHash};

pub use super::attributes::{
    Item, SCHEMA_VERSION, SCHEMA_VERSION_ATTRIBUTE, address, n, number, s, schema_version, string, timestamp,
};
use super::records::{
    self, AuditRecord, CompanyEventRecord, CompanySettingsRecord, IdempotencyItem, IdentityRecord, KeyRecord,
    ListingEntry, RemovedKeyRecord, StoredStatus, StreamMarker,
};
use super::table::{COMPANY_INDEX, IDENTITY_INDEX, SORT_KEY, STATUS_INDEX, TTL_ATTRIBUTE};
use super::{IdempotencyRecord, LimitOwner, SecretRecord, SettingsChange, StoreError};

/// Sort key of a key item.
pub const KEY_SK: &str = "KEY";
/// Sort key of a secret's lookup item.
pub const SECRET_SK: &str = "SECRET";
/// Sort key of a company's counters item.
pub const COUNTERS_SK: &str = "COUNTERS";
/// Sort key of a rate window item.
pub const RATE_SK: &str = "RATE";
/// Sort key of an idempotency record.
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
/// Sort key of a stream marker.
pub const STREAM_SK: &str = "STREAM";
/// Sort key of an identity item.
pub const IDENTITY_SK: &str = "IDENTITY";
/// Sort key of an `externalId`'s uniqueness item.
pub const EXTERNAL_ID_SK: &str = "IDENTITYEXTERNAL";
/// Attributes verify writes; management writes leave them alone so no count is lost.
pub const USAGE_ATTRIBUTES: [&str; 2] = [KeyRecord::QUOTA_USAGE, KeyRecord::LAST_USED_AT];
/// The lookup item's own copy of the hash it is addressed by.
pub const LOOKUP_HASH: &str = "lookupHash";

/// Partition key of a key item.
pub fn key_pk(company: &CompanyId, id: &KeyId) -> String {
    format!("KEY#{company}#{id}")
}

/// Partition key of a secret's lookup item: the hash alone, so verify needs nothing else.
pub fn secret_pk(hash: &SecretHash) -> String {
    format!("SECRET#{}", hash.as_str())
}

/// Partition key of a company's counters item.
pub fn counters_pk(company: &CompanyId) -> String {
    format!("COMPANY#{company}")
}

/// Partition key of a company's keys in the company index.
pub fn company_index_pk(company: &CompanyId) -> String {
    format!("COMPANY#{company}")
}

/// Partition key of a company's keys of one status in the status index.
pub fn status_index_pk(company: &CompanyId, status: KeyStatus) -> String {
    format!("COMPANY#{company}#STATUS#{}", StoredStatus::from(status).as_str())
}

/// Sorts by creation, then id; fixed-width time so that text order is time order.
pub fn created_sort(key: &ApiKey) -> String {
    creation_order(key.created_at, &key.id)
}

/// `<created>#<id>`, the order of every list: fixed-width time, so text order is time order.
fn creation_order(created_at: DateTime<Utc>, id: &impl std::fmt::Display) -> String {
    format!("{}#{id}", created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

/// Partition key of a key's rate window number `window`.
pub fn rate_pk(company: &CompanyId, id: &KeyId, window: i64) -> String {
    format!("RATE#{company}#{id}#{window}")
}

/// Partition key of a named limit's window: the key's own limit, or its identity's, which
/// every key of the identity counts in.
pub fn named_limit_pk(company: &CompanyId, key: &KeyId, owner: LimitOwner<'_>, name: &str, window: i64) -> String {
    match owner {
        LimitOwner::Key => format!("LIMIT#{company}#KEY#{key}#{name}#{window}"),
        LimitOwner::Identity(identity) => format!("LIMIT#{company}#IDENTITY#{identity}#{name}#{window}"),
    }
}

/// Partition key of an idempotency record, by the hash of company and header.
pub fn idempotency_pk(lookup: &str) -> String {
    format!("IDEMPOTENCY#{lookup}")
}

/// Partition key of a key's audit events.
pub fn events_pk(company: &CompanyId, id: &KeyId) -> String {
    format!("EVENTS#{company}#{id}")
}

/// Partition key of a stream marker.
pub fn stream_pk(event_id: &str) -> String {
    format!("STREAM#{event_id}")
}

/// What the sort key of every audit record (a key's or a company's) starts with.
const EVENT_SK_PREFIX: &str = "EVENT#";

/// Sort key of an audit event: its time-ordered id.
pub fn event_sk(id: &KeyId) -> String {
    format!("{EVENT_SK_PREFIX}{id}")
}

/// The claim of a key prefix by one company.
pub fn key_prefix_claim(prefix: &str, company: &CompanyId) -> Item {
    let mut claim = address(format!("KEYPREFIX#{prefix}"), "KEYPREFIX");
    claim.insert(CompanySettingsRecord::COMPANY.to_owned(), s(company.to_string()));
    claim.extend([schema_version()]);
    claim
}

/// The address of a handled leak report's marker (named by the hash of its token, url and
/// source: `leak-report-<sha256>`).
pub fn leak_report_key(report: &str) -> Item {
    address(format!("LEAKREPORT#{report}"), "LEAKREPORT")
}

/// A handled leak report's marker, kept 30 days.
pub fn leak_report_item(report: &str, now: DateTime<Utc>) -> Item {
    let mut marker = StreamMarker::attributes(now + chrono::TimeDelta::days(30) - StreamMarker::KEPT);
    marker.extend(leak_report_key(report));
    marker
}

/// Partition key of a company's audit records: its alone, so its trail is read from it only.
pub fn company_events_pk(company: &CompanyId) -> String {
    format!("COMPANYEVENTS#{company}")
}

/// A company's audit record of a settings change: who, when, the fields it changed and the
/// settings' version after it; its sort key a new time-ordered id.
pub fn company_event_item(change: &SettingsChange<'_>) -> Result<Item, StoreError> {
    let record = CompanyEventRecord::of_change(change.actor, change.now, change.changes, change.after.version);
    let mut event = to_item(record)?;
    event.extend(address(company_events_pk(change.company), &format!("{EVENT_SK_PREFIX}{}", uuid::Uuid::now_v7())));
    Ok(event)
}

/// The change a `COMPANYEVENTS#` item holds, its id read from its sort key.
pub fn company_event_from_item(item: Item) -> Result<CompanyEvent, StoreError> {
    let id = string(&item, SORT_KEY)
        .and_then(|sk| sk.strip_prefix(EVENT_SK_PREFIX).map(str::to_owned))
        .and_then(|id| KeyId::try_from(id).ok())
        .ok_or_else(|| StoreError::Corrupt("a company's audit record without an event id".into()))?;
    from_item::<CompanyEventRecord<'static>>(item)?.into_model(id)
}

/// How long a usage batch marker outlives its batch's last bucket.
const USAGE_MARKER_KEPT: chrono::TimeDelta = chrono::TimeDelta::days(16);

/// Partition of an owner's usage counts.
pub fn usage_pk(company: &CompanyId, owner: &UsageOwner) -> String {
    match owner {
        UsageOwner::Key(id) => format!("USAGE#{company}#KEY#{id}"),
        UsageOwner::Identity(id) => format!("USAGE#{company}#IDENTITY#{id}"),
    }
}

/// Sort key of a usage bucket: its size, then its start as fixed-width RFC 3339 (so the sort
/// order is time order).
pub fn usage_sk(granularity: Granularity, start: DateTime<Utc>) -> String {
    format!("{}{}", usage_sk_prefix(granularity), start.format("%Y-%m-%dT%H:%M:%SZ"))
}

/// What every sort key of buckets of that size starts with.
pub fn usage_sk_prefix(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => "HOUR#",
        Granularity::Day => "DAY#",
    }
}

/// The start of the bucket a usage sort key names, if it names one.
pub fn usage_bucket_start(sk: &str, granularity: Granularity) -> Option<DateTime<Utc>> {
    let start = sk.strip_prefix(usage_sk_prefix(granularity))?;
    DateTime::parse_from_rfc3339(start).ok().map(|at| at.with_timezone(&Utc))
}

/// The marker of one part of a batch of verifications counted, kept 16 days after the batch's
/// last bucket: longer than Lambda retries it (6 hours) and than `StreamFailureQueue` keeps a
/// failed batch for an operator to send again (14 days).
pub fn usage_batch_marker(batch: &str, part: usize, last_bucket: DateTime<Utc>) -> Item {
    let mut marker = StreamMarker::attributes(last_bucket + USAGE_MARKER_KEPT - StreamMarker::KEPT);
    marker.extend(address(format!("USAGEBATCH#{batch}#{part}"), "USAGEBATCH"));
    marker
}

fn to_item(record: impl serde::Serialize) -> Result<Item, StoreError> {
    serde_dynamo::to_item(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The key's attributes without its addresses.
pub fn key_attributes(key: &ApiKey) -> Result<Item, StoreError> {
    to_item(KeyRecord::from_model(key))
}

/// The key a key item (or any item holding a key's attributes) holds: decoded straight into
/// its record, then moved into the model once.
pub fn key_from_item(item: Item) -> Result<ApiKey, StoreError> {
    from_item::<KeyRecord<'static>>(item)?.into_model()
}

/// The index attributes that place a key in the company and status listings, and, if it names
/// an identity and is not deleted, in that identity's listing of its status.
pub fn index_attributes(key: &ApiKey) -> Item {
    let sort = created_sort(key);
    let mut attributes = HashMap::from([
        (COMPANY_INDEX.partition_key.to_owned(), s(company_index_pk(&key.company_id))),
        (COMPANY_INDEX.sort_key.to_owned(), s(sort.clone())),
        (STATUS_INDEX.partition_key.to_owned(), s(status_index_pk(&key.company_id, key.status))),
        (STATUS_INDEX.sort_key.to_owned(), s(sort.clone())),
    ]);
    if let Some((identity, status)) = key.counted_by() {
        attributes
            .insert(IDENTITY_INDEX.partition_key.to_owned(), s(identity_keys_pk(&key.company_id, identity, status)));
        attributes.insert(IDENTITY_INDEX.sort_key.to_owned(), s(sort));
    }
    attributes
}

/// Partition (in the identity index) of an identity's keys of one status.
pub fn identity_keys_pk(company: &CompanyId, identity: &IdentityId, status: KeyStatus) -> String {
    format!("IDENTITYKEYS#{company}#{identity}#STATUS#{}", StoredStatus::from(status).as_str())
}

/// Partition key of an identity item.
pub fn identity_pk(company: &CompanyId, id: &IdentityId) -> String {
    format!("IDENTITY#{company}#{id}")
}

/// An identity item's address.
pub fn identity_address(company: &CompanyId, id: &IdentityId) -> Item {
    address(identity_pk(company, id), IDENTITY_SK)
}

/// The address of the item that holds an `externalId` for one identity of the company: filed
/// under the text's SHA-256, so any text of 255 characters makes a short key.
pub fn external_id_address(company: &CompanyId, external_id: &str) -> Item {
    use sha2::{Digest, Sha256};
    let hash = hex::encode(Sha256::digest(external_id.as_bytes()));
    address(format!("IDENTITYEXTERNAL#{company}#{hash}"), EXTERNAL_ID_SK)
}

/// The uniqueness item of an identity's `externalId`: it names the identity that has it.
pub fn external_id_item(identity: &Identity) -> Item {
    let mut item = external_id_address(&identity.company_id, &identity.external_id);
    item.insert(IdentityRecord::IDENTITY_ID.to_owned(), s(identity.id.as_str()));
    item.extend([super::attributes::schema_version()]);
    item
}

/// The identity an `externalId` item names, if it is one.
pub fn identity_of_external(item: &Item) -> Option<IdentityId> {
    string(item, IdentityRecord::IDENTITY_ID).and_then(|id| IdentityId::try_from(id).ok())
}

/// Partition (in the company index) of a company's identities.
pub fn identities_index_pk(company: &CompanyId) -> String {
    format!("IDENTITIES#{company}")
}

/// Sorts identities by creation, then id, as `created_sort` sorts keys.
pub fn identity_sort(identity: &Identity) -> String {
    creation_order(identity.created_at, &identity.id)
}

/// An identity's attributes without its addresses, counts or tombstone: what its own writes set.
pub fn identity_attributes(identity: &Identity) -> Result<Item, StoreError> {
    to_item(IdentityRecord::from_model(identity))
}

/// An identity's item: its attributes and its place in the company's identity list.
pub fn identity_item(identity: &Identity) -> Result<Item, StoreError> {
    let mut item = identity_attributes(identity)?;
    item.extend(identity_address(&identity.company_id, &identity.id));
    item.insert(COMPANY_INDEX.partition_key.to_owned(), s(identities_index_pk(&identity.company_id)));
    item.insert(COMPANY_INDEX.sort_key.to_owned(), s(identity_sort(identity)));
    Ok(item)
}

/// The identity an item holds, with its keys' counts; `None` for a tombstone (deleted).
pub fn identity_from_item(item: Item) -> Result<Option<Identity>, StoreError> {
    if item.contains_key(IdentityRecord::DELETED_AT) {
        return Ok(None);
    }
    let keys = crate::model::IdentityKeys {
        active: number(&item, IdentityRecord::ACTIVE_KEYS).unwrap_or(0).max(0) as u64,
        inactive: number(&item, IdentityRecord::INACTIVE_KEYS).unwrap_or(0).max(0) as u64,
    };
    let identity = from_item::<IdentityRecord<'static>>(item)?.into_model()?;
    Ok(Some(Identity { keys, ..identity }))
}

/// A live identity as a listed item: a tombstone is never in the list, so one there is corrupt.
pub fn listed_identity_from_item(item: Item) -> Result<Identity, StoreError> {
    identity_from_item(item)?.ok_or_else(|| StoreError::Corrupt("a deleted identity in the identity list".into()))
}

/// Partition of a company's identity listing entries.
pub fn identity_listing_pk(company: &CompanyId) -> String {
    format!("IDENTITYLISTING#{company}")
}

/// An identity's listing entry's sort key: its index sort key, so entries run in the list's order.
pub fn identity_listing_sk(identity: &Identity) -> String {
    format!("{LISTED_PREFIX}{}", identity_sort(identity))
}

/// An identity's entry in its company's list, what an offset is counted over.
pub fn identity_listing_entry(identity: &Identity) -> Item {
    ListingEntry::item(identity_listing_pk(&identity.company_id), &identity_listing_sk(identity), None)
}

/// The position in the company index of an identity: where a page continues after it.
pub fn identity_position(identity: &Identity) -> Item {
    let mut position = identity_address(&identity.company_id, &identity.id);
    position.insert(COMPANY_INDEX.partition_key.to_owned(), s(identities_index_pk(&identity.company_id)));
    position.insert(COMPANY_INDEX.sort_key.to_owned(), s(identity_sort(identity)));
    position
}

/// The position in the company index of the identity a listing entry stands for.
pub fn identity_position_of_entry(entry: &Item, company: &CompanyId) -> Result<Item, StoreError> {
    let sort = listed(entry, "identity")?;
    let Some((_, id)) = sort.split_once('#') else {
        return Err(StoreError::Corrupt("identity listing entry without an id".into()));
    };
    let id = IdentityId::try_from(id.to_owned()).map_err(|e| StoreError::Corrupt(format!("identity entry: {e}")))?;
    let mut position = identity_address(company, &id);
    position.insert(COMPANY_INDEX.partition_key.to_owned(), s(identities_index_pk(company)));
    position.insert(COMPANY_INDEX.sort_key.to_owned(), s(sort));
    Ok(position)
}

/// A key's item: its attributes, its listing index attributes, and a TTL once deleted.
pub fn key_item(key: &ApiKey, expires: Option<DateTime<Utc>>) -> Result<Item, StoreError> {
    let mut item = key_attributes(key)?;
    item.extend(index_attributes(key));
    item.extend(address(key_pk(&key.company_id, &key.id), KEY_SK));
    if let Some(at) = expires {
        item.insert(TTL_ATTRIBUTE.to_owned(), n(at.timestamp()));
    }
    Ok(item)
}

/// A secret's lookup item: the key's attributes under the hash's address, no index attributes.
pub fn lookup_item(key: &ApiKey, hash: &SecretHash, expires: Option<DateTime<Utc>>) -> Result<Item, StoreError> {
    let mut item = key_attributes(key)?;
    item.extend(address(secret_pk(hash), SECRET_SK));
    item.insert(LOOKUP_HASH.to_owned(), s(hash.as_str()));
    if let Some(at) = expires {
        item.insert(TTL_ATTRIBUTE.to_owned(), n(at.timestamp()));
    }
    Ok(item)
}

/// A lookup item read back: the hash it is filed under and the copy of its key.
pub fn secret_record(mut item: Item) -> Result<SecretRecord, StoreError> {
    let hash = match item.remove(LOOKUP_HASH) {
        Some(AttributeValue::S(hash)) => hash,
        _ => return Err(StoreError::Corrupt("lookup item without hash".into())),
    };
    let key = key_from_item(item)?;
    let hash = records::stored_hash(hash)?;
    Ok(SecretRecord { hash, key })
}

/// Audit records have no TTL: who did what may need to outlive the key.
pub fn audit_item(event: &AuditEvent) -> Result<Item, StoreError> {
    let mut item = to_item(AuditRecord::from_model(event))?;
    item.extend(address(events_pk(&event.company_id, &event.key_id), &event_sk(&event.id)));
    Ok(item)
}

/// The audit event an `EVENTS#` item holds.
pub fn event_from_item(item: Item) -> Result<AuditEvent, StoreError> {
    from_item::<AuditRecord<'static>>(item)?.into_model()
}

/// The sort key prefix of every listing entry.
pub const LISTED_PREFIX: &str = "LISTED#";

/// Partition of a company's key listing entries: all its keys, or those of one status.
pub fn key_listing_pk(company: &CompanyId, status: Option<KeyStatus>) -> String {
    match status {
        None => format!("LISTING#{company}"),
        Some(status) => format!("LISTING#{company}#STATUS#{}", StoredStatus::from(status).as_str()),
    }
}

/// A key's listing entry's sort key: its index sort key, so entries run in the lists' order.
pub fn key_listing_sk(key: &ApiKey) -> String {
    format!("{LISTED_PREFIX}{}", created_sort(key))
}

/// A key's entry in one of its company's lists (`status`: that status's; `None`: all keys).
pub fn key_listing_entry(key: &ApiKey, status: Option<KeyStatus>, expires: Option<DateTime<Utc>>) -> Item {
    ListingEntry::item(key_listing_pk(&key.company_id, status), &key_listing_sk(key), expires)
}

/// A key's two listing entries, in the list of all its company's keys and in its status's.
pub fn key_listing_entries(key: &ApiKey, expires: Option<DateTime<Utc>>) -> [Item; 2] {
    [key_listing_entry(key, None, expires), key_listing_entry(key, Some(key.status), expires)]
}

/// The position in the company or status index (`index`, partition `partition`) of the key a
/// listing entry stands for: where a page continues once the offset is counted to that entry.
pub fn key_position_of_entry(
    entry: &Item,
    company: &CompanyId,
    index: super::table::Index,
    partition: &str,
) -> Result<Item, StoreError> {
    let sort = listed(entry, "key")?;
    let Some((_, id)) = sort.split_once('#') else {
        return Err(StoreError::Corrupt("key listing entry without a key id".into()));
    };
    let id = KeyId::try_from(id.to_owned()).map_err(|e| StoreError::Corrupt(format!("key listing entry: {e}")))?;
    let mut position = address(key_pk(company, &id), KEY_SK);
    position.insert(index.partition_key.to_owned(), s(partition));
    position.insert(index.sort_key.to_owned(), s(sort));
    Ok(position)
}

/// Partition of a key's audit event listing entries.
pub fn event_listing_pk(company: &CompanyId, key: &KeyId) -> String {
    format!("EVENTLISTING#{company}#{key}")
}

/// An event listing entry's sort key: the event's id, so entries run in the trail's order.
pub fn event_listing_sk(event: &KeyId) -> String {
    format!("{LISTED_PREFIX}{event}")
}

/// An audit event's listing entry; like the event, it has no TTL.
pub fn event_listing_entry(event: &AuditEvent) -> Item {
    ListingEntry::item(event_listing_pk(&event.company_id, &event.key_id), &event_listing_sk(&event.id), None)
}

/// The table position of the event a listing entry stands for: where a page of the trail
/// continues once the offset is counted to that entry.
pub fn event_position_of_entry(entry: &Item, company: &CompanyId, key: &KeyId) -> Result<Item, StoreError> {
    let id = listed(entry, "event")?;
    let id = KeyId::try_from(id).map_err(|e| StoreError::Corrupt(format!("event listing entry: {e}")))?;
    Ok(address(events_pk(company, key), &event_sk(&id)))
}

/// What a listing entry's sort key holds after `LISTED#`: the listed item's own order.
fn listed(entry: &Item, what: &str) -> Result<String, StoreError> {
    let sort = string(entry, SORT_KEY).and_then(|sk| sk.strip_prefix(LISTED_PREFIX).map(str::to_owned));
    sort.ok_or_else(|| StoreError::Corrupt(format!("{what} listing entry without a sort key")))
}

/// The table and index keys of a key's item: what a query page continues after.
pub fn page_position(key: &ApiKey, index: super::table::Index, partition: &str) -> Item {
    let mut position = address(key_pk(&key.company_id, &key.id), KEY_SK);
    position.insert(index.partition_key.to_owned(), s(partition));
    position.insert(index.sort_key.to_owned(), s(created_sort(key)));
    position
}

/// What a key item removed by TTL leaves in the stream's old image: whose it was and which
/// counter held it. `None` for any other item (lookups, audit, counters…) or an unreadable one.
pub fn removed_key(old_image: serde_dynamo::Item) -> Option<(CompanyId, KeyStatus)> {
    let removed: RemovedKeyRecord = serde_dynamo::from_item(old_image).ok()?;
    removed.into_model(KEY_SK)
}

/// An idempotency record's item: its attributes under the address of its lookup hash.
pub fn idempotency_item(record: &IdempotencyRecord) -> Item {
    let mut item = IdempotencyItem::from_model(record);
    item.extend(address(idempotency_pk(&record.lookup), IDEMPOTENCY_SK));
    item
}

/// The stream marker of stream event `event_id`, written at `now`.
pub fn stream_marker_item(event_id: &str, now: DateTime<Utc>) -> Item {
    let mut marker = StreamMarker::attributes(now);
    marker.extend(address(stream_pk(event_id), STREAM_SK));
    marker
}

/// What a stream image holds, for the lifecycle events: an audit record, an identity (`None`:
/// a deleted one's tombstone), or an item they do not follow (an absent image too).
#[derive(Debug)]
pub enum StreamImage {
    /// An `EVENTS#` item: one change of a key.
    Audit(AuditEvent),
    /// An identity item.
    Identity(Option<Identity>),
    /// Anything else.
    Other,
}

/// Reads a stream record's image by the item's address; `Corrupt` for an audit or identity
/// item the model refuses.
pub fn stream_image(image: serde_dynamo::Item) -> Result<StreamImage, StoreError> {
    let item: Item = image.into();
    let (Some(pk), Some(sk)) = (string(&item, super::table::PARTITION_KEY), string(&item, SORT_KEY)) else {
        return Ok(StreamImage::Other);
    };
    if pk.starts_with("EVENTS#") && sk.starts_with("EVENT#") {
        return event_from_item(item).map(StreamImage::Audit);
    }
    if pk.starts_with("IDENTITY#") && sk == IDENTITY_SK {
        return identity_from_item(item).map(StreamImage::Identity);
    }
    Ok(StreamImage::Other)
}
