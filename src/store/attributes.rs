//! The neutral ground of `items` and `records`: the item type, attribute values as the SDK
//! takes them, an item's primary key, and the `schemaVersion` every item carries.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, SecondsFormat, Utc};

use super::table::{PARTITION_KEY, SORT_KEY};

/// An item as the SDK reads and writes it.
pub type Item = HashMap<String, AttributeValue>;

/// A string attribute.
pub fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// A number attribute.
pub fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// A time as stored: RFC 3339 in UTC, as the records write their times.
pub fn timestamp(at: DateTime<Utc>) -> AttributeValue {
    s(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// An item's primary key.
pub fn address(pk: String, sk: &str) -> Item {
    HashMap::from([(PARTITION_KEY.to_owned(), s(pk)), (SORT_KEY.to_owned(), s(sk))])
}

/// Every item the service writes carries the version of its layout, so that a later layout
/// can tell old items apart and read or migrate them; tests/api/contract/item_layout.rs pins the layout.
pub const SCHEMA_VERSION_ATTRIBUTE: &str = "schemaVersion";
/// The layout the records of `records` write.
pub const SCHEMA_VERSION: i64 = 1;

/// `schemaVersion = 1`, for items built attribute by attribute.
pub fn schema_version() -> (String, AttributeValue) {
    (SCHEMA_VERSION_ATTRIBUTE.to_owned(), n(SCHEMA_VERSION))
}

/// A number attribute of an item, if it is one.
pub fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// A string attribute of an item, if it is one.
pub fn string(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}
