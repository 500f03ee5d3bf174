//! Verification, shared by `POST /keys/verify` (`verify_key`) and the authentication of every
//! management call (`caller`).
//!
//! Checks run in a fixed order, cheapest first, and the first that fails is the answer:
//! format → secret known → same company → old secret still in grace → status → expiry → IP →
//! permissions and scope → the names of the limits asked for → rate limit → named limits (the
//! key's, then its identity's) → quota. Only the limits (and a valid verify's `lastUsedAt`)
//! write, all or nothing, so a refused verify uses up no limit.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::model::input::RequestedLimit;
use crate::model::usage::{Outcome, Verification};
use crate::model::{
    ApiKey, CompanyId, FieldError, Identity, KeyStatus, NamedLimit, PlaintextKey, Scope, SecretHash, SecretRole,
};
use crate::store::{IdentityReader, LimitOwner, NamedTake, SecretRecord, UsageOutcome, UsageRecorder, UsageRequest};

use super::DomainError;

pub use crate::model::LAST_USED_GRANULARITY;

/// A verify's answer, as `code` in its body. Only `Valid` is `valid: true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VerifyCode {
    /// Every check passed, and the use was counted.
    Valid,
    /// Not a key, not one of the caller's company, or an old secret past its grace period: one
    /// code for all, so a refusal tells nothing about other companies' keys.
    NotFound,
    /// Deactivated or deleted.
    Inactive,
    /// Past its `expiresAt`.
    Expired,
    /// The request's `ip` is missing or outside the key's allowlist.
    IpNotAllowed,
    /// The ACL (or the lack of one) does not grant what the request asks, in the scope it names.
    Forbidden,
    /// Over the rate limit in the current window; `rateLimit.resetAt` says when it lifts.
    RateLimited,
    /// The quota's current period has less left than the verify's cost, or nothing.
    QuotaExceeded,
}

impl VerifyCode {
    /// The code as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyCode::Valid => "VALID",
            VerifyCode::NotFound => "NOT_FOUND",
            VerifyCode::Inactive => "INACTIVE",
            VerifyCode::Expired => "EXPIRED",
            VerifyCode::IpNotAllowed => "IP_NOT_ALLOWED",
            VerifyCode::Forbidden => "FORBIDDEN",
            VerifyCode::RateLimited => "RATE_LIMITED",
            VerifyCode::QuotaExceeded => "QUOTA_EXCEEDED",
        }
    }

    /// The outcome usage counts it as; `None` for `NotFound`, which has no key to count against.
    pub fn outcome(self) -> Option<Outcome> {
        match self {
            VerifyCode::Valid => Some(Outcome::Valid),
            VerifyCode::NotFound => None,
            VerifyCode::Inactive => Some(Outcome::Inactive),
            VerifyCode::Expired => Some(Outcome::Expired),
            VerifyCode::IpNotAllowed => Some(Outcome::IpNotAllowed),
            VerifyCode::Forbidden => Some(Outcome::Forbidden),
            VerifyCode::RateLimited => Some(Outcome::RateLimited),
            VerifyCode::QuotaExceeded => Some(Outcome::QuotaExceeded),
        }
    }
}

/// What the caller asks of the key.
#[derive(Debug, Clone, Copy, Default)]
pub struct VerifyRequest<'a> {
    /// The presented key as sent; a malformed one is `NotFound` with no read.
    pub key: &'a str,
    /// The company whose keys may answer; `None` when authenticating a root key, whose
    /// company is what the lookup finds out.
    pub company: Option<&'a CompanyId>,
    /// Where the key is used from, for its allowlist.
    pub ip: Option<IpAddr>,
    /// Permissions the key must grant; none asked, none needed.
    pub permissions: &'a [String],
    /// Where the permissions are needed; `None` restricts nothing.
    pub scope: Option<&'a Scope>,
    /// What the use costs the key's quota and every named limit it applies without a cost of
    /// its own (`VerifyInput::cost`).
    pub cost: u64,
    /// Named limits the request asks for by name, each with its own cost or none.
    pub limits: &'a [RequestedLimit],
}

/// A key's rate limit as verify answers it, so a caller can pace itself without asking again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RateState {
    /// Verifies allowed per window.
    pub limit: u64,
    /// What is left of the current window after this verify.
    pub remaining: u64,
    /// When the window ends and the count starts again.
    pub reset_at: DateTime<Utc>,
}

/// A named limit as verify answers it: what is left of its window after this verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitState {
    /// The limit's name.
    pub name: String,
    /// What its uses may cost in all per window.
    pub limit: u64,
    /// What is left of the current window.
    pub remaining: u64,
    /// When the window ends and the count starts again.
    pub reset_at: DateTime<Utc>,
    /// Whether this limit refused the verify (`RATE_LIMITED` names it so).
    pub exceeded: bool,
}

/// The outcome of one verify: the code, the key it concerns, and what is left of its limits.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The first check that failed, or `Valid`.
    pub code: VerifyCode,
    /// The key that answered, for every code but `NotFound`.
    pub key: Option<ApiKey>,
    /// The rate limit's state, when the key has one and verify got to count it (`Valid`,
    /// `RateLimited`).
    pub rate: Option<RateState>,
    /// What is left of the quota, when the key has one and verify got to count it (`Valid`,
    /// `QuotaExceeded`).
    pub quota_remaining: Option<u64>,
    /// Each named limit applied, in the order checked, when verify got to count them.
    pub limits: Vec<LimitState>,
    /// The key's identity, when it has one and verify got to its limits (`Valid`,
    /// `RateLimited`, `QuotaExceeded`).
    pub identity: Option<Box<Identity>>,
}

impl Verdict {
    fn of(code: VerifyCode, key: Option<ApiKey>) -> Self {
        Self { code, key, rate: None, quota_remaining: None, limits: Vec::new(), identity: None }
    }

    /// The verification as usage counts it: the key, its identity and the outcome; `None` when
    /// no key answered.
    pub fn verification(&self, at: DateTime<Utc>) -> Option<Verification> {
        let key = self.key.as_ref()?;
        Some(Verification {
            company: key.company_id.clone(),
            key_id: key.id.clone(),
            identity_id: key.policy.identity_id.clone(),
            outcome: self.code.outcome()?,
            at,
        })
    }

    /// The answer for a string that is no key of the caller's company: nothing to tell.
    pub fn not_found() -> Self {
        Self::of(VerifyCode::NotFound, None)
    }

    /// `valid` in the answer.
    pub fn is_valid(&self) -> bool {
        self.code == VerifyCode::Valid
    }
}

/// Every check of a verify, then its limits, for a key of any company: the rule with no caller
/// to authenticate, for the domain's unit tests (the API's verify is `verify_key::verify_for_caller`).
#[cfg(test)]
pub async fn verify(
    store: &(impl crate::store::SecretLookup + UsageRecorder + IdentityReader),
    now: DateTime<Utc>,
    request: VerifyRequest<'_>,
) -> Result<Verdict, DomainError> {
    match examine(store, now, &request).await? {
        Examined::Refused(verdict) => Ok(verdict),
        Examined::Passed(key, _) => admit(store, key, now, &request, std::future::ready(Ok(()))).await,
    }
}

/// The outcome of every check that needs no write.
#[derive(Debug)]
pub enum Examined {
    /// A check failed: this is the answer, and nothing was counted.
    Refused(Verdict),
    /// Every check passed, with the key's current or previous secret; what remains is to count
    /// the use against the key's limits.
    Passed(ApiKey, SecretRole),
}

/// The checks in order up to, not including, the limits: the read and nothing else.
#[cfg(test)]
pub async fn examine(
    store: &impl crate::store::SecretLookup,
    now: DateTime<Utc>,
    request: &VerifyRequest<'_>,
) -> Result<Examined, DomainError> {
    let Some(hash) = presented_hash(request.key) else { return Ok(not_found()) };
    let found = store.find_secret(&hash).await?;
    Ok(examine_found(found, &hash, now, request))
}

/// The hash a presented key is filed under; `None` for a string that cannot be a key (wrong
/// format or checksum), which needs no read to refuse.
pub fn presented_hash(key: &str) -> Option<SecretHash> {
    PlaintextKey::parse(key).map(|(_, plaintext)| plaintext.hash())
}

fn not_found() -> Examined {
    Examined::Refused(Verdict::of(VerifyCode::NotFound, None))
}

/// The checks of `examine` on a lookup item already read for the presented key's `hash`.
pub fn examine_found(
    found: Option<SecretRecord>,
    hash: &SecretHash,
    now: DateTime<Utc>,
    request: &VerifyRequest<'_>,
) -> Examined {
    let Some(record) = found else { return not_found() };
    let key = record.key;
    if request.company.is_some_and(|c| *c != key.company_id) {
        return not_found();
    }
    let Some(role) = live_secret_role(&key, &record.hash, hash, now) else { return not_found() };
    match static_refusal(&key, request, now) {
        Some(code) => Examined::Refused(Verdict::of(code, Some(key))),
        None => Examined::Passed(key, role),
    }
}

/// Counts one use of a key that passed every other check against its limits: its rate limit
/// (one), the named limits that apply (each its cost) and its quota (`cost`), and refreshes its
/// `lastUsedAt`: the last step of a verify. A key with an identity reads it first, for its
/// limits and the answer. `charge` (the caller's own use) runs once the limits the request
/// names are found, before any of them is counted: a request naming an unknown one costs
/// nothing.
pub async fn admit(
    store: &(impl UsageRecorder + IdentityReader),
    key: ApiKey,
    now: DateTime<Utc>,
    request: &VerifyRequest<'_>,
    charge: impl std::future::Future<Output = Result<(), DomainError>>,
) -> Result<Verdict, DomainError> {
    let identity = match &key.policy.identity_id {
        Some(id) => store.get_identity(&key.company_id, id).await?,
        None => None,
    };
    let verdict = {
        let named = applied_limits(&key, identity.as_ref(), request, now)?;
        charge.await?;
        Box::pin(count_use(store, &key, now, request.cost, &named)).await?
    };
    Ok(Verdict { key: Some(key), identity: identity.map(Box::new), ..verdict })
}

/// The named limits a verify applies, in the order they are checked: the key's, then its
/// identity's (a name on both is the key's), each when it applies itself or the request names
/// it, at the request's cost unless the request gives it one. A name the request asks for that
/// neither holds is refused, naming it.
fn applied_limits<'a>(
    key: &'a ApiKey,
    identity: Option<&'a Identity>,
    request: &VerifyRequest<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<NamedTake<'a>>, FieldError> {
    let own = key.policy.ratelimits.iter().map(|limit| (LimitOwner::Key, limit));
    let shared = identity.into_iter().flat_map(|identity| {
        let owner = LimitOwner::Identity(&identity.id);
        identity.parts.ratelimits.iter().map(move |limit| (owner, limit))
    });
    let shadowed = |limit: &NamedLimit| key.policy.ratelimits.iter().any(|own| own.name == limit.name);
    let candidates = own.chain(shared.filter(|(_, limit)| !shadowed(limit)));
    let mut applied = Vec::new();
    for (owner, limit) in candidates {
        let asked = request.limits.iter().find(|asked| asked.name == limit.name);
        if limit.auto_apply || asked.is_some() {
            let cost = asked.and_then(|asked| asked.cost).unwrap_or(request.cost);
            applied.push(NamedTake { owner, limit, window: limit.window_at(now), cost });
        }
    }
    if let Some((i, unknown)) =
        request.limits.iter().enumerate().find(|(_, asked)| !applied.iter().any(|t| t.limit.name == asked.name))
    {
        let field = format!("ratelimits[{i}].name");
        return Err(FieldError::invalid(
            &field,
            format!("{field}: neither the key nor its identity has a limit named {}", unknown.name),
        ));
    }
    Ok(applied)
}

/// Counts a use against a key's limits (`count_use` of `admit`, or a management call's
/// charge, which applies no named limit): a verdict with no key.
pub(super) async fn count_use(
    store: &impl UsageRecorder,
    key: &ApiKey,
    now: DateTime<Utc>,
    cost: u64,
    named: &[NamedTake<'_>],
) -> Result<Verdict, DomainError> {
    let usage = UsageRequest {
        key,
        now,
        rate: key.policy.rate_limit.map(|r| (r, r.window_at(now))),
        named,
        quota: key.policy.quota.map(|q| (q, q.period_at(now))),
        cost,
    };
    let rate_state = |used: u64| {
        usage.rate.map(|(r, w)| RateState {
            limit: r.limit,
            remaining: r.limit.saturating_sub(used),
            reset_at: w.ends_at,
        })
    };
    let limit_states = |used: &[u64], refused: Option<usize>| -> Vec<LimitState> {
        named
            .iter()
            .zip(used)
            .enumerate()
            .map(|(i, (take, used))| LimitState {
                name: take.limit.name.clone(),
                limit: take.limit.limit,
                remaining: take.limit.limit.saturating_sub(*used),
                reset_at: take.window.ends_at,
                exceeded: refused == Some(i),
            })
            .collect()
    };
    let outcome = if usage.counts_anything() {
        Box::pin(store.consume(usage)).await?
    } else {
        UsageOutcome::Admitted { rate_used: None, named_used: Vec::new(), quota_used: None, last_used_written: false }
    };
    let verdict = match outcome {
        UsageOutcome::RateLimited { refused, named_used } => Verdict {
            rate: if refused.is_none() { rate_state(u64::MAX) } else { None },
            limits: limit_states(&named_used, refused),
            ..Verdict::of(VerifyCode::RateLimited, None)
        },
        UsageOutcome::QuotaExceeded { quota_used, named_used } => Verdict {
            quota_remaining: usage.quota.map(|(q, _)| q.max.saturating_sub(quota_used)),
            limits: limit_states(&named_used, None),
            ..Verdict::of(VerifyCode::QuotaExceeded, None)
        },
        UsageOutcome::Admitted { rate_used, named_used, quota_used, last_used_written } => {
            // Unless the store's writes already set lastUsedAt, refresh it before answering.
            if !last_used_written && key.last_use_due(now) {
                store.touch_last_used(key, now).await;
            }
            Verdict {
                rate: rate_used.and_then(rate_state),
                limits: limit_states(&named_used, None),
                quota_remaining: usage.quota.zip(quota_used).map(|((q, _), used)| q.max.saturating_sub(used)),
                ..Verdict::of(VerifyCode::Valid, None)
            }
        }
    };
    Ok(verdict)
}

/// A lookup item is found by hash; the key says whether that hash is its current secret or an
/// old one still in its grace period (`None`: neither, or the grace has ended).
fn live_secret_role(
    key: &ApiKey,
    stored: &SecretHash,
    presented: &SecretHash,
    now: DateTime<Utc>,
) -> Option<SecretRole> {
    if !stored.matches(presented) {
        return None;
    }
    if key.secret_hash.matches(presented) {
        return Some(SecretRole::Current);
    }
    let in_grace = key.previous_secret.as_ref().is_some_and(|old| old.hash.matches(presented) && now < old.valid_until);
    in_grace.then_some(SecretRole::Previous)
}

/// The checks that need nothing but the key and the request.
fn static_refusal(key: &ApiKey, request: &VerifyRequest<'_>, now: DateTime<Utc>) -> Option<VerifyCode> {
    if key.status != KeyStatus::Active || key.is_deleted() {
        return Some(VerifyCode::Inactive);
    }
    if key.policy.expires_at.is_some_and(|at| at <= now) {
        return Some(VerifyCode::Expired);
    }
    if let Some(allowlist) = &key.policy.whitelisted_ips
        && !request.ip.is_some_and(|ip| allowlist.allows(ip))
    {
        return Some(VerifyCode::IpNotAllowed);
    }
    let default_scope = Scope::default();
    let scope = request.scope.unwrap_or(&default_scope);
    let asks_anything = !request.permissions.is_empty() || *scope != default_scope;
    let allowed = match &key.policy.acl {
        Some(acl) => acl.allows(request.permissions, scope),
        // No ACL: no permissions to grant, and no scope to restrict.
        None => request.permissions.is_empty(),
    };
    (asks_anything && !allowed).then_some(VerifyCode::Forbidden)
}
