//! POST /keys and POST /keys/{keyId}.

use lambda_http::http::{Method, StatusCode};
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn create_returns_the_key_once_with_its_plaintext_and_location() {
    let app = spawn_app().await;
    let response = app.post_keys(&json!({ "userId": "user-1", "description": "billing", "tags": ["ci"] })).await;
    assert_eq!(response.status, StatusCode::CREATED);
    let body = &response.body;
    let id = body["id"].as_str().unwrap();
    assert_eq!(response.header("location"), format!("/keys/{id}"));
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(body["companyId"], app.company.as_str());
    assert_eq!(body["userId"], "user-1");
    assert_eq!(body["type"], "secret");
    assert_eq!(body["status"], "active");
    assert_eq!(body["tags"], json!(["ci"]));
    assert_eq!(body["whitelistedIPs"], json!(null));
    assert_eq!(body["deletedAt"], json!(null));
    assert_eq!(body["createdAt"], "2030-01-01T00:00:00Z");
    let key = body["key"].as_str().unwrap();
    assert!(key.starts_with("sk_") && key.len() >= 3 + 43 + 6, "{key}");
    assert_eq!(body["keyPrefix"], &key[..7]);

    let fetched = app.get_key(id).await;
    assert_eq!(fetched.status, StatusCode::OK);
    assert!(fetched.body.get("key").is_none(), "a secret key is shown only once");
    assert_eq!(fetched.body["keyPrefix"], &key[..7]);
}

#[tokio::test]
async fn only_the_hash_of_a_secret_key_is_stored() {
    let app = spawn_app().await;
    let body = app.create_key(&json!({ "userId": "u" })).await;
    let key = body["key"].as_str().unwrap();
    let items = app.client.scan().table_name(&app.table).send().await.unwrap().items.unwrap_or_default();
    let dump = format!("{items:?}");
    assert!(!dump.contains(&key[7..]), "the plaintext secret must not be stored");
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(key.as_bytes()));
    assert!(dump.contains(&format!("SECRET#{hash}")), "the lookup item is addressed by the SHA-256 hash");
}

#[tokio::test]
async fn a_publishable_key_may_be_shown_again() {
    let app = spawn_app().await;
    let body = app.create_key(&json!({ "userId": "u", "type": "publishable" })).await;
    let key = body["key"].as_str().unwrap();
    assert!(key.starts_with("pk_"));
    let fetched = app.get_key(body["id"].as_str().unwrap()).await;
    assert_eq!(fetched.body["key"], key);
}

#[tokio::test]
async fn a_full_body_is_stored_as_given() {
    let app = spawn_app().await;
    let body = app
        .create_key(&json!({
            "userId": "u", "whitelistedIPs": ["10.0.0.0/8", "2001:db8::1"],
            "acl": [{ "scope": { "productId": ["p1"] }, "permissions": ["orders:*"] }],
            "expiresAt": "2031-06-01T12:00:00Z", "rateLimit": { "limit": 10, "periodSeconds": 60 },
            "quota": { "max": 100, "renewalSeconds": 3600 }, "metadata": { "plan": "gold", "seats": 3 }
        }))
        .await;
    let fetched = app.get_key(body["id"].as_str().unwrap()).await.body;
    assert_eq!(fetched["whitelistedIPs"], json!(["10.0.0.0/8", "2001:db8::1"]));
    assert_eq!(fetched["acl"], json!([{ "scope": { "productId": ["p1"] }, "permissions": ["orders:*"] }]));
    assert_eq!(fetched["expiresAt"], "2031-06-01T12:00:00Z");
    assert_eq!(fetched["rateLimit"], json!({ "limit": 10, "periodSeconds": 60 }));
    assert_eq!(
        fetched["quota"],
        json!({ "max": 100, "remaining": 100, "renewalSeconds": 3600, "renewsAt": "2030-01-01T01:00:00Z" })
    );
    assert_eq!(fetched["metadata"], json!({ "plan": "gold", "seats": 3 }));
}

#[tokio::test]
async fn a_custom_id_is_unique_within_the_company_only() {
    let app = spawn_app().await;
    let first =
        app.send(Method::POST, "/keys/billing-key_1", Some(&app.root_key), Some(&json!({ "userId": "u" })), &[]).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.body["id"], "billing-key_1");
    assert_eq!(first.header("location"), "/keys/billing-key_1");

    let again =
        app.send(Method::POST, "/keys/billing-key_1", Some(&app.root_key), Some(&json!({ "userId": "v" })), &[]).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.error_code(), "key_exists");
    assert_eq!(app.counters().await, (2, 0), "root key and one key; the refused create counted nothing");

    let (_, rival_key) = app.other_company_root_key().await;
    let rival =
        app.send(Method::POST, "/keys/billing-key_1", Some(&rival_key), Some(&json!({ "userId": "w" })), &[]).await;
    assert_eq!(rival.status, StatusCode::CREATED, "another company may use the same id");
    assert_eq!(app.get_key("billing-key_1").await.body["userId"], "u");
}

#[tokio::test]
async fn bad_custom_ids_are_refused_by_name() {
    let app = spawn_app().await;
    let long = "a".repeat(65);
    for id in ["has.dot", long.as_str(), "%F0%9F%94%91"] {
        let response = app
            .send(Method::POST, &format!("/keys/{id}"), Some(&app.root_key), Some(&json!({ "userId": "u" })), &[])
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{id}");
        assert_eq!(response.error_field(), "keyId");
    }
}

#[tokio::test]
async fn forty_parallel_creates_make_forty_keys_and_an_exact_total() {
    // Forty creates at once all move the company's counters item. One whose transaction keeps
    // conflicting past its retries is a 503 with nothing written, which a client retries with
    // the same Idempotency-Key; the total stays exact however the forty interleave.
    let app = &spawn_app().await;
    let mut pending: Vec<usize> = (0..40).collect();
    let mut ids = Vec::new();
    for _ in 0..10 {
        let creates = std::mem::take(&mut pending).into_iter().map(|i| {
            let body = json!({ "userId": format!("user-{i}") });
            let retry = format!("forty-{i}");
            async move {
                (
                    i,
                    app.send(Method::POST, "/keys", Some(&app.root_key), Some(&body), &[("idempotency-key", &retry)])
                        .await,
                )
            }
        });
        for (i, response) in futures::future::join_all(creates).await {
            match response.status {
                StatusCode::CREATED => ids.push(response.body["id"].as_str().unwrap().to_owned()),
                StatusCode::SERVICE_UNAVAILABLE => pending.push(i),
                other => panic!("{other}: {:?}", response.body),
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    assert_eq!(pending, Vec::<usize>::new(), "every create made within ten rounds");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert_eq!(app.counters().await, (41, 0));
    let listed = app.list_keys("?limit=1").await;
    assert_eq!(listed.body["total"], 41, "the root key counts too");
}

#[tokio::test]
async fn one_create_costs_one_transaction() {
    let app = spawn_app().await;
    app.create_key(&json!({ "userId": "u" })).await;
    app.settle_calls().await;
    app.create_key(&json!({ "userId": "u" })).await;
    let calls = app.calls_made().await;
    assert_eq!(
        calls,
        vec!["GetItem", "GetItem", "TransactWriteItems"],
        "the authorizer's read, the company's settings (its key prefix), then the create"
    );
}
