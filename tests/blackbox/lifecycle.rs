//! A key's life: roll with a grace period, deactivate and re-activate, delete.

use serde_json::json;

use crate::client::Check;

#[tokio::test]
async fn a_roll_with_grace_keeps_the_old_secret_valid_until_the_next_roll() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "lifecycle" })).await;
    let roll = format!("/keys/{}/roll", made.id);
    let first = check.call("POST", &roll).json(&json!({ "gracePeriodSeconds": 3600 })).send().await;
    assert_eq!(first.status, 200, "{first:?}");
    let second_secret = first.text("key").to_owned();
    assert!(second_secret.starts_with("sk_") && second_secret != made.key);
    assert_eq!((first.text("id"), first.header("etag")), (made.id.as_str(), "\"2\""));
    assert!(second_secret.starts_with(first.text("keyPrefix")), "{first:?}");
    assert_eq!(check.code_of(&made.key).await, "VALID", "the old secret in its grace period");
    assert_eq!(check.code_of(&second_secret).await, "VALID");
    let second = check.call("POST", &roll).json(&json!({ "gracePeriodSeconds": 3600 })).send().await;
    assert_eq!(second.status, 200);
    assert_eq!(check.code_of(&made.key).await, "NOT_FOUND", "a second roll ends the first grace period");
    assert_eq!(check.code_of(&second_secret).await, "VALID");
    assert_eq!(check.code_of(second.text("key")).await, "VALID");
    let read = check.get(&format!("/keys/{}", made.id)).await;
    assert!(read.body.get("key").is_none(), "{read:?}");
    check.done().await;
}

#[tokio::test]
async fn a_roll_without_grace_retires_the_old_secret_at_once() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "lifecycle" })).await;
    let rolled = check.call("POST", &format!("/keys/{}/roll", made.id)).send().await;
    assert_eq!(rolled.status, 200, "an empty body is gracePeriodSeconds 0: {rolled:?}");
    assert_eq!(check.code_of(&made.key).await, "NOT_FOUND");
    assert_eq!(check.code_of(rolled.text("key")).await, "VALID");
    check.done().await;
}

/// After a roll the old secret serves its grace period (reads, keys without `keys:`) but
/// governs nothing: 403 `secret_retiring` for a key that holds a `keys:` permission.
#[tokio::test]
async fn an_old_root_secret_in_grace_reads_but_governs_nothing() {
    let check = Check::new();
    let admin = check.key_with_acl(&["keys:*"]).await;
    let rolled = check
        .call("POST", &format!("/keys/{}/roll", admin.id))
        .json(&json!({ "gracePeriodSeconds": 3600 }))
        .send()
        .await;
    assert_eq!(rolled.status, 200);
    let old = &admin.key;
    assert_eq!(check.call("GET", "/keys?limit=1").key(old).send().await.status, 200, "reads in grace");
    let plain = check.call("POST", "/keys").key(old).json(&json!({ "userId": "lifecycle" })).send().await;
    let plain = check.made_from(&plain, crate::client::Company::One);
    assert!(plain.key.starts_with("sk_"), "a key without keys: permissions: {:?}", plain.body);
    let governing = check
        .call("POST", "/keys")
        .key(old)
        .json(&json!({ "userId": "lifecycle", "acl": [{ "permissions": ["keys:read"] }] }))
        .send()
        .await;
    assert!(governing.is_error(403, "secret_retiring"), "{governing:?}");
    let itself =
        check.call("PATCH", &format!("/keys/{}", admin.id)).key(old).json(&json!({ "description": "x" })).send().await;
    assert!(itself.is_error(403, "secret_retiring"), "its own key: {itself:?}");
    let events = check.get(&format!("/keys/{}/events", plain.id)).await;
    assert_eq!(events.body["data"][0]["actorSecret"]["secret"], "previous", "the audit names which secret acted");
    check.done().await;
}

#[tokio::test]
async fn a_deactivated_key_is_inactive_until_re_activated() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "lifecycle" })).await;
    let path = format!("/keys/{}", made.id);
    let off = check.call("PATCH", &path).json(&json!({ "status": "inactive" })).send().await;
    assert_eq!((off.status, off.text("status")), (200, "inactive"), "{off:?}");
    assert_eq!(check.code_of(&made.key).await, "INACTIVE");
    assert_eq!(off.body["deletedAt"], json!(null), "deactivated, not deleted");
    let on = check.call("PATCH", &path).json(&json!({ "status": "active" })).send().await;
    assert_eq!((on.status, on.text("status")), (200, "active"));
    assert_eq!(check.code_of(&made.key).await, "VALID");
    check.done().await;
}

/// A deleted key is inactive for good: it never verifies again, its grace period included,
/// and it can be neither changed nor rolled (409).
#[tokio::test]
async fn a_deleted_key_is_inactive_for_good() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "lifecycle" })).await;
    let path = format!("/keys/{}", made.id);
    let rolled = check.call("POST", &format!("{path}/roll")).json(&json!({ "gracePeriodSeconds": 3600 })).send().await;
    assert_eq!(rolled.status, 200);
    assert_eq!(check.call("DELETE", &path).send().await.status, 204);
    let new_code = check.code_of(rolled.text("key")).await;
    let old = check.verify(json!({ "key": made.key })).await;
    assert_eq!((new_code.as_str(), &old.body["valid"]), ("INACTIVE", &json!(false)), "{old:?}");
    let rows = [
        check.call("PATCH", &path).json(&json!({ "status": "active" })).send().await,
        check.call("PATCH", &path).json(&json!({ "description": "x" })).send().await,
        check.call("POST", &format!("{path}/roll")).json(&json!({})).send().await,
    ];
    for answer in &rows {
        assert!(answer.is_error(409, "conflict"), "{answer:?}");
    }
    check.done().await;
}
