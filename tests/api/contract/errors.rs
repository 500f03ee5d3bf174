//! Every error of the contract: its status, a JSON body naming the field, nothing half-written,
//! and the service still serving afterwards.

use apikeys::entry::local::dispatch;
use lambda_http::Body;
use lambda_http::http::{Method, Request, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{CLIENT_IP, TestApp, spawn_app};

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> crate::helpers::TestResponse {
    let mut builder = Request::builder().method(method).uri(path).header("x-api-key", &app.root_key);
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    app.send_request(builder.body(Body::Text(body.to_owned())).unwrap()).await
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let items_before = app.item_count().await;
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({ "userId": 42 }), "userId", "invalid_field"),
        (json!({}), "userId", "missing_field"),
        (json!({ "userId": "" }), "userId", "invalid_field"),
        (json!({ "userId": "u", "colour": "red" }), "colour", "unknown_field"),
        (json!({ "userId": "u", "companyId": "evil" }), "companyId", "read_only_field"),
        (json!({ "userId": "u", "key": "sk_mine" }), "key", "read_only_field"),
        (json!({ "userId": "u", "createdAt": "2020-01-01T00:00:00Z" }), "createdAt", "read_only_field"),
        (json!({ "userId": "u", "type": "root" }), "type", "invalid_field"),
        (json!({ "userId": "u", "whitelistedIPs": ["10.0.0.1", "10.0.0.0/33"] }), "whitelistedIPs[1]", "invalid_field"),
        (json!({ "userId": "u", "whitelistedIPs": ["2001:db8::/129"] }), "whitelistedIPs[0]", "invalid_field"),
        (json!({ "userId": "u", "whitelistedIPs": ["not an ip"] }), "whitelistedIPs[0]", "invalid_field"),
        (json!({ "userId": "u", "whitelistedIPs": "10.0.0.1" }), "whitelistedIPs", "invalid_field"),
        (json!({ "userId": "u", "acl": [{ "permissions": ["a*b"] }] }), "acl[0].permissions[0]", "invalid_field"),
        (
            json!({ "userId": "u", "acl": [{ "scope": { "shop": ["x"] }, "permissions": [] }] }),
            "acl[0].scope",
            "invalid_field",
        ),
        (json!({ "userId": "u", "expiresAt": "tomorrow" }), "expiresAt", "invalid_field"),
        (json!({ "userId": "u", "expiresAt": "2029-12-31T23:59:59Z" }), "expiresAt", "invalid_field"),
        (
            json!({ "userId": "u", "rateLimit": { "limit": 0, "periodSeconds": 60 } }),
            "rateLimit.limit",
            "invalid_field",
        ),
        (json!({ "userId": "u", "rateLimit": { "limit": 5 } }), "rateLimit.periodSeconds", "missing_field"),
        (json!({ "userId": "u", "quota": { "max": 1.5 } }), "quota.max", "invalid_field"),
        (json!({ "userId": "u", "quota": { "max": 5, "remaining": 5 } }), "quota.remaining", "read_only_field"),
        (json!({ "userId": "u", "description": "d".repeat(256) }), "description", "invalid_field"),
        (json!({ "userId": "u", "tags": ["ok", 7] }), "tags", "invalid_field"),
        (json!({ "userId": "u", "metadata": { "blob": "x".repeat(5000) } }), "metadata", "invalid_field"),
        (json!({ "userId": "u", "metadata": [1] }), "metadata", "invalid_field"),
        (json!(["userId"]), "body", "invalid_field"),
    ];
    for (body, field, code) in cases {
        let response = app.post_keys(&body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!((response.error_field(), response.error_code()), (field, code), "{body}");
        assert!(response.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(app.item_count().await, items_before, "nothing was written");
    assert_eq!(app.post_keys(&json!({ "userId": "u" })).await.status, StatusCode::CREATED, "still serving");
}

#[tokio::test]
async fn abuse_limits_are_400_naming_the_limit() {
    let app = spawn_app().await;
    let ips: Vec<String> = (0..101).map(|i| format!("10.0.{}.{}", i / 250, i % 250)).collect();
    let permissions: Vec<String> = (0..1001).map(|i| format!("p:{i}")).collect();
    let entries: Vec<Value> = (0..101).map(|_| json!({ "permissions": ["a"] })).collect();
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    for (body, field) in [
        (json!({ "userId": "u", "whitelistedIPs": ips }), "whitelistedIPs"),
        (json!({ "userId": "u", "acl": [{ "permissions": permissions }] }), "acl[0].permissions"),
        (json!({ "userId": "u", "acl": entries }), "acl"),
        (json!({ "userId": "u", "tags": tags }), "tags"),
    ] {
        let response = app.post_keys(&body).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST);
        assert_eq!((response.error_field(), response.error_code()), (field, "too_many_entries"));
    }
}

#[tokio::test]
async fn malformed_json_wrong_media_type_and_oversized_bodies() {
    let app = spawn_app().await;
    let malformed = raw(&app, Method::POST, "/keys", Some("application/json"), "{\"userId\": ").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.error_code(), "invalid_json");

    let text = raw(&app, Method::POST, "/keys", Some("text/plain"), "{\"userId\":\"u\"}").await;
    assert_eq!(text.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(text.error_code(), "unsupported_media_type");
    let none = raw(&app, Method::POST, "/keys", None, "{\"userId\":\"u\"}").await;
    assert_eq!(none.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let charset = raw(&app, Method::POST, "/keys", Some("application/json; charset=utf-8"), "{\"userId\":\"u\"}").await;
    assert_eq!(charset.status, StatusCode::CREATED);

    let huge = format!("{{\"userId\":\"u\",\"description\":\"{}\"}}", "x".repeat(64 * 1024));
    let too_large = raw(&app, Method::POST, "/keys", Some("application/json"), &huge).await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_large.error_code(), "payload_too_large");

    let empty = raw(&app, Method::POST, "/keys", Some("application/json"), "").await;
    assert_eq!((empty.status, empty.error_field()), (StatusCode::BAD_REQUEST, "body"));
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405_with_allow() {
    let app = spawn_app().await;
    let missing = app.send(Method::GET, "/nothing", Some(&app.root_key), None, &[]).await;
    assert_eq!((missing.status, missing.error_code()), (StatusCode::NOT_FOUND, "not_found"));
    let wrong = app.send(Method::PUT, "/keys/abc", Some(&app.root_key), None, &[]).await;
    assert_eq!((wrong.status, wrong.error_code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
    assert_eq!(wrong.header("allow"), "POST, GET, PATCH, DELETE");
    // `/keys/verify` has POST alone; its GET reaches `/keys/{keyId}`, where `verify` is no key.
    let verify = app.send(Method::PUT, "/keys/verify", Some(&app.root_key), None, &[]).await;
    assert_eq!((verify.status, verify.header("allow")), (StatusCode::METHOD_NOT_ALLOWED, "POST"));
    let get = app.send(Method::GET, "/keys/verify", Some(&app.root_key), None, &[]).await;
    assert_eq!((get.status, get.error_code()), (StatusCode::NOT_FOUND, "not_found"));
}

#[tokio::test]
async fn an_unreachable_database_is_503_json_and_never_a_panic() {
    let app = spawn_app().await;
    let down = crate::helpers::app_with_unreachable_database(&app.table).await;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/keys")
        .header("authorization", format!("Bearer {}", app.root_key))
        .header("content-type", "application/json")
        .body(Body::Text("{\"userId\":\"u\"}".into()))
        .unwrap();
    let response = dispatch(&down, CLIENT_IP, request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
    assert_eq!(app.counters().await, (1, 0), "nothing was written");
}
