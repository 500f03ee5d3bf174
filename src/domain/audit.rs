//! What an audit record says a write did to a key, computed from the key's typed fields. The
//! names it is recorded under are this module's own (pinned by tests/api/item_layout.rs), not
//! the API answer's: reshaping how a key is shown changes no audit record.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Acl, ApiKey, IpAllowlist, KeyStatus, KeyType, RateLimit};

use super::DomainError;

/// The fields of a key an audit record shows, each `None` when this record does not show it.
/// Fields that change by themselves (`updatedAt`, `lastUsedAt`), never change (`id`,
/// `companyId`, `createdAt`) or hold a secret (the key, its hashes) are not among them.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct KeyChanges<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<Option<&'a str>>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    key_type: Option<KeyType>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_prefix: Option<&'a str>,
    #[serde(rename = "whitelistedIPs", skip_serializing_if = "Option::is_none")]
    whitelisted_ips: Option<Option<&'a IpAllowlist>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    acl: Option<Option<&'a Acl>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_limit: Option<Option<&'a RateLimit>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    quota: Option<Option<RecordedQuota>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<&'a Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<KeyStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_at: Option<Option<DateTime<Utc>>>,
    /// A roll's grace period, as asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    grace_period_seconds: Option<u64>,
    /// Until when a roll's old secret keeps verifying (`null`: it stopped at once).
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_valid_until: Option<Option<DateTime<Utc>>>,
}

/// A quota as a record shows it: its settings, and what was left of it when the record was
/// made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct RecordedQuota {
    max: u64,
    remaining: u64,
    renewal_seconds: Option<u64>,
    renews_at: Option<DateTime<Utc>>,
}

impl<'a> KeyChanges<'a> {
    /// Every recorded field of a key, for the record of its creation.
    pub(super) fn whole(key: &'a ApiKey, now: DateTime<Utc>) -> Self {
        Self {
            user_id: Some(&key.user_id),
            description: Some(key.description.as_deref()),
            key_type: Some(key.key_type),
            key_prefix: Some(&key.key_prefix),
            whitelisted_ips: Some(key.whitelisted_ips.as_ref()),
            acl: Some(key.acl.as_ref()),
            expires_at: Some(key.expires_at),
            rate_limit: Some(key.rate_limit.as_ref()),
            quota: Some(key.quota.map(|q| RecordedQuota {
                max: q.max,
                remaining: q.remaining(key.quota_usage, now),
                renewal_seconds: q.renewal_seconds,
                renews_at: q.renews_at(now),
            })),
            tags: Some(&key.tags),
            metadata: Some(&key.metadata),
            status: Some(key.status),
            deleted_at: Some(key.deleted_at),
            grace_period_seconds: None,
            previous_secret_valid_until: None,
        }
    }

    /// The recorded fields whose value differs between two versions of a key, with their new
    /// values (a quota's remaining uses as of `now`, on both sides).
    pub(super) fn between(before: &'a ApiKey, after: &'a ApiKey, now: DateTime<Utc>) -> Self {
        fn changed<T: PartialEq>(new: Option<T>, old: Option<T>) -> Option<T> {
            new.filter(|new| old.as_ref() != Some(new))
        }
        let (old, new) = (Self::whole(before, now), Self::whole(after, now));
        Self {
            user_id: changed(new.user_id, old.user_id),
            description: changed(new.description, old.description),
            key_type: changed(new.key_type, old.key_type),
            key_prefix: changed(new.key_prefix, old.key_prefix),
            whitelisted_ips: changed(new.whitelisted_ips, old.whitelisted_ips),
            acl: changed(new.acl, old.acl),
            expires_at: changed(new.expires_at, old.expires_at),
            rate_limit: changed(new.rate_limit, old.rate_limit),
            quota: changed(new.quota, old.quota),
            tags: changed(new.tags, old.tags),
            metadata: changed(new.metadata, old.metadata),
            status: changed(new.status, old.status),
            deleted_at: changed(new.deleted_at, old.deleted_at),
            grace_period_seconds: None,
            previous_secret_valid_until: None,
        }
    }

    /// A roll's record also says what grace the old secret got, and until when it lasts.
    pub(super) fn rolled(self, grace_period_seconds: u64, after: &ApiKey) -> Self {
        Self {
            grace_period_seconds: Some(grace_period_seconds),
            previous_secret_valid_until: Some(after.previous_secret.as_ref().map(|p| p.valid_until)),
            ..self
        }
    }

    /// The record's `changes`: field names and values.
    pub(super) fn into_map(self) -> Result<Map<String, Value>, DomainError> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(other) => Err(DomainError::Internal(format!("audit changes are not an object: {other}"))),
            Err(e) => Err(DomainError::Internal(e.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CompanyId, KeyId, PreviousSecret, Quota, QuotaUsage};
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn key() -> ApiKey {
        let (key, _) =
            ApiKey::plain_for_tests(CompanyId::parse("acme", "c").unwrap(), KeyId::parse("k1", "id").unwrap(), at(0));
        ApiKey {
            user_id: "u".into(),
            description: Some("first".into()),
            quota: Some(Quota { max: 10, renewal_seconds: Some(60), started_at: at(0) }),
            tags: vec!["a".into()],
            quota_usage: QuotaUsage { period: 0, used: 3 },
            ..key
        }
    }

    fn map(changes: KeyChanges<'_>) -> Value {
        Value::Object(changes.into_map().unwrap())
    }

    #[test]
    fn a_creation_records_every_field_but_ids_times_and_secrets() {
        let key = key();
        let recorded = map(KeyChanges::whole(&key, at(10)));
        let names: Vec<&str> = recorded.as_object().unwrap().keys().map(String::as_str).collect();
        let expected = [
            "acl",
            "deletedAt",
            "description",
            "expiresAt",
            "keyPrefix",
            "metadata",
            "quota",
            "rateLimit",
            "status",
            "tags",
            "type",
            "userId",
            "whitelistedIPs",
        ];
        assert_eq!(names, expected);
        assert_eq!(recorded["quota"], json!({ "max": 10, "remaining": 7, "renewalSeconds": 60, "renewsAt": at(60) }));
        assert!(!recorded.to_string().contains(key.secret_hash.as_str()), "no hash in a record");
    }

    #[test]
    fn a_change_records_only_what_differs_with_its_new_value() {
        let before = key();
        assert_eq!(map(KeyChanges::between(&before, &before, at(10))), json!({}));
        let mut after = before.clone();
        after.description = None;
        after.updated_at = at(10);
        after.last_used_at = Some(at(10));
        after.version = 2;
        assert_eq!(map(KeyChanges::between(&before, &after, at(10))), json!({ "description": null }));
        after.status = KeyStatus::Inactive;
        after.deleted_at = Some(at(10));
        assert_eq!(
            map(KeyChanges::between(&before, &after, at(10))),
            json!({ "description": null, "status": "inactive", "deletedAt": at(10) })
        );
    }

    #[test]
    fn a_roll_records_its_grace() {
        let before = key();
        let mut after = before.clone();
        after.key_prefix = "sk_other".into();
        after.previous_secret = Some(PreviousSecret {
            hash: before.secret_hash.clone(),
            valid_until: at(70),
            key_prefix: before.key_prefix.clone(),
        });
        let rolled = map(KeyChanges::between(&before, &after, at(10)).rolled(60, &after));
        assert_eq!(
            rolled,
            json!({ "keyPrefix": "sk_other", "gracePeriodSeconds": 60, "previousSecretValidUntil": at(70) })
        );
        after.previous_secret = None;
        let at_once = map(KeyChanges::between(&before, &after, at(10)).rolled(0, &after));
        assert_eq!(at_once["previousSecretValidUntil"], Value::Null);
    }
}
