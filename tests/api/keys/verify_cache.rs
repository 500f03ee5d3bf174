//! `VerifyCacheSeconds`: a key verified `VALID` without limits is verified again from this
//! instance's memory for that long. What it saves, what it never serves from memory, how soon a
//! change made through another instance is seen (and at once when made through this one), and
//! that every check still runs at the call's own time.

use apikeys::domain::Clock;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, spawn_app};

const LIFETIME: i64 = 30;

/// A function instance of its own on `app`'s table and clock, keeping verified keys and its
/// callers `LIFETIME` (a verify that reads its caller reads the key with it, in one call).
fn caching(app: &TestApp) -> TestApp {
    let other = app.other_instance();
    let seconds = LIFETIME as u64;
    TestApp { app: other.app.clone().with_verify_cache(seconds).with_caller_cache(seconds), ..other }
}

async fn verify(app: &TestApp, body: Value) -> TestResponse {
    app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&body), &[]).await
}

/// Verifies `key` through `instance` until both its caller and the key are warm there.
async fn warm(instance: &TestApp, key: &str) -> Value {
    let mut answer = Value::Null;
    for _ in 0..2 {
        answer = verify(instance, json!({ "key": key })).await.body;
        assert_eq!(answer["code"], "VALID", "{answer}");
    }
    instance.settle_calls().await;
    answer
}

#[tokio::test]
async fn a_warm_key_verifies_from_memory_with_no_call_and_the_same_answer() {
    let app = spawn_app().await;
    let instance = caching(&app);
    let (_, plain) = app
        .create_key_pair(&json!({ "userId": "u", "metadata": { "plan": "gold" }, "tags": ["t"], "acl": [{ "permissions": ["orders:read"] }] }))
        .await;
    let warmed = warm(&instance, &plain).await;
    let again = verify(&instance, json!({ "key": plain, "permissions": ["orders:read"] })).await;
    assert_eq!(again.body, warmed, "the same answer");
    assert_eq!(instance.calls_made().await, Vec::<String>::new(), "nothing read, nothing written");

    // Off (the default): the key is read at every verify.
    app.settle_calls().await;
    for _ in 0..2 {
        assert_eq!(app.verify(&json!({ "key": plain })).await.body["code"], "VALID");
    }
    assert_eq!(app.calls_made().await, ["GetItem", "GetItem"]);
}

#[tokio::test]
async fn every_check_runs_at_the_calls_own_time_on_a_kept_key() {
    let app = spawn_app().await;
    let instance = caching(&app);
    let expires = (app.clock.now() + chrono::TimeDelta::seconds(20)).to_rfc3339();
    let (_, plain) = app
        .create_key_pair(&json!({
            "userId": "u",
            "expiresAt": expires,
            "whitelistedIPs": ["203.0.113.0/24"],
            "acl": [{ "scope": { "productId": ["p1"] }, "permissions": ["orders:read"] }],
        }))
        .await;
    for _ in 0..2 {
        assert_eq!(verify(&instance, json!({ "key": plain, "ip": "203.0.113.9" })).await.body["code"], "VALID");
    }
    instance.settle_calls().await;
    let asks = [
        (json!({ "key": plain }), "IP_NOT_ALLOWED"),
        (json!({ "key": plain, "ip": "198.51.100.1" }), "IP_NOT_ALLOWED"),
        (json!({ "key": plain, "ip": "203.0.113.9", "permissions": ["orders:write"] }), "FORBIDDEN"),
        (
            json!({ "key": plain, "ip": "203.0.113.9", "permissions": ["orders:read"], "scope": { "productId": "p2" } }),
            "FORBIDDEN",
        ),
        (
            json!({ "key": plain, "ip": "203.0.113.9", "permissions": ["orders:read"], "scope": { "productId": "p1" } }),
            "VALID",
        ),
    ];
    for (ask, code) in asks {
        assert_eq!(verify(&instance, ask.clone()).await.body["code"], code, "{ask}");
    }
    app.advance(20);
    assert_eq!(verify(&instance, json!({ "key": plain, "ip": "203.0.113.9" })).await.body["code"], "EXPIRED");
    assert_eq!(instance.calls_made().await, Vec::<String>::new(), "all of it from memory");

    // Another company's caller never gets the kept key, whatever this instance keeps.
    let (_, rival_root) = app.other_company_root_key().await;
    let rival = TestApp { root_key: rival_root, app: instance.app.clone(), ..instance.other_instance() };
    assert_eq!(
        verify(&rival, json!({ "key": plain, "ip": "203.0.113.9" })).await.body,
        json!({ "valid": false, "code": "NOT_FOUND" })
    );
}

#[tokio::test]
async fn keys_whose_uses_are_counted_and_publishable_keys_are_read_every_time() {
    let app = spawn_app().await;
    let instance = caching(&app);
    let (_, limited) =
        app.create_key_pair(&json!({ "userId": "u", "rateLimit": { "limit": 3, "periodSeconds": 60 } })).await;
    let (_, quota) = app.create_key_pair(&json!({ "userId": "u", "quota": { "max": 2 } })).await;
    let (_, publishable) = app.create_key_pair(&json!({ "userId": "u", "type": "publishable" })).await;
    verify(&instance, json!({ "key": publishable })).await;
    instance.settle_calls().await;

    let codes = async |key: &str, times| {
        let mut codes = Vec::new();
        for _ in 0..times {
            codes.push(verify(&instance, json!({ "key": key })).await.body["code"].as_str().unwrap().to_owned());
        }
        codes
    };
    assert_eq!(codes(&limited, 5).await, ["VALID", "VALID", "VALID", "RATE_LIMITED", "RATE_LIMITED"]);
    assert_eq!(codes(&quota, 3).await, ["VALID", "VALID", "QUOTA_EXCEEDED"]);
    assert_eq!(codes(&publishable, 2).await, ["VALID", "VALID"]);
    let reads = instance.calls_made().await.iter().filter(|c| *c == "GetItem").count();
    assert_eq!(reads, 5 + 3 + 2, "each of those verifies read its key");
    assert_eq!(instance.app.verified.usage().0, 0, "none of them kept");
}

#[tokio::test]
async fn a_key_changed_elsewhere_verifies_from_memory_until_the_lifetime_ends_and_here_not_at_all() {
    let app = spawn_app().await;
    let instance = caching(&app);
    let changes = [
        (Method::DELETE, "", None, "INACTIVE"),
        (Method::PATCH, "", Some(json!({ "status": "inactive" })), "INACTIVE"),
        (Method::POST, "/roll", Some(json!({ "gracePeriodSeconds": 0 })), "NOT_FOUND"),
    ];
    for (method, suffix, body, code) in changes {
        // Through another instance: seen here once the kept item is `LIFETIME` old.
        let (id, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
        warm(&instance, &plain).await;
        let path = format!("/keys/{id}{suffix}");
        assert!(app.send(method.clone(), &path, Some(&app.root_key), body.as_ref(), &[]).await.status.is_success());
        app.advance(LIFETIME - 1);
        assert_eq!(verify(&instance, json!({ "key": plain })).await.body["code"], "VALID", "{method} {suffix}: kept");
        app.advance(1);
        assert_eq!(
            verify(&instance, json!({ "key": plain })).await.body["code"],
            code,
            "{method} {suffix}: read again"
        );

        // Through this instance: seen at once.
        let (id, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
        warm(&instance, &plain).await;
        let path = format!("/keys/{id}{suffix}");
        assert!(
            instance.send(method.clone(), &path, Some(&app.root_key), body.as_ref(), &[]).await.status.is_success()
        );
        assert_eq!(verify(&instance, json!({ "key": plain })).await.body["code"], code, "{method} {suffix}: here");
    }
}

#[tokio::test]
async fn last_used_at_is_never_older_than_its_minute_for_a_key_verified_from_memory() {
    let app = spawn_app().await;
    let (id, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    // Used at 0 (written), read and kept at 50 (its last use not due for a write), then due at
    // 60 while still kept: that verify writes it, and the next does not. The instance's caller
    // is first used at 50, so its own last use is not due again within the test.
    assert_eq!(app.verify(&json!({ "key": plain })).await.body["code"], "VALID");
    app.advance(50);
    let (_, root_key) = app.create_key_pair(&json!({ "userId": "ops", "acl": [{ "permissions": ["keys:*"] }] })).await;
    let instance = TestApp { root_key, ..caching(&app) };
    warm(&instance, &plain).await;
    app.advance(10);
    // Due, but refused from memory: nothing written, so it stays due.
    let refused = verify(&instance, json!({ "key": plain, "permissions": ["orders:write"] })).await;
    assert_eq!(refused.body["code"], "FORBIDDEN");
    assert_eq!(instance.calls_made().await, Vec::<String>::new());
    assert_eq!(verify(&instance, json!({ "key": plain })).await.body["code"], "VALID");
    assert_eq!(
        instance.calls_made().await,
        ["UpdateItem", "UpdateItem"],
        "lastUsedAt on the key and its lookup item; no read"
    );
    assert_eq!(verify(&instance, json!({ "key": plain })).await.status, StatusCode::OK);
    assert_eq!(instance.calls_made().await, Vec::<String>::new(), "written once");
    let stored = app.get_key(&id).await.body;
    assert_eq!(stored["lastUsedAt"], json!(app.clock.now().to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)));
}

#[tokio::test]
async fn a_refusal_read_from_the_table_replaces_the_kept_valid_key() {
    let app = spawn_app().await;
    // Callers kept 5 s, verified keys 30 s: once the caller is read again, the key is read with it.
    let other = app.other_instance();
    let instance = TestApp { app: other.app.clone().with_verify_cache(LIFETIME as u64).with_caller_cache(5), ..other };
    let (id, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    warm(&instance, &plain).await;
    assert_eq!(app.delete_key(&id).await.status, StatusCode::NO_CONTENT);
    app.advance(5);
    assert_eq!(verify(&instance, json!({ "key": plain })).await.body["code"], "INACTIVE", "caller and key read again");
    assert_eq!(
        verify(&instance, json!({ "key": plain })).await.body["code"],
        "INACTIVE",
        "never VALID again from memory"
    );
    assert_eq!(instance.app.verified.usage().0, 0);
}
