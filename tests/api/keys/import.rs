//! `POST /keys/import`: keys brought in by the SHA-256 of their plaintext, each on its own,
//! verified with that plaintext whatever its format.

use base64::Engine;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, TestResponse, spawn_app};

fn hex_hash(plaintext: &str) -> Value {
    json!({ "algorithm": "sha256", "encoding": "hex", "value": hex::encode(Sha256::digest(plaintext.as_bytes())) })
}

fn base64_hash(plaintext: &str) -> Value {
    let value = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(plaintext.as_bytes()));
    json!({ "algorithm": "sha256", "encoding": "base64", "value": value })
}

impl TestApp {
    async fn import_as(&self, key: &str, keys: Value, headers: &[(&str, &str)]) -> TestResponse {
        self.send(Method::POST, "/keys/import", Some(key), Some(&json!({ "keys": keys })), headers).await
    }

    async fn import(&self, keys: Value) -> Vec<Value> {
        let answer = self.import_as(&self.root_key, keys, &[]).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        answer.body["keys"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn an_imported_hash_verifies_with_its_plaintext_and_its_identity() {
    let app = spawn_app().await;
    let identity = app
        .send(Method::POST, "/identities", Some(&app.root_key), Some(&json!({ "externalId": "cust_42" })), &[])
        .await;
    let identity = identity.body["id"].as_str().unwrap().to_owned();
    let answers = app
        .import(json!([
            { "hash": hex_hash("legacy_live_4f9a2c7e81b3d605"), "userId": "u1", "identityId": identity },
            { "hash": base64_hash("Tyk-style key with spaces? no: tyk_key_77"), "userId": "u2" },
        ]))
        .await;
    let id = answers[0]["id"].as_str().expect("imported").to_owned();
    assert!(answers[1]["id"].is_string(), "{answers:?}");

    let answer = app.verify(&json!({ "key": "legacy_live_4f9a2c7e81b3d605" })).await.body;
    assert_eq!((answer["code"].clone(), answer["keyId"].clone()), (json!("VALID"), json!(id)), "{answer}");
    assert_eq!(answer["identity"], json!({ "id": identity, "externalId": "cust_42", "meta": {} }));
    assert_eq!(app.verify(&json!({ "key": "legacy_live_4f9a2c7e81b3d605x" })).await.body["code"], "NOT_FOUND");

    let shown = app.get_key(&id).await.body;
    assert_eq!((shown["keyPrefix"].clone(), shown["type"].clone()), (json!(""), json!("secret")));
    let events = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await;
    let actions: Vec<&str> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["imported"]);
    let listed = app.list_keys(&format!("?identityId={identity}")).await.body;
    assert_eq!(crate::helpers::ids(&listed), vec![id.clone()]);
}

#[tokio::test]
async fn a_hash_already_held_anywhere_is_refused_without_saying_where() {
    let app = spawn_app().await;
    let (_, rival) = app.other_company_root_key().await;
    let taken = app.import_as(&rival, json!([{ "hash": hex_hash("shared-secret-1"), "userId": "r" }]), &[]).await;
    assert!(taken.body["keys"][0]["id"].is_string(), "{:?}", taken.body);
    let (_, made) = app.create_key_pair(&json!({ "userId": "m" })).await;
    let items = app.item_count().await;
    let answers = app
        .import(json!([
            { "hash": hex_hash("shared-secret-1"), "userId": "a" },
            { "hash": hex_hash(&made), "userId": "b" },
            { "hash": hex_hash("fresh-one-2"), "userId": "c" },
            { "hash": hex_hash("fresh-one-2"), "userId": "d" },
        ]))
        .await;
    for i in [0, 1, 3] {
        assert_eq!(answers[i]["error"]["status"], 409, "{answers:?}");
        assert_eq!(answers[i]["error"]["code"], "key_exists");
        assert_eq!(answers[i]["error"]["message"], "a key with this hash already exists");
    }
    assert!(answers[2]["id"].is_string());
    assert!(app.item_count().await > items, "the fresh one was written");
    // Still the rival's key, not ours.
    assert_eq!(app.verify(&json!({ "key": "shared-secret-1" })).await.body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn each_entry_is_answered_on_its_own_and_only_the_envelope_refuses_the_call() {
    let app = spawn_app().await;
    let answers = app
        .import(json!([
            { "hash": { "algorithm": "md5", "encoding": "hex", "value": "00" }, "userId": "a" },
            { "hash": hex_hash("fine-key-001"), "userId": "b", "identityId": "id_0193a5e27c417d3a9f275b0c8e4d2a11" },
            { "hash": hex_hash("fine-key-002"), "userId": "c", "type": "publishable" },
            { "hash": hex_hash("fine-key-003"), "userId": "d", "acl": [{ "permissions": ["orders:read"] }] },
        ]))
        .await;
    let fields: Vec<&str> = answers[..3].iter().map(|a| a["error"]["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["keys[0].hash.algorithm", "keys[1].identityId", "keys[2].type"]);
    assert!(answers[3]["id"].is_string(), "{answers:?}");
    let items = app.item_count().await;
    for (body, field) in [
        (json!({ "keys": [] }), "keys"),
        (json!({ "keys": vec![json!({ "userId": "x" }); 101] }), "keys"),
        (json!({ "keys": {} }), "keys"),
        (json!({ "keys": [], "more": 1 }), "more"),
        (json!({}), "keys"),
    ] {
        let refused = app.send(Method::POST, "/keys/import", Some(&app.root_key), Some(&body), &[]).await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::BAD_REQUEST, field), "{body}");
    }
    assert_eq!(app.item_count().await, items, "nothing written");
}

#[tokio::test]
async fn the_permission_model_holds_for_imported_keys() {
    let app = spawn_app().await;
    let reader = json!({ "userId": "r", "acl": [{ "permissions": ["keys:read"] }] });
    let (_, reader) = app.create_key_pair(&reader).await;
    let refused = app.import_as(&reader, json!([{ "hash": hex_hash("k-0001"), "userId": "x" }]), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let writer =
        json!({ "userId": "w", "acl": [{ "permissions": ["keys:write"] }], "expiresAt": "2031-01-01T00:00:00Z" });
    let (_, writer) = app.create_key_pair(&writer).await;
    let answers = app
        .import_as(
            &writer,
            json!([
                { "hash": hex_hash("k-0002"), "userId": "x", "acl": [{ "permissions": ["keys:*"] }] },
                { "hash": hex_hash("k-0003"), "userId": "x", "acl": [{ "permissions": ["keys:write"] }] },
                { "hash": hex_hash("k-0004"), "userId": "x", "acl": [{ "permissions": ["keys:write"] }], "expiresAt": "2030-06-01T00:00:00Z" },
            ]),
            &[],
        )
        .await;
    let answers = answers.body["keys"].as_array().unwrap().clone();
    assert_eq!(answers[0]["error"]["status"], 403, "{answers:?}");
    assert_eq!(
        (answers[1]["error"]["status"].clone(), answers[1]["error"]["field"].clone()),
        (json!(403), json!("keys[1].expiresAt"))
    );
    assert!(answers[2]["id"].is_string(), "{answers:?}");
    // An imported plaintext authenticates no management call, even one shaped like the
    // service's own keys (a publishable one too), until a roll gives the key a secret of ours.
    let as_root = app.send(Method::GET, "/me", Some("k-0004"), None, &[]).await;
    assert_eq!(as_root.status, StatusCode::UNAUTHORIZED);
    for kind in [apikeys::model::KeyType::Secret, apikeys::model::KeyType::Publishable] {
        let shaped = apikeys::model::PlaintextKey::generate(kind).expose().to_owned();
        let admin = json!([{ "hash": hex_hash(&shaped), "userId": "x", "acl": [{ "permissions": ["keys:*"] }] }]);
        let id = app.import(admin).await[0]["id"].as_str().unwrap().to_owned();
        let me = app.send(Method::GET, "/me", Some(&shaped), None, &[]).await;
        assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{kind:?}: {:?}", me.body);
        assert_eq!(app.verify(&json!({ "key": shaped })).await.body["code"], "VALID", "{kind:?}");
        let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 60 }))).await.body;
        let during_grace = app.send(Method::GET, "/me", Some(&shaped), None, &[]).await;
        assert_eq!(during_grace.status, StatusCode::UNAUTHORIZED, "{kind:?}: the old plaintext in its grace");
        let fresh = app.send(Method::GET, "/me", Some(rolled["key"].as_str().unwrap()), None, &[]).await;
        assert_eq!(fresh.status, StatusCode::OK, "{:?}", fresh.body);
    }
}

#[tokio::test]
async fn each_imported_key_is_one_use_of_the_callers_limits() {
    let app = spawn_app().await;
    let writer = json!({ "userId": "w", "acl": [{ "permissions": ["keys:write"] }], "rateLimit": { "limit": 2, "periodSeconds": 3600 } });
    let (_, writer) = app.create_key_pair(&writer).await;
    let keys: Vec<Value> =
        (0..3).map(|i| json!({ "hash": hex_hash(&format!("metered-{i:04}")), "userId": "x" })).collect();
    let answer = app.import_as(&writer, json!(keys), &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let statuses: Vec<Value> =
        answer.body["keys"].as_array().unwrap().iter().map(|a| a["error"]["status"].clone()).collect();
    assert_eq!(statuses, [Value::Null, Value::Null, json!(429)]);
}

#[tokio::test]
async fn a_retried_import_answers_the_same_ids_and_writes_once() {
    let app = spawn_app().await;
    let keys =
        json!([{ "hash": hex_hash("retry-0001"), "userId": "a" }, { "hash": hex_hash("retry-0002"), "userId": "b" }]);
    let headers = [("idempotency-key", "import-1")];
    let first = app.import_as(&app.root_key, keys.clone(), &headers).await;
    let items = app.item_count().await;
    let again = app.import_as(&app.root_key, keys, &headers).await;
    assert_eq!((again.status, again.body.clone()), (StatusCode::OK, first.body.clone()));
    assert_eq!(app.item_count().await, items, "nothing written twice");
    let other = json!([{ "hash": hex_hash("retry-0003"), "userId": "a" }]);
    let reused = app.import_as(&app.root_key, other, &headers).await;
    assert_eq!(reused.body["keys"][0]["error"]["status"], 422, "{:?}", reused.body);
}

#[tokio::test]
async fn garbage_reads_nothing_for_a_company_that_never_imported_and_one_lookup_for_one_that_did() {
    let app = spawn_app().await;
    app.verify(&json!({ "key": "warm-the-caller-and-the-flag" })).await;
    app.settle_calls().await;
    assert_eq!(app.verify(&json!({ "key": "some-garbage-string" })).await.body["code"], "NOT_FOUND");
    assert_eq!(app.calls_made().await, Vec::<String>::new(), "no imports: no read");
    app.import(json!([{ "hash": hex_hash("legacy-0001"), "userId": "a" }])).await;
    app.settle_calls().await;
    assert_eq!(app.verify(&json!({ "key": "some-garbage-string" })).await.body["code"], "NOT_FOUND");
    assert_eq!(app.calls_made().await, vec!["GetItem"], "imports: the hash's lookup");
    for short in ["1234567", "with space", "ünïcode-key"] {
        assert_eq!(app.verify(&json!({ "key": short })).await.body["code"], "NOT_FOUND");
        assert_eq!(app.calls_made().await, Vec::<String>::new(), "{short:?} cannot be a key: no read");
    }
    // Another company that imported does not see it.
    let (_, rival) = app.other_company_root_key().await;
    app.import_as(&rival, json!([{ "hash": hex_hash("rival-0001"), "userId": "r" }]), &[]).await;
    let theirs =
        app.send(Method::POST, "/keys/verify", Some(&rival), Some(&json!({ "key": "legacy-0001" })), &[]).await;
    assert_eq!(theirs.body, json!({ "valid": false, "code": "NOT_FOUND" }));
}

#[tokio::test]
async fn rolling_an_imported_key_gives_a_key_in_the_service_format() {
    let app = spawn_app().await;
    let answers = app.import(json!([{ "hash": hex_hash("old-system-key-9"), "userId": "a" }])).await;
    let id = answers[0]["id"].as_str().unwrap().to_owned();
    let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 60 }))).await;
    assert_eq!(rolled.status, StatusCode::OK, "{:?}", rolled.body);
    let new = rolled.body["key"].as_str().unwrap().to_owned();
    assert!(new.starts_with("sk_") && rolled.body["keyPrefix"] == json!(&new[..7]));
    assert_eq!(app.verify(&json!({ "key": new })).await.body["code"], "VALID");
    assert_eq!(app.verify(&json!({ "key": "old-system-key-9" })).await.body["code"], "VALID", "in its grace");
    app.advance(61);
    assert_eq!(app.verify(&json!({ "key": "old-system-key-9" })).await.body["code"], "NOT_FOUND");
}
