//! Verify's order of checks: when several checks would fail, the first in the documented order
//! is the answer, and a refused verify counts nothing and writes nothing.

use std::net::IpAddr;

use chrono::TimeDelta;
use serde_json::json;

use super::*;
use crate::domain::Credential;
use crate::domain::verify::{self, Verdict, VerifyCode, VerifyRequest};
use crate::model::{Dimension, IpAllowlist, PreviousSecret, Quota, RateLimit, Scope};

/// Everything that can make a verify fail, each alone enough to fail it, in the order docs/api.md
/// and openapi.yaml give the checks, with the code each answers when it is the first to fail.
const FAULTS: [(Fault, VerifyCode); 12] = [
    (Fault::Malformed, VerifyCode::NotFound),
    (Fault::Unknown, VerifyCode::NotFound),
    (Fault::OtherCompany, VerifyCode::NotFound),
    (Fault::OldSecretPastGrace, VerifyCode::NotFound),
    (Fault::Inactive, VerifyCode::Inactive),
    (Fault::Deleted, VerifyCode::Inactive),
    (Fault::Expired, VerifyCode::Expired),
    (Fault::IpNotAllowed, VerifyCode::IpNotAllowed),
    (Fault::PermissionRefused, VerifyCode::Forbidden),
    (Fault::ScopeRefused, VerifyCode::Forbidden),
    (Fault::RateLimitReached, VerifyCode::RateLimited),
    (Fault::QuotaUsedUp, VerifyCode::QuotaExceeded),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// Not a key at all (wrong format or checksum): refused with no read.
    Malformed,
    /// A well-formed key the table does not know.
    Unknown,
    /// The key is another company's than the caller's.
    OtherCompany,
    /// The presented secret is the one a roll replaced, and its grace period ends now.
    OldSecretPastGrace,
    Inactive,
    /// Deleted. A delete also sets the status inactive; alone, this fault is a deleted key whose
    /// status still says active, which must not verify either.
    Deleted,
    /// `expiresAt` is now: reached.
    Expired,
    /// The request's `ip` is outside the key's allowlist.
    IpNotAllowed,
    /// The request asks for a permission the ACL does not grant.
    PermissionRefused,
    /// The request names a scope value the ACL's entry does not admit.
    ScopeRefused,
    /// The current rate window is already full.
    RateLimitReached,
    /// The quota's current period is already used up.
    QuotaUsedUp,
}

/// The three secrets a scenario presents: the key's, the one a roll replaced, and one of no key.
struct Secrets {
    current: PlaintextKey,
    old: PlaintextKey,
    stranger: PlaintextKey,
}

impl Secrets {
    fn new() -> Self {
        let new = || PlaintextKey::generate(KeyType::Secret);
        Self { current: new(), old: new(), stranger: new() }
    }
}

/// A key and a request that verify `VALID` as they are, spoiled by the given faults.
struct Scenario {
    store: MemoryStore,
    key: ApiKey,
    presented: String,
    company: CompanyId,
    ip: IpAddr,
    permissions: Vec<String>,
    scope: Scope,
}

impl Scenario {
    fn new(faults: &[Fault], secrets: &Secrets) -> Self {
        let Secrets { current, old, stranger } = secrets;
        let has = |fault| faults.contains(&fault);
        let (mut key, _) = secret_key("target", &[]);
        key.secret_hash = current.hash();
        key.key_prefix = current.visible_prefix().to_owned();
        key.policy.acl = Some(acl(json!([{ "scope": { "productId": ["p1"] }, "permissions": ["orders:read"] }])));
        key.policy.whitelisted_ips =
            IpAllowlist::parse(&["10.0.0.0/8".to_owned()], "whitelistedIPs").expect("a valid list");
        key.policy.rate_limit = Some(RateLimit { limit: 2, period_seconds: 60 });
        key.policy.quota =
            Some(Quota { max: 2, renewal_seconds: Some(3600), started_at: now() - TimeDelta::minutes(10) });
        key.quota_usage = QuotaUsage { period: 0, used: 1 };
        // Rolled with a grace period: the old secret verifies until `valid_until`, not at it.
        let grace_end = if has(Fault::OldSecretPastGrace) { now() } else { now() + TimeDelta::hours(1) };
        key.previous_secret = Some(PreviousSecret {
            hash: old.hash(),
            valid_until: grace_end,
            key_prefix: old.visible_prefix().to_owned(),
        });
        if has(Fault::Inactive) {
            key.status = KeyStatus::Inactive;
        }
        if has(Fault::Deleted) {
            key.deleted_at = Some(now() - TimeDelta::hours(1));
        }
        key.policy.expires_at = Some(if has(Fault::Expired) { now() } else { now() + TimeDelta::seconds(1) });
        if has(Fault::QuotaUsedUp) {
            key.quota_usage.used = 2;
        }
        let store = MemoryStore::new();
        store.put_key(&key);
        let window = key.policy.rate_limit.expect("a rate limit").window_at(now()).number;
        store.set_rate_used(&key, window, if has(Fault::RateLimitReached) { 2 } else { 1 });

        let presented = if has(Fault::Malformed) {
            format!("{}x", current.expose())
        } else if has(Fault::Unknown) {
            stranger.expose().to_owned()
        } else if has(Fault::OldSecretPastGrace) {
            old.expose().to_owned()
        } else {
            current.expose().to_owned()
        };
        let product = if has(Fault::ScopeRefused) { "p2" } else { "p1" };
        Self {
            store,
            key,
            presented,
            company: if has(Fault::OtherCompany) { other_company() } else { company() },
            ip: if has(Fault::IpNotAllowed) { [192, 0, 2, 1].into() } else { [10, 1, 2, 3].into() },
            permissions: vec![if has(Fault::PermissionRefused) { "orders:write" } else { "orders:read" }.to_owned()],
            scope: Scope::default().with(Dimension::ProductId, vec![product.to_owned()]),
        }
    }

    fn request(&self) -> VerifyRequest<'_> {
        VerifyRequest {
            key: &self.presented,
            company: Some(&self.company),
            ip: Some(self.ip),
            permissions: &self.permissions,
            scope: Some(&self.scope),
            cost: 1,
            limits: &[],
        }
    }

    async fn verify(&self) -> Verdict {
        verify::verify(&self.store, now(), self.request()).await.expect("the memory store always answers")
    }
}

/// Every combination of faults, 4096 of them: the first fault in the documented order decides
/// the code, whatever else is wrong; a refused verify leaves the store exactly as it was (no
/// rate slot, no quota use, no `lastUsedAt`); only `VALID` counts a use against both limits.
#[tokio::test]
async fn the_first_failing_check_in_the_documented_order_is_the_answer() {
    let secrets = Secrets::new();
    for mask in 0u32..1 << FAULTS.len() {
        let faults: Vec<Fault> =
            FAULTS.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, (fault, _))| *fault).collect();
        let expected = FAULTS.iter().find(|(fault, _)| faults.contains(fault)).map_or(VerifyCode::Valid, |(_, c)| *c);
        let scenario = Scenario::new(&faults, &secrets);
        let before = scenario.store.snapshot();
        let verdict = scenario.verify().await;
        assert_eq!(verdict.code, expected, "faults {faults:?}");
        assert_eq!(
            verdict.key.is_some(),
            expected != VerifyCode::NotFound,
            "the key answers for every code but NOT_FOUND"
        );
        if expected == VerifyCode::Valid {
            let window = scenario.key.policy.rate_limit.expect("a rate limit").window_at(now()).number;
            assert_eq!(scenario.store.rate_used(&scenario.key, window), 2);
            let after = stored(&scenario.store, &scenario.key.id);
            assert_eq!(after.quota_usage, QuotaUsage { period: 0, used: 2 });
            assert_eq!(after.last_used_at, Some(now()));
            assert_eq!(verdict.quota_remaining, Some(0));
            assert_eq!(verdict.rate.map(|r| r.remaining), Some(0));
        } else {
            assert_eq!(scenario.store.snapshot(), before, "a refused verify ({faults:?}) writes nothing");
        }
    }
}

/// The checks the contract gives in words, in order, by their codes: docs/api.md's paragraph,
/// openapi.yaml's list on `POST /keys/verify` and its `VerifyCode` schema. Each must name the
/// codes in the order `FAULTS` tests the code in.
#[test]
fn the_contract_gives_the_order_the_code_follows() {
    let mut tested: Vec<&str> = FAULTS.iter().map(|(_, code)| code.as_str()).collect();
    tested.dedup();
    let readme = include_str!("../../../docs/api.md");
    let openapi = include_str!("../../../openapi.yaml");
    let passages = [
        ("docs/api.md", between(readme, "Verify checks, in this order", "\n\n")),
        ("openapi.yaml POST /keys/verify", between(openapi, "Checks run in this fixed order", "Only a `VALID`")),
        ("openapi.yaml VerifyCode", between(openapi, "The first check that failed, in this order", "VALID when")),
    ];
    for (name, passage) in passages {
        assert_eq!(codes_in(passage), tested, "{name} gives another order:\n{passage}");
    }
}

/// The text from `start` up to (not including) the first `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("'{start}' is in the contract"));
    let rest = &text[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// The refusal codes a passage names, in order, each once.
fn codes_in(passage: &str) -> Vec<&'static str> {
    let refusals = [
        VerifyCode::NotFound,
        VerifyCode::Inactive,
        VerifyCode::Expired,
        VerifyCode::IpNotAllowed,
        VerifyCode::Forbidden,
        VerifyCode::RateLimited,
        VerifyCode::QuotaExceeded,
    ];
    let mut codes: Vec<&'static str> = passage
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .filter_map(|word| refusals.iter().map(|code| code.as_str()).find(|code| *code == word))
        .collect();
    codes.dedup();
    codes
}

/// An old secret verifies until the end of its grace period, not at it, and only while the
/// key itself does: its answers are the key's.
#[tokio::test]
async fn an_old_secret_answers_for_its_key_until_its_grace_ends() {
    let secrets = Secrets::new();
    let scenario = Scenario { presented: secrets.old.expose().to_owned(), ..Scenario::new(&[], &secrets) };
    assert_eq!(scenario.verify().await.code, VerifyCode::Valid);
    let inactive = Scenario::new(&[Fault::Inactive], &secrets);
    let inactive = Scenario { presented: secrets.old.expose().to_owned(), ..inactive };
    assert_eq!(inactive.verify().await.code, VerifyCode::Inactive);
}

/// A key with an allowlist refuses a verify that gives no `ip`; `whitelistedIPs` is the only
/// check a missing `ip` can fail.
#[tokio::test]
async fn a_verify_without_an_ip_is_refused_by_an_allowlist_only() {
    let secrets = Secrets::new();
    let scenario = Scenario::new(&[], &secrets);
    let request = VerifyRequest { ip: None, ..scenario.request() };
    let verdict = verify::verify(&scenario.store, now(), request).await.expect("an answer");
    assert_eq!(verdict.code, VerifyCode::IpNotAllowed);
    let mut open = scenario.key.clone();
    open.policy.whitelisted_ips = None;
    scenario.store.put_key(&open);
    let verdict = verify::verify(&scenario.store, now(), request).await.expect("an answer");
    assert_eq!(verdict.code, VerifyCode::Valid);
}

/// A key without an ACL grants no permission and restricts no scope (docs/api.md, "Choices"): a
/// request that asks for no permission verifies whatever scope it names; one that asks for a
/// permission is `FORBIDDEN`.
#[tokio::test]
async fn a_key_without_an_acl_grants_no_permission_and_restricts_no_scope() {
    let store = MemoryStore::new();
    let (key, plaintext) = secret_key("bare", &[]);
    store.put_key(&key);
    let (nothing, read): ([String; 0], _) = ([], ["orders:read".to_owned()]);
    let (empty, gold) = (Scope::default(), Scope::default().with(Dimension::PlanId, vec!["gold".into()]));
    let cases = [
        (&nothing[..], None, VerifyCode::Valid),
        (&nothing[..], Some(&empty), VerifyCode::Valid),
        (&read[..], None, VerifyCode::Forbidden),
        (&nothing[..], Some(&gold), VerifyCode::Valid),
        (&read[..], Some(&gold), VerifyCode::Forbidden),
    ];
    for (permissions, scope, expected) in cases {
        let request = VerifyRequest { key: plaintext.expose(), permissions, scope, ..VerifyRequest::default() };
        let verdict = verify::verify(&store, now(), request).await.expect("an answer");
        assert_eq!(verdict.code, expected, "{permissions:?} {scope:?}");
    }
}

/// `POST /keys/verify`'s caller is checked before the key: a caller without `keys:verify` is
/// refused and nothing is counted for anyone; an allowed caller's call counts against the
/// caller's own limits even when the key it verifies is refused, and never against the key's.
#[tokio::test]
async fn the_caller_of_a_verify_is_checked_and_charged_before_the_key() {
    let secrets = Secrets::new();
    let scenario = Scenario::new(&[Fault::Inactive], &secrets);
    let (mut reader, reader_secret) = secret_key("reader", &["keys:read"]);
    reader.policy.rate_limit = Some(RateLimit { limit: 5, period_seconds: 60 });
    scenario.store.put_key(&reader);
    let (mut verifier, verifier_secret) = secret_key("verifier", &["keys:verify"]);
    verifier.policy.rate_limit = Some(RateLimit { limit: 5, period_seconds: 60 });
    scenario.store.put_key(&verifier);
    let window = RateLimit { limit: 5, period_seconds: 60 }.window_at(now()).number;
    let target_window = scenario.key.policy.rate_limit.expect("a rate limit").window_at(now()).number;
    let verify_as = async |caller: &PlaintextKey| {
        let credential = Credential { key: Some(caller.expose()), ip: None };
        let (callers, verified) = (crate::domain::KeyCache::callers(0), crate::domain::KeyCache::verified_keys(0));
        let imports = crate::domain::imports_seen::ImportsSeen::new(0);
        let kept = crate::domain::verify_key::KeptKeys { callers: &callers, verified: &verified, imports: &imports };
        crate::domain::verify_key::verify_for_caller(&scenario.store, kept, now(), credential, scenario.request()).await
    };

    let before = scenario.store.snapshot();
    let refused = verify_as(&reader_secret).await;
    assert!(matches!(refused, Err(DomainError::Forbidden(_))), "{refused:?}");
    assert_eq!(scenario.store.snapshot(), before, "a refused caller costs nothing and counts nothing");

    let verdict = verify_as(&verifier_secret).await.expect("an answer");
    assert_eq!(verdict.code, VerifyCode::Inactive);
    assert_eq!(scenario.store.rate_used(&verifier, window), 1, "the caller's call is counted");
    assert_eq!(stored(&scenario.store, &scenario.key.id), scenario.key, "the refused key is not");
    assert_eq!(scenario.store.rate_used(&scenario.key, target_window), 1, "nor its rate window");

    scenario.store.set_rate_used(&verifier, window, 5);
    let over = verify_as(&verifier_secret).await;
    assert!(matches!(over, Err(DomainError::RateLimited(_))), "{over:?}");
    assert_eq!(stored(&scenario.store, &scenario.key.id), scenario.key, "a caller over its limits verifies nothing");
}
