//! Retries of every write: the same `Idempotency-Key` gets the first answer (a roll's secret
//! included) and changes nothing more; `If-Match` guards roll and delete as it guards PATCH;
//! and every request is validated before any precondition or replay.

use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, spawn_app};

async fn new_key(app: &TestApp) -> (String, String) {
    app.create_key_pair(&json!({ "userId": "svc" })).await
}

async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> TestResponse {
    app.send(method, path, Some(&app.root_key), body, headers).await
}

/// The audit trail's actions, oldest first.
async fn actions(app: &TestApp, id: &str) -> Vec<String> {
    let events = send(app, Method::GET, &format!("/keys/{id}/events?limit=100"), None, &[]).await;
    let mut actions: Vec<String> =
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    actions.reverse();
    actions
}

async fn verifies(app: &TestApp, secret: &str) -> bool {
    app.verify(&json!({ "key": secret })).await.body["valid"] == true
}

#[tokio::test]
async fn a_retried_roll_returns_the_same_secret_and_rolls_once() {
    let app = spawn_app().await;
    let (id, first_secret) = new_key(&app).await;
    let path = format!("/keys/{id}/roll");
    let header = [("idempotency-key", "roll-2030-01-01")];
    let body = json!({ "gracePeriodSeconds": 3600 });
    let first = send(&app, Method::POST, &path, Some(&body), &header).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let retried = send(&app, Method::POST, &path, Some(&body), &header).await;
    assert_eq!((retried.status, &retried.body), (StatusCode::OK, &first.body), "the same answer, secret included");
    assert_eq!(retried.header("etag"), first.header("etag"));
    assert_eq!(actions(&app, &id).await, ["created", "rolled"], "one roll");
    let new_secret = first.body["key"].as_str().unwrap();
    assert!(verifies(&app, new_secret).await);
    assert!(verifies(&app, &first_secret).await, "the first secret is in its grace period, not rolled away twice");

    let other_body = send(&app, Method::POST, &path, Some(&json!({ "gracePeriodSeconds": 0 })), &header).await;
    assert_eq!(
        (other_body.status, other_body.error_code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
    );
    let (other_id, _) = new_key(&app).await;
    let other_key = send(&app, Method::POST, &format!("/keys/{other_id}/roll"), Some(&body), &header).await;
    assert_eq!(other_key.status, StatusCode::UNPROCESSABLE_ENTITY, "the same header on another key");
    assert_eq!(actions(&app, &other_id).await, ["created"]);
}

#[tokio::test]
async fn concurrent_duplicate_rolls_roll_once() {
    let app = spawn_app().await;
    let (id, _) = new_key(&app).await;
    let path = format!("/keys/{id}/roll");
    let header = [("idempotency-key", "twin-rolls")];
    let rolls = (0..6).map(|_| send(&app, Method::POST, &path, None, &header));
    let answers = futures::future::join_all(rolls).await;
    let secrets: Vec<&str> =
        answers.iter().filter(|a| a.status == StatusCode::OK).map(|a| a.body["key"].as_str().unwrap()).collect();
    for answer in &answers {
        assert!(
            answer.status == StatusCode::OK
                || (answer.status == StatusCode::CONFLICT && answer.error_code() == "request_in_progress"),
            "{:?}",
            answer.body
        );
    }
    assert!(!secrets.is_empty() && secrets.iter().all(|s| *s == secrets[0]), "one secret for all: {secrets:?}");
    assert_eq!(actions(&app, &id).await, ["created", "rolled"]);
    assert!(verifies(&app, secrets[0]).await);
}

#[tokio::test]
async fn retried_patch_and_delete_answer_as_the_first_time() {
    let app = spawn_app().await;
    let (id, secret) = new_key(&app).await;
    let path = format!("/keys/{id}");
    let patch = json!({ "description": "first" });
    let header = [("idempotency-key", "patch-1")];
    let first = send(&app, Method::PATCH, &path, Some(&patch), &header).await;
    // Someone else changes the key in between; the retry still gets its own first answer.
    assert_eq!(
        send(&app, Method::PATCH, &path, Some(&json!({ "description": "second" })), &[]).await.status,
        StatusCode::OK
    );
    let retried = send(&app, Method::PATCH, &path, Some(&patch), &header).await;
    assert_eq!((retried.status, &retried.body), (StatusCode::OK, &first.body));
    assert_eq!(retried.header("etag"), "\"2\"");
    assert_eq!(app.get_key(&id).await.body["description"], "second", "the retry wrote nothing");

    let header = [("idempotency-key", "delete-1")];
    let deleted = send(&app, Method::DELETE, &path, None, &header).await;
    let again = send(&app, Method::DELETE, &path, None, &header).await;
    assert_eq!((deleted.status, again.status), (StatusCode::NO_CONTENT, StatusCode::NO_CONTENT));
    assert_eq!(again.body, Value::Null);
    assert_eq!(actions(&app, &id).await, ["created", "updated", "updated", "deleted"]);
    assert!(!verifies(&app, &secret).await);
}

#[tokio::test]
async fn a_stale_if_match_on_roll_and_delete_is_412_and_writes_nothing() {
    let app = spawn_app().await;
    let (id, secret) = new_key(&app).await;
    assert_eq!(app.patch_key(&id, &json!({ "description": "v2" }), &[]).await.status, StatusCode::OK);
    let items = app.item_count().await;
    for (method, path) in [(Method::POST, format!("/keys/{id}/roll")), (Method::DELETE, format!("/keys/{id}"))] {
        let stale = send(&app, method.clone(), &path, None, &[("if-match", "\"1\"")]).await;
        assert_eq!(
            (stale.status, stale.error_code()),
            (StatusCode::PRECONDITION_FAILED, "precondition_failed"),
            "{method}"
        );
    }
    assert_eq!(app.item_count().await, items);
    assert_eq!(actions(&app, &id).await, ["created", "updated"]);
    assert!(verifies(&app, &secret).await);
    let rolled = send(&app, Method::POST, &format!("/keys/{id}/roll"), None, &[("if-match", "\"2\"")]).await;
    assert_eq!((rolled.status, rolled.header("etag")), (StatusCode::OK, "\"3\""));
    let deleted = send(&app, Method::DELETE, &format!("/keys/{id}"), None, &[("if-match", "W/\"3\"")]).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_invalid_request_is_a_400_before_any_precondition_or_replay() {
    let app = spawn_app().await;
    let (id, _) = new_key(&app).await;
    assert_eq!(app.patch_key(&id, &json!({ "description": "v2" }), &[]).await.status, StatusCode::OK);
    let path = format!("/keys/{id}");
    let stale = [("if-match", "\"1\"")];
    let bad_bodies = [
        json!({ "acl": [{ "permissions": [], "scope": [null, null] }] }),
        json!({ "acl": [{ "permissions": "keys:read" }] }),
        json!({ "description": 7 }),
        json!({ "tags": "a" }),
        json!({ "status": "gone" }),
        json!({ "rateLimit": [] }),
        json!({ "quota": { "max": "1" } }),
        json!({ "whitelistedIPs": "10.0.0.0/8" }),
        json!({ "expiresAt": 5 }),
        json!({ "metadata": [] }),
        json!({ "nope": 1 }),
    ];
    for body in &bad_bodies {
        let response = send(&app, Method::PATCH, &path, Some(body), &stale).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}: {:?}", response.body);
    }
    let roll_path = format!("/keys/{id}/roll");
    let rolled = send(&app, Method::POST, &roll_path, Some(&json!({ "gracePeriodSeconds": "1" })), &stale).await;
    assert_eq!(rolled.status, StatusCode::BAD_REQUEST);
    assert_eq!(actions(&app, &id).await, ["created", "updated"], "nothing written");
}

#[tokio::test]
async fn a_bad_idempotency_key_header_is_a_400_naming_it_on_every_write() {
    let app = spawn_app().await;
    let (id, _) = new_key(&app).await;
    let items = app.item_count().await;
    let too_long = "k".repeat(256);
    let writes = [
        (Method::POST, "/keys".to_owned(), Some(json!({ "userId": "u" }))),
        (Method::POST, "/keys/custom-1".to_owned(), Some(json!({ "userId": "u" }))),
        (Method::PATCH, format!("/keys/{id}"), Some(json!({ "description": "x" }))),
        (Method::POST, format!("/keys/{id}/roll"), None),
        (Method::DELETE, format!("/keys/{id}"), None),
    ];
    for value in ["", "café", "two words", too_long.as_str()] {
        for (method, path, body) in &writes {
            let response = send(&app, method.clone(), path, body.as_ref(), &[("idempotency-key", value)]).await;
            assert_eq!(response.status, StatusCode::BAD_REQUEST, "{method} {path} with {value:?}: {:?}", response.body);
            assert_eq!(response.error_field(), "Idempotency-Key");
        }
    }
    assert_eq!(app.item_count().await, items, "nothing written");
}
