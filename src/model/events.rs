//! Lifecycle events: what the service tells other systems (through EventBridge) about its keys
//! and identities, and the rules of their shape. An event's detail names what changed (the
//! company, the key or identity, who acted, the names of the fields that changed) and never a
//! value: no secret, hash or plaintext can reach it. No I/O here.

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{ActorType, AuditAction, AuditEvent, CompanyId, IdentityId, KeyId};

/// The `source` of every event the service publishes.
pub const EVENT_SOURCE: &str = "apikeys";

/// How many days before a key's `expiresAt` its `key.expiring` event comes when
/// `KEY_EXPIRING_DAYS` is not set.
pub const DEFAULT_KEY_EXPIRING_DAYS: u32 = 7;
/// The most days before `expiresAt` a `key.expiring` event may come.
pub const MAX_KEY_EXPIRING_DAYS: u32 = 365;

/// What happened: an event's `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// A key was made or imported.
    KeyCreated,
    /// A key was changed (its status included).
    KeyUpdated,
    /// A key got a new secret.
    KeyRolled,
    /// A key was deleted.
    KeyDeleted,
    /// A key's `expiresAt` is `KEY_EXPIRING_DAYS` away.
    KeyExpiring,
    /// A key's `expiresAt` has come.
    KeyExpired,
    /// A key's secret was found where it should not be. Not published yet: it comes with the
    /// leak reports of a later issue.
    KeyLeaked,
    /// An identity was made.
    IdentityCreated,
    /// An identity's `externalId`, `meta` or `ratelimits` changed.
    IdentityUpdated,
    /// An identity was deleted.
    IdentityDeleted,
}

impl EventType {
    /// Every detail-type the service publishes.
    pub const PUBLISHED: [EventType; 10] = [
        EventType::KeyCreated,
        EventType::KeyUpdated,
        EventType::KeyRolled,
        EventType::KeyDeleted,
        EventType::KeyExpiring,
        EventType::KeyExpired,
        EventType::KeyLeaked,
        EventType::IdentityCreated,
        EventType::IdentityUpdated,
        EventType::IdentityDeleted,
    ];

    /// Its `detail-type`, as consumers' rules match it.
    pub fn detail_type(self) -> &'static str {
        match self {
            EventType::KeyCreated => "key.created",
            EventType::KeyUpdated => "key.updated",
            EventType::KeyRolled => "key.rolled",
            EventType::KeyDeleted => "key.deleted",
            EventType::KeyExpiring => "key.expiring",
            EventType::KeyExpired => "key.expired",
            EventType::KeyLeaked => "key.leaked",
            EventType::IdentityCreated => "identity.created",
            EventType::IdentityUpdated => "identity.updated",
            EventType::IdentityDeleted => "identity.deleted",
        }
    }

    /// The event an audit record's action stands for: an import is a creation, a status change
    /// an update.
    pub fn of_audit(action: AuditAction) -> EventType {
        match action {
            AuditAction::Created | AuditAction::Imported => EventType::KeyCreated,
            AuditAction::Updated | AuditAction::StatusChanged => EventType::KeyUpdated,
            AuditAction::Rolled => EventType::KeyRolled,
            AuditAction::Deleted => EventType::KeyDeleted,
            AuditAction::Leaked => EventType::KeyLeaked,
        }
    }
}

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One of the company's keys.
    Key(KeyId),
    /// One of the company's identities.
    Identity(IdentityId),
}

/// One lifecycle event, as published: its type and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LifecycleEvent {
    /// Its `detail-type`.
    pub event_type: EventType,
    /// Its `detail`.
    pub detail: EventDetail,
}

/// An event's `detail` (camelCase JSON). Names, ids and times only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventDetail {
    /// The same for every delivery of the same event (a redelivered stream record, a retried
    /// schedule): what consumers deduplicate by.
    pub event_id: String,
    /// The company whose key or identity it is.
    pub company_id: CompanyId,
    /// The key, for `key.*` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<KeyId>,
    /// The identity, for `identity.*` events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<IdentityId>,
    /// Who acted: a root key's id or `operator`, as the key's audit trail says; `null` for
    /// identity events (identity writes keep no trail).
    pub actor: Option<String>,
    /// Whether `actor` is a key or the operator; `null` with it.
    pub actor_type: Option<ActorType>,
    /// The names of the fields the change set (as the API writes them), sorted; for a
    /// creation, every field it set.
    pub fields: Vec<String>,
    /// When the change took effect (for `key.expiring` and `key.expired`: when the expiry that
    /// was scheduled was set).
    pub at: DateTime<Utc>,
    /// The key's `expiresAt`, for `key.expiring` and `key.expired`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl LifecycleEvent {
    /// The key event an audit record stands for: its id is the record's (so every delivery of
    /// the record makes the same event), its actor the record's, its fields the names the record
    /// shows changed.
    pub fn of_audit(audit: &AuditEvent) -> Self {
        let mut fields: Vec<String> = audit.changes.keys().cloned().collect();
        fields.sort();
        LifecycleEvent {
            event_type: EventType::of_audit(audit.action),
            detail: EventDetail {
                event_id: audit.id.to_string(),
                company_id: audit.company_id.clone(),
                key_id: Some(audit.key_id.clone()),
                identity_id: None,
                actor: Some(audit.actor.clone()),
                actor_type: Some(audit.actor_type),
                fields,
                at: audit.at,
                expires_at: None,
            },
        }
    }

    /// The `key.expiring` or `key.expired` event of the expiry an audit record set, with an id
    /// of its own made from the record's.
    pub fn expiry(audit: &AuditEvent, event_type: ExpiryEvent, expires_at: DateTime<Utc>) -> Self {
        LifecycleEvent {
            event_type: event_type.event_type(),
            detail: EventDetail {
                event_id: format!("{}-{}", audit.id, event_type.suffix()),
                company_id: audit.company_id.clone(),
                key_id: Some(audit.key_id.clone()),
                identity_id: None,
                actor: Some(audit.actor.clone()),
                actor_type: Some(audit.actor_type),
                fields: vec![EXPIRES_AT.to_owned()],
                at: audit.at,
                expires_at: Some(expires_at),
            },
        }
    }

    /// An identity event, made from the change of its item (`event_id`: the change's own id).
    pub fn identity(
        event_type: EventType,
        event_id: String,
        company: CompanyId,
        identity: IdentityId,
        fields: Vec<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        let mut fields: Vec<String> = fields.into_iter().map(str::to_owned).collect();
        fields.sort();
        LifecycleEvent {
            event_type,
            detail: EventDetail {
                event_id,
                company_id: company,
                key_id: None,
                identity_id: Some(identity),
                actor: None,
                actor_type: None,
                fields,
                at,
                expires_at: None,
            },
        }
    }
}

/// The key field whose value the expiry schedules follow.
pub const EXPIRES_AT: &str = "expiresAt";

/// The two events a key's expiry brings, each from a one-time schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExpiryEvent {
    /// `KEY_EXPIRING_DAYS` before `expiresAt`.
    Expiring,
    /// At `expiresAt`.
    Expired,
}

impl ExpiryEvent {
    /// Both, expiring first.
    pub const BOTH: [ExpiryEvent; 2] = [ExpiryEvent::Expiring, ExpiryEvent::Expired];

    /// Its event type.
    pub fn event_type(self) -> EventType {
        match self {
            ExpiryEvent::Expiring => EventType::KeyExpiring,
            ExpiryEvent::Expired => EventType::KeyExpired,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            ExpiryEvent::Expiring => "expiring",
            ExpiryEvent::Expired => "expired",
        }
    }

    /// When it is due for a key that expires at `expires_at`.
    pub fn due(self, expires_at: DateTime<Utc>, expiring_days: u32) -> DateTime<Utc> {
        match self {
            ExpiryEvent::Expiring => expires_at - TimeDelta::days(i64::from(expiring_days)),
            ExpiryEvent::Expired => expires_at,
        }
    }

    /// The name of this event's schedule for one key: the same for every change of that key's
    /// expiry (so a new expiry replaces the schedule), 64 characters at most of
    /// `[0-9a-zA-Z-_.]` whatever the ids hold (the ids are hashed).
    pub fn schedule_name(self, company: &CompanyId, key: &KeyId) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(company.as_str().as_bytes());
        hash.update([0u8]);
        hash.update(key.as_str().as_bytes());
        let hex = hex::encode(hash.finalize());
        format!("key-{}-{}", self.suffix(), &hex[..40])
    }
}

impl AuditEvent {
    /// What the change did to the key's `expiresAt`: `None` if it left it alone, `Some(None)`
    /// if it took it away (or the key was deleted: nothing of it will expire), `Some(Some(t))`
    /// if it set it to `t`. A value that is not a time is read as no expiry; a new key made
    /// without one changed nothing.
    pub fn expiry_change(&self) -> Option<Option<DateTime<Utc>>> {
        // A leak revoked by the policy deleted the key too.
        let revoked = self.action == AuditAction::Leaked && self.changes.contains_key("deletedAt");
        if self.action == AuditAction::Deleted || revoked {
            return Some(None);
        }
        let value = self.changes.get(EXPIRES_AT)?;
        // A new key without an expiry had no schedule to take away.
        if value.is_null() && matches!(self.action, AuditAction::Created | AuditAction::Imported) {
            return None;
        }
        Some(value.as_str().and_then(|text| DateTime::parse_from_rfc3339(text).ok()).map(|t| t.with_timezone(&Utc)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn audit(action: AuditAction, changes: serde_json::Value) -> AuditEvent {
        AuditEvent::for_tests(action, changes, DateTime::from_timestamp(1_900_000_000, 0).unwrap())
    }

    #[test]
    fn a_leak_is_published_as_key_leaked_and_a_revoking_one_ends_the_keys_schedules() {
        assert_eq!(EventType::of_audit(AuditAction::Leaked), EventType::KeyLeaked);
        let revoked = audit(AuditAction::Leaked, json!({ "status": "inactive", "deletedAt": "2030-01-01T00:00:00Z" }));
        assert_eq!(revoked.expiry_change(), Some(None));
        let notified = audit(AuditAction::Leaked, json!({ "leakUrl": "https://x", "leakSource": "content" }));
        assert_eq!(notified.expiry_change(), None);
    }

    #[test]
    fn detail_types_are_the_contracts() {
        let names: Vec<&str> = EventType::PUBLISHED.iter().map(|t| t.detail_type()).collect();
        assert_eq!(
            names,
            [
                "key.created",
                "key.updated",
                "key.rolled",
                "key.deleted",
                "key.expiring",
                "key.expired",
                "key.leaked",
                "identity.created",
                "identity.updated",
                "identity.deleted"
            ]
        );
        assert_eq!(EventType::of_audit(AuditAction::Imported), EventType::KeyCreated);
        assert_eq!(EventType::of_audit(AuditAction::StatusChanged), EventType::KeyUpdated);
    }

    #[test]
    fn a_key_event_carries_names_not_values() {
        let event = audit(AuditAction::Updated, json!({ "description": "secret-ish text", "tags": ["x"] }));
        let published = LifecycleEvent::of_audit(&event);
        let detail = serde_json::to_value(&published.detail).unwrap();
        assert_eq!(
            detail,
            json!({
                "eventId": "0190a1b2-0000-7000-8000-000000000001", "companyId": "acme", "keyId": "billing",
                "actor": "root-1", "actorType": "key", "fields": ["description", "tags"],
                "at": "2030-03-17T17:46:40Z"
            })
        );
        assert!(!detail.to_string().contains("secret-ish"), "no value reaches a detail");
    }

    #[test]
    fn expiry_changes_and_schedule_names() {
        let at = "2030-06-01T00:00:00Z";
        let set = audit(AuditAction::Created, json!({ "expiresAt": at }));
        assert_eq!(set.expiry_change(), Some(Some(DateTime::parse_from_rfc3339(at).unwrap().to_utc())));
        assert_eq!(audit(AuditAction::Updated, json!({ "expiresAt": null })).expiry_change(), Some(None));
        assert_eq!(audit(AuditAction::Updated, json!({ "tags": [] })).expiry_change(), None);
        assert_eq!(audit(AuditAction::Deleted, json!({})).expiry_change(), Some(None));
        assert_eq!(audit(AuditAction::Created, Value::Object(Map::new())).expiry_change(), None);

        let (company, key) =
            (CompanyId::parse("acme", "c").unwrap(), KeyId::parse("k".repeat(64).as_str(), "id").unwrap());
        for event in ExpiryEvent::BOTH {
            let name = event.schedule_name(&company, &key);
            assert!(name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
            assert_eq!(name, event.schedule_name(&company, &key), "deterministic");
        }
        assert_ne!(
            ExpiryEvent::Expiring.schedule_name(&company, &key),
            ExpiryEvent::Expired.schedule_name(&company, &key)
        );
        let expires = DateTime::parse_from_rfc3339(at).unwrap().to_utc();
        assert_eq!(ExpiryEvent::Expiring.due(expires, 7), expires - TimeDelta::days(7));
        assert_eq!(ExpiryEvent::Expired.due(expires, 7), expires);
    }

    use serde_json::Value;
}
