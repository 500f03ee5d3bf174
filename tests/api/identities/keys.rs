//! Keys that name an identity: `identityId` on create and PATCH, `GET /keys?identityId=`, the
//! identity's counts, the delete guard and its race with a key's create.

use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, ids, spawn_app};

fn id_of(body: &Value) -> String {
    body["id"].as_str().unwrap().to_owned()
}

impl TestApp {
    /// The identity item's counts of its keys: (active, inactive).
    async fn identity_counts(&self, identity: &str) -> (i64, i64) {
        let item = self.stored_item(&format!("IDENTITY#{}#{identity}", self.company), "IDENTITY").await.unwrap();
        let number = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
        (number("activeKeys"), number("inactiveKeys"))
    }
}

#[tokio::test]
async fn a_key_names_only_an_identity_of_its_company() {
    let app = spawn_app().await;
    let identity = id_of(&app.create_identity("cust_42").await);
    let key = app.create_key(&json!({ "userId": "u", "identityId": identity })).await;
    assert_eq!(key["identityId"], json!(identity));
    assert_eq!(app.get_key(key["id"].as_str().unwrap()).await.body["identityId"], json!(identity));

    let (_, rival) = app.other_company_root_key().await;
    let theirs = app.send(Method::POST, "/identities", Some(&rival), Some(&json!({ "externalId": "t" })), &[]).await;
    let theirs = id_of(&theirs.body);
    let nothing = "id_0193a5e27c417d3a9f275b0c8e4d2a11";
    let items = app.item_count().await;
    for bad in [theirs.as_str(), nothing, "not-an-id"] {
        let created = app.post_keys(&json!({ "userId": "u", "identityId": bad })).await;
        assert_eq!((created.status, created.error_field()), (StatusCode::BAD_REQUEST, "identityId"), "{bad}");
        let patched = app.patch_key(key["id"].as_str().unwrap(), &json!({ "identityId": bad }), &[]).await;
        assert_eq!((patched.status, patched.error_field()), (StatusCode::BAD_REQUEST, "identityId"), "{bad}");
    }
    assert_eq!(app.item_count().await, items, "nothing written");
    assert_eq!(app.identity_counts(&identity).await, (1, 0));
}

#[tokio::test]
async fn an_identity_lists_exactly_its_keys_by_status_with_paging() {
    let app = spawn_app().await;
    let a = id_of(&app.create_identity("a").await);
    let b = id_of(&app.create_identity("b").await);
    let mut mine = Vec::new();
    for i in 0..5 {
        app.advance(1);
        mine.push(id_of(&app.create_key(&json!({ "userId": format!("u{i}"), "identityId": a })).await));
        app.create_key(&json!({ "userId": "other", "identityId": b })).await;
        app.create_key(&json!({ "userId": "none" })).await;
    }
    mine.reverse();
    let first = app.list_keys(&format!("?identityId={a}&limit=2")).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!((first.body["total"].clone(), ids(&first.body)), (json!(5), mine[0..2].to_vec()));
    let next = first.body["nextUrl"].as_str().unwrap().to_owned();
    assert_eq!(next, format!("/keys?limit=2&identityId={a}&startingAfter={}", mine[1]));
    let second = app.list_keys(next.trim_start_matches("/keys")).await;
    assert_eq!(ids(&second.body), mine[2..4].to_vec());
    let back = app.list_keys(second.body["previousUrl"].as_str().unwrap().trim_start_matches("/keys")).await;
    assert_eq!(ids(&back.body), mine[0..2].to_vec());
    let all = app.list_keys(&format!("?identityId={a}&limit=100")).await;
    assert_eq!(ids(&all.body), mine);

    // Moving a key, deactivating one and deleting one move them between the lists.
    let moved = app.patch_key(&mine[0], &json!({ "identityId": b }), &[]).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(app.patch_key(&mine[1], &json!({ "status": "inactive" }), &[]).await.status, StatusCode::OK);
    assert_eq!(app.delete_key(&mine[2]).await.status, StatusCode::NO_CONTENT);
    let active = app.list_keys(&format!("?identityId={a}")).await;
    assert_eq!((active.body["total"].clone(), ids(&active.body)), (json!(2), mine[3..5].to_vec()));
    let inactive = app.list_keys(&format!("?identityId={a}&status=inactive")).await;
    assert_eq!((inactive.body["total"].clone(), ids(&inactive.body)), (json!(1), vec![mine[1].clone()]));
    assert_eq!(app.identity_counts(&a).await, (2, 1));
    assert_eq!(app.identity_counts(&b).await, (6, 0));
    let unlinked = app.patch_key(&mine[3], &json!({ "identityId": null }), &[]).await;
    assert_eq!(unlinked.body["identityId"], Value::Null);
    assert_eq!(app.identity_counts(&a).await, (1, 1));

    for (query, field) in [
        (format!("?identityId={a}&offset=1"), "offset"),
        (format!("?identityId={a}&status=all"), "status"),
        ("?identityId=id_0193a5e27c417d3a9f275b0c8e4d2a11".to_owned(), "identityId"),
        ("?identityId=nope".to_owned(), "identityId"),
    ] {
        let refused = app.list_keys(&query).await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::BAD_REQUEST, field), "{query}");
    }
}

#[tokio::test]
async fn an_identity_with_an_active_key_is_not_deleted() {
    let app = spawn_app().await;
    let identity = id_of(&app.create_identity("cust_42").await);
    let key = id_of(&app.create_key(&json!({ "userId": "u", "identityId": identity })).await);
    let refused = app.identity(&app.root_key, Method::DELETE, &identity, None).await;
    assert_eq!((refused.status, refused.error_code()), (StatusCode::CONFLICT, "conflict"));
    assert_eq!(app.identity(&app.root_key, Method::GET, &identity, None).await.status, StatusCode::OK);
    assert_eq!(app.delete_key(&key).await.status, StatusCode::NO_CONTENT);
    assert_eq!(app.identity_counts(&identity).await, (0, 0), "a deleted key leaves its identity");
    let deleted = app.identity(&app.root_key, Method::DELETE, &identity, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(app.items_of("IDENTITY").await, 0);
}

#[tokio::test]
async fn an_identity_with_only_inactive_keys_is_deleted_and_they_cannot_come_back_with_it() {
    let app = spawn_app().await;
    let identity = id_of(&app.create_identity("cust_42").await);
    let key = id_of(&app.create_key(&json!({ "userId": "u", "identityId": identity })).await);
    assert_eq!(app.patch_key(&key, &json!({ "status": "inactive" }), &[]).await.status, StatusCode::OK);
    let deleted = app.identity(&app.root_key, Method::DELETE, &identity, None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{:?}", deleted.body);
    assert_eq!(app.identity(&app.root_key, Method::GET, &identity, None).await.status, StatusCode::NOT_FOUND);
    let reactivated = app.patch_key(&key, &json!({ "status": "active" }), &[]).await;
    assert_eq!((reactivated.status, reactivated.error_code()), (StatusCode::CONFLICT, "conflict"));
    let elsewhere = id_of(&app.create_identity("cust_43").await);
    let moved = app.patch_key(&key, &json!({ "status": "active", "identityId": elsewhere }), &[]).await;
    assert_eq!(moved.status, StatusCode::OK, "{:?}", moved.body);
    assert_eq!(app.identity_counts(&elsewhere).await, (1, 0));
    // The tombstone counted the key until it left, and stays absent.
    assert_eq!(app.identity_counts(&identity).await, (0, 0));
    assert_eq!(app.create_identity("cust_42").await["externalId"], "cust_42", "its externalId is free");
}

#[tokio::test]
async fn a_key_created_concurrently_with_its_identitys_delete_never_names_a_deleted_identity() {
    let app = spawn_app().await;
    for round in 0..6 {
        let identity = id_of(&app.create_identity(&format!("race-{round}")).await);
        let body = json!({ "userId": "u", "identityId": identity });
        let (created, deleted) =
            tokio::join!(app.post_keys(&body), app.identity(&app.root_key, Method::DELETE, &identity, None));
        let still_there = app.identity(&app.root_key, Method::GET, &identity, None).await.status == StatusCode::OK;
        match (created.status, deleted.status) {
            (StatusCode::CREATED, StatusCode::CONFLICT) => assert!(still_there, "round {round}"),
            (StatusCode::BAD_REQUEST, StatusCode::NO_CONTENT) => {
                assert_eq!(created.error_field(), "identityId");
                assert!(!still_there, "round {round}");
            }
            other => panic!("round {round}: {other:?} {:?} {:?}", created.body, deleted.body),
        }
        if still_there {
            assert_eq!(app.identity_counts(&identity).await, (1, 0));
        }
    }
}

#[tokio::test]
async fn no_key_moves_itself_or_changes_its_own_identitys_limits() {
    let app = spawn_app().await;
    let own = id_of(&app.create_identity("own").await);
    let other = id_of(&app.create_identity("other").await);
    let writer = app
        .create_key(
            &json!({ "userId": "w", "identityId": own, "acl": [{ "permissions": ["keys:read", "keys:write"] }] }),
        )
        .await;
    let (writer_id, writer_key) = (id_of(&writer), writer["key"].as_str().unwrap().to_owned());
    let moved = app
        .send(
            Method::PATCH,
            &format!("/keys/{writer_id}"),
            Some(&writer_key),
            Some(&json!({ "identityId": other })),
            &[],
        )
        .await;
    assert_eq!(moved.status, StatusCode::FORBIDDEN, "{:?}", moved.body);
    let loosen = json!({ "ratelimits": [{ "name": "requests", "limit": 1000000, "periodSeconds": 1 }] });
    let own_limits = app.identity(&writer_key, Method::PATCH, &own, Some(&loosen)).await;
    assert_eq!((own_limits.status, own_limits.error_code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(
        app.identity(&writer_key, Method::PATCH, &own, Some(&json!({ "meta": { "a": 1 } }))).await.status,
        StatusCode::OK
    );
    // Another identity's limits reach keys of any strength: only a key holding all of keys:
    // sets them.
    let other_limits = app.identity(&writer_key, Method::PATCH, &other, Some(&loosen)).await;
    assert_eq!((other_limits.status, other_limits.error_code()), (StatusCode::FORBIDDEN, "forbidden"));
    assert_eq!(app.identity(&app.root_key, Method::PATCH, &other, Some(&loosen)).await.status, StatusCode::OK);
    assert_eq!(app.get_key(&writer_id).await.body["identityId"], json!(own));
}

/// Identity writes reach every key of the identity: its named limits and its delete are for a
/// key that could manage any key; a rolled secret in its grace writes no identity; and a
/// management key made or changed by a key of an identity stays in that identity.
#[tokio::test]
async fn identity_limits_and_deletes_need_all_of_keys_and_a_key_of_an_identity_keeps_what_it_makes_in_it() {
    let app = spawn_app().await;
    let own = id_of(&app.create_identity("own").await);
    let writer = app
        .create_key(
            &json!({ "userId": "w", "identityId": own, "acl": [{ "permissions": ["keys:read", "keys:write"] }] }),
        )
        .await;
    let writer_key = writer["key"].as_str().unwrap().to_owned();
    let items = app.item_count().await;
    let limits =
        json!({ "externalId": "limited", "ratelimits": [{ "name": "requests", "limit": 5, "periodSeconds": 60 }] });
    let made = app.send(Method::POST, "/identities", Some(&writer_key), Some(&limits), &[]).await;
    assert_eq!((made.status, made.error_code()), (StatusCode::FORBIDDEN, "forbidden"), "{:?}", made.body);
    assert_eq!(app.item_count().await, items, "a refused create writes nothing");
    let empty = id_of(&app.create_identity("empty").await);
    let items = app.item_count().await;
    let deleted = app.identity(&writer_key, Method::DELETE, &empty, None).await;
    assert_eq!((deleted.status, deleted.error_code()), (StatusCode::FORBIDDEN, "forbidden"));
    let plain =
        app.send(Method::POST, "/identities", Some(&writer_key), Some(&json!({ "externalId": "plain" })), &[]).await;
    assert_eq!(plain.status, StatusCode::CREATED, "no limits: keys:write is enough");
    assert!(app.item_count().await > items);

    // What it makes: a management key in its identity, or none at all.
    let manager = json!({ "userId": "m", "acl": [{ "permissions": ["keys:read"] }] });
    let outside = app.send(Method::POST, "/keys", Some(&writer_key), Some(&manager), &[]).await;
    assert_eq!((outside.status, outside.error_field()), (StatusCode::FORBIDDEN, "identityId"), "{:?}", outside.body);
    let mut inside = manager.clone();
    inside["identityId"] = json!(own);
    let inside = app.send(Method::POST, "/keys", Some(&writer_key), Some(&inside), &[]).await;
    assert_eq!(inside.status, StatusCode::CREATED, "{:?}", inside.body);
    let moved_out = app
        .send(
            Method::PATCH,
            &format!("/keys/{}", id_of(&inside.body)),
            Some(&writer_key),
            Some(&json!({ "identityId": null })),
            &[],
        )
        .await;
    assert_eq!((moved_out.status, moved_out.error_field()), (StatusCode::FORBIDDEN, "identityId"));
    let user = app.send(Method::POST, "/keys", Some(&writer_key), Some(&json!({ "userId": "u" })), &[]).await;
    assert_eq!(user.status, StatusCode::CREATED, "a key without keys: permissions is not bounded");

    // A rolled admin secret in its grace period reads identities and writes none.
    let admin = app.create_key(&json!({ "userId": "a", "acl": [{ "permissions": ["keys:*"] }] })).await;
    let old_secret = admin["key"].as_str().unwrap().to_owned();
    let rolled = app.roll_key(admin["id"].as_str().unwrap(), Some(&json!({ "gracePeriodSeconds": 3600 }))).await;
    assert_eq!(rolled.status, StatusCode::OK);
    assert_eq!(app.identity(&old_secret, Method::GET, &own, None).await.status, StatusCode::OK);
    let items = app.item_count().await;
    let writes = [
        app.send(Method::POST, "/identities", Some(&old_secret), Some(&json!({ "externalId": "x" })), &[]).await,
        app.identity(&old_secret, Method::PATCH, &own, Some(&json!({ "meta": { "a": 1 } }))).await,
        app.identity(&old_secret, Method::DELETE, &empty, None).await,
    ];
    for answer in writes {
        assert_eq!(
            (answer.status, answer.error_code()),
            (StatusCode::FORBIDDEN, "secret_retiring"),
            "{:?}",
            answer.body
        );
    }
    assert_eq!(app.item_count().await, items, "refused writes write nothing");
}
