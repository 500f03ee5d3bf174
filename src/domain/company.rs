//! A company's settings: read by any key that may read keys; changed only by a key that holds
//! all of `keys:`, since a prefix shapes every key made after it and a leak policy decides what
//! a report does to every key. Each change is audited, and the audit trail is read like the
//! settings, so a policy switched by a leaked admin key shows who switched it.

use chrono::{DateTime, Utc};

use crate::model::company::{CompanyEvent, CompanySettings, CompanySettingsChange};
use crate::model::{IdempotencyKey, PageRequest};
use crate::store::{
    CompanyAuditReader, CompanySettingsReader, CompanySettingsWriter, IdempotencyReader, PageWindow, SettingsChange,
    SettingsOutcome, UsageRecorder,
};

use super::idempotency::IdempotentRequest;
use super::keys::{replay, replay_after_race};
use super::paging::{Page, page};
use super::{Caller, DomainError};

/// Writes of the settings tried at most this many times when they change concurrently.
const MAX_SETTINGS_ATTEMPTS: usize = 3;

/// The caller's company's settings.
pub async fn company_settings(
    store: &(impl CompanySettingsReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<CompanySettings, DomainError> {
    caller.charge(store, now).await?;
    Ok(store.company_settings(&caller.company).await?)
}

/// The caller's company's audit trail (each change of its settings: who, when, which fields),
/// newest first, paged like a key's; only the caller's own company's records are read.
pub async fn list_company_events(
    store: &(impl CompanyAuditReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    request: &PageRequest,
) -> Result<Page<CompanyEvent>, DomainError> {
    caller.charge(store, now).await?;
    let outcome = store.list_company_events(&caller.company, PageWindow::of(request)).await?;
    page(request, outcome, "an event of this company", |e| e.id.clone())
}

/// What a settings write is conditioned on: `If-Match` and `Idempotency-Key`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SettingsTarget<'a> {
    /// The version from `If-Match`: a write on any other version is refused, not merged.
    pub if_match: Option<u64>,
    /// The request's `Idempotency-Key`, to answer a retry with the first answer.
    pub retry: Option<&'a IdempotencyKey>,
}

/// Applies a `PATCH /company`. 403 for a caller that does not hold all of `keys:` (or presents
/// an old secret in its grace period); 409 for a prefix another company holds; 412 for a stale
/// `If-Match`. A change to what they already are writes nothing.
pub async fn update_company_settings(
    store: &(impl CompanySettingsReader + CompanySettingsWriter + IdempotencyReader + UsageRecorder),
    caller: &Caller,
    now: DateTime<Utc>,
    target: SettingsTarget<'_>,
    change: &CompanySettingsChange,
) -> Result<CompanySettings, DomainError> {
    caller.may_write_identity(true).map_err(|_| {
        DomainError::Forbidden(
            "only a key that holds all of keys: (and presents its current secret) may change the company's settings"
                .into(),
        )
    })?;
    let idempotent =
        target.retry.map(|header| IdempotentRequest::new(caller, header, "update company", &change_input(change)));
    let mut charged = false;
    for _ in 0..MAX_SETTINGS_ATTEMPTS {
        let before = store.company_settings(&caller.company).await?;
        if let Some(earlier) = replay::<SettingsAnswer>(store, idempotent.as_ref(), now).await? {
            if !charged {
                caller.charge(store, now).await?;
            }
            return Ok(earlier.into());
        }
        if target.if_match.is_some_and(|v| v != before.version) {
            return Err(DomainError::StaleVersion);
        }
        if !charged {
            caller.charge(store, now).await?;
            charged = true;
        }
        let after = change.applied_to(&before);
        // The audit record keeps only what changed; a change of nothing writes nothing.
        let changes = CompanySettingsChange::between(&before, &after);
        if changes.is_empty() {
            return Ok(before);
        }
        let answer = SettingsAnswer::from(&after);
        let record = idempotent.as_ref().map(|r| r.record(&answer, now));
        let write = SettingsChange {
            company: &caller.company,
            before: &before,
            after: &after,
            changes: &changes,
            actor: &caller.actor,
            now,
            idempotency: record.as_ref(),
        };
        match store.save_company_settings(write).await? {
            SettingsOutcome::Saved => return Ok(after),
            SettingsOutcome::VersionConflict if target.if_match.is_some() => return Err(DomainError::StaleVersion),
            SettingsOutcome::VersionConflict => continue,
            SettingsOutcome::PrefixTaken => {
                return Err(DomainError::Conflict("another company's keys have this keyPrefix".into()));
            }
            SettingsOutcome::IdempotencyKeyTaken => {
                return replay_after_race::<SettingsAnswer>(store, idempotent.as_ref(), now).await.map(Into::into);
            }
        }
    }
    Err(DomainError::Conflict("the company's settings kept changing concurrently; try again".into()))
}

/// A settings change as an idempotent request's fingerprint reads it.
fn change_input(change: &CompanySettingsChange) -> serde_json::Value {
    serde_json::json!({
        "keyPrefix": change.key_prefix.as_ref().map(|p| p.as_ref().map(|p| p.as_str().to_owned())),
        "leakPolicy": change.leak_policy,
    })
}

/// The settings as a sealed first answer holds them.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SettingsAnswer {
    key_prefix: Option<crate::model::company::KeyPrefix>,
    leak_policy: crate::model::company::LeakPolicy,
    version: u64,
}

impl From<&CompanySettings> for SettingsAnswer {
    fn from(settings: &CompanySettings) -> Self {
        Self { key_prefix: settings.key_prefix.clone(), leak_policy: settings.leak_policy, version: settings.version }
    }
}

impl From<SettingsAnswer> for CompanySettings {
    fn from(answer: SettingsAnswer) -> Self {
        Self { key_prefix: answer.key_prefix, leak_policy: answer.leak_policy, version: answer.version }
    }
}
