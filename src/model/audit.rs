//! Audit records: who changed a key, when, and what changed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CompanyId, KeyId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Created,
    Updated,
    StatusChanged,
    Rolled,
    Deleted,
}

/// One change to a key. `changes` holds field names and new values, never a secret or a hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: KeyId,
    pub company_id: CompanyId,
    pub key_id: KeyId,
    pub action: AuditAction,
    /// The root key that made the change (or `operator` for the CLI).
    pub actor: String,
    pub at: DateTime<Utc>,
    pub changes: Map<String, Value>,
}
