//! Which companies hold imported keys, as this instance last read it: so verify looks up a
//! presented string that is not in the service's format only for a company that may hold one,
//! and a company that never imported pays no read for garbage once its flag is kept.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::CompanyId;
use crate::store::ImportLedger;

use super::DomainError;

/// Companies kept at most: a flag is a few dozen bytes, and past this the oldest go first.
const MAX_COMPANIES: usize = 4096;

/// Each company's flag, kept as long as a caller is (`CallerCacheSeconds`): a company's first
/// import reaches an instance that kept "none" within that time (at once in the instance that
/// imported, which `imported` tells).
#[derive(Debug)]
pub struct ImportsSeen {
    ttl: TimeDelta,
    seen: Mutex<HashMap<CompanyId, (bool, DateTime<Utc>)>>,
}

impl ImportsSeen {
    /// Keeps each company's flag `seconds` after it was read; 0 keeps none (each foreign
    /// string then reads the company's counters).
    pub fn new(seconds: u64) -> Self {
        let ttl = TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX).min(i64::from(u32::MAX)));
        Self { ttl, seen: Mutex::default() }
    }

    /// Whether `company` holds imported keys: kept, or read (and kept).
    pub async fn holds(
        &self,
        store: &impl ImportLedger,
        company: &CompanyId,
        now: DateTime<Utc>,
    ) -> Result<bool, DomainError> {
        let kept = self.lock().get(company).filter(|(_, at)| *at <= now && now < *at + self.ttl).map(|(flag, _)| *flag);
        if let Some(flag) = kept {
            return Ok(flag);
        }
        let flag = store.has_imported(company).await?;
        self.keep(company, flag, now);
        Ok(flag)
    }

    /// This instance has just imported a key of `company`.
    pub fn imported(&self, company: &CompanyId, now: DateTime<Utc>) {
        self.keep(company, true, now);
    }

    fn keep(&self, company: &CompanyId, flag: bool, now: DateTime<Utc>) {
        if self.ttl <= TimeDelta::zero() {
            return;
        }
        let mut seen = self.lock();
        if seen.len() >= MAX_COMPANIES && !seen.contains_key(company) {
            seen.retain(|_, (_, at)| now < *at + self.ttl);
            if seen.len() >= MAX_COMPANIES
                && let Some(oldest) = seen.iter().min_by_key(|(_, (_, at))| *at).map(|(c, _)| c.clone())
            {
                seen.remove(&oldest);
            }
        }
        seen.insert(company.clone(), (flag, now));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<CompanyId, (bool, DateTime<Utc>)>> {
        self.seen.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
