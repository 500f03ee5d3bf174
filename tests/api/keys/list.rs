//! GET /keys: status filters, totals, cursor and offset paging.

use lambda_http::http::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, ids, spawn_app};

/// Creates `n` keys a second apart; returns their ids oldest first.
async fn keys_in_order(app: &TestApp, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        app.advance(1);
        ids.push(app.create_key(&json!({ "userId": format!("u{i}") })).await["id"].as_str().unwrap().to_owned());
    }
    ids
}

#[tokio::test]
async fn the_envelope_counts_every_key_of_the_status_newest_first() {
    let app = spawn_app().await;
    let created = keys_in_order(&app, 3).await;
    let page = app.list_keys("").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["status"], 200);
    assert_eq!(page.body["total"], 4, "three keys and the root key");
    assert_eq!(page.body["count"], 4);
    assert_eq!(page.body["nextUrl"], Value::Null);
    assert_eq!(page.body["previousUrl"], Value::Null);
    let listed = ids(&page.body);
    assert_eq!(listed[..3], [created[2].clone(), created[1].clone(), created[0].clone()]);
    assert!(page.body["data"][0].get("key").is_none(), "lists never show a secret");
}

#[tokio::test]
async fn cursor_links_walk_forward_and_back() {
    let app = spawn_app().await;
    let mut created = keys_in_order(&app, 7).await;
    created.reverse();
    let newest_first = created;

    let first = app.list_keys("?limit=3").await.body;
    assert_eq!(ids(&first), newest_first[0..3]);
    assert_eq!(first["total"], 8);
    assert_eq!(first["count"], 3);
    assert_eq!(first["previousUrl"], Value::Null);
    assert_eq!(first["nextUrl"], format!("/keys?limit=3&startingAfter={}", newest_first[2]));

    let second = app.list_keys(first["nextUrl"].as_str().unwrap().trim_start_matches("/keys")).await.body;
    assert_eq!(ids(&second), newest_first[3..6]);
    assert_eq!(second["previousUrl"], format!("/keys?limit=3&endingBefore={}", newest_first[3]));

    let third = app.list_keys(second["nextUrl"].as_str().unwrap().trim_start_matches("/keys")).await.body;
    assert_eq!(ids(&third)[..1], newest_first[6..7], "the oldest key, then the root key");
    assert_eq!(third["count"], 2);
    assert_eq!(third["nextUrl"], Value::Null);

    let back = app.list_keys(second["previousUrl"].as_str().unwrap().trim_start_matches("/keys")).await.body;
    assert_eq!(ids(&back), ids(&first));
    assert_eq!(back["previousUrl"], Value::Null, "nothing is newer than the first page");
    assert_eq!(back["nextUrl"], format!("/keys?limit=3&startingAfter={}", newest_first[2]));
}

#[tokio::test]
async fn offset_skips_and_links_back_by_offset() {
    let app = spawn_app().await;
    let mut created = keys_in_order(&app, 5).await;
    created.reverse();
    let page = app.list_keys("?limit=2&offset=2").await.body;
    assert_eq!(ids(&page), created[2..4]);
    assert_eq!(page["previousUrl"], "/keys?limit=2");
    assert_eq!(page["nextUrl"], format!("/keys?limit=2&startingAfter={}", created[3]));
    let beyond = app.list_keys("?offset=50").await.body;
    assert_eq!(beyond["count"], 0);
    assert_eq!(beyond["total"], 6);
}

#[tokio::test]
async fn status_filters_use_their_own_totals() {
    let app = spawn_app().await;
    let created = keys_in_order(&app, 3).await;
    assert_eq!(app.delete_key(&created[0]).await.status, StatusCode::NO_CONTENT);

    let active = app.list_keys("?status=active").await.body;
    assert_eq!((active["total"].as_u64(), active["count"].as_u64()), (Some(3), Some(3)));
    let inactive = app.list_keys("?status=inactive").await.body;
    assert_eq!(ids(&inactive), vec![created[0].clone()]);
    assert_eq!(inactive["total"], 1);
    assert_eq!(inactive["data"][0]["status"], "inactive");
    let all = app.list_keys("?status=all&limit=2").await.body;
    assert_eq!(all["total"], 4);
    assert_eq!(all["nextUrl"], format!("/keys?limit=2&status=all&startingAfter={}", created[1]));
}

#[tokio::test]
async fn a_cursor_that_is_not_a_key_of_the_company_is_named() {
    let app = spawn_app().await;
    keys_in_order(&app, 2).await;
    let (_, rival_key) = app.other_company_root_key().await;
    let rivals = app
        .send(lambda_http::http::Method::POST, "/keys", Some(&rival_key), Some(&json!({ "userId": "r" })), &[])
        .await;
    let foreign_id = rivals.body["id"].as_str().unwrap();
    for (query, field) in [
        ("?startingAfter=nope".to_string(), "startingAfter"),
        ("?endingBefore=nope".to_string(), "endingBefore"),
        (format!("?startingAfter={foreign_id}"), "startingAfter"),
    ] {
        let response = app.list_keys(&query).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.error_field(), field, "{query}");
    }
}

#[tokio::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=ten", "limit"),
        ("?offset=-1", "offset"),
        ("?offset=1001", "offset"),
        ("?status=deleted", "status"),
        ("?startingAfter=a&endingBefore=b", "endingBefore"),
        ("?colour=red", "colour"),
    ] {
        let response = app.list_keys(query).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(response.error_field(), field, "{query}");
    }
}

#[tokio::test]
async fn a_list_page_is_one_query_plus_the_counter_read() {
    let app = spawn_app().await;
    let created = keys_in_order(&app, 3).await;
    app.settle_calls().await;
    app.list_keys("?limit=2").await;
    assert_eq!(app.calls_made().await, vec!["BatchGetItem", "Query"], "the caller is kept by the instance");
    app.list_keys(&format!("?limit=2&startingAfter={}", created[2])).await;
    assert_eq!(app.calls_made().await, vec!["BatchGetItem", "Query"], "the cursor is read with the counters");
    app.advance(apikeys::settings::DEFAULT_CALLER_CACHE_SECONDS as i64);
    app.list_keys("?limit=2").await;
    assert_eq!(app.calls_made().await, vec!["GetItem", "BatchGetItem", "Query"], "the caller read again");
}

#[tokio::test]
async fn an_offset_is_counted_by_one_more_query_not_read() {
    let app = spawn_app().await;
    let mut created = keys_in_order(&app, 5).await;
    created.reverse();
    app.settle_calls().await;
    let page = app.list_keys("?limit=2&offset=3").await.body;
    assert_eq!(ids(&page), created[3..5]);
    assert_eq!(
        app.calls_made().await,
        vec!["BatchGetItem", "Query", "Query"],
        "a Select=COUNT query past the offset, then the page (tests/api/security/bounds.rs checks what each returns)"
    );
}
