//! POST, GET, PATCH, DELETE /identities and GET /identities: answers, envelopes, ETags, the
//! uniqueness of `externalId`, retries, permissions and refused input.

use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, ids, spawn_app};

impl TestApp {
    pub async fn post_identity(&self, body: &Value, headers: &[(&str, &str)]) -> TestResponse {
        self.send(Method::POST, "/identities", Some(&self.root_key), Some(body), headers).await
    }

    /// Creates an identity (201 asserted); its answer.
    pub async fn create_identity(&self, external_id: &str) -> Value {
        let response = self.post_identity(&json!({ "externalId": external_id }), &[]).await;
        assert_eq!(response.status, StatusCode::CREATED, "{:?}", response.body);
        response.body
    }

    pub async fn identity(&self, key: &str, method: Method, id: &str, body: Option<&Value>) -> TestResponse {
        self.send(method, &format!("/identities/{id}"), Some(key), body, &[]).await
    }

    /// Items of one kind (`IDENTITY`, `IDENTITYEXTERNAL`…) in the table, by their sort key.
    pub async fn items_of(&self, sk: &str) -> usize {
        let items = self.client.scan().table_name(&self.table).send().await.unwrap().items.unwrap_or_default();
        items.iter().filter(|i| i.get("sk").and_then(|v| v.as_s().ok()).is_some_and(|s| s == sk)).count()
    }
}

fn id_of(body: &Value) -> String {
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_identity_goes_through_create_get_list_patch_and_delete() {
    let app = spawn_app().await;
    let body = json!({
        "externalId": "cust_42",
        "meta": { "plan": "gold" },
        "ratelimits": [{ "name": "requests", "limit": 100, "periodSeconds": 60 }],
    });
    let created = app.post_identity(&body, &[]).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = id_of(&created.body);
    assert!(id.starts_with("id_") && id.len() == 35, "{id}");
    assert_eq!(created.header("location"), format!("/identities/{id}"));
    assert_eq!(created.header("etag"), "\"1\"");
    let names: Vec<&str> = created.body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, ["createdAt", "externalId", "id", "meta", "ratelimits", "updatedAt"]);
    assert_eq!(
        created.body["ratelimits"],
        json!([{ "name": "requests", "limit": 100, "periodSeconds": 60, "autoApply": true }])
    );

    let got = app.identity(&app.root_key, Method::GET, &id, None).await;
    assert_eq!((got.status, got.header("etag")), (StatusCode::OK, "\"1\""));
    assert_eq!(got.body, created.body);

    app.advance(5);
    let change = json!({ "meta": { "plan": "platinum" }, "ratelimits": [] });
    let stale = app
        .send(Method::PATCH, &format!("/identities/{id}"), Some(&app.root_key), Some(&change), &[("if-match", "\"7\"")])
        .await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
    let patched = app
        .send(Method::PATCH, &format!("/identities/{id}"), Some(&app.root_key), Some(&change), &[("if-match", "\"1\"")])
        .await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.header("etag"), "\"2\"");
    assert_eq!(
        (patched.body["meta"].clone(), patched.body["ratelimits"].clone()),
        (json!({ "plan": "platinum" }), json!([]))
    );
    assert_eq!(patched.body["externalId"], "cust_42", "a field left out is kept");
    assert_ne!(patched.body["updatedAt"], created.body["updatedAt"]);
    let same = app.identity(&app.root_key, Method::PATCH, &id, Some(&change)).await;
    assert_eq!(same.header("etag"), "\"2\"", "a PATCH that changes nothing writes nothing");

    let other = id_of(&app.create_identity("cust_43").await);
    let page = app.send(Method::GET, "/identities?limit=1", Some(&app.root_key), None, &[]).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!((page.body["total"].clone(), page.body["count"].clone()), (json!(2), json!(1)));
    assert_eq!(ids(&page.body), vec![other.clone()], "newest first");
    assert_eq!(page.body["nextUrl"], format!("/identities?limit=1&startingAfter={other}"));
    let next = app.send(Method::GET, page.body["nextUrl"].as_str().unwrap(), Some(&app.root_key), None, &[]).await;
    assert_eq!(ids(&next.body), vec![id.clone()]);
    assert_eq!(next.body["previousUrl"], format!("/identities?limit=1&endingBefore={id}"));
    let offset = app.send(Method::GET, "/identities?limit=1&offset=1", Some(&app.root_key), None, &[]).await;
    assert_eq!(ids(&offset.body), vec![id.clone()]);

    let found = app.send(Method::GET, "/identities?externalId=cust_42", Some(&app.root_key), None, &[]).await;
    assert_eq!((found.body["total"].clone(), ids(&found.body)), (json!(1), vec![id.clone()]));
    let none = app.send(Method::GET, "/identities?externalId=nobody", Some(&app.root_key), None, &[]).await;
    assert_eq!(
        (none.status, none.body["total"].clone(), none.body["count"].clone()),
        (StatusCode::OK, json!(0), json!(0))
    );

    let deleted = app.identity(&app.root_key, Method::DELETE, &id, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(app.identity(&app.root_key, Method::GET, &id, None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.identity(&app.root_key, Method::DELETE, &id, None).await.status, StatusCode::NOT_FOUND);
    let after = app.send(Method::GET, "/identities", Some(&app.root_key), None, &[]).await;
    assert_eq!((after.body["total"].clone(), ids(&after.body)), (json!(1), vec![other]));
    assert_eq!(app.items_of("IDENTITY").await, 1);
    assert_eq!(app.items_of("IDENTITYEXTERNAL").await, 1, "the externalId is free again");
    app.create_identity("cust_42").await;
}

#[tokio::test]
async fn an_external_id_is_unique_within_the_company_and_moves_with_a_patch() {
    let app = spawn_app().await;
    let first = id_of(&app.create_identity("cust_42").await);
    let again = app.post_identity(&json!({ "externalId": "cust_42" }), &[]).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "identity_exists"));
    let second = id_of(&app.create_identity("cust_43").await);
    let taken = app.identity(&app.root_key, Method::PATCH, &second, Some(&json!({ "externalId": "cust_42" }))).await;
    assert_eq!((taken.status, taken.error_code()), (StatusCode::CONFLICT, "identity_exists"));
    let moved = app.identity(&app.root_key, Method::PATCH, &first, Some(&json!({ "externalId": "cust_44" }))).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    app.create_identity("cust_42").await;
    assert_eq!(app.items_of("IDENTITYEXTERNAL").await, 3, "one uniqueness item per identity");

    // Another company may use the same externalId.
    let (_, rival) = app.other_company_root_key().await;
    let theirs =
        app.send(Method::POST, "/identities", Some(&rival), Some(&json!({ "externalId": "cust_42" })), &[]).await;
    assert_eq!(theirs.status, StatusCode::CREATED);
}

#[tokio::test]
async fn two_concurrent_creates_with_one_external_id_make_one_identity() {
    let app = spawn_app().await;
    for round in 0..5 {
        let body = json!({ "externalId": format!("race-{round}") });
        let (a, b) = tokio::join!(app.post_identity(&body, &[]), app.post_identity(&body, &[]));
        let mut statuses = [a.status, b.status];
        statuses.sort();
        assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT], "{:?} {:?}", a.body, b.body);
        let refused = if a.status == StatusCode::CONFLICT { &a } else { &b };
        assert_eq!(refused.error_code(), "identity_exists");
    }
    assert_eq!(app.items_of("IDENTITY").await, 5);
    let listed = app.send(Method::GET, "/identities", Some(&app.root_key), None, &[]).await;
    assert_eq!(listed.body["total"], 5);
}

#[tokio::test]
async fn a_retried_create_answers_the_same_and_writes_once() {
    let app = spawn_app().await;
    let body = json!({ "externalId": "cust_42", "meta": { "a": 1 } });
    let first = app.post_identity(&body, &[("idempotency-key", "create-cust-42")]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let items = app.item_count().await;
    let retry = app.post_identity(&body, &[("idempotency-key", "create-cust-42")]).await;
    assert_eq!((retry.status, &retry.body), (StatusCode::CREATED, &first.body));
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(app.item_count().await, items, "nothing written again");
    assert_eq!(app.items_of("IDENTITY").await, 1);
    let other = app.post_identity(&json!({ "externalId": "cust_43" }), &[("idempotency-key", "create-cust-42")]).await;
    assert_eq!((other.status, other.error_code()), (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"));

    let id = id_of(&first.body);
    let path = format!("/identities/{id}");
    let header = [("idempotency-key", "delete-cust-42")];
    let deleted = app.send(Method::DELETE, &path, Some(&app.root_key), None, &header).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let again = app.send(Method::DELETE, &path, Some(&app.root_key), None, &header).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT, "a retried delete answers as the first did");
}

#[tokio::test]
async fn keys_read_reads_identities_and_only_keys_write_writes_them() {
    let app = spawn_app().await;
    let id = id_of(&app.create_identity("cust_42").await);
    let reader = app.create_key(&json!({ "userId": "r", "acl": [{ "permissions": ["keys:read"] }] })).await;
    let reader = reader["key"].as_str().unwrap();
    assert_eq!(app.identity(reader, Method::GET, &id, None).await.status, StatusCode::OK);
    let listed = app.send(Method::GET, "/identities", Some(reader), None, &[]).await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = app.item_count().await;
    let refused = app.send(Method::POST, "/identities", Some(reader), Some(&json!({ "externalId": "x" })), &[]).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::FORBIDDEN, "forbidden"));
    let patch = json!({ "meta": { "x": 1 } });
    assert_eq!(app.identity(reader, Method::PATCH, &id, Some(&patch)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.identity(reader, Method::DELETE, &id, None).await.status, StatusCode::FORBIDDEN);
    assert_eq!(app.item_count().await, items, "a refused write writes nothing");

    // Another company's key sees nothing of it.
    let (_, rival) = app.other_company_root_key().await;
    for method in [Method::GET, Method::DELETE] {
        let answer = app.identity(&rival, method.clone(), &id, None).await;
        assert_eq!((answer.status, answer.error_code()), (StatusCode::NOT_FOUND, "not_found"), "{method}");
    }
    assert_eq!(app.identity(&rival, Method::PATCH, &id, Some(&patch)).await.status, StatusCode::NOT_FOUND);
    let theirs = app.send(Method::GET, "/identities?externalId=cust_42", Some(&rival), None, &[]).await;
    assert_eq!(theirs.body["total"], 0);
    assert_eq!(app.identity(&app.root_key, Method::GET, &id, None).await.body["meta"], json!({}));
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_writes_nothing() {
    let app = spawn_app().await;
    let limit = |name: &str| json!({ "name": name, "limit": 1, "periodSeconds": 60 });
    let cases = [
        (json!({ "externalId": "x".repeat(256) }), "externalId"),
        (json!({ "externalId": "" }), "externalId"),
        (json!({}), "externalId"),
        (json!({ "externalId": "x", "meta": { "blob": "x".repeat(5000) } }), "meta"),
        (
            json!({ "externalId": "x", "ratelimits": (0..6).map(|i| limit(&format!("l{i}"))).collect::<Vec<_>>() }),
            "ratelimits",
        ),
        (json!({ "externalId": "x", "ratelimits": [limit("a"), limit("a"), limit("Bad")] }), "ratelimits[1].name"),
        (
            json!({ "externalId": "x", "ratelimits": [limit("a"), limit("b"), limit("no spaces")] }),
            "ratelimits[2].name",
        ),
        (
            json!({ "externalId": "x", "ratelimits": [{ "name": "a", "limit": 0, "periodSeconds": 1 }] }),
            "ratelimits[0].limit",
        ),
        (json!({ "externalId": "x", "id": "id_0193a5e27c417d3a9f275b0c8e4d2a11" }), "id"),
    ];
    let items = app.item_count().await;
    for (body, field) in cases {
        let answer = app.post_identity(&body, &[]).await;
        assert_eq!((answer.status, answer.error_field()), (StatusCode::BAD_REQUEST, field), "{:?}", answer.body);
    }
    let id = id_of(&app.create_identity("cust_42").await);
    let items_with_one = app.item_count().await;
    assert!(items_with_one > items);
    for (body, field) in [(json!({ "meta": null }), "meta"), (json!({ "externalId": 7 }), "externalId")] {
        let answer = app.identity(&app.root_key, Method::PATCH, &id, Some(&body)).await;
        assert_eq!((answer.status, answer.error_field()), (StatusCode::BAD_REQUEST, field));
    }
    assert_eq!(app.item_count().await, items_with_one, "refused input writes nothing");
    let bad_query = app.send(Method::GET, "/identities?externalId=x&offset=1", Some(&app.root_key), None, &[]).await;
    assert_eq!((bad_query.status, bad_query.error_field()), (StatusCode::BAD_REQUEST, "offset"));
    assert_eq!(app.identity(&app.root_key, Method::GET, "not-an-identity", None).await.status, StatusCode::NOT_FOUND);
}
