//! No sequence of calls by a company's keys, with their current or previous secrets, makes a
//! credential stronger or looser than a key the admin made, and every refused call changes
//! nothing and costs nothing.

use std::net::{IpAddr, Ipv4Addr};

use futures::executor::block_on;
use proptest::prelude::*;

use super::*;
use crate::domain::caller::Credential;
use crate::domain::keys::{NewKey, create_key, delete_key, roll_key};
use crate::domain::{Need, authenticate};
use crate::model::{CreateKeyInput, RollInput};

/// Where every call comes from: inside every allowlist the test hands out.
const CALLER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

/// The management powers in play, weakest last; index into this table.
const POWERS: [&[&str]; 5] = [&["keys:*"], &["keys:read", "keys:write"], &["keys:write"], &["orders:*"], &[]];

/// Each bound as a choice among a few settings; 0 is always "none".
#[derive(Debug, Clone, Copy)]
struct Bounds {
    expiry: u8,
    allow: u8,
    rate: u8,
    quota: u8,
}

impl Bounds {
    fn apply(self, body: &mut Value) {
        body["expiresAt"] = match self.expiry {
            0 => Value::Null,
            n => json!((now() + TimeDelta::minutes(10 * i64::from(n))).to_rfc3339()),
        };
        body["whitelistedIPs"] = match self.allow {
            0 => Value::Null,
            1 => json!(["10.0.0.0/8"]),
            _ => json!(["10.1.0.0/16"]),
        };
        body["rateLimit"] = match self.rate {
            0 => Value::Null,
            1 => json!({ "limit": 100, "periodSeconds": 60 }),
            _ => json!({ "limit": 10, "periodSeconds": 60 }),
        };
        body["quota"] = match self.quota {
            0 => Value::Null,
            1 => json!({ "max": 1000 }),
            _ => json!({ "max": 100, "renewalSeconds": 3600 }),
        };
    }
}

fn bounds() -> impl Strategy<Value = Bounds> {
    (0..3u8, 0..3u8, 0..3u8, 0..3u8).prop_map(|(expiry, allow, rate, quota)| Bounds { expiry, allow, rate, quota })
}

/// One call: `by` picks a credential from those handed out so far, `target` a key.
#[derive(Debug, Clone)]
enum Call {
    Create { by: prop::sample::Index, power: usize, bounds: Bounds },
    SetAcl { by: prop::sample::Index, target: prop::sample::Index, power: usize },
    SetBounds { by: prop::sample::Index, target: prop::sample::Index, bounds: Bounds },
    SetStatus { by: prop::sample::Index, target: prop::sample::Index, active: bool },
    Roll { by: prop::sample::Index, target: prop::sample::Index, grace: bool },
    Delete { by: prop::sample::Index, target: prop::sample::Index, force: bool },
}

fn call() -> impl Strategy<Value = Call> {
    let pick = any::<prop::sample::Index>;
    prop_oneof![
        (pick(), 0..POWERS.len(), bounds()).prop_map(|(by, power, bounds)| Call::Create { by, power, bounds }),
        (pick(), pick(), 0..POWERS.len()).prop_map(|(by, target, power)| Call::SetAcl { by, target, power }),
        (pick(), pick(), bounds()).prop_map(|(by, target, bounds)| Call::SetBounds { by, target, bounds }),
        (pick(), pick(), any::<bool>()).prop_map(|(by, target, active)| Call::SetStatus { by, target, active }),
        (pick(), pick(), any::<bool>()).prop_map(|(by, target, grace)| Call::Roll { by, target, grace }),
        (pick(), pick(), any::<bool>()).prop_map(|(by, target, force)| Call::Delete { by, target, force }),
    ]
}

/// What the admin made at the start: a power and bounds per key.
fn admin_keys() -> impl Strategy<Value = Vec<(usize, Bounds)>> {
    prop::collection::vec((0..POWERS.len() - 1, bounds()), 1..4)
}

fn body_of(power: usize, bounds: Bounds) -> Value {
    let mut body = json!({ "userId": "u", "acl": acl_json(power) });
    bounds.apply(&mut body);
    body
}

fn acl_json(power: usize) -> Value {
    if POWERS[power].is_empty() { Value::Null } else { json!([{ "permissions": POWERS[power] }]) }
}

/// The `keys:` permissions a key holds, as plain names.
fn management_names(key: &ApiKey) -> Vec<String> {
    key.policy
        .acl
        .iter()
        .flat_map(Acl::permissions)
        .map(|p| p.as_str().to_owned())
        .filter(|p| p.starts_with("keys") || p == "*")
        .collect()
}

/// Whether `key` is no stronger and no looser than `admin_made`, written out independently of
/// the rules under test.
fn within(key: &ApiKey, admin_made: &ApiKey) -> bool {
    let (own, theirs) = (management_names(key), management_names(admin_made));
    let power = theirs.iter().any(|p| p == "keys:*") || own.iter().all(|p| theirs.contains(p));
    let expiry = admin_made.policy.expires_at.is_none_or(|limit| key.policy.expires_at.is_some_and(|at| at <= limit));
    let prefix = |list: &Option<IpAllowlist>| -> u8 {
        list.as_ref().map_or(0, |l| Vec::<String>::from(l.clone())[0].split('/').nth(1).unwrap().parse().unwrap())
    };
    let allow = admin_made.policy.whitelisted_ips.is_none()
        || prefix(&key.policy.whitelisted_ips) >= prefix(&admin_made.policy.whitelisted_ips);
    let rate = admin_made.policy.rate_limit.is_none_or(|limit| {
        key.policy.rate_limit.is_some_and(|r| r.limit <= limit.limit && r.period_seconds >= limit.period_seconds)
    });
    let quota = admin_made.policy.quota.is_none_or(|limit| {
        key.policy.quota.is_some_and(|q| {
            q.max <= limit.max
                && match (q.renewal_seconds, limit.renewal_seconds) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some(own), Some(bound)) => own >= bound,
                }
        })
    });
    power && expiry && allow && rate && quota
}

fn authenticated(store: &MemoryStore, secret: &PlaintextKey, need: Need) -> Option<Caller> {
    let credential = Credential { key: Some(secret.expose()), ip: Some(CALLER_IP) };
    block_on(authenticate(store, now(), credential, need)).ok()
}

/// Runs one call; the new secret it hands out (create, roll), if it succeeded.
fn run(
    store: &MemoryStore,
    caller: &Caller,
    call: &Call,
    ids: &[KeyId],
) -> Result<Option<(KeyId, PlaintextKey)>, DomainError> {
    let pick = |index: &prop::sample::Index| ids[index.index(ids.len())].clone();
    let patch_with = |target: &prop::sample::Index, body: Value| {
        let target = pick(target);
        let input = UpdateKeyInput::parse(body, now())?;
        block_on(keys::update_key(store, caller, now(), Target::key(&target), &input)).map(|_| None)
    };
    match call {
        Call::Create { power, bounds, .. } => {
            let input = CreateKeyInput::parse(body_of(*power, *bounds), now())?;
            let written = block_on(create_key(store, caller, now(), NewKey { id: None, input, retry: None }))?;
            Ok(written.plaintext.map(|p| (written.key.id, p)))
        }
        Call::SetAcl { target, power, .. } => patch_with(target, json!({ "acl": acl_json(*power) })),
        Call::SetBounds { target, bounds, .. } => {
            let mut body = json!({});
            bounds.apply(&mut body);
            patch_with(target, body)
        }
        Call::SetStatus { target, active, .. } => {
            patch_with(target, json!({ "status": if *active { "active" } else { "inactive" } }))
        }
        Call::Roll { target, grace, .. } => {
            let target = pick(target);
            let input = RollInput { grace_period_seconds: if *grace { 3600 } else { 0 } };
            let written = block_on(roll_key(store, caller, now(), Target::key(&target), input))?;
            Ok(written.plaintext.map(|p| (target, p)))
        }
        Call::Delete { target, force, .. } => {
            let target = pick(target);
            block_on(delete_key(store, caller, now(), Target { force: *force, ..Target::key(&target) })).map(|()| None)
        }
    }
}

fn by(call: &Call) -> &prop::sample::Index {
    match call {
        Call::Create { by, .. }
        | Call::SetAcl { by, .. }
        | Call::SetBounds { by, .. }
        | Call::SetStatus { by, .. }
        | Call::Roll { by, .. }
        | Call::Delete { by, .. } => by,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn no_credential_outgrows_the_keys_the_admin_made(made in admin_keys(), calls in prop::collection::vec(call(), 1..24)) {
        let store = MemoryStore::new();
        let mut admin_made = Vec::new();
        let mut secrets: Vec<(KeyId, PlaintextKey)> = Vec::new();
        for (power, bounds) in made {
            let input = CreateKeyInput::parse(body_of(power, bounds), now()).expect("a valid body");
            let written = block_on(create_key(&store, &operator(), now(), NewKey { id: None, input, retry: None }))
                .expect("the admin may make any key");
            admin_made.push(written.key.clone());
            secrets.push((written.key.id, written.plaintext.expect("a new secret")));
        }
        let mut ids: Vec<KeyId> = admin_made.iter().map(|k| k.id.clone()).collect();
        for call in &calls {
            let (_, secret) = &secrets[by(call).index(secrets.len())];
            let Some(caller) = authenticated(&store, secret, Need::Write) else { continue };
            let before = store.snapshot();
            match run(&store, &caller, call, &ids) {
                Ok(Some((id, secret))) => {
                    if !ids.contains(&id) {
                        ids.push(id.clone());
                    }
                    secrets.push((id, secret));
                }
                Ok(None) => {}
                Err(refused) => prop_assert_eq!(
                    store.snapshot(), before, "{:?} by {} was refused ({:?}) but changed something", call, caller.actor, refused
                ),
            }
        }
        for (_, secret) in &secrets {
            let Some(caller) = authenticated(&store, secret, Need::Authenticated) else { continue };
            let key = caller.key.expect("a key's caller has its key");
            if management_names(&key).is_empty() {
                continue;
            }
            prop_assert!(
                admin_made.iter().any(|made| within(&key, made)),
                "{} ({:?}) is stronger or looser than every key the admin made: {:#?}\nadmin made: {:#?}",
                key.id, caller.secret, key, admin_made
            );
        }
    }
}
