//! What an audit record says a write did to a key: the fields of the key's view, with their
//! values as of the write, but those no record shows. A field of any part of the key is
//! recorded under the name its view gives it (tests/api/contract/item_layout.rs pins the names), so a
//! new field is recorded with nothing written here.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::model::ApiKey;

use super::DomainError;

/// Fields the view shows and no record does: they change by themselves (`updatedAt`,
/// `lastUsedAt`), never change (`id`, `companyId`, `createdAt`) or hold a secret (`key`).
const UNRECORDED: &[&str] = &["id", "companyId", "key", "createdAt", "updatedAt", "lastUsedAt"];

/// The fields an audit record shows, by name, with their values.
#[derive(Debug)]
pub(super) struct KeyChanges(Result<Map<String, Value>, String>);

impl KeyChanges {
    /// Every recorded field of a key, for the record of its creation.
    pub(super) fn whole(key: &ApiKey, now: DateTime<Utc>) -> Self {
        Self(recorded(key, now))
    }

    /// The recorded fields whose value differs between two versions of a key, with their new
    /// values (a quota's remaining uses as of `now`, on both sides).
    pub(super) fn between(before: &ApiKey, after: &ApiKey, now: DateTime<Utc>) -> Self {
        Self(recorded(before, now).and_then(|old| {
            let mut new = recorded(after, now)?;
            new.retain(|name, value| old.get(name) != Some(value));
            Ok(new)
        }))
    }

    /// A roll's record also says what grace the old secret got, and until when it lasts
    /// (`null`: it stopped at once).
    pub(super) fn rolled(self, grace_period_seconds: u64, after: &ApiKey) -> Self {
        let valid_until = serde_json::to_value(after.previous_secret.as_ref().map(|p| p.valid_until));
        Self(self.0.and_then(|mut changes| {
            changes.insert("gracePeriodSeconds".into(), grace_period_seconds.into());
            changes.insert("previousSecretValidUntil".into(), valid_until.map_err(|e| e.to_string())?);
            Ok(changes)
        }))
    }

    /// A leak's record also says where the secret was found (`leakUrl`) and by what
    /// (`leakSource`), as the scanner reported them.
    pub(super) fn leaked(self, url: Option<&str>, source: Option<&str>) -> Self {
        Self(self.0.map(|mut changes| {
            changes.insert("leakUrl".into(), url.into());
            changes.insert("leakSource".into(), source.into());
            changes
        }))
    }

    /// The record's `changes`: field names and values.
    pub(super) fn into_map(self) -> Result<Map<String, Value>, DomainError> {
        self.0.map_err(DomainError::Internal)
    }
}

/// The key's view at `now` as a JSON object, without the fields no record shows.
fn recorded(key: &ApiKey, now: DateTime<Utc>) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(key.view(now)) {
        Ok(Value::Object(mut fields)) => {
            fields.retain(|name, _| !UNRECORDED.contains(&name.as_str()));
            Ok(fields)
        }
        Ok(other) => Err(format!("a key's view is not an object: {other}")),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CompanyId, KeyId, KeyStatus, Labels, Policy, PreviousSecret, Quota, QuotaUsage};
    use serde_json::json;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn key() -> ApiKey {
        let (key, _) =
            ApiKey::plain_for_tests(CompanyId::parse("acme", "c").unwrap(), KeyId::parse("k1", "id").unwrap(), at(0));
        ApiKey {
            user_id: "u".into(),
            policy: Policy {
                quota: Some(Quota { max: 10, renewal_seconds: Some(60), started_at: at(0) }),
                ..Policy::default()
            },
            labels: labels(),
            quota_usage: QuotaUsage { period: 0, used: 3 },
            ..key
        }
    }

    fn labels() -> Labels {
        Labels { description: Some("first".into()), tags: vec!["a".into()], ..Labels::default() }
    }

    fn map(changes: KeyChanges) -> Value {
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
            "identityId",
            "keyPrefix",
            "metadata",
            "quota",
            "rateLimit",
            "ratelimits",
            "status",
            "tags",
            "type",
            "userId",
            "whitelistedIPs",
        ];
        assert_eq!(names, expected);
        for label in Labels::FIELDS {
            assert!(recorded.get(label).is_some(), "{label} recorded");
        }
        assert_eq!(recorded["quota"], json!({ "max": 10, "remaining": 7, "renewalSeconds": 60, "renewsAt": at(60) }));
        assert!(!recorded.to_string().contains(key.secret_hash.as_str()), "no hash in a record");
    }

    #[test]
    fn a_change_records_only_what_differs_with_its_new_value() {
        let before = key();
        assert_eq!(map(KeyChanges::between(&before, &before, at(10))), json!({}));
        let mut after = before.clone();
        after.labels.description = None;
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
