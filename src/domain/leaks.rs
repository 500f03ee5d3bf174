//! Leak reports: a secret scanner found tokens in public; each that is a secret of this service
//! gets its company's leak policy, once.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::{IdempotencyKey, PlaintextKey};
use crate::store::{
    AdminCounter, CompanySettingsReader, IdempotencyReader, IdentityReader, KeyReader, KeyWriter, SecretLookup,
    UsageRecorder,
};

use super::DomainError;
use super::keys::{LeakReport, report_leak};

/// What a reported token was, as the scanner's feedback labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A secret of this service: a key's current secret, its previous one (in its grace period
    /// or past it), or a deleted key's. Only a live one (current, or previous in its grace
    /// period, of a key not deleted) is acted on.
    TruePositive,
    /// Not in this service's format, or a well-formed string no key ever had.
    FalsePositive,
}

/// One reported token: at most one read for a string not in the service's format (none), a
/// lookup of its hash, the company's settings, and one key write (a revoking delete or an
/// audit record), whatever the token.
pub async fn judge_reported_token(
    store: &(
         impl SecretLookup
         + CompanySettingsReader
         + KeyReader
         + KeyWriter
         + AdminCounter
         + IdentityReader
         + IdempotencyReader
         + UsageRecorder
     ),
    token: &str,
    report: &LeakReport,
    now: DateTime<Utc>,
) -> Result<Verdict, DomainError> {
    let Some((_, plaintext)) = PlaintextKey::parse(token) else { return Ok(Verdict::FalsePositive) };
    let Some(found) = store.find_secret(&plaintext.hash()).await? else { return Ok(Verdict::FalsePositive) };
    let key = &found.key;
    let live = !key.is_deleted()
        && (found.hash.matches(&key.secret_hash)
            || key.previous_secret.as_ref().is_some_and(|p| p.hash.matches(&found.hash) && p.valid_until > now));
    if !live {
        return Ok(Verdict::TruePositive);
    }
    let policy = store.company_settings(&key.company_id).await?.leak_policy;
    report_leak(store, key, policy, report, &report_header(token, report)?, now).await?;
    Ok(Verdict::TruePositive)
}

/// The idempotency key of one report of one token: the same token found at the same place is
/// the same report (answered as the first, writing nothing); found elsewhere, it is news.
fn report_header(token: &str, report: &LeakReport) -> Result<IdempotencyKey, DomainError> {
    let mut hash = Sha256::new();
    for part in [Some(token), report.url.as_deref(), report.source.as_deref()] {
        hash.update(part.unwrap_or("").as_bytes());
        hash.update([0]);
    }
    let name = format!("leak-report-{}", hex::encode(hash.finalize()));
    IdempotencyKey::parse(&name).map_err(|e| DomainError::Internal(e.to_string()))
}
