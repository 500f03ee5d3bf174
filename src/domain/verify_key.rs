//! `POST /keys/verify`: the caller's check and the verified key's, from one read.

use chrono::{DateTime, Utc};

use crate::store::{SecretLookup, UsageRecorder};

use super::caller::Credential;
use super::caller_cache::CallerCache;
use super::verify::{Examined, Verdict, VerifyRequest, admit, examine_found, presented_hash};
use super::{DomainError, Need};

/// `POST /keys/verify` in one round trip: the caller's check and the key's, from one read.
///
/// A caller this instance keeps (`callers`) costs no read: the verified key's lookup item is
/// the one read. Otherwise both are addressed by the hash of what was presented, so both come
/// in one read. The caller is authenticated from its item exactly as a read call is (401/403
/// before anything of the other item is looked at; its own limits, 429), then the key is
/// verified.
pub async fn verify_for_caller(
    store: &(impl SecretLookup + UsageRecorder),
    callers: &CallerCache,
    now: DateTime<Utc>,
    credential: Credential<'_>,
    request: VerifyRequest<'_>,
) -> Result<Verdict, DomainError> {
    let caller_hash = credential.hash()?;
    let target_hash = presented_hash(request.key);
    let ((caller_found, read), target_found) = match &target_hash {
        Some(target_hash) => match callers.find_kept(&caller_hash, now) {
            Some(kept) => ((Some(kept), None), store.find_secret(target_hash).await?),
            None => {
                let read = callers.before_read();
                let (caller, target) = store.find_secret_pair(&caller_hash, target_hash).await?;
                ((caller, Some(read)), target)
            }
        },
        None => (callers.find(store, &caller_hash, now).await?, None),
    };
    let caller = callers.caller(&credential, caller_found, read, &caller_hash, now, Need::Verify)?;
    caller.charge(store, now).await?;
    let Some(target_hash) = target_hash else { return Ok(Verdict::not_found()) };
    let request = VerifyRequest { company: Some(&caller.company), ..request };
    match examine_found(target_found, &target_hash, now, &request) {
        Examined::Refused(verdict) => Ok(verdict),
        Examined::Passed(key, _) => admit(store, key, now).await,
    }
}
