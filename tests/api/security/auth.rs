//! The authorizer in front of every route: credentials, companies and permissions.

use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, spawn_app};

/// A key of the test company with this ACL, usable as a credential.
async fn key_with(app: &TestApp, extra: serde_json::Value) -> String {
    let mut body = json!({ "userId": "svc" });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    app.create_key(&body).await["key"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn missing_or_bad_credentials_are_401() {
    let app = spawn_app().await;
    let bogus = "sk_".to_string() + &"1".repeat(49);
    for (name, value) in [
        ("authorization", "Bearer".to_string()),
        ("authorization", format!("Basic {}", app.root_key)),
        ("authorization", format!("Bearer {bogus}")),
        ("x-api-key", "not-a-key".to_string()),
    ] {
        let response = app.send(Method::GET, "/keys", None, None, &[(name, &value)]).await;
        assert_eq!(response.status, StatusCode::UNAUTHORIZED, "{name}: {value}");
        assert_eq!(response.error_code(), "unauthenticated");
    }
    let none = app.send(Method::GET, "/keys", None, None, &[]).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn bearer_and_x_api_key_both_authenticate() {
    let app = spawn_app().await;
    let bearer = format!("bearer {}", app.root_key);
    for (name, value) in [("authorization", bearer.as_str()), ("x-api-key", app.root_key.as_str())] {
        let response = app.send(Method::GET, "/keys", None, None, &[(name, value)]).await;
        assert_eq!(response.status, StatusCode::OK, "{name}");
    }
}

#[tokio::test]
async fn each_route_needs_its_permission() {
    let app = spawn_app().await;
    let reader = key_with(&app, json!({ "acl": [{ "permissions": ["keys:read"] }] })).await;
    let writer = key_with(&app, json!({ "acl": [{ "permissions": ["keys:write"] }] })).await;
    let verifier = key_with(&app, json!({ "acl": [{ "permissions": ["keys:verify"] }] })).await;
    let plain = key_with(&app, json!({})).await;
    let body = json!({ "userId": "u" });
    let verify_body = json!({ "key": plain });
    let cases = [
        (&reader, Method::GET, "/keys", None, StatusCode::OK),
        (&reader, Method::POST, "/keys", Some(&body), StatusCode::FORBIDDEN),
        (&reader, Method::POST, "/keys/verify", Some(&verify_body), StatusCode::FORBIDDEN),
        (&writer, Method::POST, "/keys", Some(&body), StatusCode::CREATED),
        (&writer, Method::GET, "/keys", None, StatusCode::FORBIDDEN),
        (&verifier, Method::POST, "/keys/verify", Some(&verify_body), StatusCode::OK),
        (&verifier, Method::DELETE, "/keys/x", None, StatusCode::FORBIDDEN),
        (&plain, Method::GET, "/keys", None, StatusCode::FORBIDDEN),
    ];
    for (key, method, path, body, status) in cases {
        let response = app.send(method.clone(), path, Some(key), body, &[]).await;
        assert_eq!(response.status, status, "{method} {path}: {:?}", response.body);
        if status == StatusCode::FORBIDDEN {
            assert_eq!(response.error_code(), "forbidden");
        }
    }
}

#[tokio::test]
async fn a_root_key_that_fails_verification_is_refused() {
    let app = spawn_app().await;
    let root = json!([{ "permissions": ["keys:*"] }]);
    let elsewhere = key_with(&app, json!({ "acl": root, "whitelistedIPs": ["198.51.100.0/24"] })).await;
    let expiring = key_with(&app, json!({ "acl": root, "expiresAt": "2030-01-01T00:01:00Z" })).await;
    let limited = key_with(&app, json!({ "acl": root, "rateLimit": { "limit": 1, "periodSeconds": 3600 } })).await;
    let deleted = app.create_key(&json!({ "userId": "svc", "acl": root })).await;
    app.delete_key(deleted["id"].as_str().unwrap()).await;

    let app = &app;
    let get = |key: String| async move { app.send(Method::GET, "/keys", Some(&key), None, &[]).await };
    assert_eq!(get(elsewhere).await.status, StatusCode::UNAUTHORIZED, "the caller's IP is not allowed");
    assert_eq!(get(deleted["key"].as_str().unwrap().to_owned()).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(expiring.clone()).await.status, StatusCode::OK);
    app.advance(60);
    assert_eq!(get(expiring).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get(limited.clone()).await.status, StatusCode::OK);
    let over = get(limited).await;
    assert_eq!((over.status, over.error_code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
}

#[tokio::test]
async fn one_company_never_sees_another() {
    let app = spawn_app().await;
    let ours = app.create_key(&json!({ "userId": "u" })).await;
    let (_, rival_key) = app.other_company_root_key().await;
    let listed = app.send(Method::GET, "/keys?status=all", Some(&rival_key), None, &[]).await;
    assert_eq!(listed.body["total"], 1, "only the rival's own root key");
    let id = ours["id"].as_str().unwrap();
    for (method, path) in [(Method::GET, format!("/keys/{id}")), (Method::DELETE, format!("/keys/{id}"))] {
        let response = app.send(method, &path, Some(&rival_key), None, &[]).await;
        assert_eq!(response.status, StatusCode::NOT_FOUND);
    }
    let patch = app
        .send(Method::PATCH, &format!("/keys/{id}"), Some(&rival_key), Some(&json!({ "description": "x" })), &[])
        .await;
    assert_eq!(patch.status, StatusCode::NOT_FOUND);
    let verify =
        app.send(Method::POST, "/keys/verify", Some(&rival_key), Some(&json!({ "key": ours["key"] })), &[]).await;
    assert_eq!(verify.body, json!({ "valid": false, "code": "NOT_FOUND" }));
    assert_eq!(app.get_key(id).await.body["description"], serde_json::Value::Null);
}

#[tokio::test]
async fn a_publishable_key_is_never_a_root_key() {
    let app = spawn_app().await;
    let created = app
        .create_key(&json!({ "userId": "web", "type": "publishable", "acl": [{ "permissions": ["keys:*"] }] }))
        .await;
    let shown_again = app.get_key(created["id"].as_str().unwrap()).await.body["key"].as_str().unwrap().to_owned();
    let response = app.send(Method::POST, "/keys", Some(&shown_again), Some(&json!({ "userId": "u" })), &[]).await;
    assert_eq!((response.status, response.error_code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    assert_eq!(app.counters().await, (2, 0), "nothing was created with it");
}

#[tokio::test]
async fn a_key_cannot_grant_management_permissions_it_lacks() {
    let app = spawn_app().await;
    let writer = key_with(&app, json!({ "acl": [{ "permissions": ["keys:write"] }] })).await;
    for acl in [json!(["keys:*"]), json!(["*"]), json!(["keys:read"]), json!(["keys:verify", "orders:read"])] {
        let body = json!({ "userId": "u", "acl": [{ "permissions": acl }] });
        let response = app.send(Method::POST, "/keys", Some(&writer), Some(&body), &[]).await;
        assert_eq!((response.status, response.error_code()), (StatusCode::FORBIDDEN, "forbidden"), "{acl}");
    }
    let allowed = json!({ "userId": "u", "acl": [{ "permissions": ["keys:write", "orders:*"] }] });
    let created = app.send(Method::POST, "/keys", Some(&writer), Some(&allowed), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let id = created.body["id"].as_str().unwrap();
    let escalate = json!({ "acl": [{ "permissions": ["keys:*"] }] });
    let patched = app.send(Method::PATCH, &format!("/keys/{id}"), Some(&writer), Some(&escalate), &[]).await;
    assert_eq!(patched.status, StatusCode::FORBIDDEN);
    assert_eq!(app.get_key(id).await.body["acl"][0]["permissions"], json!(["keys:write", "orders:*"]));
}
