//! The stored shape of each item, owned by the store: every attribute is named here, never by
//! the model's serde attributes, and each record maps to and from its model type field by field.
//! A renamed or added model field is then a compile error in this file, not a silent change of
//! what the table holds (tests/api/contract/item_layout.rs pins the result). The exception: a key's
//! parts made with `key_part!` (its `Policy` and `Labels`) are stored in their own serde form,
//! the one definition their view and audit record share; the round-trip test and the snapshot
//! hold them to what the table holds. Reading an ACL back checks each permission's grammar but
//! not the caps `Acl::parse` checked when it was made, so a key whose ACL exceeds a cap lowered
//! since stays readable.
//!
//! Records borrow from the model when written (`from_model`: no copy of the key's strings) and
//! own what they read (`into_model`: each stored value moves into the model once, no clone).

use std::borrow::Cow;

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use serde::de::IntoDeserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::company::{
    CompanyAction, CompanyEvent, CompanySettings, CompanySettingsChange, KeyPrefix, LeakPolicy,
};
use crate::model::{
    ActingSecret, ActorType, ApiKey, AuditAction, AuditEvent, CompanyId, Identity, IdentityId, IdentityKeys,
    IdentityParts, KeyId, KeyStatus, KeyType, Labels, PlaintextKey, Policy, PreviousSecret, QuotaUsage, SecretHash,
    SecretRole,
};

use super::attributes::{self, Item, SCHEMA_VERSION, address, n, s};
use super::table::TTL_ATTRIBUTE;
use super::{IdempotencyRecord, StoreError};

/// The layout of an item without `schemaVersion`.
fn schema_version() -> i64 {
    SCHEMA_VERSION
}

fn corrupt(what: &str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {problem}"))
}

/// A model enum as stored: each variant's stored text, and the mapping both ways, so a variant
/// added to or renamed in the model is a compile error here (a match left short), never a value
/// written under a name the store did not choose.
macro_rules! stored_enum {
    ($(#[$doc:meta])* $name:ident for $model:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                #[serde(rename = $text)]
                $variant,
            )+
        }

        impl $name {
            /// The stored text, for the keys built from it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text,)+
                }
            }
        }

        impl From<$model> for $name {
            fn from(value: $model) -> Self {
                match value {
                    $($model::$variant => Self::$variant,)+
                }
            }
        }

        impl From<$name> for $model {
            fn from(value: $name) -> Self {
                match value {
                    $($name::$variant => Self::$variant,)+
                }
            }
        }
    };
}

/// A model value that is a string, from its stored string. `SecretHash` and `PlaintextKey` offer
/// no constructor from a string but their transparent serde form (`PlaintextKey::parse` would
/// check again, on verify's path, what was checked when the key was made), so the string alone
/// is given to it: the stored shape stays the store's (a string attribute), whatever the
/// model's serde would write, and a model whose serde stopped taking a string fails the
/// round-trip test below rather than changing an item.
fn from_stored_string<T: serde::de::DeserializeOwned>(what: &str, text: String) -> Result<T, StoreError> {
    let text: serde::de::value::StringDeserializer<serde::de::value::Error> = text.into_deserializer();
    T::deserialize(text).map_err(|e| corrupt(what, e))
}

/// A secret's hash or a publishable key as stored: plain text to serde, redacted in `Debug` as the
/// model's `SecretHash` and `PlaintextKey` are, so no record printed for a bug report or at
/// TRACE shows one.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
pub struct Redacted<'a>(Cow<'a, str>);

impl std::fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Redacted(…)")
    }
}

/// A stored hash as the model's type.
pub(super) fn stored_hash(hash: String) -> Result<SecretHash, StoreError> {
    from_stored_string("secret hash", hash)
}

/// A key's attributes in its key item and in each of its `SECRET#` lookup items (the one-read
/// verify reads the copy). Addresses, index attributes and TTL are added by `items`.
#[derive(Debug, Serialize, Deserialize)]
pub struct KeyRecord<'a> {
    #[serde(rename = "id")]
    id: Cow<'a, str>,
    #[serde(rename = "companyId")]
    company_id: Cow<'a, str>,
    #[serde(rename = "userId")]
    user_id: Cow<'a, str>,
    #[serde(rename = "type")]
    key_type: StoredKeyType,
    #[serde(rename = "keyPrefix")]
    key_prefix: Cow<'a, str>,
    #[serde(rename = "secretHash")]
    secret_hash: Redacted<'a>,
    #[serde(rename = "publishableKey")]
    publishable_key: Option<Redacted<'a>>,
    #[serde(rename = "previousSecret")]
    previous_secret: Option<PreviousSecretRecord<'a>>,
    /// Each policy field under its own name (`Policy`'s serde): the part's one definition.
    #[serde(flatten)]
    policy: Cow<'a, Policy>,
    /// Each label under its own name (`Labels`' serde): the part's one definition.
    #[serde(flatten)]
    labels: Cow<'a, Labels>,
    #[serde(rename = "status")]
    status: StoredStatus,
    #[serde(rename = "createdAt")]
    created_at: DateTime<Utc>,
    #[serde(rename = "updatedAt")]
    updated_at: DateTime<Utc>,
    #[serde(rename = "deletedAt")]
    deleted_at: Option<DateTime<Utc>>,
    #[serde(rename = "lastUsedAt")]
    last_used_at: Option<DateTime<Utc>>,
    /// Absent: nothing used yet.
    #[serde(rename = "quotaUsage", default)]
    quota_usage: QuotaUsageRecord,
    #[serde(rename = "version")]
    version: u64,
    #[serde(rename = "schemaVersion", default = "schema_version")]
    schema_version: i64,
}

impl<'a> KeyRecord<'a> {
    /// `lastUsedAt`: written by verify's own updates, not only with the whole record.
    pub const LAST_USED_AT: &'static str = "lastUsedAt";
    /// `quotaUsage` (a map of `QuotaUsageRecord::PERIOD` and `QuotaUsageRecord::USED`),
    /// counted by verify's own updates.
    pub const QUOTA_USAGE: &'static str = "quotaUsage";
    /// `version`: the management writes' optimistic lock, and the count of a key's audit events.
    pub const VERSION: &'static str = "version";
    /// `companyId`: also read alone from a TTL removal's old image (`RemovedKeyRecord`).
    pub const COMPANY_ID: &'static str = "companyId";
    /// `status`: also read alone from a TTL removal's old image (`RemovedKeyRecord`).
    pub const STATUS: &'static str = "status";

    /// The stored attributes of `key`, borrowing its strings.
    pub fn from_model(key: &'a ApiKey) -> Self {
        Self {
            id: Cow::Borrowed(key.id.as_str()),
            company_id: Cow::Borrowed(key.company_id.as_str()),
            user_id: Cow::Borrowed(&key.user_id),
            key_type: key.key_type.into(),
            key_prefix: Cow::Borrowed(&key.key_prefix),
            secret_hash: Redacted(Cow::Borrowed(key.secret_hash.as_str())),
            publishable_key: key.publishable_key.as_ref().map(|k| Redacted(Cow::Borrowed(k.expose()))),
            previous_secret: key.previous_secret.as_ref().map(PreviousSecretRecord::from_model),
            policy: Cow::Borrowed(&key.policy),
            labels: Cow::Borrowed(&key.labels),
            status: key.status.into(),
            created_at: key.created_at,
            updated_at: key.updated_at,
            deleted_at: key.deleted_at,
            last_used_at: key.last_used_at,
            quota_usage: QuotaUsageRecord::from_model(key.quota_usage),
            version: key.version,
            schema_version: SCHEMA_VERSION,
        }
    }

    /// The key these attributes hold, each value parsed by the model's own rules; a value the
    /// model refuses makes the item `Corrupt`.
    pub fn into_model(self) -> Result<ApiKey, StoreError> {
        Ok(ApiKey {
            id: KeyId::try_from(self.id.into_owned()).map_err(|e| corrupt("key id", e))?,
            company_id: CompanyId::try_from(self.company_id.into_owned()).map_err(|e| corrupt("company id", e))?,
            user_id: self.user_id.into_owned(),
            key_type: self.key_type.into(),
            key_prefix: self.key_prefix.into_owned(),
            secret_hash: stored_hash(self.secret_hash.0.into_owned())?,
            publishable_key: self
                .publishable_key
                .map(|key| from_stored_string::<PlaintextKey>("publishable key", key.0.into_owned()))
                .transpose()?,
            previous_secret: self.previous_secret.map(PreviousSecretRecord::into_model).transpose()?,
            policy: self.policy.into_owned(),
            labels: self.labels.into_owned(),
            status: self.status.into(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            last_used_at: self.last_used_at,
            quota_usage: self.quota_usage.into_model(),
            version: self.version,
        })
    }
}

/// An identity's attributes in its item, and what an idempotent identity write seals for a
/// retry. Addresses, the list's index attributes, the keys' counts (moved only by key writes,
/// never written whole) and a tombstone's `deletedAt` are added by `items` and the adapter.
#[derive(Debug, Serialize, Deserialize)]
pub struct IdentityRecord<'a> {
    #[serde(rename = "id")]
    id: Cow<'a, str>,
    #[serde(rename = "companyId")]
    company_id: Cow<'a, str>,
    #[serde(rename = "externalId")]
    external_id: Cow<'a, str>,
    /// `meta` and `ratelimits` under their own names (`IdentityParts`' serde).
    #[serde(flatten)]
    parts: Cow<'a, IdentityParts>,
    #[serde(rename = "createdAt")]
    created_at: DateTime<Utc>,
    #[serde(rename = "updatedAt")]
    updated_at: DateTime<Utc>,
    #[serde(rename = "version")]
    version: u64,
    #[serde(rename = "schemaVersion", default = "schema_version")]
    schema_version: i64,
}

impl<'a> IdentityRecord<'a> {
    /// `version`: the identity writes' optimistic lock.
    pub const VERSION: &'static str = "version";
    /// `activeKeys`: the active keys that name it, moved by `ADD` in the keys' own writes.
    pub const ACTIVE_KEYS: &'static str = "activeKeys";
    /// `inactiveKeys`: the inactive (not deleted) keys that name it, moved likewise.
    pub const INACTIVE_KEYS: &'static str = "inactiveKeys";
    /// `deletedAt`: set on a deleted identity that inactive keys still name (a tombstone).
    pub const DELETED_AT: &'static str = "deletedAt";
    /// `identityId`: what an `externalId`'s uniqueness item holds.
    pub const IDENTITY_ID: &'static str = "identityId";

    /// The stored attributes of `identity`, borrowing its strings.
    pub fn from_model(identity: &'a Identity) -> Self {
        Self {
            id: Cow::Borrowed(identity.id.as_str()),
            company_id: Cow::Borrowed(identity.company_id.as_str()),
            external_id: Cow::Borrowed(&identity.external_id),
            parts: Cow::Borrowed(&identity.parts),
            created_at: identity.created_at,
            updated_at: identity.updated_at,
            version: identity.version,
            schema_version: SCHEMA_VERSION,
        }
    }

    /// The identity these attributes hold, with no key counted (the item's counts are read
    /// apart); a value the model refuses makes it `Corrupt`.
    pub fn into_model(self) -> Result<Identity, StoreError> {
        Ok(Identity {
            id: IdentityId::try_from(self.id.into_owned()).map_err(|e| corrupt("identity id", e))?,
            company_id: CompanyId::try_from(self.company_id.into_owned()).map_err(|e| corrupt("company id", e))?,
            external_id: self.external_id.into_owned(),
            parts: self.parts.into_owned(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            keys: IdentityKeys::default(),
        })
    }
}

/// A written key as an idempotent write seals it for a retry: the key as its item stores it,
/// the plaintext the write handed out (if any), and when the answer was made. So a sealed
/// answer is held to the store's names, as the key item is, never to the model's serde.
#[derive(Debug, Serialize, Deserialize)]
pub struct SealedKeyRecord<'a> {
    #[serde(rename = "key")]
    key: KeyRecord<'a>,
    #[serde(rename = "plaintext")]
    plaintext: Option<Redacted<'a>>,
    #[serde(rename = "asOf")]
    as_of: DateTime<Utc>,
}

impl<'a> SealedKeyRecord<'a> {
    /// The sealed form of an answer, borrowing from it.
    pub fn from_model(key: &'a ApiKey, plaintext: Option<&'a PlaintextKey>, as_of: DateTime<Utc>) -> Self {
        Self {
            key: KeyRecord::from_model(key),
            plaintext: plaintext.map(|p| Redacted(Cow::Borrowed(p.expose()))),
            as_of,
        }
    }

    /// The answer it holds; `Corrupt` if the model refuses a value.
    pub fn into_model(self) -> Result<(ApiKey, Option<PlaintextKey>, DateTime<Utc>), StoreError> {
        let plaintext = self.plaintext.map(|p| from_stored_string("plaintext", p.0.into_owned())).transpose()?;
        Ok((self.key.into_model()?, plaintext, self.as_of))
    }
}

/// What a TTL removal's old image must hold for the stream to take a key out of the counters:
/// the key item's sort key, company and status, named as `KeyRecord` names them. Only these are
/// read, so an image holding just them (or a key item of an older layout) still counts.
#[derive(Debug, Deserialize)]
pub struct RemovedKeyRecord {
    #[serde(rename = "sk")]
    sk: String,
    #[serde(rename = "companyId")]
    company_id: String,
    #[serde(rename = "status")]
    status: StoredStatus,
}

impl RemovedKeyRecord {
    /// Whose key it was and which counter held it; `None` for any item but a key item.
    pub fn into_model(self, key_sk: &str) -> Option<(CompanyId, KeyStatus)> {
        if self.sk != key_sk {
            return None;
        }
        Some((CompanyId::try_from(self.company_id).ok()?, self.status.into()))
    }
}

stored_enum!(
    /// `KeyType` as stored.
    StoredKeyType for KeyType { Secret = "secret", Publishable = "publishable" }
);

stored_enum!(
    /// `KeyStatus` as stored (also in the status index's partition key, `items::status_index_pk`).
    StoredStatus for KeyStatus { Active = "active", Inactive = "inactive" }
);

/// `PreviousSecret` as stored: the hash a roll replaced and until when it still verifies.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreviousSecretRecord<'a> {
    #[serde(rename = "hash")]
    hash: Redacted<'a>,
    #[serde(rename = "validUntil")]
    valid_until: DateTime<Utc>,
    /// Empty for a secret replaced before prefixes were kept with it.
    #[serde(rename = "keyPrefix", default)]
    key_prefix: Cow<'a, str>,
}

impl<'a> PreviousSecretRecord<'a> {
    fn from_model(previous: &'a PreviousSecret) -> Self {
        Self {
            hash: Redacted(Cow::Borrowed(previous.hash.as_str())),
            valid_until: previous.valid_until,
            key_prefix: Cow::Borrowed(&previous.key_prefix),
        }
    }

    fn into_model(self) -> Result<PreviousSecret, StoreError> {
        Ok(PreviousSecret {
            hash: stored_hash(self.hash.0.into_owned())?,
            valid_until: self.valid_until,
            key_prefix: self.key_prefix.into_owned(),
        })
    }
}

/// `QuotaUsage` as stored, under `KeyRecord::QUOTA_USAGE`; verify updates its two attributes in place.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct QuotaUsageRecord {
    #[serde(rename = "period")]
    period: i64,
    #[serde(rename = "used")]
    used: u64,
}

impl QuotaUsageRecord {
    /// The quota period the uses were counted in.
    pub const PERIOD: &'static str = "period";
    /// The uses counted in that period.
    pub const USED: &'static str = "used";

    fn from_model(usage: QuotaUsage) -> Self {
        Self { period: usage.period, used: usage.used }
    }

    fn into_model(self) -> QuotaUsage {
        QuotaUsage { period: self.period, used: self.used }
    }
}

/// An `AuditEvent` as stored in its `EVENTS#` item. Audit items have no TTL.
#[derive(Debug, Serialize, Deserialize)]
pub struct AuditRecord<'a> {
    #[serde(rename = "id")]
    id: Cow<'a, str>,
    #[serde(rename = "companyId")]
    company_id: Cow<'a, str>,
    #[serde(rename = "keyId")]
    key_id: Cow<'a, str>,
    #[serde(rename = "action")]
    action: StoredAction,
    #[serde(rename = "actor")]
    actor: Cow<'a, str>,
    /// Missing from events recorded before it was kept: read from `actor` then.
    #[serde(rename = "actorType", default)]
    actor_type: Option<StoredActorType>,
    #[serde(rename = "actorSecret", default)]
    actor_secret: Option<ActingSecretRecord<'a>>,
    #[serde(rename = "at")]
    at: DateTime<Utc>,
    #[serde(rename = "changes")]
    changes: Cow<'a, Map<String, Value>>,
    #[serde(rename = "schemaVersion", default = "schema_version")]
    schema_version: i64,
}

impl<'a> AuditRecord<'a> {
    /// The stored attributes of `event`, borrowing its strings.
    pub fn from_model(event: &'a AuditEvent) -> Self {
        Self {
            id: Cow::Borrowed(event.id.as_str()),
            company_id: Cow::Borrowed(event.company_id.as_str()),
            key_id: Cow::Borrowed(event.key_id.as_str()),
            action: event.action.into(),
            actor: Cow::Borrowed(&event.actor),
            actor_type: Some(event.actor_type.into()),
            actor_secret: event.actor_secret.as_ref().map(|acting| ActingSecretRecord {
                secret: acting.secret.into(),
                key_prefix: Cow::Borrowed(&acting.key_prefix),
            }),
            at: event.at,
            changes: Cow::Borrowed(&event.changes),
            schema_version: SCHEMA_VERSION,
        }
    }

    /// The event these attributes hold.
    pub fn into_model(self) -> Result<AuditEvent, StoreError> {
        Ok(AuditEvent {
            id: KeyId::try_from(self.id.into_owned()).map_err(|e| corrupt("event id", e))?,
            company_id: CompanyId::try_from(self.company_id.into_owned()).map_err(|e| corrupt("company id", e))?,
            key_id: KeyId::try_from(self.key_id.into_owned()).map_err(|e| corrupt("key id", e))?,
            action: self.action.into(),
            actor_type: self.actor_type.map_or_else(
                || if self.actor == OPERATOR_ACTOR { ActorType::Operator } else { ActorType::Key },
                Into::into,
            ),
            actor: self.actor.into_owned(),
            actor_secret: self.actor_secret.map(|acting| ActingSecret {
                secret: acting.secret.into(),
                key_prefix: acting.key_prefix.into_owned(),
            }),
            at: self.at,
            changes: self.changes.into_owned(),
        })
    }
}

/// The actor the operator's events name.
const OPERATOR_ACTOR: &str = "operator";

/// `ActingSecret` as stored: which secret of the actor's key acted, and its visible prefix.
#[derive(Debug, Serialize, Deserialize)]
pub struct ActingSecretRecord<'a> {
    #[serde(rename = "secret")]
    secret: StoredSecretRole,
    #[serde(rename = "keyPrefix")]
    key_prefix: Cow<'a, str>,
}

stored_enum!(
    /// `ActorType` as stored.
    StoredActorType for ActorType { Key = "key", Operator = "operator" }
);

stored_enum!(
    /// `SecretRole` as stored.
    StoredSecretRole for SecretRole { Current = "current", Previous = "previous" }
);

stored_enum!(
    /// `AuditAction` as stored.
    StoredAction for AuditAction {
        Created = "created",
        Imported = "imported",
        Updated = "updated",
        StatusChanged = "status_changed",
        Rolled = "rolled",
        Deleted = "deleted",
        Leaked = "leaked",
    }
);

/// A company's counters item (`COMPANY#<company>` / `COUNTERS`): never put whole, only moved by
/// `ADD` updates in the same transaction as the write that moves a key between them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CountersRecord {
    /// The company's active keys (deleted keys are inactive).
    pub active: u64,
    /// The company's inactive keys, deleted ones included until TTL removes them.
    pub inactive: u64,
}

impl CountersRecord {
    /// Attribute of the active keys' count.
    pub const ACTIVE: &'static str = "active";
    /// Attribute of the inactive keys' count.
    pub const INACTIVE: &'static str = "inactive";
    /// Attribute of the count of the company's identities (tombstones not counted).
    pub const IDENTITIES: &'static str = "identities";
    /// Attribute of the count of keys the company ever imported (`POST /keys/import`); absent
    /// until its first import.
    pub const IMPORTED: &'static str = "imported";
    /// Attribute of the count of active admin keys (`ApiKey::is_company_admin`), so the last one
    /// is not taken away by accident.
    pub const ACTIVE_ADMINS: &'static str = "activeAdmins";

    /// The counts of a counters item; a company with no item yet has none of either.
    pub fn from_item(item: Option<&Item>) -> Self {
        Self { active: Self::count(item, Self::ACTIVE), inactive: Self::count(item, Self::INACTIVE) }
    }

    /// One count of a counters item; 0 if the item or the count is missing.
    pub fn count(item: Option<&Item>, name: &str) -> u64 {
        item.and_then(|i| attributes::number(i, name)).unwrap_or(0).max(0) as u64
    }
}

/// A company's settings, kept on its counters item (one read for both), set by
/// `PATCH /company` only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompanySettingsRecord;

impl CompanySettingsRecord {
    /// Attribute of the key prefix; absent: none.
    pub const KEY_PREFIX: &'static str = "keyPrefix";
    /// Attribute of the leak policy (`revoke`, `notify`); absent: `revoke`.
    pub const LEAK_POLICY: &'static str = "leakPolicy";
    /// Attribute of the settings' version; absent: 0.
    pub const VERSION: &'static str = "settingsVersion";
    /// Attribute of a prefix claim's company.
    pub const COMPANY: &'static str = "companyId";

    /// The settings a counters item holds; a company with no item, or none set, has the
    /// defaults. A stored value the model refuses is `Corrupt`.
    pub fn from_item(item: Option<&Item>) -> Result<CompanySettings, StoreError> {
        let Some(item) = item else { return Ok(CompanySettings::default()) };
        let key_prefix = attributes::string(item, Self::KEY_PREFIX).map(stored_prefix).transpose()?;
        let leak_policy = attributes::string(item, Self::LEAK_POLICY).map(stored_policy).transpose()?;
        let version = attributes::number(item, Self::VERSION).unwrap_or(0).max(0) as u64;
        Ok(CompanySettings { key_prefix, leak_policy: leak_policy.unwrap_or_default(), version })
    }

    /// The policy as stored.
    pub fn policy(policy: LeakPolicy) -> &'static str {
        StoredLeakPolicy::from(policy).as_str()
    }
}

stored_enum!(
    /// `LeakPolicy` as stored.
    StoredLeakPolicy for LeakPolicy { Revoke = "revoke", Notify = "notify" }
);

stored_enum!(
    /// `CompanyAction` as stored.
    StoredCompanyAction for CompanyAction { SettingsChanged = "settings_changed" }
);

/// A stored key prefix as the model's; one the model refuses is `Corrupt`.
fn stored_prefix(raw: String) -> Result<KeyPrefix, StoreError> {
    KeyPrefix::parse(&raw, CompanySettingsRecord::KEY_PREFIX).map_err(|e| corrupt("a company's key prefix", e))
}

/// A stored leak policy as the model's.
fn stored_policy(raw: String) -> Result<LeakPolicy, StoreError> {
    from_stored_string::<StoredLeakPolicy>("a company's leak policy", raw).map(Into::into)
}

/// A company's audit record (`COMPANYEVENTS#<company>` / `EVENT#<eventId>`, no TTL): who
/// changed its settings, when, what changed, and the settings' version after the change. Its
/// id is its sort key's, which `items` reads. Layout 2 (its `schemaVersion`) keeps only the
/// fields changed, in `changes`; layout 1, written before, kept the settings after the change
/// beside the other attributes (named as on the counters item) and is read as a change of both
/// fields.
#[derive(Debug, Serialize, Deserialize)]
pub struct CompanyEventRecord<'a> {
    #[serde(rename = "action")]
    action: StoredCompanyAction,
    #[serde(rename = "actor")]
    actor: Cow<'a, str>,
    #[serde(rename = "at")]
    at: DateTime<Utc>,
    /// Layout 2 only.
    #[serde(rename = "changes", default, skip_serializing_if = "Option::is_none")]
    changes: Option<SettingsChangeRecord<'a>>,
    /// Layout 1 only: the prefix after the change; absent, none.
    #[serde(rename = "keyPrefix", default, skip_serializing)]
    key_prefix: Option<String>,
    /// Layout 1 only: the policy after the change.
    #[serde(rename = "leakPolicy", default, skip_serializing)]
    leak_policy: Option<StoredLeakPolicy>,
    #[serde(rename = "settingsVersion")]
    version: u64,
    #[serde(rename = "schemaVersion", default = "schema_version")]
    schema_version: i64,
}

/// `CompanySettingsChange` as stored in a company audit record's `changes`: a field changed is
/// present, a prefix set back to none as NULL.
#[derive(Debug, Serialize, Deserialize)]
struct SettingsChangeRecord<'a> {
    #[serde(rename = "keyPrefix", default, skip_serializing_if = "Option::is_none", deserialize_with = "present")]
    key_prefix: Option<Option<Cow<'a, str>>>,
    #[serde(rename = "leakPolicy", default, skip_serializing_if = "Option::is_none")]
    leak_policy: Option<StoredLeakPolicy>,
}

/// An attribute that is present, NULL included: `Some` of what it holds (serde reads a NULL
/// `Option` field as absent otherwise).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(value: D) -> Result<Option<T>, D::Error> {
    T::deserialize(value).map(Some)
}

impl<'a> CompanyEventRecord<'a> {
    /// The layout of the records written now: only the changed fields.
    pub const LAYOUT: i64 = 2;

    /// The record of a change by `actor` at `at`, to `version`, borrowing its strings.
    pub fn of_change(actor: &'a str, at: DateTime<Utc>, changes: &'a CompanySettingsChange, version: u64) -> Self {
        let changes = SettingsChangeRecord {
            key_prefix: changes.key_prefix.as_ref().map(|p| p.as_ref().map(|p| Cow::Borrowed(p.as_str()))),
            leak_policy: changes.leak_policy.map(Into::into),
        };
        Self {
            action: CompanyAction::SettingsChanged.into(),
            actor: Cow::Borrowed(actor),
            at,
            changes: Some(changes),
            key_prefix: None,
            leak_policy: None,
            version,
            schema_version: Self::LAYOUT,
        }
    }

    /// The event this record holds, under its id.
    pub fn into_model(self, id: KeyId) -> Result<CompanyEvent, StoreError> {
        let changes = if self.schema_version >= Self::LAYOUT {
            let changes = self.changes.ok_or_else(|| corrupt("a company's audit record", "no changes"))?;
            let changes = CompanySettingsChange {
                key_prefix: changes
                    .key_prefix
                    .map(|p| p.map(|p| stored_prefix(p.into_owned())).transpose())
                    .transpose()?,
                leak_policy: changes.leak_policy.map(Into::into),
            };
            // Only a change of something is recorded: an empty one is not a record of ours.
            if changes.is_empty() {
                return Err(corrupt("a company's audit record", "empty changes"));
            }
            changes
        } else {
            // The first layout always held the policy after the change.
            let leak_policy = self.leak_policy.ok_or_else(|| corrupt("a company's audit record", "no leakPolicy"))?;
            let after = CompanySettings {
                key_prefix: self.key_prefix.map(stored_prefix).transpose()?,
                leak_policy: leak_policy.into(),
                version: self.version,
            };
            CompanySettingsChange::whole(&after)
        };
        Ok(CompanyEvent { id, action: self.action.into(), actor: self.actor.into_owned(), at: self.at, changes })
    }
}

/// A key's rate window item (`RATE#<company>#<id>#<window>` / `RATE`): the uses counted in one
/// fixed window, by `ADD` updates, removed by TTL an hour after the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateWindowRecord;

impl RateWindowRecord {
    /// Attribute of the uses counted in the window.
    pub const USED: &'static str = "used";
}

/// A stored first answer (`IDEMPOTENCY#<lookup>` / `IDEMPOTENCY`), put whole, removed by TTL
/// once it lapses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyItem;

impl IdempotencyItem {
    /// Attribute of the request's fingerprint.
    pub const FINGERPRINT: &'static str = "fingerprint";
    /// Attribute of the sealed answer (binary).
    pub const RESPONSE: &'static str = "response";
    /// Attribute of when the record lapses (epoch seconds): the put's condition reads it, as
    /// TTL removal may come days late.
    pub const EXPIRES_AT: &'static str = "expiresAt";

    /// The attributes of `record`; `items::idempotency_item` adds its address.
    pub fn from_model(record: &IdempotencyRecord) -> Item {
        let expires = record.expires_at.timestamp();
        let mut item = Item::new();
        item.insert(Self::FINGERPRINT.to_owned(), s(&record.fingerprint));
        item.insert(Self::RESPONSE.to_owned(), AttributeValue::B(record.sealed_response.clone().into()));
        item.insert(Self::EXPIRES_AT.to_owned(), n(expires));
        item.insert(TTL_ATTRIBUTE.to_owned(), n(expires));
        item.extend([attributes::schema_version()]);
        item
    }

    /// The record an item read back by `lookup` holds; an attribute missing reads as empty or
    /// lapsed, never as an error (the caller then treats the record as no match).
    pub fn into_model(lookup: &str, mut item: Item) -> IdempotencyRecord {
        let sealed_response = match item.remove(Self::RESPONSE) {
            Some(AttributeValue::B(blob)) => blob.into_inner(),
            _ => Vec::new(),
        };
        IdempotencyRecord {
            lookup: lookup.to_owned(),
            fingerprint: attributes::string(&item, Self::FINGERPRINT).unwrap_or_default(),
            sealed_response,
            expires_at: attributes::number(&item, Self::EXPIRES_AT)
                .and_then(|t| DateTime::from_timestamp(t, 0))
                .unwrap_or_default(),
        }
    }
}

/// A stream marker (`STREAM#<eventId>` / `STREAM`): a TTL removal already taken out of the
/// counters, kept two days (longer than the stream keeps a record) so a redelivery counts once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamMarker;

impl StreamMarker {
    /// How long a marker outlives the stream record it stands for.
    pub const KEPT: chrono::TimeDelta = chrono::TimeDelta::days(2);

    /// A marker's attributes, written at `now`; `items::stream_marker_item` adds its address.
    pub fn attributes(now: DateTime<Utc>) -> Item {
        let mut marker = Item::new();
        marker.insert(TTL_ATTRIBUTE.to_owned(), n((now + Self::KEPT).timestamp()));
        marker.extend([attributes::schema_version()]);
        marker
    }
}

/// A listing entry: a few bytes standing for one key in one of its company's lists (all keys,
/// keys of its status) or for one audit event in its key's trail, under the same sort order.
/// An offset is counted over these rather than over the keys or events themselves, so skipping
/// an item reads about 100 bytes whatever the item weighs. Written in the same transaction as
/// what it stands for, with that item's TTL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListingEntry;

impl ListingEntry {
    /// The entry `pk` / `sk`, removed by TTL at `expires` if set.
    pub fn item(pk: String, sk: &str, expires: Option<DateTime<Utc>>) -> Item {
        let mut entry = address(pk, sk);
        if let Some(at) = expires {
            entry.insert(TTL_ATTRIBUTE.to_owned(), n(at.timestamp()));
        }
        entry.extend([attributes::schema_version()]);
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PlaintextKey;
    use crate::store::items;
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    /// Labels with every field set; a field added to `Labels` later keeps its default here, and
    /// `Labels`' own tests cover it.
    fn full_labels() -> Labels {
        let labels = json!({
            "description": "every field",
            "tags": ["a", "b"],
            "metadata": { "plan": "gold", "seats": 3, "nested": { "on": true } },
        });
        serde_json::from_value(labels).unwrap()
    }

    /// A policy with every field set; a field added to `Policy` later keeps its default here,
    /// and `Policy`'s own tests cover it.
    fn full_policy() -> Policy {
        let policy = json!({
            "whitelistedIPs": ["203.0.113.0/24", "2001:db8::1"],
            "acl": [{ "scope": { "productId": ["p1"], "planId": ["*"] }, "permissions": ["orders:*", "keys:*"] }],
            "expiresAt": at(3_000),
            "rateLimit": { "limit": 100, "periodSeconds": 60 },
            "quota": { "max": 1000, "renewalSeconds": 86_400, "startedAt": at(1_000) },
        });
        serde_json::from_value(policy).unwrap()
    }

    /// A key with every optional value set, so every nested record is written.
    fn full_key() -> ApiKey {
        let secret = PlaintextKey::generate(KeyType::Secret);
        let old = PlaintextKey::generate(KeyType::Secret);
        ApiKey {
            id: KeyId::generate(),
            company_id: CompanyId::parse("acme", "c").unwrap(),
            user_id: "user-1".into(),
            key_type: KeyType::Publishable,
            key_prefix: secret.visible_prefix().to_owned(),
            secret_hash: secret.hash(),
            publishable_key: Some(PlaintextKey::generate(KeyType::Publishable)),
            previous_secret: Some(PreviousSecret {
                hash: old.hash(),
                valid_until: at(2_000),
                key_prefix: old.visible_prefix().to_owned(),
            }),
            policy: full_policy(),
            labels: full_labels(),
            status: KeyStatus::Inactive,
            created_at: at(1_000),
            updated_at: at(1_500),
            deleted_at: Some(at(1_600)),
            last_used_at: Some(at(1_550)),
            quota_usage: QuotaUsage { period: 0, used: 7 },
            version: 4,
        }
    }

    fn written(key: &ApiKey) -> Item {
        serde_dynamo::to_item(KeyRecord::from_model(key)).unwrap()
    }

    #[test]
    fn a_record_printed_shows_no_hash_or_key() {
        let key = full_key();
        let printed = format!("{:?}", KeyRecord::from_model(&key));
        let previous = key.previous_secret.as_ref().unwrap();
        let publishable = key.publishable_key.as_ref().unwrap();
        for secret in [key.secret_hash.as_str(), previous.hash.as_str(), publishable.expose()] {
            assert!(!printed.contains(secret), "{secret} printed");
        }
        assert!(printed.contains("Redacted(…)"));
    }

    /// Also what holds each `key_part!` part's two sides together: the model must read back
    /// what its serde form writes.
    #[test]
    fn a_key_reads_back_as_it_was_written() {
        let key = full_key();
        let record: KeyRecord<'static> = serde_dynamo::from_item(written(&key)).unwrap();
        assert_eq!(record.into_model().unwrap(), key);
    }

    #[test]
    fn an_audit_event_reads_back_as_it_was_written() {
        let event = AuditEvent {
            id: KeyId::generate(),
            company_id: CompanyId::parse("acme", "c").unwrap(),
            key_id: KeyId::parse("custom-id", "id").unwrap(),
            action: AuditAction::StatusChanged,
            actor: "operator".into(),
            actor_type: ActorType::Operator,
            actor_secret: None,
            at: at(1_000),
            changes: json!({ "status": "inactive" }).as_object().unwrap().clone(),
        };
        let item: Item = serde_dynamo::to_item(AuditRecord::from_model(&event)).unwrap();
        assert_eq!(attributes::string(&item, "action").as_deref(), Some("status_changed"));
        let record: AuditRecord<'static> = serde_dynamo::from_item(item).unwrap();
        assert_eq!(record.into_model().unwrap(), event);
    }

    #[test]
    fn the_named_attributes_are_the_ones_the_records_write() {
        let item = written(&full_key());
        for name in [
            KeyRecord::LAST_USED_AT,
            KeyRecord::QUOTA_USAGE,
            KeyRecord::VERSION,
            KeyRecord::COMPANY_ID,
            KeyRecord::STATUS,
            items::SCHEMA_VERSION_ATTRIBUTE,
        ]
        .iter()
        .chain(Labels::FIELDS)
        {
            assert!(item.contains_key(*name), "{name}");
        }
        let usage = item[KeyRecord::QUOTA_USAGE].as_m().unwrap();
        assert_eq!(attributes::number(usage, QuotaUsageRecord::USED), Some(7));
        assert_eq!(attributes::number(usage, QuotaUsageRecord::PERIOD), Some(0));
        assert_eq!(attributes::number(&item, items::SCHEMA_VERSION_ATTRIBUTE), Some(SCHEMA_VERSION));
    }

    #[test]
    fn a_removed_key_is_read_by_the_names_the_key_record_writes() {
        let key = full_key();
        let mut item = written(&key);
        item.insert("sk".into(), s(items::KEY_SK));
        let removed: RemovedKeyRecord = serde_dynamo::from_item(item.clone()).unwrap();
        assert_eq!(removed.into_model(items::KEY_SK), Some((key.company_id.clone(), KeyStatus::Inactive)));
        item.insert("sk".into(), s(items::SECRET_SK));
        let lookup: RemovedKeyRecord = serde_dynamo::from_item(item).unwrap();
        assert_eq!(lookup.into_model(items::KEY_SK), None);
    }

    #[test]
    fn a_value_the_model_refuses_makes_the_item_corrupt() {
        let mut item = written(&full_key());
        item.insert("companyId".into(), s("not a company"));
        let record: KeyRecord<'static> = serde_dynamo::from_item(item).unwrap();
        assert!(matches!(record.into_model(), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn an_idempotency_record_reads_back_as_it_was_written() {
        let record = IdempotencyRecord {
            lookup: "abc".into(),
            fingerprint: "f".into(),
            sealed_response: vec![1, 2, 3],
            expires_at: at(5_000),
        };
        let item = IdempotencyItem::from_model(&record);
        assert_eq!(attributes::number(&item, TTL_ATTRIBUTE), Some(5_000));
        assert_eq!(IdempotencyItem::into_model("abc", item), record);
    }

    #[test]
    fn a_corrupt_item_s_error_never_quotes_a_secret_hash() {
        // StoreError::Corrupt's text is logged (as an internal error's detail): an item whose
        // hash sits where another shape is expected must not put the hash into it.
        let key = full_key();
        let hash = key.previous_secret.as_ref().unwrap().hash.as_str().to_owned();
        let current = key.secret_hash.as_str().to_owned();
        for (name, value) in [
            ("previousSecret", s(&hash)),
            ("previousSecret", AttributeValue::L(vec![s(&hash)])),
            ("secretHash", AttributeValue::M(Item::from([("hash".to_owned(), s(&current))]))),
            ("secretHash", AttributeValue::L(vec![s(&current)])),
        ] {
            let mut item = written(&key);
            item.insert(name.to_owned(), value);
            let Err(StoreError::Corrupt(text)) = items::key_from_item(item) else { panic!("{name} read as a key") };
            assert!(!text.contains(&hash) && !text.contains(&current), "{name}: {text}");
        }
    }

    #[test]
    fn a_company_event_keeps_only_its_changes_and_an_older_one_reads_as_the_whole_settings() {
        let id = KeyId::parse("0190a1b2-0000-7000-8000-000000000009", "id").unwrap();
        let read = |item: Item| {
            let record: CompanyEventRecord<'static> = serde_dynamo::from_item(item).unwrap();
            record.into_model(id.clone()).unwrap()
        };
        let none_again = CompanySettingsChange { key_prefix: Some(None), leak_policy: None };
        let item: Item =
            serde_dynamo::to_item(CompanyEventRecord::of_change("root-1", at(1_000), &none_again, 3)).unwrap();
        let changed = Item::from([(CompanySettingsRecord::KEY_PREFIX.to_owned(), AttributeValue::Null(true))]);
        assert_eq!(item.get("changes"), Some(&AttributeValue::M(changed)), "a prefix set back to none is NULL");
        assert!(!item.contains_key(CompanySettingsRecord::LEAK_POLICY) && !item.contains_key("keyPrefix"));
        assert_eq!(attributes::number(&item, items::SCHEMA_VERSION_ATTRIBUTE), Some(CompanyEventRecord::LAYOUT));
        let event = read(item);
        assert_eq!((event.id, event.actor.as_str(), event.at), (id.clone(), "root-1", at(1_000)));
        assert_eq!((event.action, event.changes), (CompanyAction::SettingsChanged, none_again));
        let both = CompanySettingsChange {
            key_prefix: Some(Some(KeyPrefix::parse("acmeco", "k").unwrap())),
            leak_policy: Some(LeakPolicy::Notify),
        };
        let item: Item = serde_dynamo::to_item(CompanyEventRecord::of_change("root-1", at(1_000), &both, 4)).unwrap();
        assert_eq!(read(item).changes, both);

        // Layout 1 (no `changes`): the settings after the change beside the other attributes.
        let first_layout = Item::from([
            ("action".to_owned(), s("settings_changed")),
            ("actor".to_owned(), s("root-1")),
            ("at".to_owned(), attributes::timestamp(at(1_000))),
            ("leakPolicy".to_owned(), s("notify")),
            ("settingsVersion".to_owned(), n(1)),
            ("schemaVersion".to_owned(), n(1)),
        ]);
        let older = |prefix: Option<&str>| {
            let mut item = first_layout.clone();
            if let Some(prefix) = prefix {
                item.insert("keyPrefix".to_owned(), s(prefix));
            }
            read(item).changes
        };
        assert_eq!(older(Some("acmeco")), both);
        assert_eq!(
            older(None),
            CompanySettingsChange { key_prefix: Some(None), leak_policy: Some(LeakPolicy::Notify) }
        );

        // Neither layout is read into a change it never recorded: an empty `changes`, or a
        // first-layout record without its policy, is corrupt, not a made-up change.
        let corrupt = |item: Item| {
            let record: CompanyEventRecord<'static> = serde_dynamo::from_item(item).unwrap();
            record.into_model(id.clone()).is_err()
        };
        let mut empty: Item =
            serde_dynamo::to_item(CompanyEventRecord::of_change("root-1", at(1_000), &both, 4)).unwrap();
        empty.insert("changes".to_owned(), AttributeValue::M(Item::new()));
        assert!(corrupt(empty));
        let mut no_policy = first_layout.clone();
        no_policy.remove(CompanySettingsRecord::LEAK_POLICY);
        assert!(!corrupt(first_layout) && corrupt(no_policy));
    }
}
