//! PATCH, roll with a grace period, idempotent creates and the audit trail.

use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

async fn key(app: &TestApp, fields: Value) -> (String, String) {
    let mut body = json!({ "userId": "u" });
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    app.create_key_pair(&body).await
}

async fn verify_code(app: &TestApp, secret: &str) -> String {
    app.verify(&json!({ "key": secret })).await.body["code"].as_str().unwrap().to_owned()
}

/// The audit records of a key, oldest first, through GET /keys/{keyId}/events.
async fn audit_trail(app: &TestApp, id: &str) -> Vec<Value> {
    let page = app.send(Method::GET, &format!("/keys/{id}/events?limit=100"), Some(&app.root_key), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    let mut events = page.body["data"].as_array().unwrap().clone();
    events.reverse();
    events
}

#[tokio::test]
async fn patch_changes_only_what_it_names() {
    let app = spawn_app().await;
    let (id, _) = key(&app, json!({ "description": "old", "tags": ["a"], "metadata": { "k": 1 } })).await;
    app.advance(7);
    let patched = app
        .patch_key(&id, &json!({ "description": null, "tags": ["b", "c"], "whitelistedIPs": ["10.0.0.0/8"] }), &[])
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.header("etag"), "\"2\"");
    let body = &patched.body;
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["tags"], json!(["b", "c"]));
    assert_eq!(body["whitelistedIPs"], json!(["10.0.0.0/8"]));
    assert_eq!(body["metadata"], json!({ "k": 1 }));
    assert_eq!(body["updatedAt"], "2030-01-01T00:00:07Z");
    assert_eq!(body["createdAt"], "2030-01-01T00:00:00Z");
    assert_eq!(app.get_key(&id).await.body, patched.body);
}

#[tokio::test]
async fn patch_refuses_read_only_unknown_and_bad_fields() {
    let app = spawn_app().await;
    let (id, _) = key(&app, json!({})).await;
    for (body, field, code) in [
        (json!({ "userId": "x" }), "userId", "read_only_field"),
        (json!({ "type": "publishable" }), "type", "read_only_field"),
        (json!({ "createdAt": "2030-01-01T00:00:00Z" }), "createdAt", "read_only_field"),
        (json!({ "companyId": "other" }), "companyId", "read_only_field"),
        (json!({ "colour": "red" }), "colour", "unknown_field"),
        (json!({ "status": "deleted" }), "status", "invalid_field"),
        (json!({ "whitelistedIPs": ["1.2.3.4/40"] }), "whitelistedIPs[0]", "invalid_field"),
        (json!({ "quota": { "max": 0 } }), "quota.max", "invalid_field"),
    ] {
        let response = app.patch_key(&id, &body, &[]).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!((response.error_field(), response.error_code()), (field, code), "{body}");
    }
    assert_eq!(app.get_key(&id).await.header("etag"), "\"1\"", "nothing changed");
}

#[tokio::test]
async fn status_changes_move_the_counters_and_a_deleted_key_stays_deleted() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({})).await;
    assert_eq!(app.patch_key(&id, &json!({ "status": "inactive" }), &[]).await.status, StatusCode::OK);
    assert_eq!(app.counters().await, (1, 1));
    assert_eq!(verify_code(&app, &secret).await, "INACTIVE");
    assert_eq!(app.patch_key(&id, &json!({ "status": "active" }), &[]).await.status, StatusCode::OK);
    assert_eq!(app.counters().await, (2, 0));
    assert_eq!(verify_code(&app, &secret).await, "VALID");

    app.delete_key(&id).await;
    let revive = app.patch_key(&id, &json!({ "status": "active" }), &[]).await;
    assert_eq!((revive.status, revive.error_code()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(app.counters().await, (1, 1));
    assert_eq!(verify_code(&app, &secret).await, "INACTIVE");
}

#[tokio::test]
async fn if_match_refuses_a_stale_version() {
    let app = spawn_app().await;
    let (id, _) = key(&app, json!({})).await;
    let first = app.patch_key(&id, &json!({ "description": "one" }), &[("if-match", "\"1\"")]).await;
    assert_eq!(first.status, StatusCode::OK);
    let stale = app.patch_key(&id, &json!({ "description": "two" }), &[("if-match", "\"1\"")]).await;
    assert_eq!((stale.status, stale.error_code()), (StatusCode::PRECONDITION_FAILED, "precondition_failed"));
    assert_eq!(app.get_key(&id).await.body["description"], "one");
    let any = app.patch_key(&id, &json!({ "description": "three" }), &[("if-match", "*")]).await;
    assert_eq!((any.status, any.header("etag")), (StatusCode::OK, "\"3\""), "* matches any version");
    let garbage = app.patch_key(&id, &json!({ "description": "x" }), &[("if-match", "yesterday")]).await;
    assert_eq!((garbage.status, garbage.error_field()), (StatusCode::BAD_REQUEST, "If-Match"));
}

#[tokio::test]
async fn parallel_patches_are_all_applied_or_refused_never_lost() {
    let app = spawn_app().await;
    let (id, _) = key(&app, json!({})).await;
    let fields = ["description", "tags", "metadata", "expiresAt", "rateLimit", "whitelistedIPs"];
    let values = [
        json!("d"),
        json!(["t"]),
        json!({ "m": 1 }),
        json!("2031-01-01T00:00:00Z"),
        json!({ "limit": 5, "periodSeconds": 5 }),
        json!(["10.0.0.1"]),
    ];
    let bodies: Vec<Value> = fields.iter().zip(&values).map(|(f, v)| json!({ *f: v })).collect();
    let answers = futures::future::join_all(bodies.iter().map(|b| app.patch_key(&id, b, &[]))).await;
    assert!(answers.iter().all(|a| a.status == StatusCode::OK));
    let shown = app.get_key(&id).await.body;
    for (field, value) in fields.iter().zip(&values) {
        assert_eq!(&shown[*field], value, "{field} was lost");
    }
    assert_eq!(app.get_key(&id).await.header("etag"), "\"7\"");

    // Two real changes (a PATCH to the values a key holds writes nothing, so it cannot lose a race).
    let changes = [json!({ "description": "d2" }), json!({ "tags": ["t2"] })];
    let pinned =
        futures::future::join_all(changes.iter().map(|b| app.patch_key(&id, b, &[("if-match", "\"7\"")]))).await;
    let mut statuses: Vec<u16> = pinned.iter().map(|a| a.status.as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, vec![200, 412], "with If-Match one wins and the other is told");
}

#[tokio::test]
async fn roll_without_grace_replaces_the_secret_at_once() {
    let app = spawn_app().await;
    let (id, old) = key(&app, json!({ "acl": [{ "permissions": ["a:*"] }], "quota": { "max": 5 } })).await;
    verify_code(&app, &old).await;
    let rolled = app.roll_key(&id, None).await;
    assert_eq!(rolled.status, StatusCode::OK);
    let new = rolled.body["key"].as_str().unwrap();
    assert_ne!(new, old);
    assert_eq!(rolled.body["id"], id);
    assert_eq!(rolled.body["keyPrefix"], &new[..7]);
    assert_eq!(rolled.body["acl"], json!([{ "scope": {}, "permissions": ["a:*"] }]));
    assert_eq!(verify_code(&app, &old).await, "NOT_FOUND");
    let answer = app.verify(&json!({ "key": new })).await.body;
    assert_eq!(
        (answer["code"].as_str(), &answer["quota"]),
        (Some("VALID"), &json!({ "remaining": 3 })),
        "quota carried over"
    );
    assert!(app.get_key(&id).await.body.get("key").is_none());
}

#[tokio::test]
async fn the_old_secret_verifies_during_the_grace_period_only() {
    let app = spawn_app().await;
    let (id, old) = key(&app, json!({})).await;
    let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 60 }))).await;
    let new = rolled.body["key"].as_str().unwrap().to_owned();
    app.advance(59);
    assert_eq!(verify_code(&app, &old).await, "VALID");
    assert_eq!(verify_code(&app, &new).await, "VALID");
    app.advance(1);
    assert_eq!(verify_code(&app, &old).await, "NOT_FOUND");
    assert_eq!(verify_code(&app, &new).await, "VALID");
}

#[tokio::test]
async fn grace_never_outlives_the_key_and_ends_with_delete() {
    let app = spawn_app().await;
    let (id, old) = key(&app, json!({ "expiresAt": "2030-01-01T00:00:30Z" })).await;
    app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 3600 }))).await;
    app.advance(29);
    assert_eq!(verify_code(&app, &old).await, "VALID");
    app.advance(1);
    assert_eq!(verify_code(&app, &old).await, "NOT_FOUND");

    let (id, old) = key(&app, json!({})).await;
    app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 3600 }))).await;
    app.delete_key(&id).await;
    assert_eq!(verify_code(&app, &old).await, "NOT_FOUND", "delete ends the grace of the old secret");
}

#[tokio::test]
async fn roll_refuses_bad_grace_and_deleted_keys() {
    let app = spawn_app().await;
    let (id, _) = key(&app, json!({})).await;
    for grace in [json!(-1), json!(86_401), json!("60")] {
        let response = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": grace }))).await;
        assert_eq!((response.status, response.error_field()), (StatusCode::BAD_REQUEST, "gracePeriodSeconds"));
    }
    assert_eq!(app.roll_key("absent", None).await.status, StatusCode::NOT_FOUND);
    app.delete_key(&id).await;
    assert_eq!(app.roll_key(&id, None).await.status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn an_idempotent_retry_gets_the_first_answer_and_creates_nothing() {
    let app = spawn_app().await;
    let body = json!({ "userId": "u", "description": "once" });
    let send = |b: Value, k: &'static str| {
        let app = &app;
        async move { app.send(Method::POST, "/keys", Some(&app.root_key), Some(&b), &[("idempotency-key", k)]).await }
    };
    let first = send(body.clone(), "order-42").await;
    assert_eq!(first.status, StatusCode::CREATED);
    app.advance(3600);
    let reordered = json!({ "description": "once", "userId": "u" });
    let retry = send(reordered, "order-42").await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body, first.body, "the same answer, the same secret");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(app.counters().await, (2, 0), "one key created");

    let other = send(json!({ "userId": "v" }), "order-42").await;
    assert_eq!((other.status, other.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));

    app.advance(23 * 3600);
    let later = send(body, "order-42").await;
    assert_eq!(later.status, StatusCode::CREATED);
    assert_ne!(later.body["id"], first.body["id"], "after 24 hours the header is free again");

    let items = format!("{:?}", app.client.scan().table_name(&app.table).send().await.unwrap().items);
    assert!(!items.contains(first.body["key"].as_str().unwrap()), "the stored answer is sealed");
    assert!(!items.contains("order-42"), "the header itself is not stored");
}

#[tokio::test]
async fn parallel_first_requests_with_one_idempotency_key_create_one_key() {
    let app = spawn_app().await;
    let body = json!({ "userId": "u" });
    let answers = futures::future::join_all((0..8).map(|_| {
        app.send(Method::POST, "/keys/custom-1", Some(&app.root_key), Some(&body), &[("idempotency-key", "race")])
    }))
    .await;
    assert!(
        answers.iter().all(|a| a.status == StatusCode::CREATED),
        "{:?}",
        answers.iter().map(|a| &a.body).collect::<Vec<_>>()
    );
    assert!(answers.iter().all(|a| a.body == answers[0].body));
    assert_eq!(app.counters().await, (2, 0));
}

#[tokio::test]
async fn every_change_leaves_an_audit_record_without_secrets() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({ "description": "first" })).await;
    app.advance(1);
    app.patch_key(&id, &json!({ "description": "second", "tags": ["x"] }), &[]).await;
    app.advance(1);
    app.patch_key(&id, &json!({ "status": "inactive" }), &[]).await;
    app.advance(1);
    let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 10 }))).await.body;
    app.advance(1);
    app.delete_key(&id).await;
    let trail = audit_trail(&app, &id).await;
    let actions: Vec<&str> = trail.iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, vec!["created", "updated", "status_changed", "rolled", "deleted"]);
    let root_id = app.list_keys("?status=all").await.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["userId"] == "root")
        .unwrap()["id"]
        .clone();
    assert!(trail.iter().all(|e| e["actor"] == root_id), "the root key that made each change");
    assert_eq!(trail[1]["changes"], json!({ "description": "second", "tags": ["x"] }));
    assert_eq!(trail[2]["changes"], json!({ "status": "inactive" }));
    assert_eq!(trail[3]["changes"]["previousSecretValidUntil"], "2030-01-01T00:00:13Z");
    assert_eq!(trail[4]["changes"]["deletedAt"], "2030-01-01T00:00:04Z");
    let stored = app
        .client
        .query()
        .table_name(&app.table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(
            ":pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("EVENTS#{}#{id}", app.company)),
        )
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert_eq!(stored.len(), 5);
    let dump = format!("{trail:?} {stored:?}");
    assert!(!dump.contains(&secret) && !dump.contains(rolled["key"].as_str().unwrap()));
    assert!(!dump.contains("secretHash") && !dump.contains("SECRET#"));
}

#[tokio::test]
async fn the_audit_trail_pages_like_the_key_list() {
    let app = spawn_app().await;
    let (id, _) = key(&app, json!({})).await;
    for i in 0..4 {
        app.advance(1);
        app.patch_key(&id, &json!({ "description": format!("d{i}") }), &[]).await;
    }
    let get = |key: &str, query: &str| {
        let path = format!("/keys/{key}/events{query}");
        let app = &app;
        async move { app.send(Method::GET, &path, Some(&app.root_key), None, &[]).await }
    };
    let first = get(&id, "?limit=2").await.body;
    assert_eq!((first["total"].as_u64(), first["count"].as_u64()), (Some(5), Some(2)));
    assert_eq!(first["data"][0]["changes"], json!({ "description": "d3" }), "newest first");
    let next = first["nextUrl"].as_str().unwrap();
    assert_eq!(next, format!("/keys/{id}/events?limit=2&startingAfter={}", first["data"][1]["id"].as_str().unwrap()));
    let second = get(&id, next.trim_start_matches(&format!("/keys/{id}/events"))).await.body;
    assert_eq!(second["data"][0]["changes"], json!({ "description": "d1" }));
    assert!(second["previousUrl"].as_str().unwrap().contains("endingBefore="));

    assert_eq!(get(&id, "?startingAfter=nope").await.error_field(), "startingAfter");
    assert_eq!(get(&id, "?status=all").await.error_field(), "status");
    assert_eq!(get("absent", "").await.status, StatusCode::NOT_FOUND);
    let (_, rival_key) = app.other_company_root_key().await;
    let foreign = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&rival_key), None, &[]).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
}
