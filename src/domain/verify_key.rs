//! `POST /keys/verify`: the caller's check and the verified key's, from one read at most.

use chrono::{DateTime, Utc};

use crate::store::{IdentityReader, SecretLookup, SecretRecord, UsageRecorder};

use super::caller::Credential;
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
}

/// `POST /keys/verify` in one round trip at most: the caller's check and the key's.
///
/// A caller this instance keeps (`kept.callers`) costs no read: the verified key's lookup item
/// is the one read, unless this instance keeps that too (`kept.verified`, when
/// `VerifyCacheSeconds` is set), and then nothing is read. Otherwise both are addressed by the
/// hash of what was presented, so both come in one read. The caller is authenticated from its
/// item exactly as a read call is (401/403 before anything of the other item is looked at; its
/// own limits, 429), then the key is verified, every check at this call's time.
pub async fn verify_for_caller(
    store: &(impl SecretLookup + UsageRecorder + IdentityReader),
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
    let Some(target_hash) = target_hash else {
        charge.await?;
        return Ok(Verdict::not_found());
    };
    let request = VerifyRequest { company: Some(&caller.company), ..request };
    let to_keep = keepable(kept.verified, &target_found, target_read);
    let verdict = match examine_found(target_found, &target_hash, now, &request) {
        Examined::Refused(verdict) => {
            charge.await?;
            verdict
        }
        Examined::Passed(key, _) => admit(store, key, now, &request, charge).await?,
    };
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
