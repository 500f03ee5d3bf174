//! The key resource: what is stored of a key, and how it is shown.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Acl, CompanyId, IpAllowlist, KeyId, KeyType, PlaintextKey, Quota, QuotaUsage, RateLimit, SecretHash};

/// `lastUsedAt` is written at most this often per key: a key verified a thousand times a
/// minute costs one write for it, not a thousand.
pub const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Inactive => "inactive",
        }
    }
}

/// A secret replaced by a roll that keeps verifying until `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviousSecret {
    pub hash: SecretHash,
    pub valid_until: DateTime<Utc>,
}

/// Everything the service keeps of a key. Secret keys keep only their hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: KeyId,
    pub company_id: CompanyId,
    pub user_id: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    pub key_prefix: String,
    pub secret_hash: SecretHash,
    /// Publishable keys are not secrets and may be shown again; secret keys never are.
    pub publishable_key: Option<PlaintextKey>,
    pub previous_secret: Option<PreviousSecret>,
    #[serde(rename = "whitelistedIPs")]
    pub whitelisted_ips: Option<IpAllowlist>,
    pub acl: Option<Acl>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit: Option<RateLimit>,
    pub quota: Option<Quota>,
    pub tags: Vec<String>,
    pub metadata: Map<String, Value>,
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Counted by verify, not by management writes; see `QuotaUsage`.
    #[serde(default)]
    pub quota_usage: QuotaUsage,
    /// Bumped by every management write; the ETag, and the guard against lost updates.
    pub version: u64,
}

impl ApiKey {
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// A live secret key whose ACL reaches the whole management API (`keys:*`, `*`, `k*`…): one of
    /// the keys a company cannot do without, counted so the last one is not lost by accident.
    pub fn is_company_admin(&self) -> bool {
        self.status == KeyStatus::Active
            && !self.is_deleted()
            && self.key_type == KeyType::Secret
            && self
                .acl
                .iter()
                .flat_map(|acl| acl.entries())
                .flat_map(|entry| entry.permissions.iter())
                .any(|p| p.reaches_all_of(super::acl::MANAGEMENT_NAMESPACE))
    }

    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    pub fn view(&self, now: DateTime<Utc>) -> KeyView<'_> {
        KeyView {
            id: &self.id,
            company_id: &self.company_id,
            user_id: &self.user_id,
            description: self.description.as_deref(),
            key_type: self.key_type,
            key: self.publishable_key.as_ref().map(PlaintextKey::expose),
            key_prefix: &self.key_prefix,
            whitelisted_ips: self.whitelisted_ips.as_ref(),
            acl: self.acl.as_ref(),
            expires_at: self.expires_at,
            rate_limit: self.rate_limit.as_ref(),
            quota: self.quota.map(|q| QuotaView {
                max: q.max,
                remaining: q.remaining(self.quota_usage, now),
                renewal_seconds: q.renewal_seconds,
                renews_at: q.renews_at(now),
            }),
            tags: &self.tags,
            metadata: &self.metadata,
            status: self.status,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// The key as the API shows it (camelCase JSON).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyView<'a> {
    pub id: &'a KeyId,
    pub company_id: &'a CompanyId,
    pub user_id: &'a str,
    pub description: Option<&'a str>,
    #[serde(rename = "type")]
    pub key_type: KeyType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    pub key_prefix: &'a str,
    #[serde(rename = "whitelistedIPs")]
    pub whitelisted_ips: Option<&'a IpAllowlist>,
    pub acl: Option<&'a Acl>,
    pub expires_at: Option<DateTime<Utc>>,
    pub rate_limit: Option<&'a RateLimit>,
    pub quota: Option<QuotaView>,
    pub tags: &'a [String],
    pub metadata: &'a Map<String, Value>,
    pub status: KeyStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl<'a> KeyView<'a> {
    /// The one answer that carries a secret key's plaintext: create and roll.
    pub fn with_plaintext(mut self, key: &'a PlaintextKey) -> Self {
        self.key = Some(key.expose());
        self
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaView {
    pub max: u64,
    pub remaining: u64,
    pub renewal_seconds: Option<u64>,
    pub renews_at: Option<DateTime<Utc>>,
}
