//! Create, read, list, change and delete, and the shape of a key as the API shows it.

use serde_json::{Value, json};

use crate::client::{Check, Company, ids, unique};

/// The fields every key answer carries (openapi.yaml, `Key`).
const KEY_FIELDS: [&str; 19] = [
    "id",
    "companyId",
    "userId",
    "description",
    "type",
    "keyPrefix",
    "whitelistedIPs",
    "acl",
    "expiresAt",
    "rateLimit",
    "quota",
    "tags",
    "metadata",
    "identityId",
    "status",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "lastUsedAt",
];

fn missing_fields(key: &Value) -> Vec<&'static str> {
    KEY_FIELDS.into_iter().filter(|f| key.get(*f).is_none()).collect()
}

#[tokio::test]
async fn create_answers_201_with_the_secret_once_and_its_location() {
    let check = Check::new();
    let body = json!({
        "userId": "crud-user",
        "description": "billing",
        "whitelistedIPs": ["10.1.2.3/8"],
        "acl": [{ "permissions": ["invoices:read"], "scope": { "productId": ["p1"] } }],
        "rateLimit": { "limit": 100, "periodSeconds": 60 },
        "quota": { "max": 1000, "renewalSeconds": 86400 },
        "tags": ["prod"],
        "metadata": { "plan": "gold" },
    });
    let answer = check.call("POST", "/keys").json(&body).send().await;
    let made = check.made_from(&answer, Company::One);
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.header("location"), format!("/keys/{}", made.id));
    assert!(answer.header("content-type").starts_with("application/json"));
    assert_eq!(missing_fields(&answer.body), Vec::<&str>::new());
    let key = &answer.body;
    assert!(made.key.starts_with("sk_") && made.key.starts_with(key["keyPrefix"].as_str().unwrap()), "{key}");
    assert_eq!(
        (&key["status"], &key["type"], &key["userId"], &key["whitelistedIPs"], &key["quota"]["remaining"]),
        (&json!("active"), &json!("secret"), &json!("crud-user"), &json!(["10.0.0.0/8"]), &json!(1000)),
        "{key}"
    );
    let read = check.get(&format!("/keys/{}", made.id)).await;
    assert_eq!(read.status, 200);
    assert!(read.body.get("key").is_none(), "the secret is shown once: {:?}", read.body);
    assert_eq!(read.header("etag"), "\"1\"");
    for field in ["description", "acl", "rateLimit", "tags", "metadata", "createdAt", "companyId"] {
        assert_eq!(read.body[field], answer.body[field], "{field}");
    }
    check.done().await;
}

#[tokio::test]
async fn a_publishable_keys_plaintext_is_shown_again() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "crud", "type": "publishable" })).await;
    assert!(made.key.starts_with("pk_"), "{:?}", made.body);
    let read = check.get(&format!("/keys/{}", made.id)).await;
    assert_eq!((read.status, read.text("key")), (200, made.key.as_str()));
    check.done().await;
}

#[tokio::test]
async fn a_custom_id_is_the_companys_once_and_free_in_another_company() {
    let check = Check::new();
    let id = unique("crud");
    let first = check.call("POST", &format!("/keys/{id}")).json(&json!({ "userId": "a" })).send().await;
    check.made_from(&first, Company::One);
    assert_eq!((first.status, first.text("id")), (201, id.as_str()), "{first:?}");
    assert_eq!(first.header("location"), format!("/keys/{id}"));
    let again = check.call("POST", &format!("/keys/{id}")).json(&json!({ "userId": "b" })).send().await;
    assert!(again.is_error(409, "key_exists"), "{again:?}");
    let other =
        check.call("POST", &format!("/keys/{id}")).key(check.other_root()).json(&json!({ "userId": "c" })).send().await;
    check.made_from(&other, Company::Other);
    assert_eq!((other.status, other.text("userId")), (201, "c"), "{other:?}");
    assert_eq!(check.get(&format!("/keys/{id}")).await.text("userId"), "a", "each company its own key");
    check.done().await;
}

#[tokio::test]
async fn get_of_an_absent_key_is_404() {
    let check = Check::new();
    let answer = check.get(&format!("/keys/{}", unique("absent"))).await;
    assert!(answer.is_error(404, "not_found"), "{answer:?}");
}

#[tokio::test]
async fn patch_changes_the_fields_sent_and_moves_the_etag() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "crud", "description": "before", "tags": ["a"] })).await;
    let path = format!("/keys/{}", made.id);
    let patched =
        check.call("PATCH", &path).json(&json!({ "description": "after", "metadata": { "n": 1 } })).send().await;
    assert_eq!(patched.status, 200, "{patched:?}");
    assert_eq!(
        (patched.text("description"), &patched.body["tags"], &patched.body["metadata"]),
        ("after", &json!(["a"]), &json!({ "n": 1 }))
    );
    assert_eq!(patched.header("etag"), "\"2\"");
    assert!(patched.text("updatedAt") >= made.body["updatedAt"].as_str().unwrap());
    assert!(patched.body.get("key").is_none());
    let nothing = check.call("PATCH", &path).json(&json!({ "description": "after" })).send().await;
    assert_eq!((nothing.status, nothing.header("etag")), (200, "\"2\""), "{nothing:?}");
    let events = check.get(&format!("{path}/events")).await;
    assert_eq!(events.body["total"], json!(2), "a PATCH that changes nothing records nothing: {:?}", events.body);
    let cleared = check.call("PATCH", &path).json(&json!({ "description": null, "tags": [] })).send().await;
    assert_eq!((&cleared.body["description"], &cleared.body["tags"]), (&Value::Null, &json!([])), "{cleared:?}");
    check.done().await;
}

#[tokio::test]
async fn delete_is_soft_and_repeatable() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "crud" })).await;
    let path = format!("/keys/{}", made.id);
    let deleted = check.call("DELETE", &path).send().await;
    assert_eq!((deleted.status, &deleted.body), (204, &Value::Null), "{deleted:?}");
    assert_eq!(check.call("DELETE", &path).send().await.status, 204, "again");
    let read = check.get(&path).await;
    assert_eq!((read.status, read.text("status")), (200, "inactive"), "{read:?}");
    assert!(read.body["deletedAt"].is_string(), "{read:?}");
    let active = check.get("/keys?limit=100").await;
    assert!(!ids(&active.body).contains(&made.id), "not in the active list");
    let inactive = check.get("/keys?status=inactive&limit=100").await;
    assert!(ids(&inactive.body).contains(&made.id), "in the inactive list (newest first)");
    let all = check.get("/keys?status=all&limit=100").await;
    assert_eq!(all.status, 200);
    check.done().await;
}

/// The audit trail: one event per change, newest first, each naming the acting key.
#[tokio::test]
async fn events_record_each_change_with_its_actor() {
    let check = Check::new();
    let me = check.get("/me").await;
    let made = check.create(json!({ "userId": "crud" })).await;
    let path = format!("/keys/{}", made.id);
    assert_eq!(check.call("PATCH", &path).json(&json!({ "description": "x" })).send().await.status, 200);
    assert_eq!(check.call("PATCH", &path).json(&json!({ "status": "inactive" })).send().await.status, 200);
    assert_eq!(check.call("PATCH", &path).json(&json!({ "status": "active" })).send().await.status, 200);
    assert_eq!(check.call("POST", &format!("{path}/roll")).json(&json!({})).send().await.status, 200);
    assert_eq!(check.call("DELETE", &path).send().await.status, 204);
    assert_eq!(check.call("DELETE", &path).send().await.status, 204);
    let events = check.get(&format!("{path}/events")).await;
    assert_eq!(events.status, 200, "{events:?}");
    let actions: Vec<&str> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["deleted", "rolled", "status_changed", "status_changed", "updated", "created"]);
    assert_eq!((&events.body["total"], &events.body["count"]), (&json!(6), &json!(6)));
    for event in events.body["data"].as_array().unwrap() {
        assert_eq!(
            (&event["keyId"], &event["actor"], &event["actorType"]),
            (&json!(made.id), &me.body["keyId"], &json!("key")),
            "{event}"
        );
        assert_eq!(event["actorSecret"]["secret"], "current", "{event}");
    }
    check.done().await;
}
