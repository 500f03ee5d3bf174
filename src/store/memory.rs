//! The store traits over a few maps behind one mutex, for the domain's unit tests only: they
//! test the domain's rules with no database. Each write is checked and applied under one lock,
//! so it is all or nothing, as a DynamoDB transaction is. It keeps the conditions the domain
//! relies on (a version check, a taken id, a taken `Idempotency-Key`, the last active admin, the
//! limits that refuse a use and count nothing then) and nothing else: no TTL, no paging, no
//! call counts. DynamoDB Local stays the test of the real store (`tests/api`).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::model::{
    ApiKey, AuditEvent, CompanyId, Identity, IdentityId, IdentityKeys, KeyId, KeyStatus, QuotaUsage, SecretHash,
};

use super::{
    AdminCounter, IdempotencyReader, IdempotencyRecord, IdentityOutcome, IdentityReader, IdentityWrite, IdentityWriter,
    ImportLedger, InsertOutcome, KeyChange, KeyCreator, KeyReader, KeyWriter, SaveOutcome, SecretLookup, SecretRecord,
    StoreError, UsageOutcome, UsageRecorder, UsageRequest,
};

/// Everything the memory store holds, in the shape a test asserts on: the same items the
/// DynamoDB table keeps, one map per kind of item.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryState {
    /// Key items by company and id, as `KeyReader::get_key` reads them.
    pub keys: BTreeMap<(CompanyId, KeyId), ApiKey>,
    /// Lookup items by the hash they are filed under: a copy of the key as of its last
    /// management write, as verify reads it.
    pub lookups: HashMap<SecretHash, ApiKey>,
    /// Audit events in the order they were written.
    pub audit: Vec<AuditEvent>,
    /// Idempotency records by their lookup.
    pub idempotency: HashMap<String, IdempotencyRecord>,
    /// Uses counted per key and rate window number.
    pub rate_used: HashMap<(CompanyId, KeyId, i64), u64>,
    /// What each named limit's window has counted, by the DynamoDB store's item address.
    pub named_used: HashMap<String, u64>,
    /// Live identities by company and id; their key counts are counted from `keys` when read.
    pub identities: BTreeMap<(CompanyId, IdentityId), Identity>,
}

impl MemoryState {
    /// The company's active admin keys, as the DynamoDB store's counters item counts them.
    fn active_admins(&self, company: &CompanyId) -> usize {
        self.keys.iter().filter(|((c, _), key)| c == company && key.is_company_admin()).count()
    }

    /// The keys that count in an identity, as the DynamoDB store's identity item counts them.
    fn identity_keys(&self, company: &CompanyId, identity: &IdentityId) -> IdentityKeys {
        let counted = |status| {
            let named = |key: &&ApiKey| key.company_id == *company && key.counted_by() == Some((identity, status));
            self.keys.values().filter(named).count() as u64
        };
        IdentityKeys { active: counted(KeyStatus::Active), inactive: counted(KeyStatus::Inactive) }
    }

    /// Whether a key joining an identity (`ApiKey::joins_identity_from`) would join a live
    /// identity of its company, as the DynamoDB store's condition requires.
    fn may_join(&self, key: &ApiKey, before: Option<&ApiKey>) -> bool {
        key.joins_identity_from(before)
            .is_none_or(|identity| self.identities.contains_key(&(key.company_id.clone(), identity.clone())))
    }

    /// Whether a live (unexpired) record holds this lookup at `now`.
    fn idempotency_taken(&self, record: Option<&IdempotencyRecord>, now: DateTime<Utc>) -> bool {
        record.is_some_and(|r| self.idempotency.get(&r.lookup).is_some_and(|held| held.expires_at > now))
    }

    /// Puts a key item and a lookup item (a copy of `key`) for each of its live secrets.
    fn put_key_and_lookups(&mut self, key: ApiKey) {
        for hash in live_secrets(&key) {
            self.lookups.insert(hash.clone(), key.clone());
        }
        self.keys.insert((key.company_id.clone(), key.id.clone()), key);
    }
}

/// The store traits in memory; see the module's doc for what it keeps and what it leaves out.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a key as it is, with its lookup items and no audit event: how a test sets up a
    /// key in a state no API call makes directly (expired, over its quota, with an old secret).
    pub fn put_key(&self, key: &ApiKey) {
        self.lock().put_key_and_lookups(key.clone());
    }

    /// The stored key item, as the next management call would read it.
    pub fn key(&self, company: &CompanyId, id: &KeyId) -> Option<ApiKey> {
        self.lock().keys.get(&(company.clone(), id.clone())).cloned()
    }

    /// Sets the uses already counted in a key's rate window (one already full, say).
    pub fn set_rate_used(&self, key: &ApiKey, window: i64, used: u64) {
        self.lock().rate_used.insert((key.company_id.clone(), key.id.clone(), window), used);
    }

    /// The uses counted in a key's rate window.
    pub fn rate_used(&self, key: &ApiKey, window: i64) -> u64 {
        self.lock().rate_used.get(&(key.company_id.clone(), key.id.clone(), window)).copied().unwrap_or(0)
    }

    /// A copy of everything stored, to compare before and after a call that must write nothing.
    pub fn snapshot(&self) -> MemoryState {
        self.lock().clone()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        // A test that panicked while holding the lock has failed already; its state is still readable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The hashes a key's lookup items are filed under: the current secret, and the previous one
/// while the key keeps it (its grace period is checked by verify, as in the real store, where
/// TTL removes the item some time after).
fn live_secrets(key: &ApiKey) -> impl Iterator<Item = &SecretHash> {
    key.live_secrets().into_iter().map(|(hash, _)| hash)
}

impl KeyReader for MemoryStore {
    async fn get_key(&self, company: &CompanyId, id: &KeyId) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.key(company, id))
    }
}

/// The domain's tests use the default settings (no prefix, `revoke`).
impl super::CompanySettingsReader for MemoryStore {
    async fn company_settings(
        &self,
        _company: &CompanyId,
    ) -> Result<crate::model::company::CompanySettings, StoreError> {
        Ok(crate::model::company::CompanySettings::default())
    }
}

impl AdminCounter for MemoryStore {
    async fn active_admins(&self, company: &CompanyId) -> Result<u64, StoreError> {
        Ok(self.lock().active_admins(company) as u64)
    }
}

impl IdempotencyReader for MemoryStore {
    async fn find_idempotency(&self, lookup: &str) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self.lock().idempotency.get(lookup).cloned())
    }
}

impl KeyCreator for MemoryStore {
    async fn insert_key(
        &self,
        key: &ApiKey,
        audit: &AuditEvent,
        idempotency: Option<&IdempotencyRecord>,
    ) -> Result<InsertOutcome, StoreError> {
        let mut state = self.lock();
        // The same order of conditions as the DynamoDB store: a twin request is told as such.
        if state.idempotency_taken(idempotency, key.created_at) {
            return Ok(InsertOutcome::IdempotencyKeyTaken);
        }
        if state.keys.contains_key(&(key.company_id.clone(), key.id.clone())) {
            return Ok(InsertOutcome::IdTaken);
        }
        if state.lookups.contains_key(&key.secret_hash) {
            return Ok(InsertOutcome::SecretTaken);
        }
        if !state.may_join(key, None) {
            return Ok(InsertOutcome::UnknownIdentity);
        }
        state.put_key_and_lookups(key.clone());
        state.audit.push(audit.clone());
        if let Some(record) = idempotency {
            state.idempotency.insert(record.lookup.clone(), record.clone());
        }
        Ok(InsertOutcome::Inserted)
    }
}

impl ImportLedger for MemoryStore {
    async fn has_imported(&self, company: &CompanyId) -> Result<bool, StoreError> {
        let imported = |e: &&AuditEvent| e.company_id == *company && e.action == crate::model::AuditAction::Imported;
        Ok(self.lock().audit.iter().any(|e| imported(&e)))
    }
}

impl KeyWriter for MemoryStore {
    async fn save_change(&self, change: KeyChange<'_>) -> Result<SaveOutcome, StoreError> {
        let (before, after) = (change.before, change.after);
        let mut state = self.lock();
        let address = (after.company_id.clone(), after.id.clone());
        let Some(stored) = state.keys.get(&address).cloned() else { return Ok(SaveOutcome::VersionConflict) };
        if stored.version != before.version {
            return Ok(SaveOutcome::VersionConflict);
        }
        let admins_lost = usize::from(before.is_company_admin()).saturating_sub(usize::from(after.is_company_admin()));
        if change.keep_an_admin && admins_lost > 0 && state.active_admins(&after.company_id) <= admins_lost {
            return Ok(SaveOutcome::LastAdmin);
        }
        if !state.may_join(after, Some(before)) {
            return Ok(SaveOutcome::UnknownIdentity);
        }
        if state.idempotency_taken(change.idempotency, after.updated_at) {
            return Ok(SaveOutcome::IdempotencyKeyTaken);
        }
        for hash in live_secrets(before) {
            state.lookups.remove(hash);
        }
        for hash in live_secrets(after) {
            state.lookups.insert(hash.clone(), after.clone());
        }
        // What verify counts on the key item is not a management write's to overwrite.
        let key_item = ApiKey {
            quota_usage: if change.reset_quota_usage { after.quota_usage } else { stored.quota_usage },
            last_used_at: stored.last_used_at,
            ..after.clone()
        };
        state.keys.insert(address, key_item);
        state.audit.push(change.audit.clone());
        if let Some(record) = change.idempotency {
            state.idempotency.insert(record.lookup.clone(), record.clone());
        }
        Ok(SaveOutcome::Saved)
    }
}

impl IdentityReader for MemoryStore {
    async fn get_identity(&self, company: &CompanyId, id: &IdentityId) -> Result<Option<Identity>, StoreError> {
        let state = self.lock();
        let found = state.identities.get(&(company.clone(), id.clone())).cloned();
        Ok(found.map(|identity| Identity { keys: state.identity_keys(company, id), ..identity }))
    }

    async fn find_identity(&self, company: &CompanyId, external_id: &str) -> Result<Option<Identity>, StoreError> {
        let id = {
            let state = self.lock();
            let mut same =
                state.identities.values().filter(|i| i.company_id == *company && i.external_id == external_id);
            same.next().map(|i| i.id.clone())
        };
        match id {
            Some(id) => self.get_identity(company, &id).await,
            None => Ok(None),
        }
    }
}

impl IdentityWriter for MemoryStore {
    /// The DynamoDB store's conditions, in its order: the idempotency record, the version read
    /// (and, for a delete, no active key), the `externalId`.
    async fn write_identity(&self, write: IdentityWrite<'_>) -> Result<IdentityOutcome, StoreError> {
        let mut state = self.lock();
        if state.idempotency_taken(write.idempotency, write.now) {
            return Ok(IdentityOutcome::IdempotencyKeyTaken);
        }
        if let Some(before) = write.before {
            let address = (before.company_id.clone(), before.id.clone());
            let stored = state.identities.get(&address);
            let keys = state.identity_keys(&before.company_id, &before.id);
            let moved = write.after.is_none() && (keys.active > 0 || keys != before.keys);
            if stored.is_none_or(|s| s.version != before.version) || moved {
                return Ok(IdentityOutcome::Changed);
            }
        }
        if let Some(after) = write.after {
            let taken = state
                .identities
                .values()
                .any(|i| i.company_id == after.company_id && i.external_id == after.external_id && i.id != after.id);
            if taken {
                return Ok(IdentityOutcome::ExternalIdTaken);
            }
        }
        match (write.before, write.after) {
            (_, Some(after)) => {
                state.identities.insert((after.company_id.clone(), after.id.clone()), after.clone());
            }
            (Some(before), None) => {
                state.identities.remove(&(before.company_id.clone(), before.id.clone()));
            }
            (None, None) => {}
        }
        if let Some(record) = write.idempotency {
            state.idempotency.insert(record.lookup.clone(), record.clone());
        }
        Ok(IdentityOutcome::Written)
    }
}

impl SecretLookup for MemoryStore {
    async fn find_secret(&self, hash: &SecretHash) -> Result<Option<SecretRecord>, StoreError> {
        let key = self.lock().lookups.get(hash).cloned();
        Ok(key.map(|key| SecretRecord { hash: hash.clone(), key }))
    }

    async fn find_secret_pair(
        &self,
        first: &SecretHash,
        second: &SecretHash,
    ) -> Result<(Option<SecretRecord>, Option<SecretRecord>), StoreError> {
        Ok((self.find_secret(first).await?, self.find_secret(second).await?))
    }
}

impl UsageRecorder for MemoryStore {
    /// The rate window, the named limits, then the quota on the key item, all under one lock,
    /// so the order is exact and a refused use counts against no limit.
    async fn consume(&self, request: UsageRequest<'_>) -> Result<UsageOutcome, StoreError> {
        let mut state = self.lock();
        let key = request.key;
        let rate = request.rate.map(|(limit, window)| ((key.company_id.clone(), key.id.clone(), window.number), limit));
        let named: Vec<(String, u64)> = request
            .named
            .iter()
            .map(|take| {
                let pk = super::items::named_limit_pk(
                    &key.company_id,
                    &key.id,
                    take.owner,
                    &take.limit.name,
                    take.window.number,
                );
                let used = state.named_used.get(&pk).copied().unwrap_or(0);
                (pk, used)
            })
            .collect();
        let named_found: Vec<u64> = named.iter().map(|(_, used)| *used).collect();
        let rate_used = match &rate {
            Some((slot, limit)) => {
                let used = state.rate_used.get(slot).copied().unwrap_or(0);
                if used >= limit.limit {
                    return Ok(UsageOutcome::RateLimited { refused: None, named_used: named_found });
                }
                Some(used + 1)
            }
            None => None,
        };
        if let Some(i) =
            request.named.iter().zip(&named_found).position(|(take, used)| !take.limit.admits(*used, take.cost))
        {
            return Ok(UsageOutcome::RateLimited { refused: Some(i), named_used: named_found });
        }
        let quota_used = match request.quota {
            Some((quota, period)) => {
                let Some(stored) = state.keys.get_mut(&(key.company_id.clone(), key.id.clone())) else {
                    return Ok(UsageOutcome::QuotaExceeded { quota_used: quota.max, named_used: named_found });
                };
                // A period counted by a clock ahead of this one is counted in, as in the real store.
                let usage = match stored.quota_usage {
                    usage if usage.period >= period => usage,
                    _ => QuotaUsage { period, used: 0 },
                };
                if !quota.admits(usage.used, request.cost) {
                    return Ok(UsageOutcome::QuotaExceeded { quota_used: usage.used, named_used: named_found });
                }
                stored.quota_usage = QuotaUsage { used: usage.used + request.cost, ..usage };
                stored.last_used_at = Some(request.now);
                Some(usage.used + request.cost)
            }
            None => None,
        };
        if let (Some((slot, _)), Some(used)) = (rate, rate_used) {
            state.rate_used.insert(slot, used);
        }
        let mut named_used = Vec::with_capacity(named.len());
        for ((pk, used), take) in named.into_iter().zip(request.named) {
            state.named_used.insert(pk, used + take.cost);
            named_used.push(used + take.cost);
        }
        Ok(UsageOutcome::Admitted { rate_used, named_used, quota_used, last_used_written: quota_used.is_some() })
    }

    async fn touch_last_used(&self, key: &ApiKey, now: DateTime<Utc>) {
        let mut state = self.lock();
        let Some(stored) = state.keys.get_mut(&(key.company_id.clone(), key.id.clone())) else { return };
        if !stored.last_use_due(now) {
            return;
        }
        stored.last_used_at = Some(now);
        for hash in live_secrets(key) {
            if let Some(copy) = state.lookups.get_mut(hash) {
                copy.last_used_at = Some(now);
            }
        }
    }
}
