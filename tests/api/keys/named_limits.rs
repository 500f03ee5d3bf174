//! Named limits: a key's and its identity's `ratelimits`, applied by verify with `cost` and the
//! request's `ratelimits`, all or nothing; the answer's `identity` and `ratelimits`.

use std::collections::BTreeMap;

use futures::future::join_all;
use lambda_http::http::{Method, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TransactionFault, spawn_app};

impl TestApp {
    async fn identity_with_limits(&self, external_id: &str, ratelimits: Value) -> String {
        let body = json!({ "externalId": external_id, "meta": { "plan": "pro" }, "ratelimits": ratelimits });
        let created = self.send(Method::POST, "/identities", Some(&self.root_key), Some(&body), &[]).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
        created.body["id"].as_str().unwrap().to_owned()
    }

    /// What every counter in the table holds: named limits' windows by
    /// `<KEY|IDENTITY>#<id>#<name>`, rate windows as `rate#<keyId>`, and quotas as
    /// `quota#<keyId>` (uses in the period, when any).
    async fn usage_counters(&self) -> BTreeMap<String, i64> {
        let items = self.client.scan().table_name(&self.table).send().await.unwrap().items.unwrap_or_default();
        let number = |v: Option<&aws_sdk_dynamodb::types::AttributeValue>| {
            v.and_then(|v| v.as_n().ok()).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0)
        };
        let mut counters = BTreeMap::new();
        for item in items {
            let pk = item["pk"].as_s().unwrap();
            if let Some(rest) = pk.strip_prefix(&format!("LIMIT#{}#", self.company)) {
                let (counter, _window) = rest.rsplit_once('#').unwrap();
                counters.insert(counter.to_owned(), number(item.get("used")));
            } else if let Some(rest) = pk.strip_prefix(&format!("RATE#{}#", self.company)) {
                let (key, _window) = rest.rsplit_once('#').unwrap();
                counters.insert(format!("rate#{key}"), number(item.get("used")));
            } else if let Some(key) = pk.strip_prefix(&format!("KEY#{}#", self.company)) {
                let usage = item.get("quotaUsage").and_then(|u| u.as_m().ok());
                let used = number(usage.and_then(|m| m.get("used")));
                if used > 0 {
                    counters.insert(format!("quota#{key}"), used);
                }
            }
        }
        counters
    }
}

fn limit(name: &str, limit: u64, auto_apply: bool) -> Value {
    json!({ "name": name, "limit": limit, "periodSeconds": 60, "autoApply": auto_apply })
}

#[tokio::test]
async fn a_named_limit_counts_each_verify_by_its_cost() {
    let app = spawn_app().await;
    let (id, secret) = app.create_key_pair(&json!({ "userId": "u", "ratelimits": [limit("tokens", 100, true)] })).await;

    let first = app.verify(&json!({ "key": secret, "cost": 60 })).await.body;
    assert_eq!(first["code"], "VALID", "{first}");
    let state = &first["ratelimits"][0];
    assert_eq!((state["name"].clone(), state["limit"].clone()), (json!("tokens"), json!(100)));
    assert_eq!((state["remaining"].clone(), state["exceeded"].clone()), (json!(40), json!(false)));
    assert!(state["resetAt"].as_str().is_some_and(|at| at.ends_with('Z')), "{state}");

    let second = app.verify(&json!({ "key": secret, "cost": 60 })).await.body;
    assert_eq!(second["code"], "RATE_LIMITED", "{second}");
    assert_eq!(second["ratelimits"][0]["exceeded"], true, "names the limit that refused: {second}");
    assert_eq!(second["ratelimits"][0]["remaining"], 40, "{second}");
    assert_eq!(app.usage_counters().await, BTreeMap::from([(format!("KEY#{id}#tokens"), 60)]));

    let shown = app.get_key(&id).await.body;
    assert_eq!(shown["ratelimits"], json!([limit("tokens", 100, true)]));
}

#[tokio::test]
async fn an_identitys_limit_is_shared_exactly_by_its_keys_under_concurrency() {
    let app = spawn_app().await;
    let identity = app.identity_with_limits("cust_42", json!([limit("requests", 5, true)])).await;
    let (_, first) = app.create_key_pair(&json!({ "userId": "a", "identityId": identity })).await;
    let (_, second) = app.create_key_pair(&json!({ "userId": "b", "identityId": identity })).await;
    let bodies: Vec<Value> = (0..20).map(|i| json!({ "key": if i % 2 == 0 { &first } else { &second } })).collect();
    let answers = join_all(bodies.iter().map(|body| app.verify(body))).await;
    let valid = answers.iter().filter(|a| a.body["code"] == "VALID").count();
    let limited = answers.iter().filter(|a| a.body["code"] == "RATE_LIMITED").count();
    assert_eq!((valid, limited), (5, 15));
    assert_eq!(app.usage_counters().await, BTreeMap::from([(format!("IDENTITY#{identity}#requests"), 5)]));
    let answer = &answers[0].body;
    assert_eq!(answer["identity"], json!({ "id": identity, "externalId": "cust_42", "meta": { "plan": "pro" } }));
}

#[tokio::test]
async fn every_limit_of_a_verify_counts_all_or_nothing_and_a_refusal_names_its_limit() {
    let app = spawn_app().await;
    let identity = app
        .identity_with_limits(
            "cust",
            json!([limit("requests", 6, true), limit("exports", 100, false), limit("tokens", 1, true)]),
        )
        .await;
    let body = json!({
        "userId": "u",
        "identityId": identity,
        "rateLimit": { "limit": 10, "periodSeconds": 60 },
        "quota": { "max": 10 },
        "ratelimits": [limit("tokens", 1000, true)],
    });
    let (id, secret) = app.create_key_pair(&body).await;
    for _ in 0..3 {
        let answer = app.verify(&json!({ "key": secret, "cost": 2 })).await.body;
        assert_eq!(answer["code"], "VALID", "{answer}");
    }
    let counted = BTreeMap::from([
        (format!("IDENTITY#{identity}#requests"), 6),
        (format!("KEY#{id}#tokens"), 6),
        (format!("quota#{id}"), 6),
        (format!("rate#{id}"), 3),
    ]);
    assert_eq!(app.usage_counters().await, counted, "the key's tokens shadow the identity's");

    let refused = app.verify(&json!({ "key": secret, "cost": 2 })).await.body;
    assert_eq!(refused["code"], "RATE_LIMITED", "{refused}");
    let names: Vec<(Value, Value)> =
        refused["ratelimits"].as_array().unwrap().iter().map(|s| (s["name"].clone(), s["exceeded"].clone())).collect();
    assert_eq!(names, [(json!("tokens"), json!(false)), (json!("requests"), json!(true))]);
    assert_eq!(app.usage_counters().await, counted, "a refused verify consumes nothing");

    // Asked for by name, with a cost of its own: `exports` applies; `requests` still refuses.
    let asked = json!({ "key": secret, "cost": 0, "ratelimits": [{ "name": "exports", "cost": 50 }] });
    let answer = app.verify(&asked).await.body;
    assert_eq!(answer["code"], "RATE_LIMITED", "{answer}");
    assert_eq!(app.usage_counters().await, counted);
}

#[tokio::test]
async fn the_quota_renews_inside_the_transaction_and_a_rate_refusal_leaves_it() {
    let app = spawn_app().await;
    let body = json!({
        "userId": "u",
        "quota": { "max": 2, "renewalSeconds": 60 },
        "ratelimits": [limit("tokens", 100, true)],
    });
    let (id, secret) = app.create_key_pair(&body).await;
    let codes =
        |answers: Vec<Value>| answers.iter().map(|a| a["code"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let mut answers = Vec::new();
    for _ in 0..3 {
        answers.push(app.verify(&json!({ "key": secret })).await.body);
    }
    assert_eq!(codes(answers.clone()), ["VALID", "VALID", "QUOTA_EXCEEDED"]);
    assert_eq!(answers[2]["quota"]["remaining"], 0);
    assert_eq!(answers[2]["ratelimits"][0]["remaining"], 98, "{}", answers[2]);
    app.advance(60);
    let renewed = app.verify(&json!({ "key": secret, "cost": 2 })).await.body;
    assert_eq!(
        (renewed["code"].clone(), renewed["quota"]["remaining"].clone()),
        (json!("VALID"), json!(0)),
        "{renewed}"
    );
    assert_eq!(app.usage_counters().await[&format!("quota#{id}")], 2);
}

#[tokio::test]
async fn a_limit_name_neither_the_key_nor_its_identity_holds_is_refused_naming_it() {
    let app = spawn_app().await;
    let identity = app.identity_with_limits("cust", json!([limit("exports", 10, false)])).await;
    let (_, secret) = app.create_key_pair(&json!({ "userId": "u", "identityId": identity })).await;
    let asked = json!({ "key": secret, "ratelimits": [{ "name": "exports" }, { "name": "tokens", "cost": 1 }] });
    let refused = app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&asked), &[]).await;
    assert_eq!((refused.status, refused.error_field()), (StatusCode::BAD_REQUEST, "ratelimits[1].name"));
    assert!(app.usage_counters().await.is_empty(), "nothing counted");

    for (bad, field) in [
        (json!([{ "name": "Bad" }]), "ratelimits[0].name"),
        (json!([{ "name": "a", "cost": 10001 }]), "ratelimits[0].cost"),
        (json!([{ "name": "a" }, { "name": "a" }]), "ratelimits[1].name"),
        (json!([{ "name": "a", "limit": 1 }]), "ratelimits[0].limit"),
        (json!(vec![json!({ "name": "a" }); 11]), "ratelimits"),
    ] {
        let body = json!({ "key": secret, "ratelimits": bad });
        let refused = app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&body), &[]).await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::BAD_REQUEST, field), "{bad}");
    }
    let fine = json!({ "key": secret, "ratelimits": [{ "name": "exports", "cost": 10 }] });
    let answer = app.verify(&fine).await.body;
    assert_eq!((answer["code"].clone(), answer["ratelimits"][0]["remaining"].clone()), (json!("VALID"), json!(0)));
}

#[tokio::test]
async fn a_key_holding_keys_permissions_carries_its_makers_named_limits() {
    let app = spawn_app().await;
    let bounded = json!({
        "userId": "admin",
        "acl": [{ "permissions": ["keys:*"] }],
        "ratelimits": [limit("tokens", 100, true)],
    });
    let (admin_id, admin) = app.create_key_pair(&bounded).await;
    let make = |ratelimits: Value| json!({ "userId": "m", "acl": [{ "permissions": ["keys:read"] }], "ratelimits": ratelimits });
    for looser in [
        json!([]),
        json!([limit("tokens", 101, true)]),
        json!([limit("tokens", 100, false)]),
        json!([limit("other", 1, true)]),
    ] {
        let refused = app.send(Method::POST, "/keys", Some(&admin), Some(&make(looser.clone())), &[]).await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::FORBIDDEN, "ratelimits"), "{looser}");
    }
    let within = make(json!([limit("tokens", 50, true), limit("other", 1, false)]));
    let made = app.send(Method::POST, "/keys", Some(&admin), Some(&within), &[]).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    // Not a key's own to lift.
    let own = app
        .send(Method::PATCH, &format!("/keys/{admin_id}"), Some(&admin), Some(&json!({ "ratelimits": [] })), &[])
        .await;
    assert_eq!(own.status, StatusCode::FORBIDDEN, "{:?}", own.body);
}

/// One key of the property below: its own named limit, rate limit and quota, if any.
#[derive(Debug, Clone)]
struct KeyPlan {
    own: Option<(&'static str, u64, bool)>,
    rate: Option<u64>,
    quota: Option<u64>,
}

/// One verify of the property below: which key, its cost, and a limit it asks for by name.
#[derive(Debug, Clone)]
struct VerifyPlan {
    key: usize,
    cost: u64,
    asked: Option<(&'static str, Option<u64>)>,
}

const NAMES: [&str; 3] = ["requests", "tokens", "exports"];

fn key_plan() -> impl Strategy<Value = KeyPlan> {
    let own = proptest::option::of((prop::sample::select(&NAMES[1..]), 1..12u64, any::<bool>()));
    (own, proptest::option::of(1..6u64), proptest::option::of(1..15u64)).prop_map(|(own, rate, quota)| KeyPlan {
        own,
        rate,
        quota,
    })
}

fn verify_plan(keys: usize) -> impl Strategy<Value = VerifyPlan> {
    let asked = proptest::option::of((prop::sample::select(&NAMES[..]), proptest::option::of(0..5u64)));
    (0..keys, 0..5u64, asked).prop_map(|(key, cost, asked)| VerifyPlan { key, cost, asked })
}

/// Whose counter a named limit of `key` counts in, and its limit, if `name` reaches the key.
fn owner_of(
    name: &str,
    plan: &KeyPlan,
    key_id: &str,
    identity: &(String, Vec<(&str, u64, bool)>),
) -> Option<(String, u64, bool)> {
    match plan.own {
        Some((own, limit, auto)) if own == name => Some((format!("KEY#{key_id}#{name}"), limit, auto)),
        _ => identity
            .1
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|(_, limit, auto)| (format!("IDENTITY#{}#{name}", identity.0), *limit, *auto)),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    /// Any interleaving of verifies over keys that share an identity: every counter holds
    /// exactly what the VALID answers took (so a refused verify, or a 400, took nothing), never
    /// more than its limit, and each VALID answer names exactly the limits that apply.
    #[test]
    fn interleaved_verifies_never_take_more_than_a_limit_allows_and_refusals_take_nothing(
        shared in proptest::collection::vec((prop::sample::select(&NAMES[..2]), 1..12u64, any::<bool>()), 1..=2),
        keys in proptest::collection::vec(key_plan(), 2..=3),
        verifies in proptest::collection::vec(verify_plan(3), 1..=24),
        batch in 1..8usize,
    ) {
        let mut shared = shared;
        shared.dedup_by_key(|(name, ..)| *name);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(interleaving(shared, keys, verifies, batch));
    }
}

async fn interleaving(
    shared: Vec<(&'static str, u64, bool)>,
    keys: Vec<KeyPlan>,
    verifies: Vec<VerifyPlan>,
    batch: usize,
) {
    let app = spawn_app().await;
    let named = |limits: &[(&str, u64, bool)]| {
        limits
            .iter()
            .map(
                |(name, limit, auto)| json!({ "name": name, "limit": limit, "periodSeconds": 3600, "autoApply": auto }),
            )
            .collect::<Vec<_>>()
    };
    let identity = (app.identity_with_limits("shared", json!(named(&shared))).await, shared.clone());
    let mut made = Vec::new();
    for plan in &keys {
        let mut body = json!({ "userId": "u", "identityId": identity.0, "ratelimits": named(plan.own.as_slice()) });
        if let Some(limit) = plan.rate {
            body["rateLimit"] = json!({ "limit": limit, "periodSeconds": 3600 });
        }
        if let Some(max) = plan.quota {
            body["quota"] = json!({ "max": max });
        }
        made.push(app.create_key_pair(&body).await);
    }
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let mut limits: BTreeMap<String, u64> = BTreeMap::new();
    for chunk in verifies.chunks(batch) {
        let bodies: Vec<Value> = chunk
            .iter()
            .map(|v| {
                let mut body = json!({ "key": made[v.key % made.len()].1, "cost": v.cost });
                if let Some((name, cost)) = v.asked {
                    body["ratelimits"] = json!([{ "name": name, "cost": cost }]);
                }
                body
            })
            .collect();
        let answers =
            join_all(bodies.iter().map(|b| app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(b), &[])))
                .await;
        for (v, answer) in chunk.iter().zip(answers) {
            let (plan, key_id) = (&keys[v.key % keys.len()], &made[v.key % made.len()].0);
            let asked_reaches = v.asked.is_none_or(|(name, _)| owner_of(name, plan, key_id, &identity).is_some());
            if !asked_reaches {
                assert_eq!((answer.status, answer.error_field()), (StatusCode::BAD_REQUEST, "ratelimits[0].name"));
                continue;
            }
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            let applied: Vec<(String, u64, u64)> = NAMES
                .iter()
                .filter_map(|name| {
                    let (counter, limit, auto) = owner_of(name, plan, key_id, &identity)?;
                    let asked = v.asked.filter(|(asked, _)| asked == name);
                    (auto || asked.is_some()).then(|| (counter, limit, asked.and_then(|(_, c)| c).unwrap_or(v.cost)))
                })
                .collect();
            let mut shown: Vec<&str> = answer.body["ratelimits"]
                .as_array()
                .map_or(Vec::new(), |a| a.iter().map(|s| s["name"].as_str().unwrap()).collect());
            let mut wanted: Vec<&str> = applied.iter().map(|(c, ..)| c.rsplit('#').next().unwrap()).collect();
            shown.sort_unstable();
            wanted.sort_unstable();
            let code = answer.body["code"].as_str().unwrap();
            assert!(["VALID", "RATE_LIMITED", "QUOTA_EXCEEDED"].contains(&code), "{}", answer.body);
            assert_eq!(shown, wanted, "{}", answer.body);
            if code != "VALID" {
                continue;
            }
            for (counter, limit, cost) in applied {
                *expected.entry(counter.clone()).or_default() += cost as i64;
                limits.insert(counter, limit);
            }
            if let Some(limit) = plan.rate {
                *expected.entry(format!("rate#{key_id}")).or_default() += 1;
                limits.insert(format!("rate#{key_id}"), limit);
            }
            if let Some(max) = plan.quota {
                *expected.entry(format!("quota#{key_id}")).or_default() += v.cost as i64;
                limits.insert(format!("quota#{key_id}"), max);
            }
        }
    }
    expected.retain(|_, used| *used > 0);
    let mut stored = app.usage_counters().await;
    stored.retain(|_, used| *used > 0);
    assert_eq!(stored, expected, "every counter holds exactly what the VALID answers took");
    for (counter, used) in &stored {
        assert!(*used as u64 <= limits[counter], "{counter}: {used} over {}", limits[counter]);
    }
}

#[tokio::test]
async fn only_a_key_holding_all_of_keys_gives_a_key_a_limit_that_replaces_its_identitys() {
    let app = spawn_app().await;
    let identity = app.identity_with_limits("cust", json!([limit("requests", 1, true)])).await;
    let writer = json!({ "userId": "w", "acl": [{ "permissions": ["keys:write", "keys:read"] }] });
    let (_, writer) = app.create_key_pair(&writer).await;
    let shadowing = json!({ "userId": "u", "identityId": identity, "ratelimits": [limit("requests", 1000, true)] });
    let refused = app.send(Method::POST, "/keys", Some(&writer), Some(&shadowing), &[]).await;
    assert_eq!((refused.status, refused.error_field()), (StatusCode::FORBIDDEN, "ratelimits"), "{:?}", refused.body);
    // Moving a key with such a limit into the identity is the same.
    let outside = json!({ "userId": "u", "ratelimits": [limit("requests", 1000, true)] });
    let (outside_id, _) = app.create_key_pair(&outside).await;
    let moved = app
        .send(
            Method::PATCH,
            &format!("/keys/{outside_id}"),
            Some(&writer),
            Some(&json!({ "identityId": identity })),
            &[],
        )
        .await;
    assert_eq!((moved.status, moved.error_field()), (StatusCode::FORBIDDEN, "ratelimits"), "{:?}", moved.body);
    // A name the identity does not hold is the writer's to give; all of keys: may shadow.
    let own = json!({ "userId": "u", "identityId": identity, "ratelimits": [limit("tokens", 5, true)] });
    assert_eq!(app.send(Method::POST, "/keys", Some(&writer), Some(&own), &[]).await.status, StatusCode::CREATED);
    let (_, secret) = app.create_key_pair(&shadowing).await;
    assert_eq!(app.verify(&json!({ "key": secret })).await.body["ratelimits"][0]["limit"], 1000);
}

#[tokio::test]
async fn a_verify_refused_for_an_unknown_limit_name_costs_its_caller_nothing() {
    let app = spawn_app().await;
    let verifier = json!({ "userId": "v", "acl": [{ "permissions": ["keys:verify"] }], "quota": { "max": 1 } });
    let (_, verifier) = app.create_key_pair(&verifier).await;
    let (_, secret) = app.create_key_pair(&json!({ "userId": "u" })).await;
    let unknown = json!({ "key": secret, "ratelimits": [{ "name": "nope" }] });
    for _ in 0..2 {
        let refused = app.send(Method::POST, "/keys/verify", Some(&verifier), Some(&unknown), &[]).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{:?}", refused.body);
    }
    let fine = app.send(Method::POST, "/keys/verify", Some(&verifier), Some(&json!({ "key": secret })), &[]).await;
    assert_eq!((fine.status, fine.body["code"].clone()), (StatusCode::OK, json!("VALID")), "{:?}", fine.body);
}

/// What AWS does and DynamoDB Local does not, injected: a transaction or a single update that
/// meets another transaction on its item is tried again, and a transaction whose answer was
/// lost after it committed is answered as committed; each use is counted exactly once.
#[tokio::test]
async fn conflicts_and_lost_answers_count_a_use_exactly_once() {
    let mut app = spawn_app().await;
    let alone = json!({ "userId": "u", "ratelimits": [limit("tokens", 100, true)] });
    let (alone_id, alone_secret) = app.create_key_pair(&alone).await;
    let together = json!({ "userId": "v", "rateLimit": { "limit": 10, "periodSeconds": 60 }, "ratelimits": [limit("tokens", 100, true)] });
    let (together_id, together_secret) = app.create_key_pair(&together).await;
    let faults = vec![TransactionFault::UpdateConflict, TransactionFault::UpdateConflict];
    app.script_transactions(faults).await;
    assert_eq!(app.verify(&json!({ "key": alone_secret, "cost": 7 })).await.body["code"], "VALID");
    app.script_transactions(vec![TransactionFault::Conflict, TransactionFault::LoseAnswer]).await;
    assert_eq!(app.verify(&json!({ "key": together_secret, "cost": 7 })).await.body["code"], "VALID");
    let counted = BTreeMap::from([
        (format!("KEY#{alone_id}#tokens"), 7),
        (format!("KEY#{together_id}#tokens"), 7),
        (format!("rate#{together_id}"), 1),
    ]);
    assert_eq!(app.usage_counters().await, counted);
}
