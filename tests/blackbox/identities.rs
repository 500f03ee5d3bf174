//! Identities over HTTP: create, find by externalId, a key that names one, its key list, and
//! the delete guard. Every identity made is deleted again.

use serde_json::json;

use crate::client::{Check, ids, unique};

#[tokio::test]
async fn an_identity_holds_keys_lists_them_and_is_not_deleted_while_one_is_active() {
    let check = Check::new();
    let external = unique("bb-cust");
    let body =
        json!({ "externalId": external, "ratelimits": [{ "name": "requests", "limit": 5, "periodSeconds": 60 }] });
    let created = check.call("POST", "/identities").json(&body).send().await;
    assert_eq!(created.status, 201, "{created:?}");
    let identity = created.text("id").to_owned();
    assert_eq!(created.header("location"), format!("/identities/{identity}"));
    assert_eq!(created.body["ratelimits"][0]["autoApply"], true);
    let again = check.call("POST", "/identities").json(&json!({ "externalId": external })).send().await;
    assert!(again.is_error(409, "identity_exists"), "{again:?}");
    let found = check.get(&format!("/identities?externalId={external}")).await;
    assert_eq!((found.status, ids(&found.body)), (200, vec![identity.clone()]));

    let first = check.create(json!({ "userId": "bb-a", "identityId": identity })).await;
    let second = check.create(json!({ "userId": "bb-b", "identityId": identity })).await;
    check.create(json!({ "userId": "bb-none" })).await;
    let listed = check.get(&format!("/keys?identityId={identity}")).await;
    assert_eq!(listed.status, 200, "{listed:?}");
    assert_eq!(
        (listed.body["total"].clone(), ids(&listed.body)),
        (json!(2), vec![second.id.clone(), first.id.clone()])
    );
    let absent = json!({ "userId": "x", "identityId": "id_0193a5e27c417d3a9f275b0c8e4d2a11" });
    let nobody = check.call("POST", "/keys").json(&absent).send().await;
    assert!(nobody.is_error(400, "invalid_field") && nobody.error_field() == "identityId", "{nobody:?}");

    let path = format!("/identities/{identity}");
    let refused = check.call("DELETE", &path).send().await;
    assert!(refused.is_error(409, "conflict"), "{refused:?}");
    for key in [&first.id, &second.id] {
        assert_eq!(check.call("DELETE", &format!("/keys/{key}")).send().await.status, 204);
    }
    assert_eq!(check.call("DELETE", &path).send().await.status, 204);
    assert_eq!(check.get(&path).await.status, 404);
    check.done().await;
}
