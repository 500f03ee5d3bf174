//! Who is calling: the root key that authenticated a management call, what it may do, and the
//! one rule for what it may do to other keys.

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use crate::model::{Acl, ActingSecret, ActorType, ApiKey, CompanyId, KeyType, Permission, SecretHash, SecretRole};
use crate::store::{SecretLookup, SecretRecord, UsageRecorder};

use super::DomainError;
use super::verify::{self, Examined, VerifyCode, VerifyRequest};

use crate::model::acl::MANAGEMENT_NAMESPACE as MANAGEMENT;

/// A permission a route needs. `keys:*` and `*` include all three. `Authenticated` needs none:
/// a valid secret root key is enough (`GET /me`, which tells a key what it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `keys:read`: get, list, the audit trail.
    Read,
    /// `keys:write`: create, change, roll, delete.
    Write,
    /// `keys:verify`: `POST /keys/verify`.
    Verify,
    /// No permission: any secret root key that verifies.
    Authenticated,
    /// No root key at all: the request carries a signature its handler checks (a secret
    /// scanner's report). No key ever satisfies it.
    Signature,
}

impl Need {
    /// The permission's name; empty for `Authenticated`, which names none.
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "keys:read",
            Need::Write => "keys:write",
            Need::Verify => "keys:verify",
            Need::Authenticated | Need::Signature => "",
        }
    }
}

/// An authenticated caller: what every operation takes instead of a request, so none can act
/// without one and none can take its company from the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    /// The only company the call can see or change.
    pub company: CompanyId,
    /// The root key that made the call, or `operator` for the CLI; recorded in audit events.
    pub actor: String,
    /// The caller's permissions that reach into `keys:` (`keys:read`, `keys:*`, `*`…), scopes aside:
    /// scopes restrict what a key verifies for, not the management API.
    pub permissions: Vec<Permission>,
    /// The caller's own key, whose limits a call counts against once it is allowed; `None` for
    /// the operator.
    pub key: Option<Box<ApiKey>>,
    /// Which of its key's secrets the caller presented; `None` for the operator. A previous
    /// secret (in its grace period) serves but does not govern: see `may_manage`.
    pub secret: Option<ActingSecret>,
    /// Derived from the secret the caller presented, which the table never holds: it seals the
    /// caller's idempotent answers, so reading the table and guessing a header opens nothing.
    pub seal: SealMaterial,
}

/// A digest of a presented secret; never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SealMaterial(Option<[u8; 32]>);

impl SealMaterial {
    /// From a secret the caller holds and the table does not: a presented key, or for the
    /// root-key resource its request's presigned response URL.
    pub fn of(presented: &str) -> Self {
        use sha2::{Digest, Sha256};
        Self(Some(Sha256::new().chain_update(b"idempotency seal\0").chain_update(presented).finalize().into()))
    }

    /// The digest, empty for the operator (who presents no secret), to derive a seal key from.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |bytes| bytes.as_slice())
    }
}

impl std::fmt::Debug for SealMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealMaterial(…)")
    }
}

/// Why a credential is refused before anything is read or written on its behalf.
const SEND_A_KEY: &str = "send a root key as Authorization: Bearer <key> or x-api-key";

/// What a management call presents: the root key it carries (if any) and where it comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credential<'a> {
    /// The root key from `Authorization: Bearer` or `x-api-key`, unchecked; `None` if neither.
    pub key: Option<&'a str>,
    /// The caller's source address, which the root key's own allowlist must admit.
    pub ip: Option<IpAddr>,
}

impl Credential<'_> {
    /// The hash of the presented key: a missing or malformed one is refused with no read.
    pub fn hash(&self) -> Result<SecretHash, DomainError> {
        let key = self.key.ok_or_else(|| DomainError::Unauthenticated(SEND_A_KEY.into()))?;
        verify::presented_hash(key).ok_or_else(|| refused(VerifyCode::NotFound))
    }

    /// The caller this credential makes, from the lookup item read for its `hash`: the one
    /// authentication step of every management call and of verify's caller.
    pub(super) fn caller(
        &self,
        found: Option<SecretRecord>,
        hash: &SecretHash,
        now: DateTime<Utc>,
        need: Need,
    ) -> Result<Caller, DomainError> {
        let request = VerifyRequest { key: self.key.unwrap_or_default(), ip: self.ip, ..Default::default() };
        Caller::authenticated(verify::examine_found(found, hash, now, &request), need)
    }
}

fn refused(code: VerifyCode) -> DomainError {
    DomainError::Unauthenticated(format!("the credential was refused ({})", code.as_str()))
}

/// Authenticates a management call, or refuses it at no cost to the caller.
///
/// The presented root key must verify (known, active, not expired, from an allowed IP), be a
/// secret key, and hold the route's permission. Nothing is counted or written here.
pub async fn authenticate(
    store: &impl SecretLookup,
    now: DateTime<Utc>,
    credential: Credential<'_>,
    need: Need,
) -> Result<Caller, DomainError> {
    let hash = credential.hash()?;
    let found = store.find_secret(&hash).await?;
    let caller = credential.caller(found, &hash, now, need)?;
    Ok(Caller { seal: SealMaterial::of(credential.key.unwrap_or_default()), ..caller })
}

impl Caller {
    /// The caller a root key's verification makes, if it passed and holds `need`.
    pub fn authenticated(examined: Examined, need: Need) -> Result<Self, DomainError> {
        let (key, role) = match examined {
            Examined::Passed(key, role) => (key, role),
            Examined::Refused(verdict) => return Err(refused(verdict.code)),
        };
        // Publishable keys are shown again and meant for browsers and apps: never a root key.
        if key.key_type != KeyType::Secret {
            return Err(DomainError::Unauthenticated(
                "a publishable key cannot call the management API; use a secret root key".into(),
            ));
        }
        // An imported plaintext is the company's choice, maybe weak, maybe shaped like a
        // publishable key: it verifies, and governs nothing until a roll gives the key a secret
        // of the service's own.
        if key.secret_unseen(role) {
            return Err(DomainError::Unauthenticated(
                "an imported key cannot call the management API until it is rolled; use a root key the service made"
                    .into(),
            ));
        }
        let caller = Caller::of_key(Box::new(key), role);
        caller.require(need)?;
        Ok(caller)
    }

    /// The operator CLI (and the root-key custom resource) acting for `company`: every `keys:`
    /// permission, no key of its own to count against, and `operator` as the audit actor.
    pub fn operator(company: CompanyId) -> Self {
        let actor = "operator".into();
        Self {
            company,
            actor,
            permissions: vec![Permission::all_keys()],
            key: None,
            secret: None,
            seal: SealMaterial::default(),
        }
    }

    /// The caller a root key makes when it presents the secret of `role`: its company, its id
    /// as the actor, its management permissions.
    pub fn of_key(key: Box<ApiKey>, role: SecretRole) -> Self {
        let permissions = key
            .policy
            .acl
            .iter()
            .flat_map(Acl::permissions)
            .filter(|p| management_share(p).is_some())
            .cloned()
            .collect();
        let (company, actor) = (key.company_id.clone(), key.id.to_string());
        let key_prefix = match (role, &key.previous_secret) {
            (SecretRole::Previous, Some(previous)) => previous.key_prefix.clone(),
            _ => key.key_prefix.clone(),
        };
        let secret = Some(ActingSecret { secret: role, key_prefix });
        Self { company, actor, permissions, key: Some(key), secret, seal: SealMaterial::default() }
    }

    /// Whether the audit trail names a key or the operator as this caller.
    pub fn actor_type(&self) -> ActorType {
        if self.key.is_some() { ActorType::Key } else { ActorType::Operator }
    }

    fn presents_previous_secret(&self) -> bool {
        self.secret.as_ref().is_some_and(|acting| acting.secret == SecretRole::Previous)
    }

    /// A 403 unless the caller holds the route's permission (directly or by a wildcard).
    pub fn require(&self, need: Need) -> Result<(), DomainError> {
        let wanted = need.as_str();
        if need == Need::Signature {
            return Err(DomainError::Forbidden("this route takes no key; its requests are signed".into()));
        }
        if need == Need::Authenticated || self.permissions.iter().any(|p| p.grants(wanted)) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!("this key lacks the permission {wanted}")))
        }
    }

    /// The management rule: a caller may create, change, roll, delete or re-activate a key only
    /// if it could grant every `keys:` permission that key holds, so no key can act on (or make)
    /// a key stronger than itself. Called with the key's ACL before and after the change.
    ///
    /// A previous secret in its grace period serves but does not govern: it may not write any
    /// key that holds a `keys:` permission (its own key among them, since a writer holds
    /// `keys:write`), so a leaked secret, once rolled, cannot mint or change a key that outlives
    /// its grace or end its owner's new secret.
    pub fn may_manage(&self, acl: Option<&Acl>) -> Result<(), DomainError> {
        for permission in acl.into_iter().flat_map(Acl::permissions) {
            let Some(share) = management_share(permission) else { continue };
            if self.presents_previous_secret() {
                return Err(DomainError::SecretRetiring(
                    "this secret was replaced by a roll and is only serving out its grace period: it may read \
                     and verify, and write keys without keys: permissions, but not create or change a key that \
                     holds one (its own included)"
                        .into(),
                ));
            }
            if !self.permissions.iter().any(|own| covers(own, share)) {
                return Err(DomainError::Forbidden(format!(
                    "this key may only create or manage keys whose management permissions it holds itself, \
                     and it does not hold '{}'",
                    permission.as_str()
                )));
            }
        }
        Ok(())
    }

    /// The rule for identity writes, which reach every key of an identity at once: a previous
    /// secret in its grace period writes none (as it writes no key that could govern others),
    /// and only a caller that could manage every key (it holds all of `keys:`) sets or changes
    /// an identity's named limits or deletes one, so no key tightens or loosens the limits a
    /// stronger key shares.
    pub fn may_write_identity(&self, reaches_every_key: bool) -> Result<(), DomainError> {
        if self.presents_previous_secret() {
            return Err(DomainError::SecretRetiring(
                "this secret was replaced by a roll and is only serving out its grace period: it may read \
                 identities, not write them"
                    .into(),
            ));
        }
        if reaches_every_key {
            self.may_manage(Some(&Acl::root())).map_err(|_| {
                DomainError::Forbidden(
                    "only a key that holds all of keys: may set an identity's named limits or delete an identity, \
                     since they reach every key of the identity"
                        .into(),
                )
            })?;
        }
        Ok(())
    }

    /// What a key holding `keys:` permissions must be, once a caller has created, changed,
    /// rolled or re-activated it: bounded by the caller, so nothing a key makes outlives or
    /// outranges it. Its `expiresAt` no later than the caller's, its allowlist inside the
    /// caller's, its rate limit and quota no looser than the caller's, each wherever the caller
    /// has one (a missing one is refused, not filled in). Keys without `keys:` permissions are
    /// not bounded; an inactive key is (it may be re-activated by anyone later), except by a
    /// change that only deactivates it, which the caller of `bounds` leaves out.
    pub fn bounds(&self, key: &ApiKey) -> Result<(), DomainError> {
        let Some(own) = self.key.as_deref() else { return Ok(()) };
        if !holds_management(key) {
            return Ok(());
        }
        let out_of_bounds = |field: &'static str, rule: &str| {
            Err(DomainError::OutOfBounds {
                field,
                message: format!(
                    "a key that holds keys: permissions cannot be made looser than the key that makes or changes \
                     it: {rule}"
                ),
            })
        };
        if let Some(identity) = &own.policy.identity_id
            && key.policy.identity_id.as_ref() != Some(identity)
        {
            return out_of_bounds("identityId", &format!("it must belong to this key's identity {identity}"));
        }
        if let Some(limit) = own.policy.expires_at
            && key.policy.expires_at.is_none_or(|at| at > limit)
        {
            return out_of_bounds("expiresAt", &format!("it must expire no later than {}", limit.to_rfc3339()));
        }
        if let Some(allowed) = &own.policy.whitelisted_ips
            && key.policy.whitelisted_ips.as_ref().is_none_or(|list| !list.within(allowed))
        {
            return out_of_bounds("whitelistedIPs", "it must allow only addresses this key's allowlist allows");
        }
        if let Some(limit) = &own.policy.rate_limit
            && key.policy.rate_limit.as_ref().is_none_or(|rate| !rate.within(limit))
        {
            return out_of_bounds(
                "rateLimit",
                &format!(
                    "it needs a rate limit of at most {} per {} seconds or longer",
                    limit.limit, limit.period_seconds
                ),
            );
        }
        if let Some(limit) =
            own.policy.ratelimits.iter().find(|bound| {
                key.policy.ratelimits.iter().find(|l| l.name == bound.name).is_none_or(|l| !l.within(bound))
            })
        {
            let applied = if limit.auto_apply { ", applied to every verify" } else { "" };
            return out_of_bounds(
                "ratelimits",
                &format!(
                    "it needs a limit named {} of at most {} per {} seconds or longer{applied}",
                    limit.name, limit.limit, limit.period_seconds
                ),
            );
        }
        if let Some(limit) = &own.policy.quota
            && key.policy.quota.as_ref().is_none_or(|quota| !quota.within(limit))
        {
            let renewal = limit
                .renewal_seconds
                .map_or("never renewing".to_owned(), |s| format!("renewing every {s} seconds or longer"));
            return out_of_bounds("quota", &format!("it needs a quota of at most {}, {renewal}", limit.max));
        }
        Ok(())
    }

    /// A change that starts a key's quota count afresh (a new renewal, or the quota cleared and
    /// set again) gives it its whole quota back: a caller held to a quota may not do that to a
    /// key that holds `keys:` permissions, or a key could refill its own quota through a key it
    /// made.
    pub fn may_reset_quota_of(&self, key: &ApiKey) -> Result<(), DomainError> {
        let bounded = self.key.as_deref().is_some_and(|own| own.policy.quota.is_some());
        if bounded && holds_management(key) {
            return Err(DomainError::OutOfBounds {
                field: "quota",
                message: "a key held to a quota cannot start the quota count of a key that holds keys: permissions \
                          afresh (a new renewalSeconds, or the quota cleared): that would give it its uses back"
                    .into(),
            });
        }
        Ok(())
    }

    /// Counts this call against the caller's own rate limit and quota and refreshes its
    /// `lastUsedAt`, as a verify of it would. Called once the call has passed every permission
    /// check and before it takes effect: refused calls are not counted, over-limit calls do nothing.
    pub async fn charge(&self, store: &impl UsageRecorder, now: DateTime<Utc>) -> Result<(), DomainError> {
        let Some(key) = &self.key else { return Ok(()) };
        // A management call costs its caller's quota one use; named limits are verify's.
        let verdict = verify::count_use(store, key, now, 1, &[]).await?;
        match verdict.code {
            VerifyCode::Valid => Ok(()),
            VerifyCode::RateLimited => Err(DomainError::RateLimited("this root key is over its rate limit".into())),
            VerifyCode::QuotaExceeded => Err(DomainError::RateLimited("this root key has used up its quota".into())),
            other => Err(DomainError::Internal(format!("admitting a checked key answered {}", other.as_str()))),
        }
    }
}

/// What `GET /me` tells a root key about itself: its company, id, user, description and the
/// permissions it holds on the management API (its `keys:` share: `keys:read`, `keys:*`, `*`…).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// The caller's company.
    pub company_id: String,
    /// The root key's id (the audit actor).
    pub key_id: String,
    /// The root key's `userId`.
    pub user_id: String,
    /// The root key's description, for a person picking among keys.
    pub description: Option<String>,
    /// Its `keys:` permissions, sorted and without repeats: what it may do here.
    pub permissions: Vec<String>,
}

impl Caller {
    /// Who this caller is, counted against its own limits like any other call.
    pub async fn me(&self, store: &impl UsageRecorder, now: DateTime<Utc>) -> Result<Me, DomainError> {
        self.charge(store, now).await?;
        let key = self.key.as_deref();
        let mut permissions: Vec<String> = self.permissions.iter().map(|p| p.as_str().to_owned()).collect();
        permissions.sort_unstable();
        permissions.dedup();
        Ok(Me {
            company_id: self.company.to_string(),
            key_id: self.actor.clone(),
            user_id: key.map_or_else(|| self.actor.clone(), |k| k.user_id.clone()),
            description: key.and_then(|k| k.labels.description.clone()),
            permissions,
        })
    }
}

/// Whether a key holds any permission that reaches into `keys:`: a management key.
fn holds_management(key: &ApiKey) -> bool {
    key.policy.acl.iter().flat_map(Acl::permissions).any(|p| management_share(p).is_some())
}

/// The part of the management API a permission reaches: one name (`keys:read`), or every name
/// under a prefix (`keys:*`; `*` and `k*` reach all of `keys:`). `None`: it reaches none of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Share<'a> {
    Name(&'a str),
    Prefix(&'a str),
}

fn management_share(permission: &Permission) -> Option<Share<'_>> {
    if permission.reaches_all_of(MANAGEMENT) {
        return Some(Share::Prefix(MANAGEMENT));
    }
    let raw = permission.as_str();
    match raw.strip_suffix('*') {
        Some(prefix) if prefix.starts_with(MANAGEMENT) => Some(Share::Prefix(prefix)),
        None if raw.starts_with(MANAGEMENT) => Some(Share::Name(raw)),
        Some(_) | None => None,
    }
}

/// Whether holding `own` grants every name in `share`.
fn covers(own: &Permission, share: Share<'_>) -> bool {
    match share {
        Share::Name(name) => own.grants(name),
        Share::Prefix(prefix) => own.reaches_all_of(prefix),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(perms: &[&str]) -> Caller {
        Caller {
            company: CompanyId::parse("c", "c").unwrap(),
            actor: "k".into(),
            permissions: perms.iter().map(|s| Permission::parse(s, "p").unwrap()).collect(),
            key: None,
            secret: None,
            seal: SealMaterial::default(),
        }
    }

    fn acl(perms: &[&str]) -> Acl {
        let entries = serde_json::json!([{ "permissions": perms }]);
        Acl::parse(serde_json::from_value(entries).unwrap(), "acl").unwrap()
    }

    #[test]
    fn narrow_permissions_grant_only_themselves() {
        assert!(caller(&["keys:read"]).require(Need::Read).is_ok());
        assert!(caller(&["keys:read"]).require(Need::Write).is_err());
        assert!(caller(&["keys:verify"]).require(Need::Verify).is_ok());
        assert!(caller(&[]).require(Need::Read).is_err());
        assert!(caller(&[]).require(Need::Authenticated).is_ok(), "any authenticated root key may ask who it is");
    }

    #[test]
    fn a_key_manages_only_keys_whose_management_permissions_it_holds() {
        let writer = caller(&["keys:write"]);
        assert!(writer.may_manage(Some(&acl(&["keys:write", "orders:*", "ord*"]))).is_ok());
        assert!(writer.may_manage(None).is_ok(), "a key without keys: permissions is anyone's to manage");
        for stronger in ["keys:*", "*", "keys:read", "k*", "keys*", "keys:*", "keys:w*", "keys:x"] {
            assert!(writer.may_manage(Some(&acl(&[stronger]))).is_err(), "{stronger}");
        }
        assert!(caller(&["*"]).may_manage(Some(&acl(&["*"]))).is_ok());
        assert!(caller(&["keys:*"]).may_manage(Some(&acl(&["*", "keys:anything", "k*"]))).is_ok());
        assert!(caller(&["keys:w*"]).may_manage(Some(&acl(&["keys:write", "keys:wx*"]))).is_ok());
        assert!(caller(&["keys:w*"]).may_manage(Some(&acl(&["keys:*"]))).is_err());
    }

    #[test]
    fn wildcards_grant_every_key_permission() {
        for p in ["keys:*", "*"] {
            for need in [Need::Read, Need::Write, Need::Verify] {
                assert!(caller(&[p]).require(need).is_ok());
            }
        }
        assert!(caller(&["orders:*"]).require(Need::Read).is_err());
    }
}
