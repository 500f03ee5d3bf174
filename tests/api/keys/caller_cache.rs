//! The per-instance caller cache: what a warm caller costs, what is still counted exactly, and
//! how soon a root key revoked by another instance stops working here (writes at once; verify
//! and the read calls within the cache's lifetime, reached by moving the clock).

use apikeys::settings::DEFAULT_CALLER_CACHE_SECONDS;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, spawn_app};

/// The same instance, acting with another of the company's root keys.
fn as_key(app: &TestApp, root_key: &str) -> TestApp {
    TestApp { root_key: root_key.to_owned(), app: app.app.clone(), ..app.other_instance() }
}

async fn verify_as(app: &TestApp, key: &str) -> TestResponse {
    app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&json!({ "key": key })), &[]).await
}

async fn root_key(app: &TestApp, fields: Value) -> (String, String) {
    let mut body = json!({ "userId": "ops", "acl": [{ "permissions": ["keys:*"] }] });
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    app.create_key_pair(&body).await
}

#[tokio::test]
async fn a_warm_caller_costs_no_read() {
    let app = spawn_app().await;
    let (id, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    for _ in 0..2 {
        verify_as(&app, &plain).await;
    }
    app.settle_calls().await;
    assert_eq!(verify_as(&app, &plain).await.body["code"], "VALID");
    assert_eq!(app.calls_made().await, vec!["GetItem"], "the verified key's lookup item, and nothing else");
    assert_eq!(app.list_keys("?limit=1").await.status, StatusCode::OK);
    assert_eq!(app.calls_made().await, vec!["BatchGetItem", "Query"], "counters and cursor, then the page");
    assert_eq!(app.get_key(&id).await.status, StatusCode::OK);
    assert_eq!(app.calls_made().await, vec!["GetItem"]);
    // A write reads its caller afresh.
    assert_eq!(app.patch_key(&id, &json!({ "description": "d" }), &[]).await.status, StatusCode::OK);
    assert_eq!(app.calls_made().await, vec!["GetItem", "GetItem", "TransactWriteItems"]);

    // Off: every call reads its caller, verify in one batch with the key.
    let off = TestApp { app: app.other_instance().app.with_caller_cache(0), ..app.other_instance() };
    for _ in 0..2 {
        verify_as(&off, &plain).await;
        assert_eq!(app.calls_made().await, vec!["BatchGetItem"]);
    }
}

#[tokio::test]
async fn a_cached_caller_with_limits_is_still_counted_exactly() {
    let app = spawn_app().await;
    let (_, limited) = root_key(&app, json!({ "rateLimit": { "limit": 3, "periodSeconds": 60 } })).await;
    let (_, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    let limited_app = as_key(&app, &limited);
    assert_eq!(verify_as(&limited_app, &plain).await.status, StatusCode::OK, "the caller is read and kept");
    app.settle_calls().await;
    for _ in 0..2 {
        assert_eq!(verify_as(&limited_app, &plain).await.status, StatusCode::OK);
        assert_eq!(app.calls_made().await, vec!["GetItem", "UpdateItem"], "the key, and the caller's window");
    }
    let over = verify_as(&limited_app, &plain).await;
    assert_eq!(over.status, StatusCode::TOO_MANY_REQUESTS, "{:?}", over.body);
    assert_eq!(app.calls_made().await, vec!["GetItem", "UpdateItem"], "the fourth call in the window is refused");
}

/// A root key revoked through another instance, each way a key can be.
struct Revocation {
    name: &'static str,
    change: Method,
    body: Option<Value>,
    /// What a call needing the permission the key lost answers.
    refused: StatusCode,
}

fn revocations() -> Vec<Revocation> {
    let patch =
        |name, body| Revocation { name, change: Method::PATCH, body: Some(body), refused: StatusCode::UNAUTHORIZED };
    vec![
        Revocation { name: "deleted", change: Method::DELETE, body: None, refused: StatusCode::UNAUTHORIZED },
        patch("deactivated", json!({ "status": "inactive" })),
        Revocation {
            name: "rolled, no grace",
            change: Method::POST,
            body: Some(json!({ "gracePeriodSeconds": 0 })),
            refused: StatusCode::UNAUTHORIZED,
        },
        Revocation {
            refused: StatusCode::FORBIDDEN,
            ..patch("ACL narrowed", json!({ "acl": [{ "permissions": ["orders:*"] }] }))
        },
    ]
}

async fn revoke(elsewhere: &TestApp, id: &str, how: &Revocation) {
    let path = if how.change == Method::POST { format!("/keys/{id}/roll") } else { format!("/keys/{id}") };
    let path = if how.change == Method::DELETE { format!("{path}?force=true") } else { path };
    let response = elsewhere.send(how.change.clone(), &path, Some(&elsewhere.root_key), how.body.as_ref(), &[]).await;
    assert!(response.status.is_success(), "{}: {:?}", how.name, response.body);
}

#[tokio::test]
async fn a_revoked_root_key_is_refused_by_writes_at_once_and_by_verify_within_the_cache_lifetime() {
    let app = spawn_app().await;
    let elsewhere = app.other_instance();
    let (_, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    let lifetime = DEFAULT_CALLER_CACHE_SECONDS as i64;
    for how in revocations() {
        // Verify and reads: served from the kept caller until its lifetime ends, then refused.
        let (id, secret) = root_key(&app, json!({})).await;
        let caller = as_key(&app, &secret);
        let first = verify_as(&caller, &plain).await;
        assert_eq!(first.body["code"], "VALID", "{}: {:?}", how.name, first.body);
        revoke(&elsewhere, &id, &how).await;
        app.advance(lifetime - 1);
        let kept = verify_as(&caller, &plain).await;
        assert_eq!(kept.status, StatusCode::OK, "{}: within the lifetime: {:?}", how.name, kept.body);
        app.advance(1);
        let refused = verify_as(&caller, &plain).await;
        assert_eq!(refused.status, how.refused, "{}: {:?}", how.name, refused.body);
        assert!(refused.body.get("valid").is_none(), "{}: a refused caller learns nothing", how.name);
        assert_eq!(caller.list_keys("").await.status, how.refused, "{}", how.name);

        // Writes: refused the moment the key is revoked, and this instance then forgets it.
        let (id, secret) = root_key(&app, json!({})).await;
        let caller = as_key(&app, &secret);
        assert_eq!(verify_as(&caller, &plain).await.status, StatusCode::OK, "{}", how.name);
        revoke(&elsewhere, &id, &how).await;
        let before = app.item_count().await;
        let write = caller.post_keys(&json!({ "userId": "late" })).await;
        assert_eq!(write.status, how.refused, "{}: {:?}", how.name, write.body);
        assert_eq!(app.item_count().await, before, "{}: nothing written", how.name);
        assert_eq!(verify_as(&caller, &plain).await.status, how.refused, "{}: forgotten by the write", how.name);
    }
}

#[tokio::test]
async fn a_root_key_revoked_by_this_instance_is_refused_here_at_once() {
    let app = spawn_app().await;
    let (_, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    for how in revocations() {
        let (id, secret) = root_key(&app, json!({})).await;
        let caller = as_key(&app, &secret);
        assert_eq!(verify_as(&caller, &plain).await.status, StatusCode::OK, "{}", how.name);
        revoke(&app, &id, &how).await;
        assert_eq!(verify_as(&caller, &plain).await.status, how.refused, "{}", how.name);
    }
}

#[tokio::test]
async fn a_refused_caller_is_not_kept() {
    let app = spawn_app().await;
    let (id, secret) = root_key(&app, json!({})).await;
    let (_, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;
    app.patch_key(&id, &json!({ "status": "inactive" }), &[]).await;
    let caller = as_key(&app, &secret);
    assert_eq!(verify_as(&caller, &plain).await.status, StatusCode::UNAUTHORIZED);
    // Re-activated elsewhere: the refusal was not kept, so it works here at once.
    let elsewhere = app.other_instance();
    assert_eq!(elsewhere.patch_key(&id, &json!({ "status": "active" }), &[]).await.status, StatusCode::OK);
    assert_eq!(verify_as(&caller, &plain).await.status, StatusCode::OK);
    let (count, _) = app.app.callers.usage();
    assert!(count >= 2, "the company's root key and this one are kept: {count}");
    let printed = format!("{:?}", app.app.callers);
    for plaintext in [&secret, &app.root_key] {
        let (_, parsed) = apikeys::model::PlaintextKey::parse(plaintext).expect("a key");
        assert!(!printed.contains(plaintext.as_str()) && !printed.contains(parsed.hash().as_str()), "{printed}");
    }
}

/// What a kept caller is checked against at every call, with the clock of that call: an old
/// secret's grace ends on time (not a cache lifetime later), an expiry is met on time, and the
/// allowlist is asked of each call's own address.
#[tokio::test]
async fn a_kept_caller_meets_its_grace_end_expiry_and_allowlist_at_each_call() {
    use apikeys::entry::local::dispatch;
    use lambda_http::{Body, http::Request};
    let base = spawn_app().await;
    let app = TestApp { app: base.app.clone().with_caller_cache(60), ..base.other_instance() };
    let (_, plain) = app.create_key_pair(&json!({ "userId": "u" })).await;

    // An old secret in its grace, kept, then its grace ends: refused at once.
    let (id, old) = root_key(&app, json!({})).await;
    let rolled = app
        .send(
            Method::POST,
            &format!("/keys/{id}/roll"),
            Some(&app.root_key),
            Some(&json!({ "gracePeriodSeconds": 5 })),
            &[],
        )
        .await;
    assert_eq!(rolled.status, StatusCode::OK, "{:?}", rolled.body);
    let caller = as_key(&app, &old);
    assert_eq!(verify_as(&caller, &plain).await.body["code"], "VALID", "in its grace, and now kept");
    app.advance(4);
    app.settle_calls().await;
    assert_eq!(verify_as(&caller, &plain).await.body["code"], "VALID");
    assert_eq!(app.calls_made().await[0], "GetItem", "served from the kept caller: only the verified key is read");
    app.advance(1);
    assert_eq!(verify_as(&caller, &plain).await.status, StatusCode::UNAUTHORIZED, "grace over, cache or not");

    // An expiry, met at once.
    let expires = (apikeys::domain::Clock::now(app.clock.as_ref()) + chrono::TimeDelta::seconds(3)).to_rfc3339();
    let (_, expiring) = root_key(&app, json!({ "expiresAt": expires })).await;
    let caller = as_key(&app, &expiring);
    assert_eq!(verify_as(&caller, &plain).await.body["code"], "VALID");
    app.advance(3);
    assert_eq!(verify_as(&caller, &plain).await.status, StatusCode::UNAUTHORIZED, "expired, cache or not");

    // The allowlist, asked of each call's address.
    let (_, fenced) = root_key(&app, json!({ "whitelistedIPs": ["203.0.113.10/32"] })).await;
    let caller = as_key(&app, &fenced);
    assert_eq!(verify_as(&caller, &plain).await.body["code"], "VALID", "from the allowed address, and kept");
    let elsewhere = Request::builder()
        .method(Method::POST)
        .uri("/keys/verify")
        .header("authorization", format!("Bearer {fenced}"))
        .header("content-type", "application/json")
        .body(Body::Text(json!({ "key": plain }).to_string()))
        .unwrap();
    let answer = dispatch(&caller.app, "198.51.100.7".parse().unwrap(), elsewhere).await;
    assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "a kept caller from another address");
}
