//! The permission model through HTTP: what a key with fewer permissions may do, what a key of
//! another company sees, and the bounds a key's maker puts on it.

use serde_json::{Value, json};

use crate::client::{Check, Failures, ids};

/// A request of every route, on `id` (a key of the check's company).
fn every_route(id: &str, key_to_verify: &str) -> Vec<(&'static str, String, Option<Value>)> {
    vec![
        ("GET", "/keys".into(), None),
        ("GET", format!("/keys/{id}"), None),
        ("GET", format!("/keys/{id}/events"), None),
        ("GET", "/company/events".into(), None),
        ("POST", "/keys".into(), Some(json!({ "userId": "permissions" }))),
        ("PATCH", format!("/keys/{id}"), Some(json!({ "description": "x" }))),
        ("POST", format!("/keys/{id}/roll"), Some(json!({ "gracePeriodSeconds": 3600 }))),
        ("POST", "/keys/verify".into(), Some(json!({ "key": key_to_verify }))),
        ("DELETE", format!("/keys/{id}"), None),
    ]
}

/// Each of `keys:read`, `keys:write`, `keys:verify` and no ACL against every route: allowed
/// where its permission is the route's, 403 `forbidden` elsewhere.
#[tokio::test]
async fn each_permission_opens_its_routes_only() {
    let check = Check::new();
    let mut failures = Failures::default();
    let mut rows = 0;
    for (permission, opens) in [
        (Some("keys:read"), ["GET"].as_slice()),
        (Some("keys:write"), ["POST /keys", "PATCH", "POST roll", "DELETE"].as_slice()),
        (Some("keys:verify"), ["POST verify"].as_slice()),
        (None, [].as_slice()),
    ] {
        let caller = match permission {
            Some(p) => check.key_with_acl(&[p]).await,
            None => check.create(json!({ "userId": "permissions" })).await,
        };
        let target = check.create(json!({ "userId": "permissions" })).await;
        for (method, path, body) in every_route(&target.id, &target.key) {
            let route = match (method, path.as_str()) {
                ("GET", _) => "GET",
                ("POST", "/keys") => "POST /keys",
                ("POST", "/keys/verify") => "POST verify",
                ("POST", _) => "POST roll",
                (method, _) => method,
            };
            let answer = check.call(method, &path).key(&caller.key).json_if(body.as_ref()).send().await;
            if answer.status == 201 {
                check.made_from(&answer, crate::client::Company::One);
            }
            let ok = if opens.contains(&route) { answer.status < 300 } else { answer.is_error(403, "forbidden") };
            failures.check(ok, || format!("{permission:?} {method} {path}: {answer:?}"));
            rows += 1;
        }
        let me = check.call("GET", "/me").key(&caller.key).send().await;
        failures.check(me.status == 200, || format!("{permission:?} GET /me: {me:?}"));
        rows += 1;
    }
    failures.assert_none(rows);
    check.done().await;
}

/// A key of another company: its root key neither sees nor touches this company's keys.
#[tokio::test]
async fn another_companys_root_key_sees_nothing_of_this_companys_keys() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "permissions" })).await;
    let mut failures = Failures::default();
    let routes = every_route(&made.id, &made.key);
    for (method, path, body) in &routes {
        let answer = check.call(method, path).key(check.other_root()).json_if(body.as_ref()).send().await;
        if answer.status == 201 {
            check.made_from(&answer, crate::client::Company::Other);
        }
        let ok = match (*method, path.as_str()) {
            ("GET", "/keys") => answer.status == 200 && !ids(&answer.body).contains(&made.id),
            // Its own company's trail, whatever this company changed.
            ("GET", "/company/events") => answer.status == 200 && !answer.body.to_string().contains(&made.id),
            ("POST", "/keys") => answer.status == 201,
            ("POST", "/keys/verify") => {
                answer.status == 200 && answer.text("code") == "NOT_FOUND" && answer.body.get("keyId").is_none()
            }
            _ => answer.is_error(404, "not_found"),
        };
        failures.check(ok, || format!("{method} {path}: {answer:?}"));
    }
    failures.assert_none(routes.len());
    let read = check.get(&format!("/keys/{}", made.id)).await;
    assert_eq!((read.header("etag"), read.text("status")), ("\"1\"", "active"), "untouched: {read:?}");
    check.done().await;
}

/// A root key manages only keys whose `keys:` permissions it holds itself.
#[tokio::test]
async fn a_key_cannot_make_or_change_a_key_beyond_its_own_permissions() {
    let check = Check::new();
    let writer = check.key_with_acl(&["keys:write"]).await;
    let reader = check.key_with_acl(&["keys:read"]).await;
    let as_writer =
        |method: &str, path: &str, body: Value| check.call(method, path).key(&writer.key).json(&body).send();
    let rows = [
        (
            "make a keys:read key",
            as_writer("POST", "/keys", json!({ "userId": "p", "acl": [{ "permissions": ["keys:read"] }] })).await,
        ),
        ("make a * key", as_writer("POST", "/keys", json!({ "userId": "p", "acl": [{ "permissions": ["*"] }] })).await),
        (
            "give itself keys:*",
            as_writer("PATCH", &format!("/keys/{}", writer.id), json!({ "acl": [{ "permissions": ["keys:*"] }] }))
                .await,
        ),
        (
            "change a keys:read key",
            as_writer("PATCH", &format!("/keys/{}", reader.id), json!({ "description": "x" })).await,
        ),
        ("roll a keys:read key", as_writer("POST", &format!("/keys/{}/roll", reader.id), json!({})).await),
    ];
    let mut failures = Failures::default();
    for (what, answer) in &rows {
        failures.check(answer.is_error(403, "forbidden"), || format!("{what}: {answer:?}"));
    }
    failures.assert_none(rows.len());
    let deleted = check.call("DELETE", &format!("/keys/{}", reader.id)).key(&writer.key).send().await;
    assert!(deleted.is_error(403, "forbidden"), "delete a keys:read key: {deleted:?}");
    let outside = as_writer(
        "POST",
        "/keys",
        json!({ "userId": "p", "acl": [{ "permissions": ["invoices:*", "reports:read"] }] }),
    )
    .await;
    check.made_from(&outside, crate::client::Company::One);
    assert_eq!(outside.status, 201, "permissions outside keys: are not bounded: {outside:?}");
    assert_eq!(check.get(&format!("/keys/{}", reader.id)).await.header("etag"), "\"1\"", "nothing written");
    check.done().await;
}

/// What a key with a `keys:` permission makes stays within its maker's limits; no key
/// changes its own; a root key over its own rate limit is 429 and changes nothing.
#[tokio::test]
async fn a_key_stays_within_its_makers_limits_and_its_own() {
    let check = Check::new();
    let limited = check
        .create(json!({ "userId": "p", "acl": [{ "permissions": ["keys:*"] }], "rateLimit": { "limit": 3, "periodSeconds": 3600 } }))
        .await;
    let unbounded = check
        .call("POST", "/keys")
        .key(&limited.key)
        .json(&json!({ "userId": "p", "acl": [{ "permissions": ["keys:read"] }] }))
        .send()
        .await;
    assert!(unbounded.is_error(403, "forbidden") && unbounded.error_field() == "rateLimit", "{unbounded:?}");
    let own = check
        .call("PATCH", &format!("/keys/{}", limited.id))
        .key(&limited.key)
        .json(&json!({ "rateLimit": null }))
        .send()
        .await;
    assert!(own.is_error(403, "forbidden"), "its own rate limit: {own:?}");
    for n in 0..4 {
        let answer = check.call("GET", "/keys?limit=1").key(&limited.key).send().await;
        if n < 3 {
            assert_eq!(answer.status, 200, "call {n}: {answer:?}");
        } else {
            assert!(answer.is_error(429, "rate_limited"), "over its limit: {answer:?}");
        }
    }
    let over = check.call("POST", "/keys").key(&limited.key).json(&json!({ "userId": "p" })).send().await;
    assert!(over.is_error(429, "rate_limited"), "{over:?}");
    check.done().await;
}

/// An inactive root key, or one outside its IP allowlist, authenticates nothing.
#[tokio::test]
async fn a_root_key_inactive_or_outside_its_allowlist_is_401() {
    let check = Check::new();
    let inactive = check.key_with_acl(&["keys:read"]).await;
    let patched =
        check.call("PATCH", &format!("/keys/{}", inactive.id)).json(&json!({ "status": "inactive" })).send().await;
    assert_eq!(patched.status, 200);
    let elsewhere = check
        .create(
            json!({ "userId": "p", "acl": [{ "permissions": ["keys:read"] }], "whitelistedIPs": ["203.0.113.0/24"] }),
        )
        .await;
    for key in [&inactive.key, &elsewhere.key] {
        let answer = check.call("GET", "/keys").key(key).send().await;
        assert!(answer.is_error(401, "unauthenticated"), "{answer:?}");
    }
    check.done().await;
}
