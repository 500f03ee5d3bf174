//! PATCH's three states: a field left out is unchanged, `null` clears it, a value sets it, for
//! every field of `UpdateKeyInput`, asserted on the stored key.

use serde_json::json;

use super::*;
use crate::model::{FieldProblem, Quota};

/// Every combination of states over every field (5,832 bodies, the empty one included): the
/// stored key afterwards is the key before with exactly the named fields changed, a new version
/// and `updatedAt`, and one audit event; an empty body writes nothing. What verify counts on
/// the key (`quotaUsage`, `lastUsedAt`) is kept unless the quota is cleared.
#[tokio::test]
async fn each_field_is_kept_when_absent_cleared_by_null_and_set_by_a_value() {
    let fields = patch_fields();
    let before = patch_target("target");
    let mut states = vec![FieldState::Absent; fields.len()];
    loop {
        let store = MemoryStore::new();
        store.put_key(&before);
        let (body, expected) = patch_body(&fields, &states, &before);
        patch(&store, &operator(), &before.id, body.clone(), false).await.unwrap_or_else(|e| panic!("{body}: {e}"));
        assert_eq!(stored(&store, &before.id), expected, "{body}");
        let events = store.snapshot().audit.len();
        assert_eq!(events, usize::from(expected.version > before.version), "{body}: one audit event per change");
        if !next_combination(&fields, &mut states) {
            break;
        }
    }
}

/// Counts `states` on by one in the mixed radix of each field's states; `false` once every
/// combination was given.
fn next_combination(fields: &[PatchField], states: &mut [FieldState]) -> bool {
    for (field, state) in fields.iter().zip(states.iter_mut()) {
        let choices = states_of(field);
        let at = choices.iter().position(|s| s == state).unwrap_or(0);
        if at + 1 < choices.len() {
            *state = choices[at + 1];
            return true;
        }
        *state = choices[0];
    }
    false
}

/// `tags`, `metadata` and `status` cannot be empty: `null` for them is a 400 naming the field,
/// and nothing is written, whatever else the body asks.
#[tokio::test]
async fn null_is_refused_where_a_field_cannot_be_cleared() {
    let before = patch_target("target");
    for name in ["tags", "metadata", "status"] {
        let store = MemoryStore::new();
        store.put_key(&before);
        let snapshot = store.snapshot();
        let body = json!({ name: null, "description": "after" });
        let refused = patch(&store, &operator(), &before.id, body, false).await;
        match refused {
            Err(DomainError::Invalid(e)) => assert_eq!((e.field.as_str(), e.problem), (name, FieldProblem::Invalid)),
            other => panic!("{name}: null answered {other:?}"),
        }
        assert_eq!(store.snapshot(), snapshot, "{name}: nothing written");
    }
}

/// `[]` for `whitelistedIPs` or `acl` clears the field as `null` does: no list is "allow nobody".
#[tokio::test]
async fn an_empty_list_clears_as_null_does() {
    for (name, clear) in
        [("whitelistedIPs", (|k| k.policy.whitelisted_ips = None) as fn(&mut ApiKey)), ("acl", |k| k.policy.acl = None)]
    {
        let before = patch_target("target");
        let store = MemoryStore::new();
        store.put_key(&before);
        patch(&store, &operator(), &before.id, json!({ name: [] }), false).await.expect("the PATCH succeeds");
        let mut expected = ApiKey { version: 2, updated_at: now(), ..before };
        clear(&mut expected);
        assert_eq!(stored(&store, &expected.id), expected, "{name}");
    }
}

/// A quota set with another renewal starts a new period from now with the full quota; one set
/// with the same renewal keeps the uses counted so far under its new max (docs/api.md, "Choices").
#[tokio::test]
async fn a_new_quota_renewal_starts_afresh_and_the_same_one_keeps_the_count() {
    let before = patch_target("target");
    let cases = [
        (json!({ "max": 5, "renewalSeconds": 60 }), Some(60), now(), QuotaUsage::default()),
        (json!({ "max": 5 }), None, now(), QuotaUsage::default()),
        (
            json!({ "max": 5, "renewalSeconds": 3600 }),
            Some(3600),
            before.policy.quota.expect("a quota").started_at,
            before.quota_usage,
        ),
    ];
    for (quota, renewal_seconds, started_at, quota_usage) in cases {
        let store = MemoryStore::new();
        store.put_key(&before);
        patch(&store, &operator(), &before.id, json!({ "quota": quota }), false).await.expect("the PATCH succeeds");
        let expected = ApiKey {
            policy: Policy { quota: Some(Quota { max: 5, renewal_seconds, started_at }), ..before.policy.clone() },
            quota_usage,
            version: 2,
            updated_at: now(),
            ..before.clone()
        };
        assert_eq!(stored(&store, &before.id), expected, "{quota}");
    }
}
