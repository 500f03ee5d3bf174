//! Identities over HTTP: create, find by externalId, a key that names one, its key list, the
//! delete guard, and the limits verify applies. Every identity made is deleted again.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::json;

use crate::client::{Check, ids, unique};

#[tokio::test]
async fn an_identity_holds_keys_lists_them_and_is_not_deleted_while_one_is_active() {
    let check = Check::new();
    let external = unique("bb-cust");
    let body =
        json!({ "externalId": external, "ratelimits": [{ "name": "requests", "limit": 5, "periodSeconds": 60 }] });
    let created = check.call("POST", "/identities").json(&body).send().await;
    assert_eq!(created.status, 201, "{created:?}");
    let identity = created.text("id").to_owned();
    assert_eq!(created.header("location"), format!("/identities/{identity}"));
    assert_eq!(created.body["ratelimits"][0]["autoApply"], true);
    let again = check.call("POST", "/identities").json(&json!({ "externalId": external })).send().await;
    assert!(again.is_error(409, "identity_exists"), "{again:?}");
    let found = check.get(&format!("/identities?externalId={external}")).await;
    assert_eq!((found.status, ids(&found.body)), (200, vec![identity.clone()]));

    let first = check.create(json!({ "userId": "bb-a", "identityId": identity })).await;
    let second = check.create(json!({ "userId": "bb-b", "identityId": identity })).await;
    check.create(json!({ "userId": "bb-none" })).await;
    let listed = check.get(&format!("/keys?identityId={identity}")).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(
        (listed.body["total"].clone(), ids(&listed.body)),
        (json!(2), vec![second.id.clone(), first.id.clone()])
    );
    let absent = json!({ "userId": "x", "identityId": "id_0193a5e27c417d3a9f275b0c8e4d2a11" });
    let nobody = check.call("POST", "/keys").json(&absent).send().await;
    assert!(nobody.is_error(400, "invalid_field") && nobody.error_field() == "identityId", "{nobody:?}");

    let path = format!("/identities/{identity}");
    let refused = check.call("DELETE", &path).send().await;
    assert!(refused.is_error(409, "conflict"), "{refused:?}");
    for key in [&first.id, &second.id] {
        assert_eq!(check.call("DELETE", &format!("/keys/{key}")).send().await.status, 204);
    }
    assert_eq!(check.call("DELETE", &path).send().await.status, 204);
    assert_eq!(check.get(&path).await.status, 404);
    check.done().await;
}

/// An identity's limit of 5 a minute is shared by its two keys: of 20 concurrent verifies
/// spread over both, exactly 5 are VALID. Windows are the server's minutes: a run whose answers
/// fall in two windows (their `resetAt` differ) is run again with a fresh identity.
#[tokio::test]
async fn an_identitys_limit_is_shared_exactly_by_its_keys() {
    let check = Check::new();
    let (mut identities, mut keys) = (Vec::new(), Vec::new());
    let counts = loop {
        let body = json!({
            "externalId": unique("bb-shared"),
            "meta": { "plan": "pro" },
            "ratelimits": [{ "name": "requests", "limit": 5, "periodSeconds": 60 }],
        });
        let created = check.call("POST", "/identities").json(&body).send().await;
        assert_eq!(created.status, 201, "{created:?}");
        let identity = created.text("id").to_owned();
        identities.push(identity.clone());
        let first = check.create(json!({ "userId": "bb-a", "identityId": identity })).await;
        let second = check.create(json!({ "userId": "bb-b", "identityId": identity })).await;
        keys.extend([first.id.clone(), second.id.clone()]);
        let verifies =
            (0..20).map(|i| check.verify(json!({ "key": if i % 2 == 0 { &first.key } else { &second.key } })));
        let answers = join_all(verifies).await;
        let windows: BTreeSet<String> =
            answers.iter().map(|a| a.body["ratelimits"][0]["resetAt"].to_string()).collect();
        if windows.len() > 1 && identities.len() < 3 {
            continue;
        }
        let answer = &answers[0].body;
        assert_eq!(answer["identity"]["id"], json!(identity), "{answer}");
        assert_eq!(answer["identity"]["meta"], json!({ "plan": "pro" }), "{answer}");
        let count = |code: &str| answers.iter().filter(|a| a.text("code") == code).count();
        break (count("VALID"), count("RATE_LIMITED"));
    };
    assert_eq!(counts, (5, 15));
    for key in keys {
        assert_eq!(check.call("DELETE", &format!("/keys/{key}")).send().await.status, 204);
    }
    for identity in identities {
        assert_eq!(check.call("DELETE", &format!("/identities/{identity}")).send().await.status, 204);
    }
    check.done().await;
}

/// A named limit of 100 counts each verify's cost: two of 60 are VALID (40 left), then
/// RATE_LIMITED naming it, which takes nothing.
#[tokio::test]
async fn a_named_limit_counts_each_verify_by_its_cost() {
    let check = Check::new();
    let limits = json!([{ "name": "tokens", "limit": 100, "periodSeconds": 3600, "autoApply": false }]);
    let made = check.create(json!({ "userId": "bb-tokens", "ratelimits": limits })).await;
    let asked = json!({ "key": made.key, "ratelimits": [{ "name": "tokens", "cost": 60 }] });
    let first = check.verify(asked.clone()).await;
    assert_eq!(first.text("code"), "VALID", "{first:?}");
    assert_eq!(first.body["ratelimits"][0]["remaining"], 40, "{first:?}");
    let second = check.verify(asked).await;
    assert_eq!(second.text("code"), "RATE_LIMITED", "{second:?}");
    let refused = &second.body["ratelimits"][0];
    assert_eq!((refused["name"].as_str(), refused["exceeded"].as_bool()), (Some("tokens"), Some(true)), "{second:?}");
    // A window a run began in may end between the two: then the second starts a new one.
    if refused["resetAt"] == first.body["ratelimits"][0]["resetAt"] {
        assert_eq!(refused["remaining"], 40, "the refusal took nothing: {second:?}");
    }
    let unknown = json!({ "key": made.key, "ratelimits": [{ "name": "exports" }] });
    let bad = check.call("POST", "/keys/verify").json(&unknown).send().await;
    assert!(bad.is_error(400, "invalid_field") && bad.error_field() == "ratelimits[0].name", "{bad:?}");
    check.done().await;
}

/// A key imported by the SHA-256 of its plaintext verifies with that plaintext, its identity
/// attached; the same hash again is refused without saying whose.
#[tokio::test]
async fn an_imported_hash_verifies_with_its_plaintext() {
    let check = Check::new();
    let plaintext = unique("legacy_live");
    let body = json!({ "externalId": unique("bb-imported"), "meta": { "from": "old-gateway" } });
    let identity = check.call("POST", "/identities").json(&body).send().await;
    assert_eq!(identity.status, 201, "{identity:?}");
    let identity = identity.text("id").to_owned();
    let digest = <sha2::Sha256 as sha2::Digest>::digest(plaintext.as_bytes());
    let hash = json!({ "algorithm": "sha256", "encoding": "hex", "value": hex::encode(digest) });
    let keys = json!({ "keys": [{ "hash": hash, "userId": "bb-imported", "identityId": identity }] });
    let imported = check.call("POST", "/keys/import").json(&keys).send().await;
    assert_eq!(imported.status, 200, "{imported:?}");
    let id = imported.body["keys"][0]["id"].as_str().expect("imported").to_owned();
    let answer = check.verify(json!({ "key": plaintext })).await;
    assert_eq!((answer.text("code"), answer.text("keyId")), ("VALID", id.as_str()), "{answer:?}");
    assert_eq!(answer.body["identity"]["id"], json!(identity), "{answer:?}");
    let again = check.call("POST", "/keys/import").json(&keys).send().await;
    assert_eq!(again.body["keys"][0]["error"]["code"], "key_exists", "{again:?}");
    assert_eq!(check.call("DELETE", &format!("/keys/{id}")).send().await.status, 204);
    assert_eq!(check.call("DELETE", &format!("/identities/{identity}")).send().await.status, 204);
    check.done().await;
}
