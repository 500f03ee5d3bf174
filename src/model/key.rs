//! The key resource: what is stored of a key, and how it is shown.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use serde::ser::SerializeMap;

use super::{
    Acl, CompanyId, IdentityId, KeyId, KeyType, Labels, PlaintextKey, Policy, QuotaUsage, SecretHash, SecretRole,
};

/// `lastUsedAt` is written at most this often per key: a key verified a thousand times a
/// minute costs one write for it, not a thousand.
pub const LAST_USED_GRANULARITY: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Whether a key may verify. Switchable both ways by PATCH; a deleted key stays `Inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Verifies (if nothing else refuses it).
    Active,
    /// Refused with `INACTIVE`, but kept: it can be re-activated, unless deleted.
    Inactive,
}

impl KeyStatus {
    /// The status as the API and the list filter write it.
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
    /// The replaced secret's hash; its lookup item stays until the grace period ends.
    pub hash: SecretHash,
    /// The end of the grace period: from then on the old secret is `NOT_FOUND`.
    pub valid_until: DateTime<Utc>,
    /// The replaced secret's visible prefix, so the audit trail can name it when it acts.
    pub key_prefix: String,
}

/// Everything the service keeps of a key. Secret keys keep only their hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Unique within the company; fixed at creation.
    pub id: KeyId,
    /// The owner, and the only company whose root keys can see or change the key.
    pub company_id: CompanyId,
    /// Who the key was issued to, in the company's own terms; fixed at creation.
    pub user_id: String,
    /// Secret or publishable; fixed at creation (a different kind is a different key).
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// The plaintext's first characters, so a person can tell keys apart without the secret.
    pub key_prefix: String,
    /// What verify compares the presented key with; the plaintext is never kept.
    pub secret_hash: SecretHash,
    /// Publishable keys are not secrets and may be shown again; secret keys never are.
    pub publishable_key: Option<PlaintextKey>,
    /// The secret a roll replaced, while it still verifies; a later roll ends it.
    pub previous_secret: Option<PreviousSecret>,
    /// Its allowlist, ACL, expiry, rate limit and quota: what bounds it.
    #[serde(flatten)]
    pub policy: Policy,
    /// The company's description, tags and metadata: stored and shown, never interpreted.
    #[serde(flatten)]
    pub labels: Labels,
    /// Whether the key may verify; a deleted key is `Inactive` for good.
    pub status: KeyStatus,
    /// When the key was made; lists sort by it, newest first.
    pub created_at: DateTime<Utc>,
    /// The last management write (not verify's counting).
    pub updated_at: DateTime<Utc>,
    /// Set by DELETE: the key is soft-deleted and leaves the table when its retention ends.
    pub deleted_at: Option<DateTime<Utc>>,
    /// The last successful verify (or management call) made with it, written at most once per
    /// `LAST_USED_GRANULARITY`, so it may lag by that much.
    pub last_used_at: Option<DateTime<Utc>>,
    /// Counted by verify, not by management writes; see `QuotaUsage`.
    #[serde(default)]
    pub quota_usage: QuotaUsage,
    /// Bumped by every management write; the ETag, and the guard against lost updates.
    pub version: u64,
}

impl ApiKey {
    /// Whether the secret of `role` is one the service never saw: an imported plaintext, whose
    /// `keyPrefix` is empty (until a roll replaces it, and through that roll's grace period).
    pub fn secret_unseen(&self, role: SecretRole) -> bool {
        match role {
            SecretRole::Current => self.key_prefix.is_empty(),
            SecretRole::Previous => self.previous_secret.as_ref().is_none_or(|old| old.key_prefix.is_empty()),
        }
    }

    /// Whether a use at `now` is due to write `lastUsedAt`: never written, or written
    /// `LAST_USED_GRANULARITY` or longer before. The one rule the domain, the caches and both
    /// stores follow.
    pub fn last_use_due(&self, now: DateTime<Utc>) -> bool {
        self.last_used_at.is_none_or(|at| now - at >= LAST_USED_GRANULARITY)
    }

    /// Records a use at `now` in this copy, if one was due (`last_use_due`).
    pub fn mark_used(&mut self, now: DateTime<Utc>) {
        if self.last_use_due(now) {
            self.last_used_at = Some(now);
        }
    }

    /// Deleted keys stay in the table (inactive, unchangeable) until their retention ends.
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
                .policy
                .acl
                .iter()
                .flat_map(Acl::permissions)
                .any(|p| p.reaches_all_of(super::acl::MANAGEMENT_NAMESPACE))
    }

    /// The identity whose lists and counts hold the key, with the status it is counted under:
    /// the identity it names, until it is deleted.
    pub fn counted_by(&self) -> Option<(&IdentityId, KeyStatus)> {
        self.policy.identity_id.as_ref().filter(|_| !self.is_deleted()).map(|id| (id, self.status))
    }

    /// Whether a write from `before` to this key adds it to an identity's counts (a new key
    /// naming one, a key naming one anew, or re-activated): then that identity must exist, live,
    /// in the key's company, when the write commits. The identity it joins, if so.
    pub fn joins_identity_from(&self, before: Option<&ApiKey>) -> Option<&IdentityId> {
        let (identity, status) = self.counted_by()?;
        (before.and_then(ApiKey::counted_by) != Some((identity, status))).then_some(identity)
    }

    /// The key's secrets that verify, each with when it stops: the current one (`None`: until
    /// rolled), and the previous one while in its grace period.
    pub fn live_secrets(&self) -> Vec<(&SecretHash, Option<DateTime<Utc>>)> {
        let mut live = vec![(&self.secret_hash, None)];
        if let Some(old) = &self.previous_secret {
            live.push((&old.hash, Some(old.valid_until)));
        }
        live
    }

    /// The `ETag` of the key's current version, which `If-Match` must name.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The key as the API shows it at `now` (a quota's `remaining` depends on the time), with
    /// no secret: only a publishable key's plaintext appears.
    pub fn view(&self, now: DateTime<Utc>) -> KeyView<'_> {
        KeyView {
            id: &self.id,
            company_id: &self.company_id,
            user_id: &self.user_id,
            key_type: self.key_type,
            key: self.publishable_key.as_ref().map(PlaintextKey::expose),
            key_prefix: &self.key_prefix,
            policy: PolicyView {
                policy: &self.policy,
                quota: self.policy.quota.map(|q| QuotaView {
                    max: q.max,
                    remaining: q.remaining(self.quota_usage, now),
                    renewal_seconds: q.renewal_seconds,
                    renews_at: q.renews_at(now),
                }),
            },
            labels: &self.labels,
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
    /// As [`ApiKey::id`].
    pub id: &'a KeyId,
    /// As [`ApiKey::company_id`].
    pub company_id: &'a CompanyId,
    /// As [`ApiKey::user_id`].
    pub user_id: &'a str,
    /// As [`ApiKey::key_type`].
    #[serde(rename = "type")]
    pub key_type: KeyType,
    /// A publishable key's plaintext, always; a secret key's only in the answer that made it
    /// (`with_plaintext`). Absent from the JSON otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<&'a str>,
    /// As [`ApiKey::key_prefix`].
    pub key_prefix: &'a str,
    /// As [`ApiKey::policy`], each field under its own name, its quota with what remains of it.
    #[serde(flatten)]
    pub policy: PolicyView<'a>,
    /// As [`ApiKey::labels`], each field under its own name.
    #[serde(flatten)]
    pub labels: &'a Labels,
    /// As [`ApiKey::status`].
    pub status: KeyStatus,
    /// As [`ApiKey::created_at`].
    pub created_at: DateTime<Utc>,
    /// As [`ApiKey::updated_at`].
    pub updated_at: DateTime<Utc>,
    /// As [`ApiKey::deleted_at`].
    pub deleted_at: Option<DateTime<Utc>>,
    /// As [`ApiKey::last_used_at`].
    pub last_used_at: Option<DateTime<Utc>>,
}

impl<'a> KeyView<'a> {
    /// The one answer that carries a secret key's plaintext: create and roll.
    #[must_use]
    pub fn with_plaintext(mut self, key: &'a PlaintextKey) -> Self {
        self.key = Some(key.expose());
        self
    }
}

/// A key's policy as the API shows it: as stored, but for its quota, shown with what it leaves
/// at the time of the answer instead of when it started.
#[derive(Debug)]
pub struct PolicyView<'a> {
    policy: &'a Policy,
    quota: Option<QuotaView>,
}

impl Serialize for PolicyView<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.policy.serialize_entries(&mut map, |name, map| match name {
            "quota" => map.serialize_entry(name, &self.quota).map(|()| true),
            _ => Ok(false),
        })?;
        map.end()
    }
}

/// A quota as the API shows it: the settings, and what they leave at the time of the answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaView {
    /// As [`Quota::max`](super::Quota::max).
    pub max: u64,
    /// Verifies left in the current period.
    pub remaining: u64,
    /// As [`Quota::renewal_seconds`](super::Quota::renewal_seconds).
    pub renewal_seconds: Option<u64>,
    /// When the quota is full again; `None` if it never renews.
    pub renews_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
impl ApiKey {
    /// For unit tests of every layer: an active secret key of `company` with no optional
    /// setting, created and updated `at`, and the plaintext that verifies it. Tests change the
    /// fields they are about with `ApiKey { field, ..key }`.
    pub(crate) fn plain_for_tests(company: CompanyId, id: KeyId, at: DateTime<Utc>) -> (Self, PlaintextKey) {
        let plaintext = PlaintextKey::generate(KeyType::Secret);
        let key = Self {
            user_id: format!("user-{id}"),
            id,
            company_id: company,
            key_type: KeyType::Secret,
            key_prefix: plaintext.visible_prefix().to_owned(),
            secret_hash: plaintext.hash(),
            publishable_key: None,
            previous_secret: None,
            policy: Policy::default(),
            labels: Labels::default(),
            status: KeyStatus::Active,
            created_at: at,
            updated_at: at,
            deleted_at: None,
            last_used_at: None,
            quota_usage: QuotaUsage::default(),
            version: 1,
        };
        (key, plaintext)
    }
}

#[cfg(test)]
mod last_use_tests {
    use super::*;

    #[test]
    fn a_use_is_due_from_exactly_one_granularity_after_the_last() {
        let at = DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc);
        let company = CompanyId::parse("acme", "company").unwrap();
        let (mut key, _) = ApiKey::plain_for_tests(company, KeyId::generate(), at);
        key.last_used_at = None;
        assert!(key.last_use_due(at), "never used");
        key.mark_used(at);
        assert_eq!(key.last_used_at, Some(at));
        let almost = at + LAST_USED_GRANULARITY - chrono::TimeDelta::milliseconds(1);
        assert!(!key.last_use_due(almost));
        key.mark_used(almost);
        assert_eq!(key.last_used_at, Some(at), "not due: kept");
        assert!(key.last_use_due(at + LAST_USED_GRANULARITY), "due at exactly the granularity");
    }
}
