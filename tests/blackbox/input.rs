//! Bad input: every refusal a clear JSON error naming what was wrong, and nothing written.

use serde_json::{Value, json};

use crate::client::{Check, Failures, unique};

/// Bodies of `POST /keys`, each refused: the body, the status, the code, the field named.
#[tokio::test]
async fn a_bad_create_body_is_refused_naming_the_field() {
    let check = Check::new();
    let long = "x".repeat(256);
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let rows: Vec<(Value, &str, &str)> = vec![
        (json!({}), "missing_field", "userId"),
        (json!({ "userId": "" }), "invalid_field", "userId"),
        (json!({ "userId": 7 }), "invalid_field", "userId"),
        (json!({ "userId": "u", "bogus": 1 }), "unknown_field", "bogus"),
        (json!({ "userId": "u", "companyId": "x" }), "read_only_field", "companyId"),
        (json!({ "userId": "u", "key": "sk_x" }), "read_only_field", "key"),
        (json!({ "userId": "u", "createdAt": "2030-01-01T00:00:00Z" }), "read_only_field", "createdAt"),
        (json!({ "userId": "u", "type": "secrets" }), "invalid_field", "type"),
        (json!({ "userId": "u", "description": long }), "invalid_field", "description"),
        (json!({ "userId": "u", "whitelistedIPs": ["10.0.0.1", "nope"] }), "invalid_field", "whitelistedIPs[1]"),
        (json!({ "userId": "u", "whitelistedIPs": [" 10.0.0.1"] }), "invalid_field", "whitelistedIPs[0]"),
        (
            json!({ "userId": "u", "rateLimit": { "limit": 0, "periodSeconds": 60 } }),
            "invalid_field",
            "rateLimit.limit",
        ),
        (json!({ "userId": "u", "rateLimit": { "limit": 1 } }), "missing_field", "rateLimit.periodSeconds"),
        (json!({ "userId": "u", "quota": { "max": 1, "remaining": 1 } }), "read_only_field", "quota.remaining"),
        (json!({ "userId": "u", "expiresAt": "2001-01-01T00:00:00Z" }), "invalid_field", "expiresAt"),
        (json!({ "userId": "u", "expiresAt": "tomorrow" }), "invalid_field", "expiresAt"),
        (json!({ "userId": "u", "tags": tags }), "too_many_entries", "tags"),
        (json!({ "userId": "u", "acl": [{ "permissions": ["a b"] }] }), "invalid_field", "acl[0].permissions[0]"),
        (json!({ "userId": "u", "acl": [{ "scope": {} }] }), "invalid_field", "acl[0]"),
        (json!({ "userId": "u", "metadata": { "": 1 } }), "invalid_field", "metadata"),
        (json!(["userId"]), "invalid_field", "body"),
    ];
    let mut failures = Failures::default();
    for (body, code, field) in &rows {
        let answer = check.call("POST", "/keys").json(body).send().await;
        failures.check(answer.is_error(400, code) && answer.error_field() == *field, || format!("{body}: {answer:?}"));
    }
    failures.assert_none(rows.len());
}

/// What is wrong with a request before its body's fields: its bytes, its media type, its size.
#[tokio::test]
async fn a_body_that_is_not_a_json_object_of_the_right_size_is_refused() {
    let check = Check::new();
    let big = format!("{{\"userId\":\"u\",\"description\":\"{}\"}}", "x".repeat(70 * 1024));
    let rows: [(&str, Vec<u8>, &str, u16, &str); 4] = [
        ("broken JSON", b"{\"userId\":".to_vec(), "application/json", 400, "invalid_json"),
        ("text/plain", b"{\"userId\":\"u\"}".to_vec(), "text/plain", 415, "unsupported_media_type"),
        ("form data", b"userId=u".to_vec(), "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
        ("over 64 KiB", big.into_bytes(), "application/json", 413, "payload_too_large"),
    ];
    let mut failures = Failures::default();
    for (what, body, content_type, status, code) in &rows {
        let answer = check.call("POST", "/keys").raw(body, content_type).send().await;
        failures.check(answer.is_error(*status, code), || format!("{what}: {answer:?}"));
    }
    failures.assert_none(rows.len());
}

/// A JSON body that is not UTF-8: refused before any work (differences.rs: by whom).
#[tokio::test]
async fn a_body_that_is_not_utf8_is_refused() {
    let check = Check::new();
    let answer = check.call("POST", "/keys").raw(&[0xff, 0xfe], "application/json").send().await;
    assert!(check.served_by().is_non_utf8_refusal(&answer), "{:?}: {answer:?}", check.served_by());
}

/// Query parameters of `GET /keys`, each refused naming the parameter.
#[tokio::test]
async fn a_bad_list_query_is_refused_naming_the_parameter() {
    let check = Check::new();
    let absent = unique("absent");
    let rows = [
        ("limit=0".to_owned(), "limit"),
        ("limit=101".to_owned(), "limit"),
        ("limit=ten".to_owned(), "limit"),
        ("status=deleted".to_owned(), "status"),
        ("offset=-1".to_owned(), "offset"),
        ("offset=1001".to_owned(), "offset"),
        ("colour=red".to_owned(), "colour"),
        (format!("startingAfter={absent}"), "startingAfter"),
        (format!("endingBefore={absent}"), "endingBefore"),
    ];
    let mut failures = Failures::default();
    for (query, field) in &rows {
        let answer = check.get(&format!("/keys?{query}")).await;
        failures.check(answer.status == 400 && answer.error_field() == *field, || format!("{query}: {answer:?}"));
    }
    failures.assert_none(rows.len());
    let both = check.get(&format!("/keys?startingAfter={absent}&endingBefore={absent}")).await;
    assert_eq!(both.status, 400, "startingAfter with endingBefore: {both:?}");
}

/// A request refused with 400: method, path, body, headers, the field the error names.
type Refused<'a> = (&'a str, String, Value, Vec<(&'a str, String)>, &'a str);

/// Headers, path, and the bodies of the other writes, each refused naming what was wrong;
/// validated before anything is read, so a stale `If-Match` does not hide a bad body.
#[tokio::test]
async fn bad_headers_paths_and_other_bodies_are_refused() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "input" })).await;
    let path = format!("/keys/{}", made.id);
    let long_id = "i".repeat(65);
    let rows: Vec<Refused<'_>> = vec![
        ("PATCH", path.clone(), json!({ "description": "x" }), vec![("if-match", "abc".into())], "If-Match"),
        ("PATCH", path.clone(), json!({ "description": 5 }), vec![("if-match", "\"99\"".into())], "description"),
        ("PATCH", path.clone(), json!({ "userId": "other" }), vec![], "userId"),
        ("PATCH", path.clone(), json!({ "status": "deleted" }), vec![], "status"),
        (
            "POST",
            "/keys".into(),
            json!({ "userId": "u" }),
            vec![("idempotency-key", "k".repeat(256))],
            "Idempotency-Key",
        ),
        (
            "POST",
            "/keys".into(),
            json!({ "userId": "u" }),
            vec![("idempotency-key", "two words".into())],
            "Idempotency-Key",
        ),
        ("POST", format!("{path}/roll"), json!({ "gracePeriodSeconds": 86401 }), vec![], "gracePeriodSeconds"),
        ("POST", format!("{path}/roll"), json!({ "gracePeriodSeconds": -1 }), vec![], "gracePeriodSeconds"),
        ("POST", format!("/keys/{long_id}"), json!({ "userId": "u" }), vec![], "keyId"),
        ("POST", "/keys/bad.id".into(), json!({ "userId": "u" }), vec![], "keyId"),
        ("POST", "/keys/verify".into(), json!({}), vec![], "key"),
        ("POST", "/keys/verify".into(), json!({ "key": made.key, "permissions": ["*"] }), vec![], "permissions[0]"),
        ("POST", "/keys/verify".into(), json!({ "key": made.key, "ip": "not-an-ip" }), vec![], "ip"),
    ];
    let mut failures = Failures::default();
    for (method, path, body, headers, field) in &rows {
        let mut call = check.call(method, path).json(body);
        for (name, value) in headers {
            call = call.header(name, value);
        }
        let answer = call.send().await;
        failures.check(answer.status == 400 && answer.error_field() == *field, || {
            format!("{method} {path} {body}: {answer:?}")
        });
    }
    failures.assert_none(rows.len());
    let read = check.get(&path).await;
    assert_eq!((read.header("etag"), read.text("status")), ("\"1\"", "active"), "nothing was written: {read:?}");
    check.done().await;
}
