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
    /// A PATCH that changed more than the status, or something other than it.
    Updated,
    /// A PATCH that only turned the key active or inactive.
    StatusChanged,
    /// A new secret replaced the old one (`POST /keys/{keyId}/roll`).
    Rolled,
    /// The key was soft-deleted.
    Deleted,
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
    /// The root key that made the change (or `operator` for the CLI).
    pub actor: String,
    /// When the write took effect, by the domain's clock.
    pub at: DateTime<Utc>,
    /// Field names (as the API writes them) and their new values.
    pub changes: Map<String, Value>,
}
