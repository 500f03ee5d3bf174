//! What a lifecycle event is made from: a key's audit record (the trail already says what was
//! done, by whom, to which fields) or the change of an identity; and what a key's expiry asks of
//! its schedules. The stream function (`entry::events`) reads the records and carries out what
//! this decides.

use chrono::{DateTime, Utc};

use crate::model::events::{EventType, ExpiryEvent, LifecycleEvent};
use crate::model::{AuditEvent, Identity};

/// A one-time schedule that publishes `event` at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirySchedule {
    /// Its name, the same for every expiry of the key (`ExpiryEvent::schedule_name`).
    pub name: String,
    /// When it fires.
    pub at: DateTime<Utc>,
    /// What it publishes, its detail fixed now.
    pub event: LifecycleEvent,
}

/// What a change does to one of a key's expiry schedules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleChange {
    /// Create the schedule, or replace the one of that name.
    Put(ExpirySchedule),
    /// Delete the schedule of that name, if there is one.
    Remove(String),
}

/// What one change of the table asks for: events to publish now, and schedule changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPlan {
    /// Published now, in this order.
    pub events: Vec<LifecycleEvent>,
    /// Made before the events are published.
    pub schedules: Vec<ScheduleChange>,
}

/// Whether an expiry event due at `at` is published at once rather than scheduled: Scheduler
/// fires to the minute, and its call may come a while after `now`, so what is due within two
/// minutes is.
pub fn is_due(at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    at <= now + chrono::TimeDelta::minutes(2)
}

/// The events and schedule changes of a key's audit record, at `now`: the record's own event;
/// and if it set, changed or took away the key's `expiresAt` (a deletion takes it away), its
/// `key.expiring` (`expiring_days` before it) and `key.expired` schedules put or removed. An
/// expiry event already due is published now instead of scheduled (and a schedule of an
/// earlier expiry removed).
pub fn of_audit(audit: &AuditEvent, now: DateTime<Utc>, expiring_days: u32) -> EventPlan {
    let mut plan = EventPlan { events: vec![LifecycleEvent::of_audit(audit)], schedules: Vec::new() };
    let Some(expiry) = audit.expiry_change() else { return plan };
    for kind in ExpiryEvent::BOTH {
        let name = kind.schedule_name(&audit.company_id, &audit.key_id);
        match expiry {
            None => plan.schedules.push(ScheduleChange::Remove(name)),
            Some(expires_at) => {
                let event = LifecycleEvent::expiry(audit, kind, expires_at);
                let at = kind.due(expires_at, expiring_days);
                if is_due(at, now) {
                    plan.events.push(event);
                    plan.schedules.push(ScheduleChange::Remove(name));
                } else {
                    plan.schedules.push(ScheduleChange::Put(ExpirySchedule { name, at, event }));
                }
            }
        }
    }
    plan
}

/// The event of an identity's change, if it is one: `before` and `after` are the identity as
/// its item held it before and after (`None`: no item, or a deleted one's tombstone). A change
/// of its keys' counts alone (which every write of its keys makes) is none. `event_id` is the
/// change's own id (the same on every delivery); `at` when it was made, for a deletion.
pub fn of_identity(
    event_id: &str,
    before: Option<&Identity>,
    after: Option<&Identity>,
    at: DateTime<Utc>,
) -> Option<LifecycleEvent> {
    let (event_type, identity, fields, at) = match (before, after) {
        (None, Some(new)) => {
            let mut fields = vec!["externalId"];
            if !new.parts.meta.is_empty() {
                fields.push("meta");
            }
            if !new.parts.ratelimits.is_empty() {
                fields.push("ratelimits");
            }
            (EventType::IdentityCreated, new, fields, new.created_at)
        }
        (Some(old), Some(new)) => {
            let fields: Vec<&str> = [
                ("externalId", old.external_id != new.external_id),
                ("meta", old.parts.meta != new.parts.meta),
                ("ratelimits", old.parts.ratelimits != new.parts.ratelimits),
            ]
            .into_iter()
            .filter_map(|(name, changed)| changed.then_some(name))
            .collect();
            if fields.is_empty() {
                return None;
            }
            (EventType::IdentityUpdated, new, fields, new.updated_at)
        }
        (Some(old), None) => (EventType::IdentityDeleted, old, Vec::new(), at),
        (None, None) => return None,
    };
    Some(LifecycleEvent::identity(
        event_type,
        event_id.to_owned(),
        identity.company_id.clone(),
        identity.id.clone(),
        fields,
        at,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AuditAction, CompanyId, IdentityId, IdentityKeys, IdentityParts};
    use chrono::TimeDelta;
    use serde_json::json;

    fn at(days: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_900_000_000, 0).unwrap() + TimeDelta::days(days)
    }

    fn audit(action: AuditAction, changes: serde_json::Value) -> AuditEvent {
        AuditEvent::for_tests(action, changes, at(0))
    }

    #[test]
    fn an_expiry_is_scheduled_or_published_when_already_due() {
        let created = audit(AuditAction::Created, json!({ "expiresAt": at(30), "userId": "u" }));
        let plan = of_audit(&created, at(0), 7);
        assert_eq!(plan.events.len(), 1);
        let times: Vec<DateTime<Utc>> = plan
            .schedules
            .iter()
            .map(|s| match s {
                ScheduleChange::Put(schedule) => schedule.at,
                ScheduleChange::Remove(name) => panic!("removed {name}"),
            })
            .collect();
        assert_eq!(times, [at(23), at(30)]);

        // Five days left: key.expiring now, key.expired scheduled.
        let soon = audit(AuditAction::Updated, json!({ "expiresAt": at(5) }));
        let plan = of_audit(&soon, at(0), 7);
        let types: Vec<&str> = plan.events.iter().map(|e| e.event_type.detail_type()).collect();
        assert_eq!(types, ["key.updated", "key.expiring"]);
        assert!(matches!(&plan.schedules[0], ScheduleChange::Remove(_)));
        assert!(matches!(&plan.schedules[1], ScheduleChange::Put(s) if s.at == at(5)));

        for gone in [audit(AuditAction::Updated, json!({ "expiresAt": null })), audit(AuditAction::Deleted, json!({}))]
        {
            let plan = of_audit(&gone, at(0), 7);
            assert!(plan.schedules.iter().all(|s| matches!(s, ScheduleChange::Remove(_))) && plan.schedules.len() == 2);
        }
        assert!(of_audit(&audit(AuditAction::Rolled, json!({ "keyPrefix": "sk_1" })), at(0), 7).schedules.is_empty());
    }

    fn identity(meta: serde_json::Value, active_keys: u64) -> Identity {
        Identity {
            id: IdentityId::try_from(format!("id_{}", "a".repeat(32))).unwrap(),
            company_id: CompanyId::parse("acme", "c").unwrap(),
            external_id: "cust".into(),
            parts: IdentityParts { meta: meta.as_object().unwrap().clone(), ratelimits: Vec::new() },
            created_at: at(0),
            updated_at: at(1),
            version: 1,
            keys: IdentityKeys { active: active_keys, inactive: 0 },
        }
    }

    #[test]
    fn identity_changes_and_what_is_no_change() {
        let plain = identity(json!({}), 0);
        let created = of_identity("e1", None, Some(&plain), at(2)).unwrap();
        assert_eq!(
            (created.event_type, created.detail.fields.clone()),
            (EventType::IdentityCreated, vec!["externalId".to_owned()])
        );
        let counted = identity(json!({}), 3);
        assert_eq!(of_identity("e2", Some(&plain), Some(&counted), at(2)), None, "a key's write is no identity change");
        let changed = identity(json!({ "plan": "gold" }), 0);
        let updated = of_identity("e3", Some(&plain), Some(&changed), at(2)).unwrap();
        assert_eq!(
            (updated.event_type, updated.detail.fields.clone()),
            (EventType::IdentityUpdated, vec!["meta".to_owned()])
        );
        let deleted = of_identity("e4", Some(&changed), None, at(2)).unwrap();
        assert_eq!(
            (deleted.event_type, deleted.detail.at, deleted.detail.event_id.as_str()),
            (EventType::IdentityDeleted, at(2), "e4")
        );
        assert_eq!(of_identity("e5", None, None, at(2)), None);
    }
}
