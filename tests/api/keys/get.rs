//! GET /keys/{keyId}.

use lambda_http::http::StatusCode;
use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn get_shows_the_key_with_its_version_as_etag() {
    let app = spawn_app().await;
    let created = app.create_key(&json!({ "userId": "u", "description": "d" })).await;
    let id = created["id"].as_str().unwrap();
    let response = app.get_key(id).await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.header("etag"), "\"1\"");
    assert_eq!(response.body["id"], id);
    assert_eq!(response.body["description"], "d");
    let mut without_key = created.clone();
    without_key.as_object_mut().unwrap().remove("key");
    assert_eq!(response.body, without_key, "GET shows what create showed, less the secret");
}

#[tokio::test]
async fn absent_and_foreign_keys_are_the_same_404() {
    let app = spawn_app().await;
    let absent = app.get_key("no-such-key").await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert_eq!(absent.error_code(), "not_found");

    let (_, rival_key) = app.other_company_root_key().await;
    let rivals = app
        .send(lambda_http::http::Method::POST, "/keys", Some(&rival_key), Some(&json!({ "userId": "r" })), &[])
        .await;
    let foreign = app.get_key(rivals.body["id"].as_str().unwrap()).await;
    assert_eq!(foreign.status, StatusCode::NOT_FOUND);
    assert_eq!(foreign.body, absent.body, "another company's key is indistinguishable from no key");
}

#[tokio::test]
async fn a_get_costs_one_read_after_the_authorizer() {
    let app = spawn_app().await;
    let created = app.create_key(&json!({ "userId": "u" })).await;
    app.settle_calls().await;
    app.get_key(created["id"].as_str().unwrap()).await;
    assert_eq!(app.calls_made().await, vec!["GetItem"], "the caller is kept by the instance");
    app.advance(apikeys::settings::DEFAULT_CALLER_CACHE_SECONDS as i64);
    app.get_key(created["id"].as_str().unwrap()).await;
    assert_eq!(app.calls_made().await, vec!["GetItem", "GetItem"], "the caller read again, then the key");
}
