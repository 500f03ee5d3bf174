//! `If-Match` against the key's `ETag`: a stale one is 412 and changes nothing.

use serde_json::json;

use crate::client::{Check, Failures};

#[tokio::test]
async fn a_stale_if_match_is_412_on_patch_roll_and_delete() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "preconditions" })).await;
    let path = format!("/keys/{}", made.id);
    let patched =
        check.call("PATCH", &path).header("if-match", "\"1\"").json(&json!({ "description": "v2" })).send().await;
    assert_eq!((patched.status, patched.header("etag")), (200, "\"2\""), "{patched:?}");
    let rows = [
        ("PATCH", path.clone(), Some(json!({ "description": "stale" }))),
        ("POST", format!("{path}/roll"), Some(json!({}))),
        ("DELETE", path.clone(), None),
    ];
    let mut failures = Failures::default();
    for (method, path, body) in &rows {
        let answer = check.call(method, path).header("if-match", "\"1\"").json_if(body.as_ref()).send().await;
        failures.check(answer.is_error(412, "precondition_failed"), || format!("{method} {path}: {answer:?}"));
    }
    failures.assert_none(rows.len());
    let read = check.get(&path).await;
    assert_eq!(
        (read.header("etag"), read.text("description"), read.text("status")),
        ("\"2\"", "v2", "active"),
        "nothing changed"
    );
    assert_eq!(check.code_of(&made.key).await, "VALID", "not rolled");
    check.done().await;
}

/// `If-Match` is `*`, `"n"`, `W/"n"` or `n`; each current one is accepted.
#[tokio::test]
async fn if_match_takes_star_quoted_weak_and_bare_versions() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "preconditions" })).await;
    let path = format!("/keys/{}", made.id);
    let rows = [("*", "\"2\""), ("\"2\"", "\"3\""), ("W/\"3\"", "\"4\""), ("4", "\"5\"")];
    let mut failures = Failures::default();
    for (n, (if_match, etag)) in rows.iter().enumerate() {
        let answer = check
            .call("PATCH", &path)
            .header("if-match", if_match)
            .json(&json!({ "description": format!("v{n}") }))
            .send()
            .await;
        failures.check(answer.status == 200 && answer.header("etag") == *etag, || {
            format!("If-Match {if_match}: {answer:?}")
        });
    }
    failures.assert_none(rows.len());
    let rolled = check.call("POST", &format!("{path}/roll")).header("if-match", "\"5\"").json(&json!({})).send().await;
    assert_eq!((rolled.status, rolled.header("etag")), (200, "\"6\""), "{rolled:?}");
    let deleted = check.call("DELETE", &path).header("if-match", "\"6\"").send().await;
    assert_eq!(deleted.status, 204, "{deleted:?}");
    check.done().await;
}
