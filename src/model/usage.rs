//! Usage: how many verifications of a key or identity each hour and day ended how, and the
//! range a usage request asks for.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{CompanyId, FieldError, IdentityId, KeyId};

/// How a verification of a found key ended: every verify code but `NOT_FOUND`, which has no
/// key to count against. Written as the API writes the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    /// `VALID`.
    Valid,
    /// `RATE_LIMITED`.
    RateLimited,
    /// `QUOTA_EXCEEDED`.
    QuotaExceeded,
    /// `FORBIDDEN`.
    Forbidden,
    /// `EXPIRED`.
    Expired,
    /// `INACTIVE`.
    Inactive,
    /// `IP_NOT_ALLOWED`.
    IpNotAllowed,
}

impl Outcome {
    /// Every outcome, in the order the API lists them.
    pub const ALL: [Outcome; 7] = [
        Outcome::Valid,
        Outcome::RateLimited,
        Outcome::QuotaExceeded,
        Outcome::Forbidden,
        Outcome::Expired,
        Outcome::Inactive,
        Outcome::IpNotAllowed,
    ];

    /// The code as the API writes it, and as usage items name their counters.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Valid => "VALID",
            Outcome::RateLimited => "RATE_LIMITED",
            Outcome::QuotaExceeded => "QUOTA_EXCEEDED",
            Outcome::Forbidden => "FORBIDDEN",
            Outcome::Expired => "EXPIRED",
            Outcome::Inactive => "INACTIVE",
            Outcome::IpNotAllowed => "IP_NOT_ALLOWED",
        }
    }

    /// The outcome a code names, if it is one.
    pub fn from_code(code: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == code)
    }
}

/// One verification of a found key, as verify reports it for usage: no secret, no hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// The key's company.
    pub company: CompanyId,
    /// The key.
    pub key_id: KeyId,
    /// The key's identity, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity_id: Option<IdentityId>,
    /// How it ended.
    pub outcome: Outcome,
    /// When.
    pub at: DateTime<Utc>,
}

/// Whose usage: a key's or an identity's, of one company.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UsageOwner {
    /// A key's own verifications.
    Key(KeyId),
    /// The verifications of every key of an identity.
    Identity(IdentityId),
}

/// The size of a usage bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    /// UTC hours.
    Hour,
    /// UTC days.
    Day,
}

impl Granularity {
    /// Both sizes: every verification is counted in its hour and in its day.
    pub const ALL: [Granularity; 2] = [Granularity::Hour, Granularity::Day];

    /// One bucket's length.
    pub fn length(self) -> TimeDelta {
        match self {
            Granularity::Hour => Duration::hours(1),
            Granularity::Day => Duration::days(1),
        }
    }

    /// The start of the bucket that holds `at` (whole seconds since the epoch, so any year).
    pub fn start_of(self, at: DateTime<Utc>) -> DateTime<Utc> {
        let length = self.length().num_seconds();
        DateTime::from_timestamp(at.timestamp().div_euclid(length) * length, 0).unwrap_or(at)
    }

    /// The longest range one request may ask for: 31 days of hours, 366 days of days.
    pub fn max_range(self) -> TimeDelta {
        match self {
            Granularity::Hour => Duration::days(MAX_HOUR_RANGE_DAYS),
            Granularity::Day => Duration::days(MAX_DAY_RANGE_DAYS),
        }
    }
}

/// At most this many days of hourly buckets in one request.
pub const MAX_HOUR_RANGE_DAYS: i64 = 31;
/// At most this many days of daily buckets in one request.
pub const MAX_DAY_RANGE_DAYS: i64 = 366;
/// The range a request without `from` and `to` covers: the last 24 hours.
pub const DEFAULT_RANGE_HOURS: i64 = 24;

/// The counts of one bucket (or of a whole range), by outcome; an outcome never seen is absent.
pub type OutcomeCounts = BTreeMap<Outcome, u64>;

/// One bucket of a usage answer: its start and its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageBucket {
    /// The start of the hour or day, UTC.
    pub start: DateTime<Utc>,
    /// Its counts; a bucket with none is left out of an answer.
    pub counts: OutcomeCounts,
}

/// What a usage request asks for: the buckets that start in `[start_of(from), to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageRange {
    /// Hours or days.
    pub granularity: Granularity,
    /// As asked (or 24 hours before `to`).
    pub from: DateTime<Utc>,
    /// As asked (or now); after `from`.
    pub to: DateTime<Utc>,
}

impl UsageRange {
    /// From a request's query: `from`, `to` (RFC 3339; default the 24 hours before now) and
    /// `granularity` (`hour`, the default, or `day`). Anything else, a repeated parameter, `to`
    /// not after `from`, or a range over 31 days of hours or 366 days of days is an error naming
    /// the parameter.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        now: DateTime<Utc>,
    ) -> Result<Self, FieldError> {
        let (mut from, mut to, mut granularity) = (None, None, None);
        for (name, value) in pairs {
            let slot_taken = match name {
                "from" => from.replace(instant(name, value)?).is_some(),
                "to" => to.replace(instant(name, value)?).is_some(),
                "granularity" => granularity
                    .replace(match value {
                        "hour" => Granularity::Hour,
                        "day" => Granularity::Day,
                        _ => return Err(FieldError::invalid(name, "granularity must be hour or day")),
                    })
                    .is_some(),
                _ => return Err(FieldError::unknown(name)),
            };
            if slot_taken {
                return Err(FieldError::invalid(name, format!("{name} is given more than once")));
            }
        }
        let granularity = granularity.unwrap_or(Granularity::Hour);
        let to = to.unwrap_or(now);
        let from = from.unwrap_or(to - Duration::hours(DEFAULT_RANGE_HOURS));
        if to <= from {
            return Err(FieldError::invalid("to", "to must be after from"));
        }
        if to - from > granularity.max_range() {
            let days = granularity.max_range().num_days();
            let unit = if granularity == Granularity::Hour { "hour" } else { "day" };
            return Err(FieldError::invalid(
                "from",
                format!("with granularity {unit}, from must be at most {days} days before to"),
            ));
        }
        Ok(Self { granularity, from, to })
    }

    /// The first bucket's start.
    pub fn first_bucket(&self) -> DateTime<Utc> {
        self.granularity.start_of(self.from)
    }

    /// Whether a bucket starting at `start` is in the range.
    pub fn holds(&self, start: DateTime<Utc>) -> bool {
        self.first_bucket() <= start && start < self.to
    }
}

/// An RFC 3339 instant, within the years chrono and DynamoDB's sort keys handle alike.
fn instant(name: &str, value: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|at| at.with_timezone(&Utc))
        .filter(|at| (2000..=9999).contains(&chrono::Datelike::year(at)))
        .ok_or_else(|| {
            FieldError::invalid(name, format!("{name} must be an RFC 3339 date and time, such as 2026-12-06T10:00:00Z"))
        })
}

/// The counts a batch of verifications adds to one owner's bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    /// The owners' company.
    pub company: CompanyId,
    /// The key or identity.
    pub owner: UsageOwner,
    /// Hour or day.
    pub granularity: Granularity,
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// What to add, by outcome (none zero).
    pub counts: OutcomeCounts,
}

/// Adds up verifications into increments: one per owner and bucket, each key's and (when it
/// has one) its identity's, by hour and by day. In a stable order, so the same verifications
/// always make the same increments.
pub fn tally<'a>(verifications: impl IntoIterator<Item = &'a Verification>) -> Vec<UsageIncrement> {
    type Bucket = (CompanyId, UsageOwner, Granularity, DateTime<Utc>);
    let mut buckets: BTreeMap<Bucket, OutcomeCounts> = BTreeMap::new();
    for v in verifications {
        let owners =
            std::iter::once(UsageOwner::Key(v.key_id.clone())).chain(v.identity_id.clone().map(UsageOwner::Identity));
        for owner in owners {
            for granularity in Granularity::ALL {
                let bucket = (v.company.clone(), owner.clone(), granularity, granularity.start_of(v.at));
                *buckets.entry(bucket).or_default().entry(v.outcome).or_default() += 1;
            }
        }
    }
    buckets
        .into_iter()
        .map(|((company, owner, granularity, start), counts)| UsageIncrement {
            company,
            owner,
            granularity,
            start,
            counts,
        })
        .collect()
}

/// The totals of some buckets, by outcome.
pub fn totals<'a>(buckets: impl IntoIterator<Item = &'a UsageBucket>) -> OutcomeCounts {
    let mut totals = OutcomeCounts::new();
    for bucket in buckets {
        for (outcome, count) in &bucket.counts {
            *totals.entry(*outcome).or_default() += count;
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn parse(query: &[(&str, &str)]) -> Result<UsageRange, FieldError> {
        UsageRange::parse(query.iter().copied(), at("2026-12-06T10:30:00Z"))
    }

    #[test]
    fn defaults_to_the_last_24_hours_by_hour() {
        let range = parse(&[]).unwrap();
        assert_eq!(range.granularity, Granularity::Hour);
        assert_eq!((range.from, range.to), (at("2026-12-05T10:30:00Z"), at("2026-12-06T10:30:00Z")));
        assert_eq!(range.first_bucket(), at("2026-12-05T10:00:00Z"));
        assert!(range.holds(at("2026-12-06T10:00:00Z")));
        assert!(!range.holds(at("2026-12-05T09:00:00Z")));
    }

    #[test]
    fn bad_parameters_are_named() {
        let cases: [(&[(&str, &str)], &str); 7] = [
            (&[("from", "yesterday")], "from"),
            (&[("to", "2026-13-01T00:00:00Z")], "to"),
            (&[("granularity", "minute")], "granularity"),
            (&[("from", "2026-12-06T11:00:00Z")], "to"),
            (&[("from", "2026-11-01T00:00:00Z")], "from"),
            (&[("limit", "3")], "limit"),
            (&[("granularity", "day"), ("granularity", "day")], "granularity"),
        ];
        for (query, field) in cases {
            assert_eq!(parse(query).unwrap_err().field, field, "{query:?}");
        }
        let days = parse(&[("granularity", "day"), ("from", "2025-12-06T10:30:00Z")]).unwrap();
        assert_eq!(days.first_bucket(), at("2025-12-06T00:00:00Z"));
        assert_eq!(parse(&[("granularity", "day"), ("from", "2025-12-04T10:30:00Z")]).unwrap_err().field, "from");
    }

    #[test]
    fn a_verification_counts_for_its_key_and_identity_by_hour_and_day() {
        let company = CompanyId::parse("acme", "company").unwrap();
        let key = KeyId::parse("k1", "keyId").unwrap();
        let identity = IdentityId::parse("id_0190a5e4c3b27d5e9f1a2b3c4d5e6f70", "identityId").unwrap();
        let one = |outcome, when: &str, identity: Option<IdentityId>| Verification {
            company: company.clone(),
            key_id: key.clone(),
            identity_id: identity,
            outcome,
            at: at(when),
        };
        let batch = [
            one(Outcome::Valid, "2026-12-06T10:01:00Z", Some(identity.clone())),
            one(Outcome::Valid, "2026-12-06T10:59:59Z", Some(identity.clone())),
            one(Outcome::RateLimited, "2026-12-06T11:00:00Z", None),
        ];
        let increments = tally(&batch);
        // Key: 2 hours + 1 day; identity: 1 hour + 1 day.
        assert_eq!(increments.len(), 5);
        let key_day = increments
            .iter()
            .find(|i| i.owner == UsageOwner::Key(key.clone()) && i.granularity == Granularity::Day)
            .unwrap();
        assert_eq!(key_day.counts, OutcomeCounts::from([(Outcome::Valid, 2), (Outcome::RateLimited, 1)]));
        let identity_hour = increments
            .iter()
            .find(|i| i.owner == UsageOwner::Identity(identity.clone()) && i.granularity == Granularity::Hour)
            .unwrap();
        assert_eq!(identity_hour.start, at("2026-12-06T10:00:00Z"));
        assert_eq!(identity_hour.counts, OutcomeCounts::from([(Outcome::Valid, 2)]));
        assert_eq!(tally(&batch), increments, "the same batch, the same increments");
    }
}
