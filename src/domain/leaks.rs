//! Leak reports: a secret scanner found tokens in public; each that is a secret of this service
//! gets its company's leak policy, once.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::model::company::LeakPolicy;
use crate::model::{ApiKey, CompanyId, IdempotencyKey, KeyId, KeyType, PlaintextKey};
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

/// Matches of one report looked up, and keys acted on, at once: a report of hundreds answers
/// within API Gateway's 30 s, while writes to one company's counters stay few enough to retry.
pub const JUDGED_AT_ONCE: usize = 8;

/// How much of its invocation's time a report keeps back when it stops starting matches: a
/// match not started by the invocation's deadline less this is left for GitHub's redelivery
/// (the report answers 503). A report of one key found at hundreds of places (acted on one
/// after another) then ends in an answer, its acts done and marked, rather than being cut off
/// mid-write by the function's `Timeout` (29 s: 20 s of matches). What is kept is for the acts
/// already started, each a few calls of up to `OPERATION_TIMEOUT` (8 s) when DynamoDB is slow,
/// and the answer.
pub const JUDGING_MARGIN: std::time::Duration = std::time::Duration::from_secs(9);

/// A store that can judge a reported token and act on its key.
pub trait LeakStore:
    SecretLookup
    + CompanySettingsReader
    + KeyReader
    + KeyWriter
    + AdminCounter
    + IdentityReader
    + IdempotencyReader
    + UsageRecorder
    + LeakLedger
{
}

impl<S> LeakStore for S where
    S: SecretLookup
        + CompanySettingsReader
        + KeyReader
        + KeyWriter
        + AdminCounter
        + IdentityReader
        + IdempotencyReader
        + UsageRecorder
        + LeakLedger
{
}

/// What one match is, found before anything is written.
enum Found {
    /// Answered with no write: not a secret of this service, a report handled before, or a
    /// deleted key's secret.
    Answered(Verdict),
    /// A secret of a key that is not deleted, to get its company's leak policy.
    Live(Box<LiveMatch>),
}

/// A match whose key is not deleted: the key as found and the match's marker.
struct LiveMatch {
    key: ApiKey,
    header: IdempotencyKey,
}

/// Every match of a report (a token and where it was found), answered in the report's order.
///
/// First every match is looked up (`JUDGED_AT_ONCE` at a time, nothing written), so a
/// token's label does not hang on what the report's other matches do to its key: a key's new
/// secret and its old one in grace are both `TruePositive`, whichever comes first. Then each
/// key found gets its company's policy once per place it was found, one match after another,
/// one company's keys one after another, companies `JUDGED_AT_ONCE` at a time. Per match: a read of the report's marker and a lookup of
/// its hash. Per company with a key found live: its settings, once. Per live match: one key write
/// (a revoking delete or an audit record) and the marker's put; once this report has revoked
/// the key, a later match of it needs only a read of the key (still deleted) and its marker.
///
/// A match not started by `deadline` (looked up or acted on) is `Unavailable`, which fails the
/// report so that GitHub delivers it again: the matches done are then answered from their
/// markers, writing nothing, and the rest go on. `None`: no deadline (outside Lambda).
pub async fn judge_report(
    store: &impl LeakStore,
    reported: &[(&str, LeakReport)],
    now: DateTime<Utc>,
    deadline: Option<Instant>,
) -> Vec<Result<Verdict, DomainError>> {
    // Indices, not references, go through the streams: a closure over borrowed items is not
    // `Send` for every lifetime, which the Lambda runtime's service needs.
    let found: Vec<Result<Found, DomainError>> = futures_util::stream::iter(0..reported.len())
        .map(|index| async move {
            if past(deadline) {
                return Err(DomainError::Unavailable);
            }
            look_up(store, reported[index].0, &reported[index].1).await
        })
        .buffered(JUDGED_AT_ONCE)
        .collect()
        .await;
    let mut verdicts = Vec::with_capacity(found.len());
    let mut live_matches: HashMap<CompanyId, HashMap<KeyId, Vec<(usize, LiveMatch)>>> = HashMap::new();
    for (index, found) in found.into_iter().enumerate() {
        verdicts.push(match found {
            Ok(Found::Answered(verdict)) => Ok(verdict),
            Ok(Found::Live(live)) => {
                let company = live_matches.entry(live.key.company_id.clone()).or_default();
                company.entry(live.key.id.clone()).or_default().push((index, *live));
                Ok(Verdict::TruePositive)
            }
            Err(e) => Err(e),
        });
    }
    // One company's keys one after another: each revocation moves the company's counters item,
    // and concurrent ones would conflict there until their retries ran out.
    let failures: Vec<Vec<(usize, DomainError)>> = futures_util::stream::iter(live_matches.into_values())
        .map(|keys| async move {
            let mut failed = Vec::new();
            let mut policy = None;
            for matches in keys.into_values() {
                failed.extend(act_on_key(store, reported, matches, &mut policy, now, deadline).await);
            }
            failed
        })
        .buffer_unordered(JUDGED_AT_ONCE)
        .collect()
        .await;
    for (index, e) in failures.into_iter().flatten() {
        verdicts[index] = Err(e);
    }
    verdicts
}

/// One match, read only: its marker and its hash's lookup.
async fn look_up(store: &impl LeakStore, token: &str, report: &LeakReport) -> Result<Found, DomainError> {
    // A publishable key is public by design (web pages, apps): found in public, it is no leak,
    // and acting on it would let anyone revoke a company's publishable keys.
    let Some((KeyType::Secret, plaintext)) = PlaintextKey::parse(token) else {
        return Ok(Found::Answered(Verdict::FalsePositive));
    };
    let header = report_header(token, report)?;
    // A report handled before is answered as then, whatever happened to the key since (its
    // old secret's lookup is gone once the key is revoked).
    if store.leak_handled(header.as_str()).await? {
        return Ok(Found::Answered(Verdict::TruePositive));
    }
    let Some(found) = store.find_secret(&plaintext.hash()).await? else {
        return Ok(Found::Answered(Verdict::FalsePositive));
    };
    // Any secret of a live key, its previous one past its grace included: a holder of a leaked
    // secret who rolled the key to a secret of their own must not keep it.
    if found.key.is_deleted() {
        return Ok(Found::Answered(Verdict::TruePositive));
    }
    Ok(Found::Live(Box::new(LiveMatch { key: found.key, header })))
}

/// Whether `deadline` has come.
fn past(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|deadline| Instant::now() >= deadline)
}

/// One key's live matches, in the report's order, each acted on and marked in turn: its
/// company's policy read once for all its keys (`policy`), and after a revoke only a read confirming the key is still
/// deleted before each later marker. The matches that failed, or were not started by
/// `deadline` (`Unavailable`), with their errors.
async fn act_on_key(
    store: &impl LeakStore,
    reported: &[(&str, LeakReport)],
    matches: Vec<(usize, LiveMatch)>,
    policy: &mut Option<LeakPolicy>,
    now: DateTime<Utc>,
    deadline: Option<Instant>,
) -> Vec<(usize, DomainError)> {
    let mut failed = Vec::new();
    let mut revoked = false;
    for (index, live) in matches {
        if past(deadline) {
            failed.push((index, DomainError::Unavailable));
            continue;
        }
        if let Err(e) = act_on(store, &live, &reported[index].1, policy, &mut revoked, now).await {
            failed.push((index, e));
        }
    }
    failed
}

/// The company's leak policy applied to a live match's key, then the match's marker. `policy`
/// is the company's, read by its first match in this report; `revoked`, whether an earlier match of
/// this report revoked the key: a deleted key stays deleted, so a fresh read that still finds
/// it deleted (or gone) leaves only the marker to write. Anything else (a policy changed to
/// `revoke` since an earlier delivery applied `notify` under the same marker) acts as usual.
async fn act_on(
    store: &impl LeakStore,
    live: &LiveMatch,
    report: &LeakReport,
    policy: &mut Option<LeakPolicy>,
    revoked: &mut bool,
    now: DateTime<Utc>,
) -> Result<(), DomainError> {
    let key = &live.key;
    let policy = match *policy {
        Some(policy) => policy,
        None => *policy.insert(store.company_settings(&key.company_id).await?.leak_policy),
    };
    let still_deleted = *revoked && store.get_key(&key.company_id, &key.id).await?.is_none_or(|k| k.is_deleted());
    if !still_deleted {
        report_leak(store, key, policy, report, &live.header, now).await?;
        *revoked = policy == LeakPolicy::Revoke;
    }
    Ok(store.record_leak_handled(live.header.as_str(), now).await?)
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
