//! Leak reports: a secret scanner found tokens in public; each that is a secret of this service
//! gets its company's leak policy, once.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::model::{IdempotencyKey, KeyType, PlaintextKey};
use crate::store::{
    AdminCounter, CompanySettingsReader, IdempotencyReader, IdentityReader, KeyReader, KeyWriter, LeakLedger,
    SecretLookup, UsageRecorder,
};

use super::DomainError;
use super::keys::{LeakReport, report_leak};

/// What a reported token was, as the scanner's feedback labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A secret key's secret of this service: a key's current secret or a previous one whose
    /// lookup is still kept (both acted on while the key is not deleted), or a deleted key's.
    TruePositive,
    /// Not in this service's format, a publishable key (public by design), or a well-formed
    /// string no key ever had.
    FalsePositive,
}

/// One reported token: nothing for a string not in the service's format; else a read of the
/// report's marker, a lookup of its hash, the company's settings, one key write (a revoking
/// delete or an audit record) and the marker's put, whatever the token.
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
         + LeakLedger
     ),
    token: &str,
    report: &LeakReport,
    now: DateTime<Utc>,
) -> Result<Verdict, DomainError> {
    // A publishable key is public by design (web pages, apps): found in public, it is no leak,
    // and acting on it would let anyone revoke a company's publishable keys.
    let Some((KeyType::Secret, plaintext)) = PlaintextKey::parse(token) else { return Ok(Verdict::FalsePositive) };
    let header = report_header(token, report)?;
    // A report handled before is answered as then, whatever happened to the key since (its
    // old secret's lookup is gone once the key is revoked).
    if store.leak_handled(header.as_str()).await? {
        return Ok(Verdict::TruePositive);
    }
    let Some(found) = store.find_secret(&plaintext.hash()).await? else { return Ok(Verdict::FalsePositive) };
    // Any secret of a live key, its previous one past its grace included: a holder of a leaked
    // secret who rolled the key to a secret of their own must not keep it.
    if found.key.is_deleted() {
        return Ok(Verdict::TruePositive);
    }
    let policy = store.company_settings(&found.key.company_id).await?.leak_policy;
    report_leak(store, &found.key, policy, report, &header, now).await?;
    store.record_leak_handled(header.as_str(), now).await?;
    Ok(Verdict::TruePositive)
}

/// The idempotency key of one report of one token: the same token found at the same place is
/// the same report (answered as the first, writing nothing); found elsewhere, it is news.
fn report_header(token: &str, report: &LeakReport) -> Result<IdempotencyKey, DomainError> {
    let mut hash = Sha256::new();
    for part in [Some(token), report.url.as_deref(), report.source.as_deref()] {
        let part = part.unwrap_or("").as_bytes();
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    let name = format!("leak-report-{}", hex::encode(hash.finalize()));
    IdempotencyKey::parse(&name).map_err(|e| DomainError::Internal(e.to_string()))
}
