//! Keys' lookup items this instance read, kept for a fixed time under the hash of the secret
//! presented, so that a call they serve costs no read of them:
//!
//! - the callers it authenticated, for `CallerCacheSeconds`: a warm caller of verify and of
//!   the read calls costs no read of its own (writes read their caller afresh);
//! - the keys it read from the table and verified `VALID` that have neither a rate limit nor a
//!   quota, for `VerifyCacheSeconds` (off unless set): a verify by a warm caller of a warm key
//!   costs no read at all.
//!
//! What is kept is the lookup item as the table answered it (the key's copy, which holds the
//! secret's hash) less its metadata and tags, which no check and no verify answer reads: of
//! secret keys only, so never a plaintext (a publishable key's item holds its own). Every call
//! still runs the whole check on it (status, expiry, grace, IP, permission, scope) at its own
//! time, so only a change made in the table by another process (a delete, a deactivation, a
//! roll, a narrowed ACL, a limit added) can take up to the lifetime to be seen here; a change
//! this process makes is seen at once (`forget_key`). In AWS every route is its own function,
//! so verify's instances see every change that way.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{CompanyId, KeyId, KeyType, SecretHash};
use crate::store::{SecretLookup, SecretRecord};

use super::DomainError;
use super::caller::{Caller, Credential, Need, SealMaterial};

/// The most callers one instance keeps: a company's back ends use a few root keys.
pub const MAX_CALLERS: usize = 1024;
/// The most bytes the kept callers may take (their keys as JSON, plus a fixed overhead each):
/// a small share of the smallest function's 128 MB.
pub const MAX_CALLER_BYTES: usize = 4 * 1024 * 1024;
/// The share of the entries and of the bytes one company's callers may take: any secret key
/// is a caller (of `GET /me`), so a company that may create keys can make thousands of them;
/// it fills its own share and never evicts another company's callers.
pub const MAX_CALLERS_PER_COMPANY: usize = MAX_CALLERS / 8;
const MAX_COMPANY_BYTES: usize = MAX_CALLER_BYTES / 8;
/// A caller larger than this (a key at the ACL caps) is checked afresh each time rather than
/// crowd out the others.
const MAX_ENTRY_BYTES: usize = MAX_CALLER_BYTES / 16;
/// What an entry costs beyond its key's JSON: the map's slot, the hash, the timestamps.
const ENTRY_OVERHEAD: usize = 256;

/// Lookup items read by this instance, by the hash of the secret presented, for a fixed time.
pub struct KeyCache {
    ttl: TimeDelta,
    kind: Keeps,
    entries: Mutex<Entries>,
}

/// What a cache keeps, and so which items it takes and what of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keeps {
    /// Callers that passed their check, less their metadata and tags (no caller check reads
    /// them).
    Callers,
    /// Keys verified `VALID` without a rate limit, named limits, quota (whose every use must be
    /// counted in the table) or identity (whose limits and `meta` the answer reads), less their
    /// metadata and tags too.
    VerifiedKeys,
}

/// What each string of a kept key's ACL holds beyond its JSON: the `String` itself and its
/// allocation's overhead.
const STRING_OVERHEAD: usize = 40;

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Entry>,
    bytes: usize,
    /// How many times this instance has forgotten a key it changed (`forget_key`): a caller
    /// read before one of those is not kept, since its read may predate the change (the local
    /// server serves requests concurrently).
    generation: u64,
}

/// When a caller's lookup item was read, as `Entries::generation` stood before the read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReadAt(u64);

struct Entry {
    record: SecretRecord,
    read_at: DateTime<Utc>,
    bytes: usize,
}

/// Its lifetime and size only: the entries are filed under secrets' hashes, never printed.
impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (callers, bytes) = self.usage();
        f.debug_struct("KeyCache")
            .field("kind", &self.kind)
            .field("ttl", &self.ttl)
            .field("entries", &callers)
            .field("bytes", &bytes)
            .finish()
    }
}

impl KeyCache {
    /// Keeps each caller `seconds` after its lookup item was read; 0 keeps none.
    pub fn callers(seconds: u64) -> Self {
        Self::keeping(Keeps::Callers, seconds)
    }

    /// Keeps each key verified `VALID` without limits `seconds` after its lookup item was read;
    /// 0 keeps none.
    pub fn verified_keys(seconds: u64) -> Self {
        Self::keeping(Keeps::VerifiedKeys, seconds)
    }

    fn keeping(kind: Keeps, seconds: u64) -> Self {
        let ttl = TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX).min(i64::from(u32::MAX)));
        Self { ttl, kind, entries: Mutex::default() }
    }

    /// Whether this cache keeps anything (its lifetime is not 0).
    pub fn is_on(&self) -> bool {
        self.ttl > TimeDelta::zero()
    }

    /// How many items are kept now, and the bytes they are counted at.
    pub fn usage(&self) -> (usize, usize) {
        let entries = self.lock();
        (entries.by_hash.len(), entries.bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The lookup item kept for `hash`, if it was read less than the lifetime before `now`. A
    /// kept caller whose `lastUsedAt` is due for a refresh is handed out as kept (so the call
    /// refreshes it in the table) and kept as refreshed, so the next calls do not write it again;
    /// a kept verified key is marked so only once its verify has written it (`used`).
    pub(super) fn find_kept(&self, hash: &SecretHash, now: DateTime<Utc>) -> Option<SecretRecord> {
        let mut entries = self.lock();
        let entry = entries.by_hash.get_mut(hash.as_str())?;
        if !(entry.read_at <= now && now < entry.read_at + self.ttl) {
            let gone = entries.by_hash.remove(hash.as_str()).map_or(0, |e| e.bytes);
            entries.bytes -= gone;
            return None;
        }
        let record = entry.record.clone();
        if self.kind == Keeps::Callers {
            entry.record.key.mark_used(now);
        }
        Some(record)
    }

    /// Marks the key kept for `hash` as used at `now`, if its `lastUsedAt` was due: its verify
    /// has just passed and so written it.
    pub(super) fn used(&self, hash: &SecretHash, now: DateTime<Utc>) {
        let mut entries = self.lock();
        if let Some(entry) = entries.by_hash.get_mut(hash.as_str()) {
            entry.record.key.mark_used(now);
        }
    }

    /// Whether this cache takes `record`: secret keys only, so no publishable plaintext is ever
    /// kept; and for verified keys, only those whose uses need no count.
    fn takes(&self, record: &SecretRecord) -> bool {
        let key = &record.key;
        self.is_on()
            && key.key_type == KeyType::Secret
            && match self.kind {
                Keeps::Callers => true,
                Keeps::VerifiedKeys => {
                    key.policy.rate_limit.is_none()
                        && key.policy.quota.is_none()
                        && key.policy.ratelimits.is_empty()
                        && key.policy.identity_id.is_none()
                }
            }
    }

    /// Keeps `record`, just read and passed, read at `now`. Its `lastUsedAt` is kept as this call
    /// refreshes it (if due), so the calls served from it do not write it again within the
    /// minute. When full, expired entries go first, then the oldest of its company once that
    /// company holds its share, then the oldest.
    pub(super) fn keep(&self, mut record: SecretRecord, now: DateTime<Utc>, read: ReadAt) {
        if !self.takes(&record) {
            return;
        }
        record.key.mark_used(now);
        // Metadata and tags are never read from a kept key (the checks, limits, bounds, `GET /me`
        // and verify's answer use none of them), and they are what costs memory far beyond their
        // JSON: 4 KB of metadata such as `[0,0,…]` holds over 64 KB of `serde_json::Value`s. Not
        // kept, so the bytes counted (the JSON, and each ACL string's own overhead) bound what
        // is held.
        record.key.labels.metadata = serde_json::Map::new();
        record.key.labels.tags = Vec::new();
        let Ok(json) = serde_json::to_vec(&record.key) else { return };
        let strings = held_strings(&record.key);
        let bytes = json.len() + strings * STRING_OVERHEAD + record.hash.as_str().len() + ENTRY_OVERHEAD;
        if bytes > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.lock();
        if entries.generation != read.0 {
            return;
        }
        if let Some(old) = entries.by_hash.remove(record.hash.as_str()) {
            entries.bytes -= old.bytes;
        }
        let ttl = self.ttl;
        let before = entries.by_hash.len();
        entries.by_hash.retain(|_, e| e.read_at <= now && now < e.read_at + ttl);
        if entries.by_hash.len() != before {
            entries.bytes = entries.by_hash.values().map(|e| e.bytes).sum();
        }
        let company = record.key.company_id.clone();
        loop {
            let (mut count, mut held, mut oldest) = (0, 0, None::<(&String, DateTime<Utc>)>);
            for (h, e) in entries.by_hash.iter().filter(|(_, e)| e.record.key.company_id == company) {
                count += 1;
                held += e.bytes;
                if oldest.is_none_or(|(_, at)| e.read_at < at) {
                    oldest = Some((h, e.read_at));
                }
            }
            if count < MAX_CALLERS_PER_COMPANY && held + bytes <= MAX_COMPANY_BYTES {
                break;
            }
            let Some(oldest) = oldest.map(|(h, _)| h.clone()) else { break };
            let gone = entries.by_hash.remove(&oldest).map_or(0, |e| e.bytes);
            entries.bytes -= gone;
        }
        while entries.by_hash.len() >= MAX_CALLERS || entries.bytes + bytes > MAX_CALLER_BYTES {
            let Some(oldest) = entries.by_hash.iter().min_by_key(|(_, e)| e.read_at).map(|(h, _)| h.clone()) else {
                break;
            };
            let gone = entries.by_hash.remove(&oldest).map_or(0, |e| e.bytes);
            entries.bytes -= gone;
        }
        entries.bytes += bytes;
        let hash = record.hash.as_str().to_owned();
        entries.by_hash.insert(hash, Entry { record, read_at: now, bytes });
    }

    /// Drops what is kept for `hash`: the table was just read and refused it.
    pub(super) fn forget(&self, hash: &SecretHash) {
        let mut entries = self.lock();
        if let Some(old) = entries.by_hash.remove(hash.as_str()) {
            entries.bytes -= old.bytes;
        }
    }

    /// Drops every secret of one key: this instance has just changed, rolled or deleted it, so
    /// its next call as a caller is checked against the table.
    pub fn forget_key(&self, company: &CompanyId, id: &KeyId) {
        let mut entries = self.lock();
        entries.generation += 1;
        entries.by_hash.retain(|_, e| !(e.record.key.company_id == *company && e.record.key.id == *id));
        entries.bytes = entries.by_hash.values().map(|e| e.bytes).sum();
    }

    /// Where a read about to start stands: pass it to `caller` with what the read found.
    pub(super) fn before_read(&self) -> ReadAt {
        ReadAt(self.lock().generation)
    }

    /// The caller's lookup item: kept, or read (`None` from a read means no such secret).
    /// `Some` says when it was read, so that a passed check may keep it.
    pub(super) async fn find(
        &self,
        store: &impl SecretLookup,
        hash: &SecretHash,
        now: DateTime<Utc>,
    ) -> Result<(Option<SecretRecord>, Option<ReadAt>), DomainError> {
        match self.find_kept(hash, now) {
            Some(record) => Ok((Some(record), None)),
            None => {
                let read = self.before_read();
                Ok((store.find_secret(hash).await?, Some(read)))
            }
        }
    }

    /// The caller `credential` makes from `found`, the lookup item kept or read for `hash`: a
    /// read one is kept when the caller passes, and a refused one is forgotten.
    pub(super) fn caller(
        &self,
        credential: &Credential<'_>,
        found: Option<SecretRecord>,
        read: Option<ReadAt>,
        hash: &SecretHash,
        now: DateTime<Utc>,
        need: Need,
    ) -> Result<Caller, DomainError> {
        let to_keep = read.and_then(|read| Some((found.clone()?, read)));
        match credential.caller(found, hash, now, need) {
            Ok(caller) => {
                if let Some((record, read)) = to_keep {
                    self.keep(record, now, read);
                }
                Ok(Caller { seal: SealMaterial::of(credential.key.unwrap_or_default()), ..caller })
            }
            Err(refused) => {
                self.forget(hash);
                Err(refused)
            }
        }
    }
}

/// How many strings a key's ACL holds (its permissions and scope values); an allowlist's
/// networks are held in place, within their JSON's size.
fn held_strings(key: &crate::model::ApiKey) -> usize {
    let entries = key.policy.acl.iter().flat_map(|acl| acl.entries());
    entries
        .map(|e| {
            e.permissions.len()
                + e.scope.dimensions().iter().filter_map(|(_, v)| *v).map(<[String]>::len).sum::<usize>()
        })
        .sum()
}

/// Which caller item a call may be authenticated from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Verify and the read calls (get, list, the audit trail, `GET /me`): the kept caller when
    /// it was read within the cache's lifetime, else one strongly consistent read.
    Kept,
    /// Writes: what the table says now, one strongly consistent read, never the kept caller.
    Table,
}

/// Authenticates a call from its caller's item as `freshness` allows; an item read is kept when
/// the caller passes, and a refused caller is forgotten.
pub async fn authenticate_as(
    store: &impl SecretLookup,
    callers: &KeyCache,
    now: DateTime<Utc>,
    credential: Credential<'_>,
    need: Need,
    freshness: Freshness,
) -> Result<Caller, DomainError> {
    let hash = credential.hash()?;
    let (found, read) = match freshness {
        Freshness::Kept => callers.find(store, &hash, now).await?,
        Freshness::Table => {
            let read = callers.before_read();
            (store.find_secret(&hash).await?, Some(read))
        }
    };
    callers.caller(&credential, found, read, &hash, now, need)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ApiKey, LAST_USED_GRANULARITY, PlaintextKey};

    fn start() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn record(key_type: KeyType) -> SecretRecord {
        let plaintext = PlaintextKey::generate(key_type);
        let company = CompanyId::parse("acme", "company").unwrap();
        let (mut key, _) = ApiKey::plain_for_tests(company, KeyId::generate(), start());
        key.key_type = key_type;
        key.secret_hash = plaintext.hash();
        key.publishable_key = (key_type == KeyType::Publishable).then(|| plaintext.clone());
        key.last_used_at = Some(start());
        SecretRecord { hash: plaintext.hash(), key }
    }

    #[test]
    fn a_kept_caller_lasts_its_lifetime_and_not_a_moment_longer() {
        let cache = KeyCache::callers(10);
        let kept = record(KeyType::Secret);
        cache.keep(kept.clone(), start(), cache.before_read());
        assert!(cache.find_kept(&kept.hash, start() + TimeDelta::milliseconds(9_999)).is_some());
        assert!(cache.find_kept(&kept.hash, start() + TimeDelta::seconds(10)).is_none());
        assert_eq!(cache.usage(), (0, 0), "an expired entry is dropped when met");
        cache.keep(kept.clone(), start(), cache.before_read());
        assert!(cache.find_kept(&kept.hash, start() - TimeDelta::seconds(1)).is_none(), "a clock that went back");
    }

    #[test]
    fn zero_keeps_nothing_and_publishable_keys_are_never_kept() {
        let off = KeyCache::callers(0);
        let secret = record(KeyType::Secret);
        off.keep(secret.clone(), start(), off.before_read());
        assert!(off.find_kept(&secret.hash, start()).is_none());
        let on = KeyCache::callers(60);
        let publishable = record(KeyType::Publishable);
        on.keep(publishable.clone(), start(), on.before_read());
        assert_eq!(on.usage(), (0, 0), "a publishable key holds its plaintext: never kept");
    }

    #[test]
    fn verified_keys_without_limits_only_are_kept_less_their_labels_and_acl_strings_counted() {
        let cache = KeyCache::verified_keys(60);
        let mut labelled = record(KeyType::Secret);
        labelled.key.labels.tags = vec!["gold".to_owned()];
        labelled.key.labels.metadata.insert("zeros".to_owned(), serde_json::json!(vec![0; 1000]));
        let permissions = (0..64).map(|i| crate::model::Permission::parse(&format!("p{i}"), "p").unwrap()).collect();
        let entry = crate::model::AclEntry { scope: crate::model::Scope::default(), permissions };
        labelled.key.policy.acl = Some(crate::model::Acl::parse(vec![entry], "acl").expect("an ACL"));
        cache.keep(labelled.clone(), start(), cache.before_read());
        let kept = cache.find_kept(&labelled.hash, start()).expect("kept");
        assert!(kept.key.labels.metadata.is_empty() && kept.key.labels.tags.is_empty(), "never read: not held");
        assert_eq!(kept.key.policy, labelled.key.policy, "every check reads it");
        assert!(cache.usage().1 > 64 * (std::mem::size_of::<String>() + 2), "{:?}", cache.usage());

        for limited in [
            |k: &mut ApiKey| k.policy.rate_limit = Some(crate::model::RateLimit { limit: 5, period_seconds: 60 }),
            |k: &mut ApiKey| {
                k.policy.quota = Some(crate::model::Quota { max: 5, renewal_seconds: None, started_at: start() })
            },
            |k: &mut ApiKey| {
                let limit =
                    crate::model::NamedLimit { name: "tokens".into(), limit: 5, period_seconds: 60, auto_apply: false };
                k.policy.ratelimits = vec![limit];
            },
            |k: &mut ApiKey| k.policy.identity_id = Some(crate::model::IdentityId::generate()),
        ] {
            let mut counted = record(KeyType::Secret);
            limited(&mut counted.key);
            cache.keep(counted.clone(), start(), cache.before_read());
            assert!(cache.find_kept(&counted.hash, start()).is_none(), "each use of a limited key is counted");
        }
        let publishable = record(KeyType::Publishable);
        cache.keep(publishable.clone(), start(), cache.before_read());
        assert!(cache.find_kept(&publishable.hash, start()).is_none(), "no plaintext is kept");
        assert_eq!(cache.usage().0, 1);
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_forgets_the_oldest() {
        let cache = KeyCache::callers(60);
        // Spread over enough companies that none reaches its share.
        let companies = 2 * MAX_CALLERS / MAX_CALLERS_PER_COMPANY;
        let records: Vec<_> = (0..=MAX_CALLERS)
            .map(|i| {
                let mut r = record(KeyType::Secret);
                r.key.company_id = CompanyId::parse(&format!("c{}", i % companies), "company").unwrap();
                r
            })
            .collect();
        for (i, r) in records.iter().enumerate() {
            cache.keep(r.clone(), start() + TimeDelta::milliseconds(i as i64), cache.before_read());
        }
        let (count, bytes) = cache.usage();
        assert_eq!(count, MAX_CALLERS);
        assert!(bytes <= MAX_CALLER_BYTES);
        let now = start() + TimeDelta::seconds(2);
        assert!(cache.find_kept(&records[0].hash, now).is_none(), "the oldest went");
        assert!(cache.find_kept(&records[MAX_CALLERS].hash, now).is_some(), "the newest stays");
    }

    #[test]
    fn the_cache_is_bounded_in_bytes() {
        let cache = KeyCache::callers(60);
        let mut large = record(KeyType::Secret);
        large.key.labels.description = Some("d".repeat(MAX_ENTRY_BYTES / 2));
        let mut kept = Vec::new();
        for i in 0..40 {
            let mut r = record(KeyType::Secret);
            r.key.labels.description = large.key.labels.description.clone();
            cache.keep(r.clone(), start() + TimeDelta::milliseconds(i), cache.before_read());
            kept.push(r);
        }
        let (count, bytes) = cache.usage();
        assert!(bytes <= MAX_CALLER_BYTES && count < 40, "{count} entries, {bytes} bytes");
        let mut huge = record(KeyType::Secret);
        huge.key.labels.description = Some("d".repeat(MAX_ENTRY_BYTES));
        cache.keep(huge.clone(), start(), cache.before_read());
        assert!(cache.find_kept(&huge.hash, start()).is_none(), "one entry never takes more than its share");
    }

    #[test]
    fn a_kept_caller_is_forgotten_by_key_and_its_last_use_is_refreshed_once() {
        let cache = KeyCache::callers(60);
        let mut kept = record(KeyType::Secret);
        let used = start() - LAST_USED_GRANULARITY + TimeDelta::seconds(10);
        kept.key.last_used_at = Some(used);
        cache.keep(kept.clone(), start(), cache.before_read());
        assert_eq!(cache.find_kept(&kept.hash, start()).expect("kept").key.last_used_at, Some(used), "not due yet");
        let later = start() + TimeDelta::seconds(15);
        let due = cache.find_kept(&kept.hash, later).expect("kept");
        assert_eq!(due.key.last_used_at, Some(used), "handed out as kept: this call refreshes it");
        let next = cache.find_kept(&kept.hash, later).expect("kept");
        assert_eq!(next.key.last_used_at, Some(later), "the next call does not write it again");
        cache.forget_key(&kept.key.company_id, &kept.key.id);
        assert_eq!(cache.usage(), (0, 0));
    }

    /// A lower bound of the heap a kept key's free-form fields hold: every JSON value of its
    /// metadata is at least one `serde_json::Value` slot, every tag at least one `String`.
    fn held_at_least(key: &ApiKey) -> usize {
        fn nodes(value: &serde_json::Value) -> usize {
            1 + match value {
                serde_json::Value::Array(items) => items.iter().map(nodes).sum(),
                serde_json::Value::Object(map) => map.values().map(nodes).sum(),
                _ => 0,
            }
        }
        let metadata: usize = key.labels.metadata.values().map(nodes).sum();
        metadata * std::mem::size_of::<serde_json::Value>() + key.labels.tags.len() * std::mem::size_of::<String>()
    }

    /// Metadata at its cap (4096 bytes of JSON) of the shapes that cost most memory per byte.
    fn costly_metadata() -> Vec<serde_json::Map<String, serde_json::Value>> {
        use crate::model::input::MAX_METADATA_BYTES;
        let fits = |value: serde_json::Value| {
            let map = value.as_object().unwrap().clone();
            assert!(serde_json::to_vec(&map).unwrap().len() <= MAX_METADATA_BYTES);
            map
        };
        let n = (MAX_METADATA_BYTES - 16) / 2;
        vec![
            fits(serde_json::json!({ "z": vec![0; n] })),
            fits(serde_json::json!({ "e": vec![serde_json::json!([]); (MAX_METADATA_BYTES - 16) / 3] })),
            fits(serde_json::Value::Object(
                (0..MAX_METADATA_BYTES / 8).map(|i| (format!("{i:x}"), 0.into())).collect(),
            )),
        ]
    }

    #[test]
    fn the_bytes_counted_cover_the_memory_a_kept_caller_holds() {
        // The bound is on memory: 4 MB of kept callers must not be ten times that on the heap.
        for (metadata, kind) in
            costly_metadata().into_iter().flat_map(|m| [(m.clone(), Keeps::Callers), (m, Keeps::VerifiedKeys)])
        {
            let cache = KeyCache::keeping(kind, 60);
            let mut r = record(KeyType::Secret);
            r.key.labels.metadata = metadata;
            r.key.labels.tags = (0..crate::model::input::MAX_TAGS).map(|i| format!("{}", i % 10)).collect();
            cache.keep(r.clone(), start(), cache.before_read());
            let kept = cache.find_kept(&r.hash, start()).expect("kept");
            let (_, counted) = cache.usage();
            let held = held_at_least(&kept.key);
            assert!(held <= counted, "{kind:?}: counted {counted} bytes for an entry holding at least {held}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]
        /// Whatever metadata and tags a key holds (within their caps), the bytes counted for its
        /// kept caller cover what it holds, and the cache stays within both bounds.
        #[test]
        fn the_bounds_hold_for_any_metadata(
            sizes in proptest::collection::vec((0usize..2000, 0usize..3, 0usize..50), 1..40),
            verified in proptest::bool::ANY,
        ) {
            use crate::model::input::MAX_METADATA_BYTES;
            let kind = if verified { Keeps::VerifiedKeys } else { Keeps::Callers };
            let cache = KeyCache::keeping(kind, 60);
            for (i, (len, shape, tags)) in sizes.into_iter().enumerate() {
                let value = match shape {
                    0 => serde_json::json!(vec![0; len]),
                    1 => serde_json::json!(vec![serde_json::json!({}); len * 2 / 3]),
                    _ => serde_json::Value::Object((0..len / 4).map(|j| (format!("{j:x}"), 0.into())).collect()),
                };
                let mut metadata = serde_json::Map::new();
                metadata.insert("m".into(), value);
                proptest::prop_assume!(serde_json::to_vec(&metadata).unwrap().len() <= MAX_METADATA_BYTES);
                let mut r = record(KeyType::Secret);
                r.key.labels.metadata = metadata;
                r.key.labels.tags = (0..tags).map(|t| t.to_string()).collect();
                let at = start() + TimeDelta::milliseconds(i as i64);
                cache.keep(r.clone(), at, cache.before_read());
                let (count, bytes) = cache.usage();
                proptest::prop_assert!(count <= MAX_CALLERS && bytes <= MAX_CALLER_BYTES);
                if let Some(kept) = cache.find_kept(&r.hash, at) {
                    let held = held_at_least(&kept.key);
                    let alone = KeyCache::keeping(kind, 60);
                    alone.keep(r.clone(), at, alone.before_read());
                    proptest::prop_assert!(held <= alone.usage().1, "counted {} for {held}", alone.usage().1);
                }
            }
        }
    }

    /// A lookup whose read is overtaken by this instance revoking the key it answers (the local
    /// server serves requests concurrently): the revocation's `forget_key` lands between the
    /// read and the keep.
    struct Overtaken<'a> {
        record: SecretRecord,
        callers: &'a KeyCache,
    }

    impl SecretLookup for Overtaken<'_> {
        async fn find_secret(&self, _: &SecretHash) -> Result<Option<SecretRecord>, crate::store::StoreError> {
            self.callers.forget_key(&self.record.key.company_id, &self.record.key.id);
            Ok(Some(self.record.clone()))
        }

        async fn find_secret_pair(
            &self,
            first: &SecretHash,
            _: &SecretHash,
        ) -> Result<(Option<SecretRecord>, Option<SecretRecord>), crate::store::StoreError> {
            Ok((self.find_secret(first).await?, None))
        }
    }

    #[tokio::test]
    async fn a_caller_read_before_this_instance_revoked_it_is_not_kept_after() {
        let callers = KeyCache::callers(60);
        let plaintext = PlaintextKey::generate(KeyType::Secret);
        let mut r = record(KeyType::Secret);
        r.hash = plaintext.hash();
        r.key.secret_hash = plaintext.hash();
        r.key.policy.acl = Some(
            crate::model::Acl::parse(
                serde_json::from_value(serde_json::json!([{ "permissions": ["keys:*"] }])).unwrap(),
                "acl",
            )
            .unwrap(),
        );
        let store = Overtaken { record: r, callers: &callers };
        let credential = Credential { key: Some(plaintext.expose()), ip: None };
        for freshness in [Freshness::Kept, Freshness::Table] {
            authenticate_as(&store, &callers, start(), credential, Need::Read, freshness)
                .await
                .expect("passes as read");
            assert_eq!(callers.usage().0, 0, "{freshness:?}: kept a caller read before its revocation");
        }
    }

    #[test]
    fn one_company_cannot_crowd_another_out() {
        // Any secret key is a caller of GET /me, so a company that may create keys can make
        // thousands of callers; it may fill its own share, never evict another company's.
        let cache = KeyCache::callers(60);
        let theirs = record(KeyType::Secret);
        cache.keep(theirs.clone(), start(), cache.before_read());
        let other = CompanyId::parse("crowd", "company").unwrap();
        for i in 0..2 * MAX_CALLERS {
            let mut r = record(KeyType::Secret);
            r.key.company_id = other.clone();
            cache.keep(r, start() + TimeDelta::milliseconds(1 + i as i64), cache.before_read());
        }
        let (count, bytes) = cache.usage();
        assert!(count <= MAX_CALLERS && bytes <= MAX_CALLER_BYTES);
        let now = start() + TimeDelta::seconds(5);
        assert!(cache.find_kept(&theirs.hash, now).is_some(), "another company's caller was evicted");
        assert_eq!(count, 1 + MAX_CALLERS_PER_COMPANY, "the crowding company holds its share, no more");
    }
}
