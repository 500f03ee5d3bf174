//! Audit records: who changed a key, when, and what changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CompanyId, KeyId};

/// What kind of write an audit record is, so the trail can be read (and filtered) without
/// diffing `changes`. Stored and shown in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    /// The key was made (`POST /keys`, `POST /keys/{keyId}`, the operator CLI).
    Created,
    /// The key was brought from another system by the hash of its plaintext (`POST /keys/import`).
    Imported,
    /// A PATCH that changed more than the status, or something other than it.
    Updated,
    /// A PATCH that only turned the key active or inactive.
    StatusChanged,
    /// A new secret replaced the old one (`POST /keys/{keyId}/roll`).
    Rolled,
    /// The key was soft-deleted.
    Deleted,
    /// A secret scanner reported the key's secret in public: with the company's leak policy
    /// `revoke` the key was deleted by the same write, with `notify` nothing else changed.
    Leaked,
}

/// Who made a change: one of the company's keys, or the operator (who presents no key).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorType {
    /// A root key of the company; `actor` is its id.
    Key,
    /// The operator CLI or the root-key resource; `actor` is `operator`.
    Operator,
}

/// Which secret of its key a caller presented: after a roll, the old one keeps serving until
/// its grace period ends, and the trail tells what it did apart from what the new one did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretRole {
    /// The key's current secret.
    Current,
    /// The secret a roll replaced, still in its grace period.
    Previous,
}

/// The secret a key acted with: its role and its visible prefix (never the secret or its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActingSecret {
    /// Current or previous.
    pub secret: SecretRole,
    /// The first characters of that secret, as `keyPrefix` shows them.
    pub key_prefix: String,
}

/// One change to a key. `changes` holds field names and new values, never a secret or a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// The record's own id, a UUID v7: its sort key, so a key's trail pages in time order.
    pub id: KeyId,
    /// The company of the key, which only it may read the trail of.
    pub company_id: CompanyId,
    /// The key that changed.
    pub key_id: KeyId,
    /// What kind of change this was.
    pub action: AuditAction,
    /// The root key that made the change, or `operator` for the CLI and the root-key resource
    /// (a word no key can take as its id).
    pub actor: String,
    /// Whether `actor` is a key or the operator, so the two can never be read as each other.
    pub actor_type: ActorType,
    /// Which of the acting key's secrets made the change; `None` for the operator.
    pub actor_secret: Option<ActingSecret>,
    /// When the write took effect, by the domain's clock.
    pub at: DateTime<Utc>,
    /// Field names (as the API writes them) and their new values.
    pub changes: Map<String, Value>,
}

#[cfg(test)]
impl AuditEvent {
    /// For unit tests of every layer: key `billing` of company `acme` changed by key `root-1`
    /// at `at`, with `changes` (a JSON object).
    pub(crate) fn for_tests(action: AuditAction, changes: Value, at: DateTime<Utc>) -> Self {
        let Value::Object(changes) = changes else { panic!("changes are an object") };
        Self {
            id: KeyId::parse("0190a1b2-0000-7000-8000-000000000001", "id").unwrap(),
            company_id: CompanyId::parse("acme", "c").unwrap(),
            key_id: KeyId::parse("billing", "id").unwrap(),
            action,
            actor: "root-1".into(),
            actor_type: ActorType::Key,
            actor_secret: None,
            at,
            changes,
        }
    }
}
