//! `GET /me`: who the calling root key is. Needs no permission beyond a secret key that verifies.

use apikeys::entry::local::dispatch;
use lambda_http::http::{Method, Request, StatusCode};
use lambda_http::{Body, Response};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn me_answers_the_callers_company_key_user_and_management_permissions() {
    let app = spawn_app().await;
    let reader = app
        .create_key(&json!({
            "userId": "ops-dashboard",
            "description": "reads keys",
            "acl": [{ "permissions": ["keys:read", "orders:write"] }],
        }))
        .await;
    let reader_key = reader["key"].as_str().unwrap();
    let me = app.send(Method::GET, "/me", Some(reader_key), None, &[]).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(
        me.body,
        json!({
            "companyId": app.company.to_string(),
            "keyId": reader["id"],
            "userId": "ops-dashboard",
            "description": "reads keys",
            "permissions": ["keys:read"],
        })
    );
    // It counts as a use of the key.
    assert!(app.get_key(reader["id"].as_str().unwrap()).await.body["lastUsedAt"].is_string());

    let root = app.send(Method::GET, "/me", Some(&app.root_key), None, &[]).await;
    assert_eq!(root.body["permissions"], json!(["keys:*"]));
}

#[tokio::test]
async fn me_needs_no_permission_but_a_secret_key_that_verifies() {
    let app = spawn_app().await;
    // A secret key with no `keys:` permission may still ask who it is (and learns it has none).
    let plain = app.create_key(&json!({ "userId": "u" })).await;
    let me = app.send(Method::GET, "/me", plain["key"].as_str(), None, &[]).await;
    assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
    assert_eq!(me.body["permissions"], json!([]));

    let publishable = app
        .create_key(&json!({ "userId": "u", "type": "publishable", "acl": [{ "permissions": ["keys:read"] }] }))
        .await;
    let refused = app.send(Method::GET, "/me", publishable["key"].as_str(), None, &[]).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let anonymous = app.send(Method::GET, "/me", None, None, &[]).await;
    assert_eq!((anonymous.status, anonymous.error_code()), (StatusCode::UNAUTHORIZED, "unauthenticated"));
    let query = app.send(Method::GET, "/me?x=1", Some(&app.root_key), None, &[]).await;
    assert_eq!((query.status, query.error_code()), (StatusCode::BAD_REQUEST, "unknown_field"), "{:?}", query.body);
    let post = app.send(Method::POST, "/me", Some(&app.root_key), None, &[]).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn the_console_is_served_with_its_security_headers_and_no_credential() {
    let app = spawn_app().await;
    for (path, content_type) in [
        ("/console", "text/html; charset=utf-8"),
        ("/console/app.js", "text/javascript; charset=utf-8"),
        ("/console/app.css", "text/css; charset=utf-8"),
    ] {
        let response = send_raw(&app, Method::GET, path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(header("content-type"), content_type, "{path}");
        assert_eq!(header("content-security-policy"), apikeys::entry::http::console::CONTENT_SECURITY_POLICY);
        assert!(header("content-security-policy").contains("script-src 'self'"));
        assert!(header("content-security-policy").contains("connect-src 'self'"));
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
    }
    let missing = send_raw(&app, Method::GET, "/console/secret.txt").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.headers()["x-content-type-options"], "nosniff");
    // The page has no inline script or style for the policy to refuse.
    let page = String::from_utf8(send_raw(&app, Method::GET, "/console").await.into_body().to_vec()).unwrap();
    assert!(!page.contains("<script>") && !page.contains("style="), "inline code in the page");
    let handler_attribute = page.split(" on").skip(1).any(|rest| {
        let name: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        !name.is_empty() && rest[name.len()..].starts_with('=')
    });
    assert!(!handler_attribute, "an inline event handler in the page");
}

/// The answer as it is (the console's are not all JSON).
async fn send_raw(app: &TestApp, method: Method, path: &str) -> Response<Body> {
    dispatch(&app.app, CLIENT_IP, Request::builder().method(method).uri(path).body(Body::Empty).unwrap()).await
}
