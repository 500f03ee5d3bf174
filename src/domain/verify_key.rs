//! `POST /keys/verify`: the caller's check and the verified key's, from one read at most.

use chrono::{DateTime, Utc};

use crate::model::SecretHash;
use crate::store::{IdentityReader, ImportLedger, SecretLookup, SecretRecord, UsageRecorder};

use super::caller::Credential;
use super::imports_seen::ImportsSeen;
use super::key_cache::{KeyCache, ReadAt};
use super::verify::{Examined, Verdict, VerifyCode, VerifyRequest, admit, examine_found, presented_hash};
use super::{DomainError, Need};

/// What this instance keeps for verify: the callers it authenticated, and the keys it verified.
#[derive(Debug, Clone, Copy)]
pub struct KeptKeys<'a> {
    /// The callers, for `CallerCacheSeconds`.
    pub callers: &'a KeyCache,
    /// The keys verified `VALID` without limits, for `VerifyCacheSeconds`.
    pub verified: &'a KeyCache,
    /// Whether each company holds imported keys, for `CallerCacheSeconds`.
    pub imports: &'a ImportsSeen,
}

/// `POST /keys/verify` in one round trip at most: the caller's check and the key's.
///
/// A caller this instance keeps (`kept.callers`) costs no read: the verified key's lookup item
/// is the one read, unless this instance keeps that too (`kept.verified`, when
/// `VerifyCacheSeconds` is set), and then nothing is read. Otherwise both are addressed by the
/// hash of what was presented, so both come in one read. The caller is authenticated from its
/// item exactly as a read call is (401/403 before anything of the other item is looked at),
/// then the key is verified, every check at this call's time; the caller's own use is counted
/// (429) once the request is found well formed, before anything of the key is.
pub async fn verify_for_caller(
    store: &(impl SecretLookup + UsageRecorder + IdentityReader + ImportLedger),
    kept: KeptKeys<'_>,
    now: DateTime<Utc>,
    credential: Credential<'_>,
    request: VerifyRequest<'_>,
) -> Result<Verdict, DomainError> {
    let caller_hash = credential.hash()?;
    let target_hash = presented_hash(request.key);
    let ((caller_found, caller_read), (target_found, target_read)) = match &target_hash {
        Some(target_hash) => match kept.callers.find_kept(&caller_hash, now) {
            Some(caller) => ((Some(caller), None), kept.verified.find(store, target_hash, now).await?),
            None => {
                let (caller_read, target_read) = (kept.callers.before_read(), kept.verified.before_read());
                let (caller, target) = store.find_secret_pair(&caller_hash, target_hash).await?;
                ((caller, Some(caller_read)), (target, Some(target_read)))
            }
        },
        None => (kept.callers.find(store, &caller_hash, now).await?, (None, None)),
    };
    let caller = kept.callers.caller(&credential, caller_found, caller_read, &caller_hash, now, Need::Verify)?;
    // The caller's use is counted once the request is known to be well formed: `admit` counts
    // it after the limits the request names are found, so a 400 costs the caller nothing.
    let charge = caller.charge(store, now);
    let request = VerifyRequest { company: Some(&caller.company), ..request };
    let Some(target_hash) = target_hash else {
        // Not in the service's format: perhaps an imported key's plaintext, looked up only for
        // a company that holds imported keys.
        let foreign = SecretHash::of_foreign(request.key);
        let found = match foreign {
            Some(hash) if kept.imports.holds(store, &caller.company, now).await? => {
                Some((store.find_secret(&hash).await?, hash))
            }
            _ => None,
        };
        let Some((found, hash)) = found else {
            charge.await?;
            return Ok(Verdict::not_found());
        };
        return Box::pin(checked_and_counted(store, found, &hash, now, &request, charge)).await;
    };
    let to_keep = keepable(kept.verified, &target_found, target_read);
    // Boxed, as the limits' counting is the largest part of a verify's future.
    let verdict = Box::pin(checked_and_counted(store, target_found, &target_hash, now, &request, charge)).await?;
    // What the table just said replaces what was kept: a key it refused is forgotten, so a
    // verify served from memory never answers an older `VALID` after a newer refusal.
    match (to_keep, verdict.code) {
        (Some((Some(record), read)), VerifyCode::Valid) => kept.verified.keep(record, now, read),
        (Some(_), _) => kept.verified.forget(&target_hash),
        // Served from memory: its `lastUsedAt` was written if it was due.
        (None, VerifyCode::Valid) => kept.verified.used(&target_hash, now),
        (None, _) => {}
    }
    Ok(verdict)
}

/// Every check on the item read for `hash`, then (if it passes) its limits; the caller's own
/// use (`charge`) is counted either way, before the key's.
async fn checked_and_counted(
    store: &(impl UsageRecorder + IdentityReader),
    found: Option<SecretRecord>,
    hash: &SecretHash,
    now: DateTime<Utc>,
    request: &VerifyRequest<'_>,
    charge: impl std::future::Future<Output = Result<(), DomainError>>,
) -> Result<Verdict, DomainError> {
    match examine_found(found, hash, now, request) {
        Examined::Refused(verdict) => {
            charge.await?;
            Ok(verdict)
        }
        Examined::Passed(key, _) => admit(store, key, now, request, charge).await,
    }
}

/// The verified key's item just read (`None`: found nothing), with when, if the cache is on.
fn keepable(
    verified: &KeyCache,
    found: &Option<SecretRecord>,
    read: Option<ReadAt>,
) -> Option<(Option<SecretRecord>, ReadAt)> {
    if !verified.is_on() {
        return None;
    }
    Some((found.clone(), read?))
}
