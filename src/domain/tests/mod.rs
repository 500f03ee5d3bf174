//! Unit tests of the domain's rules on `store::memory::MemoryStore`: verify's order of checks,
//! PATCH's three states, the management rule. They need no database (`cargo test --lib`); the
//! API and the DynamoDB store are tested against DynamoDB Local in `tests/api`.
//!
//! Every test runs at one fixed instant, `now()`, and moves time only by passing another one.

mod management;
mod patch;
mod root_key;
mod takeover;
mod verify;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::domain::keys::{self, Target};
use crate::domain::{Caller, DomainError};
use crate::model::{
    Acl, ApiKey, CompanyId, IpAllowlist, KeyId, KeyStatus, KeyType, PlaintextKey, Policy, Quota, QuotaUsage, RateLimit,
    UpdateKeyInput,
};
use crate::store::memory::MemoryStore;

/// The instant every test runs at: 2026-01-01T00:00:00Z, on a minute, an hour and a day.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).expect("a valid instant")
}

fn company() -> CompanyId {
    CompanyId::parse("acme", "companyId").expect("a valid company id")
}

fn other_company() -> CompanyId {
    CompanyId::parse("globex", "companyId").expect("a valid company id")
}

fn id(raw: &str) -> KeyId {
    KeyId::parse(raw, "keyId").expect("a valid key id")
}

/// An ACL from its JSON form, through the model's own parser.
fn acl(entries: Value) -> Acl {
    let entries = serde_json::from_value(entries).expect("ACL entries");
    Acl::parse(entries, "acl").expect("a valid ACL")
}

/// One ACL entry granting `permissions` everywhere; `None` for no permission at all.
fn acl_of(permissions: &[&str]) -> Option<Acl> {
    (!permissions.is_empty()).then(|| acl(json!([{ "permissions": permissions }])))
}

/// An active secret key of `company()` created a day ago, with the given permissions and no
/// other setting, and the plaintext that verifies it.
fn secret_key(raw_id: &str, permissions: &[&str]) -> (ApiKey, PlaintextKey) {
    let (key, plaintext) = ApiKey::plain_for_tests(company(), id(raw_id), now() - TimeDelta::days(1));
    let key = ApiKey { policy: Policy { acl: acl_of(permissions), ..key.policy }, ..key };
    (key, plaintext)
}

/// A key stored in `store`, as `secret_key` makes it.
fn stored_key(store: &MemoryStore, raw_id: &str, permissions: &[&str]) -> ApiKey {
    let (key, _) = secret_key(raw_id, permissions);
    store.put_key(&key);
    key
}

/// The caller a stored root key makes once authenticated.
fn caller_of(key: &ApiKey) -> Caller {
    Caller::of_key(Box::new(key.clone()), crate::model::SecretRole::Current)
}

/// The operator CLI: `keys:*` and no key of its own.
fn operator() -> Caller {
    Caller::operator(company())
}

/// A PATCH as the API makes it: the body through the model's parser, then `update_key`. Only
/// whether it succeeded is returned: tests assert on the store, not on the answer's shape.
async fn patch(store: &MemoryStore, caller: &Caller, key: &KeyId, body: Value, force: bool) -> Result<(), DomainError> {
    let input = UpdateKeyInput::parse(body, now())?;
    keys::update_key(store, caller, now(), Target { force, ..Target::key(key) }, &input).await.map(drop)
}

/// The stored key item of `company()` with this id.
fn stored(store: &MemoryStore, key: &KeyId) -> ApiKey {
    store.key(&company(), key).expect("the key is stored")
}

/// One field of a PATCH body: the value a test sends and what it makes of the stored key, and
/// for a nullable field what `null` makes of it (`None`: `null` is refused, the field cannot be
/// empty).
struct PatchField {
    name: &'static str,
    value: Value,
    set: fn(&mut ApiKey),
    null: Option<fn(&mut ApiKey)>,
}

/// The state a PATCH body leaves a field in: absent (unchanged), `null` (cleared) or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldState {
    Absent,
    Null,
    Value,
}

/// Every field of `UpdateKeyInput`, each with a value that differs from `patch_target()`'s.
fn patch_fields() -> Vec<PatchField> {
    vec![
        PatchField {
            name: "description",
            value: json!("after"),
            set: |k| k.labels.description = Some("after".into()),
            null: Some(|k| k.labels.description = None),
        },
        PatchField {
            name: "whitelistedIPs",
            value: json!(["192.0.2.0/24"]),
            set: |k| k.policy.whitelisted_ips = allowlist("192.0.2.0/24"),
            null: Some(|k| k.policy.whitelisted_ips = None),
        },
        PatchField {
            name: "acl",
            value: json!([{ "permissions": ["orders:*"] }]),
            set: |k| k.policy.acl = acl_of(&["orders:*"]),
            null: Some(|k| k.policy.acl = None),
        },
        PatchField {
            name: "expiresAt",
            value: json!("2099-01-01T00:00:00Z"),
            set: |k| k.policy.expires_at = DateTime::from_timestamp(4_070_908_800, 0),
            null: Some(|k| k.policy.expires_at = None),
        },
        PatchField {
            name: "rateLimit",
            value: json!({ "limit": 5, "periodSeconds": 1 }),
            set: |k| k.policy.rate_limit = Some(RateLimit { limit: 5, period_seconds: 1 }),
            null: Some(|k| k.policy.rate_limit = None),
        },
        PatchField {
            // The same renewal: the period and the uses counted in it stay, under a new max.
            name: "quota",
            value: json!({ "max": 3, "renewalSeconds": 3600 }),
            set: |k| k.policy.quota = k.policy.quota.map(|q| Quota { max: 3, ..q }),
            null: Some(|k| (k.policy.quota, k.quota_usage) = (None, QuotaUsage::default())),
        },
        PatchField {
            name: "tags",
            value: json!(["b", "c"]),
            set: |k| k.labels.tags = vec!["b".into(), "c".into()],
            null: None,
        },
        PatchField {
            name: "metadata",
            value: json!({ "plan": "silver" }),
            set: |k| k.labels.metadata = json!({ "plan": "silver" }).as_object().cloned().unwrap_or_default(),
            null: None,
        },
        PatchField { name: "status", value: json!("inactive"), set: |k| k.status = KeyStatus::Inactive, null: None },
    ]
}

/// An allowlist of one rule, through the model's parser.
fn allowlist(rule: &str) -> Option<IpAllowlist> {
    IpAllowlist::parse(&[rule.to_owned()], "whitelistedIPs").expect("a valid allowlist")
}

/// A key with every field of `UpdateKeyInput` set, used 7 times in its quota's period and an
/// hour ago, so a PATCH that changes or clears any field shows in the stored key.
fn patch_target(raw_id: &str) -> ApiKey {
    let (mut key, _) = secret_key(raw_id, &["orders:read"]);
    key.labels.description = Some("before".into());
    key.policy.whitelisted_ips = allowlist("10.0.0.0/8");
    key.policy.expires_at = Some(now() + TimeDelta::days(365));
    key.policy.rate_limit = Some(RateLimit { limit: 10, period_seconds: 60 });
    key.policy.quota =
        Some(Quota { max: 100, renewal_seconds: Some(3600), started_at: now() - TimeDelta::minutes(10) });
    key.quota_usage = QuotaUsage { period: 0, used: 7 };
    key.labels.tags = vec!["a".into()];
    key.labels.metadata = json!({ "plan": "gold" }).as_object().cloned().unwrap_or_default();
    key.last_used_at = Some(now() - TimeDelta::hours(1));
    key
}

/// A PATCH body with each field in its state, and the key it should leave from `before`.
fn patch_body(fields: &[PatchField], states: &[FieldState], before: &ApiKey) -> (Value, ApiKey) {
    let mut body = serde_json::Map::new();
    let mut expected = before.clone();
    for (field, state) in fields.iter().zip(states) {
        match state {
            FieldState::Absent => {}
            FieldState::Null => {
                body.insert(field.name.into(), Value::Null);
                (field.null.expect("only nullable fields are sent as null"))(&mut expected);
            }
            FieldState::Value => {
                body.insert(field.name.into(), field.value.clone());
                (field.set)(&mut expected);
            }
        }
    }
    if !body.is_empty() {
        expected.version += 1;
        expected.updated_at = now();
    }
    (Value::Object(body), expected)
}

/// The states a field can be sent in: `null` only where the field is nullable.
fn states_of(field: &PatchField) -> &'static [FieldState] {
    match field.null {
        Some(_) => &[FieldState::Absent, FieldState::Null, FieldState::Value],
        None => &[FieldState::Absent, FieldState::Value],
    }
}
