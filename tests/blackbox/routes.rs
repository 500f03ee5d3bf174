//! Every route and method the API has, and what is answered where there is none.

use serde_json::json;

use crate::client::{Check, Failures, unique};

/// Every route with a request that succeeds on a key of the check's own: method, path (`{id}`
/// is the key), body, the status expected.
#[tokio::test]
async fn every_route_answers_its_documented_status_with_a_root_key() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "routes" })).await;
    let custom = unique("routes");
    let rows = [
        ("GET", "/me".to_owned(), None, 200),
        ("POST", "/keys".to_owned(), Some(json!({ "userId": "routes" })), 201),
        ("POST", format!("/keys/{custom}"), Some(json!({ "userId": "routes" })), 201),
        ("GET", "/keys".to_owned(), None, 200),
        ("GET", format!("/keys/{}", made.id), None, 200),
        ("PATCH", format!("/keys/{}", made.id), Some(json!({ "description": "routes" })), 200),
        ("GET", format!("/keys/{}/events", made.id), None, 200),
        ("GET", "/company/events".to_owned(), None, 200),
        ("POST", "/keys/verify".to_owned(), Some(json!({ "key": made.key })), 200),
        ("POST", format!("/keys/{}/roll", made.id), Some(json!({})), 200),
        ("DELETE", format!("/keys/{}", made.id), None, 204),
    ];
    let mut failures = Failures::default();
    for (method, path, body, status) in &rows {
        let answer = check.call(method, path).json_if(body.as_ref()).send().await;
        if answer.status == 201 {
            check.made_from(&answer, crate::client::Company::One);
        }
        failures.check(answer.status == *status, || format!("{method} {path}: {answer:?}"));
        let json_answer = *status == 204 || answer.header("content-type").starts_with("application/json");
        failures.check(json_answer, || format!("{method} {path}: not JSON: {:?}", answer.headers));
    }
    failures.assert_none(rows.len());
    check.done().await;
}

/// A path no route has, and a method a path does not have: the server's own answer
/// (differences.rs), never a function's.
#[tokio::test]
async fn a_route_or_method_the_api_lacks_gets_the_servers_own_answer() {
    let check = Check::new();
    let rows = [
        ("GET", "/nothing-here", false),
        ("GET", "/keys/a/b/c", false),
        ("POST", "/me/too", false),
        ("PUT", "/keys", true),
        ("DELETE", "/keys", true),
        ("PUT", "/keys/some-key", true),
        ("POST", "/me", true),
        ("GET", "/keys/some-key/roll", true),
    ];
    let mut failures = Failures::default();
    for (method, path, method_on_path) in rows {
        let answer = check.call(method, path).send().await;
        failures.check(check.served_by().is_route_miss(method_on_path, &answer), || {
            format!("{method} {path} ({:?}): {answer:?}", check.served_by())
        });
    }
    failures.assert_none(rows.len());
}

/// The console is served on the same API, with no credential.
#[tokio::test]
async fn the_console_page_is_public() {
    let check = Check::new();
    let page = check.call("GET", "/console").no_auth().send().await;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.header("content-type").starts_with("text/html"), "{:?}", page.headers);
    assert!(page.header("content-security-policy").contains("script-src 'self'"), "{:?}", page.headers);
    let script = check.call("GET", "/console/app.js").no_auth().send().await;
    assert_eq!(script.status, 200);
    assert!(script.header("content-type").contains("javascript"), "{:?}", script.headers);
}
