//! Rate limits and quotas: their settings and the windows they are counted in.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FieldError;
use super::fields::{decode, object, whole_number};

/// Longest window we accept for either limit: a year, so window arithmetic never overflows.
pub const MAX_WINDOW_SECONDS: u64 = 366 * 24 * 3600;

/// At most `limit` successful verifies per fixed window of `period_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimit {
    /// Verifies allowed per window, 1 to 2^32 - 1.
    pub limit: u64,
    /// The window's length, 1 second to `MAX_WINDOW_SECONDS`; windows align to the epoch.
    pub period_seconds: u64,
}

/// The fixed window `now` falls in: its number (epoch seconds / period) and when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Names the window's counter item: a new window starts from zero without a reset write.
    pub number: i64,
    /// When the next window starts: the `resetAt` verify answers.
    pub ends_at: DateTime<Utc>,
}

impl RateLimit {
    /// The window `now` counts in; every process computes the same one, with no stored state.
    pub fn window_at(&self, now: DateTime<Utc>) -> Window {
        let period = signed_seconds(self.period_seconds);
        let number = now.timestamp().div_euclid(period);
        let ends_at = DateTime::from_timestamp((number + 1) * period, 0).unwrap_or(now);
        Window { number, ends_at }
    }
}

/// At most `max` successful verifies, renewed every `renewal_seconds` from `started_at` (never if none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    /// Verifies allowed per period, 1 to 2^32 - 1.
    pub max: u64,
    /// The period's length; `None`: the quota never renews.
    pub renewal_seconds: Option<u64>,
    /// When the quota was set (or its renewal changed): periods count from here.
    pub started_at: DateTime<Utc>,
}

/// What a quota has used in its current period. Kept apart from the settings so that a
/// settings change never overwrites uses counted by concurrent verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUsage {
    /// The period `used` was counted in; uses of an older period no longer count.
    pub period: i64,
    /// Verifies admitted in that period.
    pub used: u64,
}

impl RateLimit {
    /// No looser than `bound`: at most as many verifies, over a window at least as long.
    pub fn within(&self, bound: &RateLimit) -> bool {
        self.limit <= bound.limit && self.period_seconds >= bound.period_seconds
    }
}

impl Quota {
    /// Whether a use costing `cost` fits a period that has counted `used`: what is left covers
    /// it, and a quota used up refuses even a use that costs nothing.
    pub fn admits(&self, used: u64, cost: u64) -> bool {
        fits(used, cost, self.max)
    }

    /// A quota as a body gives it: its settings, not yet started. The write that takes it
    /// starts it (`starting`), so the parsed request holds no time of its own.
    pub fn given(max: u64, renewal_seconds: Option<u64>) -> Self {
        Self { max, renewal_seconds, started_at: DateTime::UNIX_EPOCH }
    }

    /// The same settings, with periods counted from `at`.
    #[must_use]
    pub fn starting(self, at: DateTime<Utc>) -> Self {
        Self { started_at: at, ..self }
    }

    /// No looser than `bound`: at most as many uses, renewed no more often (never renewing is
    /// the tightest).
    pub fn within(&self, bound: &Quota) -> bool {
        let renews_no_sooner = match (self.renewal_seconds, bound.renewal_seconds) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(own), Some(bound)) => own >= bound,
        };
        self.max <= bound.max && renews_no_sooner
    }

    /// Periods are numbered from 0 at `started_at`; a quota without renewal stays in period 0.
    pub fn period_at(&self, now: DateTime<Utc>) -> i64 {
        match self.renewal_seconds {
            Some(renewal) => (now - self.started_at).num_seconds().max(0).div_euclid(signed_seconds(renewal)),
            None => 0,
        }
    }

    /// When the current period ends and the quota is full again; `None` if it never renews.
    pub fn renews_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let renewal = signed_seconds(self.renewal_seconds?);
        Some(self.started_at + TimeDelta::seconds((self.period_at(now) + 1) * renewal))
    }

    /// Uses counted in an earlier period do not count: the quota has renewed since.
    pub fn remaining(&self, usage: QuotaUsage, now: DateTime<Utc>) -> u64 {
        if usage.period == self.period_at(now) { self.max.saturating_sub(usage.used) } else { self.max }
    }
}

/// Named limits a key, or an identity, carries.
pub const MAX_NAMED_LIMITS: usize = 5;
/// Characters of a named limit's `name`.
pub const MAX_LIMIT_NAME_CHARS: usize = 32;

/// A rate limit with a name, so a verify can ask for it by name (`tokens`, `exports`) and
/// the keys of one identity can share the identity's. Counted in the same fixed windows as
/// `rateLimit`, each use by its cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedLimit {
    /// 1 to 32 characters of `a-z 0-9 _ -`, unique within its list.
    pub name: String,
    /// What its uses may cost in all per window, 1 to 2^32 - 1.
    pub limit: u64,
    /// The window's length, 1 second to a year, aligned to the epoch like `rateLimit`'s.
    pub period_seconds: u64,
    /// Applied to every verify of the keys it reaches (`true`, the default), or only to those
    /// that name it.
    pub auto_apply: bool,
}

impl NamedLimit {
    /// The window `now` counts in, as for `rateLimit`.
    pub fn window_at(&self, now: DateTime<Utc>) -> Window {
        RateLimit { limit: self.limit, period_seconds: self.period_seconds }.window_at(now)
    }

    /// Whether a use costing `cost` fits a window that has counted `used`, by the rule of a
    /// quota (`Quota::admits`): a full window refuses even a use that costs nothing.
    pub fn admits(&self, used: u64, cost: u64) -> bool {
        fits(used, cost, self.limit)
    }

    /// No looser than `bound`: at most as much per window, over a window at least as long, and
    /// applied at least whenever `bound` is.
    pub fn within(&self, bound: &NamedLimit) -> bool {
        self.limit <= bound.limit
            && self.period_seconds >= bound.period_seconds
            && (self.auto_apply || !bound.auto_apply)
    }
}

/// Whether `name` is a limit's name: 1 to 32 characters of `a-z 0-9 _ -`.
pub fn is_limit_name(name: &str) -> bool {
    (1..=MAX_LIMIT_NAME_CHARS).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The refusal of a string that is no limit name, naming `field`.
pub fn bad_limit_name(field: &str) -> FieldError {
    FieldError::invalid(field, format!("{field} must be 1 to {MAX_LIMIT_NAME_CHARS} characters of a-z, 0-9, _ or -"))
}

/// The entries of a `ratelimits` list (`expected` says what it is): at most `max`, each an
/// object of the `allowed` fields (`read_only` ones refused as such) whose `name` is a limit
/// name unique in the list; `entry` reads the rest of one from its fields, its path
/// (`ratelimits[2]`) and its name.
pub(crate) fn entries_by_name<T>(
    value: Value,
    expected: &str,
    max: usize,
    (allowed, read_only): (&[&str], &[&str]),
    mut entry: impl FnMut(Map<String, Value>, &str, String) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    let entries: Vec<Value> = decode(value, "ratelimits", expected)?;
    if entries.len() > max {
        return Err(FieldError::too_many("ratelimits", max));
    }
    let mut names: Vec<String> = Vec::with_capacity(entries.len());
    let mut read = Vec::with_capacity(entries.len());
    for (i, raw) in entries.into_iter().enumerate() {
        let field = format!("ratelimits[{i}]");
        let mut map = object(raw, &field, allowed, read_only)?;
        let name_field = format!("{field}.name");
        let name = match map.remove("name") {
            None | Some(Value::Null) => return Err(FieldError::missing(name_field)),
            Some(Value::String(name)) if is_limit_name(&name) => name,
            Some(_) => return Err(bad_limit_name(&name_field)),
        };
        if names.contains(&name) {
            return Err(FieldError::invalid(&name_field, format!("{name_field}: the names of a list are unique")));
        }
        names.push(name.clone());
        read.push(entry(map, &field, name)?);
    }
    Ok(read)
}

/// `ratelimits` of a key or an identity: at most `MAX_NAMED_LIMITS`, names unique.
pub(crate) fn named_limits(value: Value, _: DateTime<Utc>) -> Result<Vec<NamedLimit>, FieldError> {
    let fields: (&[&str], &[&str]) =
        (&["name", "limit", "periodSeconds", "autoApply"], &["remaining", "resetAt", "exceeded"]);
    entries_by_name(value, "an array of named limits", MAX_NAMED_LIMITS, fields, |mut map, field, name| {
        let limit = whole_number(&mut map, field, "limit", u64::from(u32::MAX))?
            .ok_or_else(|| FieldError::missing(format!("{field}.limit")))?;
        let period_seconds = whole_number(&mut map, field, "periodSeconds", MAX_WINDOW_SECONDS)?
            .ok_or_else(|| FieldError::missing(format!("{field}.periodSeconds")))?;
        let auto_apply = match map.remove("autoApply") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(flag)) => flag,
            Some(_) => {
                let at = format!("{field}.autoApply");
                return Err(FieldError::invalid(&at, format!("{at} must be true or false")));
            }
        };
        Ok(NamedLimit { name, limit, period_seconds, auto_apply })
    })
}

/// The one rule of every counted limit: a use costing `cost` fits a count of `used` under `max`
/// when the count is not full and has room for the cost (so a full one refuses even a use that
/// costs nothing).
fn fits(used: u64, cost: u64, max: u64) -> bool {
    used < max && used.saturating_add(cost) <= max
}

/// A window length for chrono's signed arithmetic. Parsing holds lengths to
/// `MAX_WINDOW_SECONDS`, so the conversion is exact for every length a key can carry; it
/// saturates rather than wraps to a negative length for anything larger.
fn signed_seconds(seconds: u64) -> i64 {
    i64::try_from(seconds).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn rate_windows_are_aligned_to_the_period() {
        let rl = RateLimit { limit: 10, period_seconds: 60 };
        assert_eq!(rl.window_at(at(120)), Window { number: 2, ends_at: at(180) });
        assert_eq!(rl.window_at(at(179)).number, 2);
        assert_eq!(rl.window_at(at(180)).number, 3);
    }

    #[test]
    fn quota_renews_per_period_and_lowering_max_lowers_remaining() {
        let q = Quota { max: 5, renewal_seconds: Some(100), started_at: at(1000) };
        let usage = QuotaUsage { period: 0, used: 3 };
        assert_eq!(q.remaining(usage, at(1050)), 2);
        assert_eq!(q.renews_at(at(1050)), Some(at(1100)));
        assert_eq!(q.remaining(usage, at(1100)), 5);
        let lowered = Quota { max: 2, ..q };
        assert_eq!(lowered.remaining(usage, at(1050)), 0);
        let once = Quota { renewal_seconds: None, ..q };
        assert_eq!(once.remaining(usage, at(99_999)), 2);
        assert_eq!(once.renews_at(at(99_999)), None);
    }
}
