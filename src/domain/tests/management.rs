//! The management rule: a key may create, change, roll, delete or re-activate only keys whose
//! `keys:` permissions it holds, before and after the change; no key loosens its own guards;
//! the company's last active admin key goes only with `force`. A refused call writes nothing.

use futures::executor::block_on;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::domain::keys::{LAST_ADMIN, NewKey};
use crate::model::{CreateKeyInput, Permission, RollInput};

/// Permissions that sit on the edges of the rule, and a generator of others like them.
const EDGE_PERMISSIONS: &[&str] = &[
    "*",
    "k*",
    "ke*",
    "keys*",
    "keys:",
    "keys:*",
    "keys:r*",
    "keys:w*",
    "keys:read",
    "keys:write",
    "keys:verify",
    "keys:x",
    "keys:read*",
    "kez*",
    "orders:*",
    "orders:read",
    "o*",
];

fn permission() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(EDGE_PERMISSIONS).prop_map(str::to_owned),
        "[keysorw:*]{1,8}".prop_filter("a valid permission", |raw| Permission::parse(raw, "p").is_ok()),
    ]
}

fn permissions() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(permission(), 0..4)
}

fn refs(permissions: &[String]) -> Vec<&str> {
    permissions.iter().map(String::as_str).collect()
}

/// The rule restated by what permissions grant rather than how `may_manage` compares them: the
/// caller must be granted every name of the management API that the key is granted. A name
/// permission is probed by itself; a prefix by the first name under it in `keys:` and that name
/// plus a character no permission holds (which only another prefix grants).
fn holds_all_of(own: &[String], theirs: &[String]) -> bool {
    let granted = |name: &str| own.iter().any(|p| Permission::parse(p, "own").is_ok_and(|p| p.grants(name)));
    theirs.iter().all(|p| {
        let probes: Vec<String> = match p.strip_suffix('*') {
            None if p.starts_with("keys:") => vec![p.clone()],
            Some(prefix) if prefix.starts_with("keys:") => vec![prefix.to_owned(), format!("{prefix}\u{1}")],
            Some(prefix) if "keys:".starts_with(prefix) => vec!["keys:".to_owned(), "keys:\u{1}".to_owned()],
            // Outside the management API: nothing of it to hold.
            None | Some(_) => Vec::new(),
        };
        probes.iter().all(|name| granted(name))
    })
}

proptest! {
    /// `Caller::may_manage` against the rule's meaning, for any permissions on either side.
    #[test]
    fn may_manage_allows_exactly_keys_whose_management_share_the_caller_holds(
        own in permissions(),
        theirs in permissions(),
    ) {
        let (key, _) = secret_key("caller", &refs(&own));
        let allowed = caller_of(&key).may_manage(acl_of(&refs(&theirs)).as_ref()).is_ok();
        prop_assert_eq!(allowed, holds_all_of(&own, &theirs), "own {:?}, theirs {:?}", own, theirs);
    }

    /// A PATCH of another key's ACL, through `update_key`: allowed only if the caller holds the
    /// key's management share both before and after; refused, it writes nothing and costs the
    /// caller nothing; allowed, the key holds the new ACL and the call is counted once.
    #[test]
    fn a_change_needs_the_keys_share_before_and_after(
        own in permissions(),
        before in permissions(),
        after in permissions(),
    ) {
        let store = MemoryStore::new();
        let (mut caller_key, _) = secret_key("caller", &refs(&own));
        caller_key.policy.rate_limit = Some(RateLimit { limit: 100, period_seconds: 60 });
        store.put_key(&caller_key);
        // The target is within the caller's bounds (the same rate limit): only the rule is tested.
        let (target, _) = secret_key("target", &refs(&before));
        let target = ApiKey { policy: Policy { rate_limit: caller_key.policy.rate_limit, ..target.policy }, ..target };
        store.put_key(&target);
        let snapshot = store.snapshot();
        let acl_body = if after.is_empty() { Value::Null } else { json!([{ "permissions": after }]) };
        let result = block_on(patch(&store, &caller_of(&caller_key), &target.id, json!({ "acl": acl_body }), true));
        let window = RateLimit { limit: 100, period_seconds: 60 }.window_at(now()).number;
        if holds_all_of(&own, &before) && holds_all_of(&own, &after) {
            prop_assert!(result.is_ok(), "{:?}", result);
            prop_assert_eq!(stored(&store, &target.id).policy.acl, acl_of(&refs(&after)));
            prop_assert_eq!(store.rate_used(&caller_key, window), 1);
        } else {
            prop_assert!(matches!(result, Err(DomainError::Forbidden(_))), "{:?}", result);
            prop_assert_eq!(store.snapshot(), snapshot);
        }
    }

    /// No key changes its own `rateLimit`, `quota`, `expiresAt` or `whitelistedIPs`, cleared or
    /// set, whatever else the body holds; every other field it may change on itself, and
    /// another admin may change all of them.
    #[test]
    fn a_key_never_loosens_its_own_guards(choices in prop::collection::vec(any::<prop::sample::Index>(), 9)) {
        let fields = patch_fields();
        let states: Vec<FieldState> =
            fields.iter().zip(&choices).map(|(f, choice)| *choice.get(states_of(f))).collect();
        let guarded = ["rateLimit", "quota", "expiresAt", "whitelistedIPs"];
        let names_a_guard = fields.iter().zip(&states).any(|(f, s)| *s != FieldState::Absent && guarded.contains(&f.name));
        let target = patch_target("root");
        let root = ApiKey { policy: Policy { acl: acl_of(&["keys:*"]), ..target.policy }, ..target };
        let (body, expected) = patch_body(&fields, &states, &root);
        for by_itself in [true, false] {
            let store = MemoryStore::new();
            store.put_key(&root);
            let other = stored_key(&store, "other-admin", &["keys:*"]);
            let snapshot = store.snapshot();
            let caller = caller_of(if by_itself { &root } else { &other });
            let result = block_on(patch(&store, &caller, &root.id, body.clone(), false));
            if by_itself && names_a_guard {
                prop_assert!(matches!(result, Err(DomainError::Forbidden(_))), "{}: {:?}", body, result);
                prop_assert_eq!(store.snapshot(), snapshot);
            } else {
                prop_assert!(result.is_ok(), "{} by itself {}: {:?}", body, by_itself, result);
                // The key's own call is counted on it: compare what the PATCH decides.
                prop_assert_eq!(without_usage(stored(&store, &root.id)), without_usage(expected.clone()));
            }
        }
    }

    /// The company's last active admin key (secret, active, not deleted, holding all of `keys:`,
    /// expired or not) cannot be deleted, deactivated or stripped of `keys:*` without `force`,
    /// and such a refusal writes nothing; any other key can, and with `force` so can it.
    #[test]
    fn the_last_active_admin_goes_only_with_force(
        kinds in prop::collection::vec(key_kind(), 1..5),
        target in any::<prop::sample::Index>(),
        operation in 0..3usize,
        force in any::<bool>(),
    ) {
        let store = MemoryStore::new();
        for (i, kind) in kinds.iter().enumerate() {
            store.put_key(&kind.key(&format!("key-{i}")));
        }
        let at = target.index(kinds.len());
        let id = id(&format!("key-{at}"));
        let others_admins = kinds.iter().enumerate().filter(|(i, k)| *i != at && k.is_admin()).count();
        let snapshot = store.snapshot();
        let result = block_on(async {
            let target = Target { force, ..Target::key(&id) };
            match operation {
                0 => keys::delete_key(&store, &operator(), now(), target).await.map(drop),
                1 => patch(&store, &operator(), &id, json!({ "status": "inactive" }), force).await,
                _ => patch(&store, &operator(), &id, json!({ "acl": [{ "permissions": ["keys:read"] }] }), force).await,
            }
        });
        let kind = &kinds[at];
        if kind.deleted && operation > 0 {
            prop_assert!(matches!(&result, Err(DomainError::Conflict(m)) if m != LAST_ADMIN), "{:?}", result);
        } else if kind.is_admin() && others_admins == 0 && !force {
            prop_assert!(matches!(&result, Err(DomainError::Conflict(m)) if m == LAST_ADMIN), "{:?}", result);
            prop_assert_eq!(store.snapshot(), snapshot);
        } else {
            prop_assert!(result.is_ok(), "{:?} {:?}", kinds, result);
        }
    }
}

/// A key's state as far as the last-admin guard may care.
#[derive(Debug, Clone)]
struct KeyKind {
    permission: &'static str,
    active: bool,
    deleted: bool,
    publishable: bool,
    expired: bool,
}

fn key_kind() -> impl Strategy<Value = KeyKind> {
    let permission = prop::sample::select(&["keys:*", "*", "k*", "keys:read", "keys:write", "orders:*"][..]);
    (permission, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()).prop_map(
        |(permission, active, deleted, publishable, expired)| KeyKind {
            permission,
            active: active && !deleted,
            deleted,
            publishable,
            expired,
        },
    )
}

impl KeyKind {
    /// What docs/security.md counts as an admin key, said without `ApiKey::is_company_admin`.
    fn is_admin(&self) -> bool {
        self.active && !self.deleted && !self.publishable && ["keys:*", "*", "k*"].contains(&self.permission)
    }

    fn key(&self, raw_id: &str) -> ApiKey {
        let (mut key, _) = secret_key(raw_id, &[self.permission]);
        if !self.active {
            key.status = KeyStatus::Inactive;
        }
        if self.deleted {
            key.deleted_at = Some(now() - TimeDelta::hours(1));
        }
        if self.publishable {
            key.key_type = KeyType::Publishable;
        }
        if self.expired {
            key.policy.expires_at = Some(now() - TimeDelta::hours(1));
        }
        key
    }
}

/// The key less what its own calls count on it (`quotaUsage`, `lastUsedAt`).
fn without_usage(key: ApiKey) -> ApiKey {
    ApiKey { quota_usage: QuotaUsage::default(), last_used_at: None, ..key }
}

/// A `keys:write` key may act on the company's own API keys and on `keys:write` keys, and on
/// nothing stronger: creating, changing, rolling, deleting or re-activating a key holding a
/// `keys:` permission it lacks is a 403 that writes nothing, as is giving itself or another
/// key such a permission. A `keys:*` key may do all of it.
#[tokio::test]
async fn each_write_is_refused_on_a_key_stronger_than_its_caller() {
    let store = MemoryStore::new();
    let writer = stored_key(&store, "writer", &["keys:write"]);
    let admin = stored_key(&store, "admin", &["keys:*"]);
    let reader = stored_key(&store, "reader", &["keys:read"]);
    let sleeper = ApiKey { status: KeyStatus::Inactive, ..secret_key("sleeper", &["keys:verify"]).0 };
    store.put_key(&sleeper);
    let api_key = stored_key(&store, "orders", &["orders:*"]);

    let caller = caller_of(&writer);
    assert!(create(&store, &caller, json!([{ "permissions": ["keys:write", "orders:*"] }])).await.is_ok());
    assert!(roll(&store, &caller, &api_key.id).await.is_ok(), "any writer manages the company's own API keys");

    for (name, caller, refused) in [("keys:write", caller_of(&writer), true), ("keys:*", caller_of(&admin), false)] {
        let snapshot = store.snapshot();
        let attempts = [
            ("create a keys:read key", create(&store, &caller, json!([{ "permissions": ["keys:read"] }])).await),
            ("change a keys:read key", patch(&store, &caller, &reader.id, json!({ "description": "x" }), false).await),
            ("roll a keys:read key", roll(&store, &caller, &reader.id).await),
            (
                "re-activate a keys:verify key",
                patch(&store, &caller, &sleeper.id, json!({ "status": "active" }), false).await,
            ),
            (
                "delete a keys:read key",
                keys::delete_key(&store, &caller, now(), Target::key(&reader.id)).await.map(drop),
            ),
            (
                "give a key keys:verify",
                patch(&store, &caller, &api_key.id, json!({ "acl": [{ "permissions": ["keys:verify"] }] }), false)
                    .await,
            ),
            (
                "give itself keys:*",
                patch(&store, &caller, &caller_key(&caller), json!({ "acl": [{ "permissions": ["keys:*"] }] }), false)
                    .await,
            ),
        ];
        for (what, result) in attempts {
            if refused {
                assert!(matches!(result, Err(DomainError::Forbidden(_))), "{name} may not {what}: {result:?}");
            } else {
                assert!(result.is_ok(), "{name} may {what}: {result:?}");
            }
        }
        if refused {
            assert_eq!(store.snapshot(), snapshot, "the refused writes wrote nothing");
        }
    }
}

/// The id of the key a caller authenticated with.
fn caller_key(caller: &Caller) -> KeyId {
    caller.key.as_ref().expect("a key's caller").id.clone()
}

async fn create(store: &MemoryStore, caller: &Caller, acl: Value) -> Result<(), DomainError> {
    let input = CreateKeyInput::parse(json!({ "userId": "u", "acl": acl }), now())?;
    keys::create_key(store, caller, now(), NewKey { id: None, input, retry: None }).await.map(drop)
}

async fn roll(store: &MemoryStore, caller: &Caller, key: &KeyId) -> Result<(), DomainError> {
    let input = RollInput::parse(None)?;
    keys::roll_key(store, caller, now(), Target::key(key), input).await.map(drop)
}

/// The last admin key may not delete itself either, unless it says `force`.
#[tokio::test]
async fn the_last_admin_cannot_delete_itself_by_accident() {
    let store = MemoryStore::new();
    let root = stored_key(&store, "root", &["keys:*"]);
    let result = keys::delete_key(&store, &caller_of(&root), now(), Target::key(&root.id)).await.map(drop);
    assert!(matches!(&result, Err(DomainError::Conflict(m)) if m == LAST_ADMIN), "{result:?}");
    let forced = Target { force: true, ..Target::key(&root.id) };
    keys::delete_key(&store, &caller_of(&root), now(), forced).await.expect("forced, it goes");
    assert!(stored(&store, &root.id).is_deleted());
}
