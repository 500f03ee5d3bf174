//! Credentials: where a root key may travel, and what is refused before any route's work.

use serde_json::json;

use crate::client::{Check, Failures};

/// Every route, no credential: 401 `unauthenticated`, a JSON error.
#[tokio::test]
async fn every_route_refuses_a_request_without_a_credential() {
    let check = Check::new();
    let rows = [
        ("GET", "/me"),
        ("POST", "/keys"),
        ("POST", "/keys/some-key"),
        ("GET", "/keys"),
        ("GET", "/keys/some-key"),
        ("PATCH", "/keys/some-key"),
        ("DELETE", "/keys/some-key"),
        ("POST", "/keys/some-key/roll"),
        ("GET", "/keys/some-key/events"),
        ("POST", "/keys/verify"),
    ];
    let mut failures = Failures::default();
    for (method, path) in rows {
        let answer = check.call(method, path).no_auth().json(&json!({ "userId": "x" })).send().await;
        failures.check(answer.is_error(401, "unauthenticated"), || format!("{method} {path}: {answer:?}"));
    }
    failures.assert_none(rows.len());
}

/// Credentials that are not a root key's: each 401 `unauthenticated`.
#[tokio::test]
async fn a_credential_that_does_not_verify_is_401() {
    let check = Check::new();
    let publishable =
        check.create(json!({ "userId": "auth", "type": "publishable", "acl": [{ "permissions": ["keys:*"] }] })).await;
    let deleted = check.key_with_acl(&["keys:*"]).await;
    assert_eq!(check.call("DELETE", &format!("/keys/{}", deleted.id)).send().await.status, 204);
    let mut mistyped = check.root().to_owned();
    let last = mistyped.pop().unwrap();
    mistyped.push(if last == 'a' { 'b' } else { 'a' });
    let rows = [
        ("a word", "Bearer nonsense".to_owned()),
        ("an empty bearer", "Bearer ".to_owned()),
        ("a mistyped root key", format!("Bearer {mistyped}")),
        ("the root key without a scheme", check.root().to_owned()),
        ("a publishable key with keys:*", format!("Bearer {}", publishable.key)),
        ("a deleted root key", format!("Bearer {}", deleted.key)),
    ];
    let mut failures = Failures::default();
    for (what, header) in &rows {
        let answer = check.call("GET", "/keys").no_auth().header("authorization", header).send().await;
        failures.check(answer.is_error(401, "unauthenticated"), || format!("{what}: {answer:?}"));
    }
    failures.assert_none(rows.len());
    check.done().await;
}

/// `x-api-key` carries a root key as well as `Authorization: Bearer` does; when both are
/// sent, the Bearer one wins, and an Authorization of another scheme is passed over.
#[tokio::test]
async fn the_root_key_travels_as_bearer_or_x_api_key() {
    let check = Check::new();
    let rows = [
        ("x-api-key alone", vec![("x-api-key", check.root().to_owned())], 200),
        (
            "Bearer wins over a bad x-api-key",
            vec![("authorization", format!("Bearer {}", check.root())), ("x-api-key", "sk_bad".into())],
            200,
        ),
        (
            "a bad Bearer wins over a good x-api-key",
            vec![("authorization", "Bearer sk_bad".into()), ("x-api-key", check.root().to_owned())],
            401,
        ),
        (
            "Basic is passed over for x-api-key",
            vec![("authorization", "Basic dXNlcjpwYXNz".into()), ("x-api-key", check.root().to_owned())],
            200,
        ),
    ];
    let mut failures = Failures::default();
    for (what, headers, status) in &rows {
        let mut call = check.call("GET", "/me").no_auth();
        for (name, value) in headers {
            call = call.header(name, value);
        }
        let answer = call.send().await;
        failures.check(answer.status == *status, || format!("{what}: {answer:?}"));
    }
    failures.assert_none(rows.len());
}

/// `GET /me` names the calling key, its company and its `keys:` permissions.
#[tokio::test]
async fn me_answers_who_the_calling_key_is() {
    let check = Check::new();
    let me = check.get("/me").await;
    assert_eq!(me.status, 200, "{me:?}");
    assert!(!me.text("companyId").is_empty() && !me.text("keyId").is_empty(), "{me:?}");
    assert!(me.body["permissions"].as_array().unwrap().contains(&json!("keys:*")), "{me:?}");
    let other = check.call("GET", "/me").key(check.other_root()).send().await;
    assert_ne!(other.text("companyId"), me.text("companyId"), "the two root keys are of two companies");
    let reader = check.create(json!({ "userId": "me", "description": "a reader", "acl": [{ "permissions": ["keys:read", "invoices:read"] }] })).await;
    let answer = check.call("GET", "/me").key(&reader.key).send().await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        (answer.text("keyId"), answer.text("userId"), answer.text("description"), &answer.body["permissions"]),
        (reader.id.as_str(), "me", "a reader", &json!(["keys:read"])),
        "{answer:?}"
    );
    assert_eq!(answer.text("companyId"), me.text("companyId"));
    check.done().await;
}
