//! Idempotent retries: the same `Idempotency-Key` on the same request gets the first answer
//! again and changes nothing; on another request it is 422.

use serde_json::{Value, json};

use crate::client::{Check, Company, unique};

async fn events_total(check: &Check, id: &str) -> Value {
    check.get(&format!("/keys/{id}/events")).await.body["total"].clone()
}

#[tokio::test]
async fn a_retried_create_gets_the_same_key_and_secret() {
    let check = Check::new();
    let header = unique("retry");
    let body = json!({ "userId": "retries", "tags": ["a"] });
    let first = check.call("POST", "/keys").header("idempotency-key", &header).json(&body).send().await;
    let made = check.made_from(&first, Company::One);
    assert_eq!(first.status, 201, "{first:?}");
    // The same request as it parses: other spacing and order, a default written out.
    let same = br#"{ "tags" : ["a"], "userId": "retries", "metadata": {} }"#;
    let retried =
        check.call("POST", "/keys").header("idempotency-key", &header).raw(same, "application/json").send().await;
    assert_eq!(retried.status, 201, "{retried:?}");
    assert_eq!(
        (retried.text("id"), retried.text("key")),
        (made.id.as_str(), made.key.as_str()),
        "the first answer again"
    );
    assert_eq!(retried.header("location"), first.header("location"));
    assert_eq!(events_total(&check, &made.id).await, json!(1), "one key created");
    let other = check
        .call("POST", "/keys")
        .header("idempotency-key", &header)
        .json(&json!({ "userId": "someone else" }))
        .send()
        .await;
    assert!(other.is_error(422, "idempotency_key_reused"), "{other:?}");
    check.done().await;
}

#[tokio::test]
async fn a_retried_custom_create_is_201_again_not_409() {
    let check = Check::new();
    let (header, id) = (unique("retry"), unique("retry"));
    let path = format!("/keys/{id}");
    let body = json!({ "userId": "retries" });
    let first = check.call("POST", &path).header("idempotency-key", &header).json(&body).send().await;
    check.made_from(&first, Company::One);
    let retried = check.call("POST", &path).header("idempotency-key", &header).json(&body).send().await;
    assert_eq!((first.status, retried.status), (201, 201), "{retried:?}");
    assert_eq!(retried.text("key"), first.text("key"));
    let fresh = check.call("POST", &path).header("idempotency-key", &unique("retry")).json(&body).send().await;
    assert!(fresh.is_error(409, "key_exists"), "another request for the id: {fresh:?}");
    check.done().await;
}

#[tokio::test]
async fn retried_patch_roll_and_delete_answer_as_the_first_time() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "retries" })).await;
    let path = format!("/keys/{}", made.id);
    let send = |method: &'static str, path: String, header: String, body: Option<Value>| {
        let check = &check;
        async move { check.call(method, &path).header("idempotency-key", &header).json_if(body.as_ref()).send().await }
    };
    let patch = unique("retry");
    let body = json!({ "description": "once" });
    let first = send("PATCH", path.clone(), patch.clone(), Some(body.clone())).await;
    let again = send("PATCH", path.clone(), patch.clone(), Some(body)).await;
    assert_eq!((first.status, again.status, again.header("etag")), (200, 200, "\"2\""), "{again:?}");
    assert_eq!(again.body, first.body);
    let reused = send("PATCH", path.clone(), patch.clone(), Some(json!({ "description": "twice" }))).await;
    assert!(reused.is_error(422, "idempotency_key_reused"), "{reused:?}");
    let on_roll = send("POST", format!("{path}/roll"), patch, Some(json!({}))).await;
    assert!(on_roll.is_error(422, "idempotency_key_reused"), "another operation under the header: {on_roll:?}");

    let roll = unique("retry");
    let rolled = send("POST", format!("{path}/roll"), roll.clone(), Some(json!({ "gracePeriodSeconds": 60 }))).await;
    let rolled_again = send("POST", format!("{path}/roll"), roll, Some(json!({ "gracePeriodSeconds": 60 }))).await;
    assert_eq!((rolled.status, rolled_again.status), (200, 200), "{rolled_again:?}");
    assert_eq!(rolled_again.text("key"), rolled.text("key"), "the same new secret");
    assert_eq!(check.code_of(rolled.text("key")).await, "VALID");
    assert_eq!(check.code_of(&made.key).await, "VALID", "rolled once: the first secret is in its grace period");

    let delete = unique("retry");
    let deleted = send("DELETE", path.clone(), delete.clone(), None).await;
    let deleted_again = send("DELETE", path.clone(), delete, None).await;
    assert_eq!((deleted.status, deleted_again.status), (204, 204));
    let actions: Vec<Value> = check.get(&format!("{path}/events")).await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].clone())
        .collect();
    assert_eq!(actions, [json!("deleted"), json!("rolled"), json!("updated"), json!("created")], "each change once");
    check.done().await;
}
