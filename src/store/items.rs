//! How each kind of item is laid out: its keys and its attributes.
//!
//! | item | pk | sk | also |
//! |---|---|---|---|
//! | key | `KEY#<company>#<id>` | `KEY` | gsi1 `COMPANY#<company>` / created, gsi2 `COMPANY#<company>#STATUS#<status>` / created |
//! | secret lookup | `SECRET#<sha256>` | `SECRET` | a copy of the key, for the one-read verify |
//! | counters | `COMPANY#<company>` | `COUNTERS` | `active`, `inactive` |
//! | rate window | `RATE#<company>#<id>#<window>` | `RATE` | `used`, ttl at window end |
//! | idempotency | `IDEMPOTENCY#<hash>` | `IDEMPOTENCY` | fingerprint, sealed answer, ttl |
//! | stream marker | `STREAM#<eventId>` | `STREAM` | a TTL removal already counted; ttl 2 days |
//! | audit event | `EVENTS#<company>#<id>` | `EVENT#<eventId>` (UUID v7, time-ordered) | the event; kept after the key |

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::model::{ApiKey, AuditEvent, CompanyId, KeyId, KeyStatus, SecretHash};

use super::StoreError;
use super::table::{COMPANY_INDEX, PARTITION_KEY, SORT_KEY, STATUS_INDEX, TTL_ATTRIBUTE};

pub type Item = HashMap<String, AttributeValue>;

pub const KEY_SK: &str = "KEY";
pub const SECRET_SK: &str = "SECRET";
pub const COUNTERS_SK: &str = "COUNTERS";
/// On the counters item: how many of the company's keys are active admin keys (`ApiKey::is_company_admin`).
pub const ACTIVE_ADMINS: &str = "activeAdmins";
pub const RATE_SK: &str = "RATE";
pub const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
/// Attributes verify writes; management writes leave them alone so no count is lost.
pub const USAGE_ATTRIBUTES: [&str; 2] = ["quotaUsage", "lastUsedAt"];
/// The lookup item's own copy of the hash it is addressed by.
pub const LOOKUP_HASH: &str = "lookupHash";

pub fn key_pk(company: &CompanyId, id: &KeyId) -> String {
    format!("KEY#{company}#{id}")
}

pub fn secret_pk(hash: &SecretHash) -> String {
    format!("SECRET#{}", hash.as_str())
}

pub fn counters_pk(company: &CompanyId) -> String {
    format!("COMPANY#{company}")
}

pub fn company_index_pk(company: &CompanyId) -> String {
    format!("COMPANY#{company}")
}

pub fn status_index_pk(company: &CompanyId, status: KeyStatus) -> String {
    format!("COMPANY#{company}#STATUS#{}", status.as_str())
}

/// Sorts by creation, then id; fixed-width time so that text order is time order.
pub fn created_sort(key: &ApiKey) -> String {
    format!("{}#{}", key.created_at.format("%Y-%m-%dT%H:%M:%S%.6fZ"), key.id)
}

pub fn rate_pk(company: &CompanyId, id: &KeyId, window: i64) -> String {
    format!("RATE#{company}#{id}#{window}")
}

pub fn idempotency_pk(lookup: &str) -> String {
    format!("IDEMPOTENCY#{lookup}")
}

pub fn events_pk(company: &CompanyId, id: &KeyId) -> String {
    format!("EVENTS#{company}#{id}")
}

pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub fn timestamp(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

pub fn address(pk: String, sk: &str) -> Item {
    HashMap::from([(PARTITION_KEY.to_owned(), s(pk)), (SORT_KEY.to_owned(), s(sk))])
}

/// Every item the service writes carries the version of its layout, so that a later layout
/// can tell old items apart and read or migrate them; tests/api/item_layout.rs pins the layout.
pub const SCHEMA_VERSION_ATTRIBUTE: &str = "schemaVersion";
pub const SCHEMA_VERSION: i64 = 1;

/// `schemaVersion = 1`, for items put whole.
pub fn schema_version() -> (String, AttributeValue) {
    (SCHEMA_VERSION_ATTRIBUTE.to_owned(), n(SCHEMA_VERSION))
}

fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    item.extend([schema_version()]);
    Ok(item)
}

pub fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The key's attributes without its addresses.
pub fn key_attributes(key: &ApiKey) -> Result<Item, StoreError> {
    to_item(key)
}

/// The index attributes that place a key in the company and status listings.
pub fn index_attributes(key: &ApiKey) -> Item {
    let sort = created_sort(key);
    HashMap::from([
        (COMPANY_INDEX.partition_key.to_owned(), s(company_index_pk(&key.company_id))),
        (COMPANY_INDEX.sort_key.to_owned(), s(sort.clone())),
        (STATUS_INDEX.partition_key.to_owned(), s(status_index_pk(&key.company_id, key.status))),
        (STATUS_INDEX.sort_key.to_owned(), s(sort)),
    ])
}

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

pub fn event_sk(id: &KeyId) -> String {
    format!("EVENT#{id}")
}

/// Audit records have no TTL: who did what may need to outlive the key.
pub fn audit_item(event: &AuditEvent) -> Result<Item, StoreError> {
    let mut item = to_item(event)?;
    item.extend(address(events_pk(&event.company_id, &event.key_id), &event_sk(&event.id)));
    Ok(item)
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
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct RemovedKey {
        sk: String,
        company_id: CompanyId,
        status: KeyStatus,
    }
    let key: RemovedKey = serde_dynamo::from_item(old_image).ok()?;
    (key.sk == KEY_SK).then_some((key.company_id, key.status))
}

pub fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

pub fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}
