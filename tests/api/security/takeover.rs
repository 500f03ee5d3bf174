//! A leaked root key, once rolled, stays beaten: what its old secret and the keys a bounded key
//! makes can and cannot do, black-box through the local stack.

use chrono::{TimeDelta, Utc};
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{CLIENT_IP, TestApp, TestResponse, spawn_app};

async fn as_key(app: &TestApp, key: &str, method: Method, path: &str, body: Option<&Value>) -> TestResponse {
    app.send(method, path, Some(key), body, &[]).await
}

/// A key the company's admin makes: `body` plus a user.
async fn admin_made(app: &TestApp, body: Value) -> (String, String) {
    let mut body = body;
    body["userId"] = json!("admin-made");
    app.create_key_pair(&body).await
}

fn events(response: &TestResponse) -> Vec<Value> {
    response.body["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_old_secret_in_its_grace_period_serves_but_cannot_take_the_key_over() {
    let app = spawn_app().await;
    let (leaked_id, old_secret) = admin_made(&app, json!({ "acl": [{ "permissions": ["keys:*"] }] })).await;
    let old_prefix = app.get_key(&leaked_id).await.body["keyPrefix"].as_str().unwrap().to_owned();
    // The owner rolls the leaked key with a grace period, from its current secret.
    let rolled = as_key(
        &app,
        &old_secret,
        Method::POST,
        &format!("/keys/{leaked_id}/roll"),
        Some(&json!({ "gracePeriodSeconds": 3600 })),
    )
    .await;
    assert_eq!(rolled.status, StatusCode::OK, "{:?}", rolled.body);
    let new_secret = rolled.body["key"].as_str().unwrap().to_owned();
    let (items, counters) = (app.item_count().await, app.counters().await);

    // With only the old secret, the attacker can neither mint an admin key nor end the new one.
    let minted = as_key(
        &app,
        &old_secret,
        Method::POST,
        "/keys",
        Some(&json!({ "userId": "attacker", "acl": [{ "permissions": ["keys:*"] }] })),
    )
    .await;
    assert_eq!((minted.status, minted.error_code()), (StatusCode::FORBIDDEN, "secret_retiring"), "{:?}", minted.body);
    let reroll = as_key(
        &app,
        &old_secret,
        Method::POST,
        &format!("/keys/{leaked_id}/roll"),
        Some(&json!({ "gracePeriodSeconds": 0 })),
    )
    .await;
    assert_eq!((reroll.status, reroll.error_code()), (StatusCode::FORBIDDEN, "secret_retiring"));
    for (method, path, body) in [
        (Method::PATCH, format!("/keys/{leaked_id}"), Some(json!({ "description": "mine now" }))),
        (Method::DELETE, format!("/keys/{leaked_id}"), None),
        (Method::DELETE, format!("/keys/{}", app.me(&app.root_key).await), None),
    ] {
        let refused = as_key(&app, &old_secret, method.clone(), &path, body.as_ref()).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (StatusCode::FORBIDDEN, "secret_retiring"),
            "{method} {path}"
        );
    }
    assert_eq!((app.item_count().await, app.counters().await), (items, counters), "refused calls wrote nothing");
    assert_eq!(
        as_key(&app, &new_secret, Method::GET, "/me", None).await.status,
        StatusCode::OK,
        "the owner's secret lives"
    );

    // It still serves what deployed back ends need: reads and verify.
    assert_eq!(as_key(&app, &old_secret, Method::GET, "/me", None).await.status, StatusCode::OK);
    assert_eq!(
        as_key(&app, &old_secret, Method::GET, &format!("/keys/{leaked_id}"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(as_key(&app, &old_secret, Method::GET, "/keys", None).await.status, StatusCode::OK);
    let verified = as_key(
        &app,
        &old_secret,
        Method::POST,
        "/keys/verify",
        Some(&json!({ "key": new_secret, "ip": "203.0.113.7" })),
    )
    .await;
    assert_eq!(verified.body["code"], "VALID", "{:?}", verified.body);
    // And it may still issue the company's own API keys (no keys: permission): on record.
    let issued = as_key(
        &app,
        &old_secret,
        Method::POST,
        "/keys",
        Some(&json!({ "userId": "customer", "acl": [{ "permissions": ["orders:read"] }] })),
    )
    .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
    let issued_id = issued.body["id"].as_str().unwrap();
    let trail = as_key(&app, &new_secret, Method::GET, &format!("/keys/{issued_id}/events"), None).await;
    let created = &events(&trail)[0];
    assert_eq!(created["actor"], leaked_id.as_str());
    assert_eq!(created["actorType"], "key");
    assert_eq!(created["actorSecret"], json!({ "secret": "previous", "keyPrefix": old_prefix }));

    // The roll itself is on record as the current secret's act.
    let trail = as_key(&app, &new_secret, Method::GET, &format!("/keys/{leaked_id}/events"), None).await;
    let roll = events(&trail).into_iter().find(|e| e["action"] == "rolled").unwrap();
    assert_eq!(roll["actorSecret"], json!({ "secret": "current", "keyPrefix": old_prefix }));

    // The owner ends the grace at once by rolling again with grace 0 from the current secret.
    let ended = as_key(
        &app,
        &new_secret,
        Method::POST,
        &format!("/keys/{leaked_id}/roll"),
        Some(&json!({ "gracePeriodSeconds": 0 })),
    )
    .await;
    assert_eq!(ended.status, StatusCode::OK);
    assert_eq!(as_key(&app, &old_secret, Method::GET, "/me", None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_bounded_key_cannot_make_an_unbounded_one_nor_have_its_bounds_lifted_through_it() {
    let app = spawn_app().await;
    let expires = (app.clock_now() + TimeDelta::minutes(10)).to_rfc3339();
    let bounds = json!({
        "expiresAt": expires,
        "whitelistedIPs": [format!("{CLIENT_IP}/32")],
        "rateLimit": { "limit": 100, "periodSeconds": 60 },
        "quota": { "max": 1000 },
    });
    let mut contractor = json!({ "acl": [{ "permissions": ["keys:read", "keys:write"] }] });
    contractor.as_object_mut().unwrap().extend(bounds.as_object().unwrap().clone());
    let (contractor_id, contractor_key) = admin_made(&app, contractor).await;
    let items = app.item_count().await;

    // A clone with the same keys: permissions must carry every bound, each named when missing.
    for missing in ["expiresAt", "whitelistedIPs", "rateLimit", "quota"] {
        let mut clone = json!({ "userId": "clone", "acl": [{ "permissions": ["keys:read", "keys:write"] }] });
        for (field, value) in bounds.as_object().unwrap() {
            if field != missing {
                clone[field] = value.clone();
            }
        }
        let refused = as_key(&app, &contractor_key, Method::POST, "/keys", Some(&clone)).await;
        assert_eq!(
            (refused.status, refused.error_code(), refused.error_field()),
            (StatusCode::FORBIDDEN, "forbidden", missing),
            "{:?}",
            refused.body
        );
    }
    // Or any looser value of it.
    let later = (app.clock_now() + TimeDelta::minutes(11)).to_rfc3339();
    for (field, looser) in [
        ("expiresAt", json!(later)),
        ("whitelistedIPs", json!(["203.0.113.0/24"])),
        ("rateLimit", json!({ "limit": 101, "periodSeconds": 60 })),
        ("rateLimit", json!({ "limit": 100, "periodSeconds": 59 })),
        ("quota", json!({ "max": 1001 })),
        ("quota", json!({ "max": 10, "renewalSeconds": 3600 })),
    ] {
        let mut clone = bounds.clone();
        clone["userId"] = json!("clone");
        clone["acl"] = json!([{ "permissions": ["keys:write"] }]);
        clone[field] = looser;
        let refused = as_key(&app, &contractor_key, Method::POST, "/keys", Some(&clone)).await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::FORBIDDEN, field), "{:?}", refused.body);
    }
    assert_eq!(app.item_count().await, items, "no refused create wrote anything");

    // Within every bound, it may.
    let mut clone = bounds.clone();
    clone["userId"] = json!("clone");
    clone["acl"] = json!([{ "permissions": ["keys:read", "keys:write"] }]);
    let made = as_key(&app, &contractor_key, Method::POST, "/keys", Some(&clone)).await;
    assert_eq!(made.status, StatusCode::CREATED, "{:?}", made.body);
    let clone_key = made.body["key"].as_str().unwrap().to_owned();

    // The clone cannot lift the contractor's bounds: each PATCH is refused, naming the field.
    let before = app.get_key(&contractor_id).await.body;
    for (field, lifted) in [
        ("expiresAt", json!(null)),
        ("whitelistedIPs", json!(null)),
        ("rateLimit", json!(null)),
        ("quota", json!(null)),
        ("expiresAt", json!(later)),
    ] {
        let refused =
            as_key(&app, &clone_key, Method::PATCH, &format!("/keys/{contractor_id}"), Some(&json!({ field: lifted })))
                .await;
        assert_eq!((refused.status, refused.error_field()), (StatusCode::FORBIDDEN, field), "{:?}", refused.body);
    }
    assert_eq!(app.get_key(&contractor_id).await.body, before, "the contractor key is as the admin left it");

    // Nor give a key without keys: permissions management power beyond its own bounds.
    let (plain_id, _) = app.create_key_pair(&json!({ "userId": "plain" })).await;
    let promoted = as_key(
        &app,
        &contractor_key,
        Method::PATCH,
        &format!("/keys/{plain_id}"),
        Some(&json!({ "acl": [{ "permissions": ["keys:write"] }] })),
    )
    .await;
    assert_eq!((promoted.status, promoted.error_field()), (StatusCode::FORBIDDEN, "expiresAt"));
    // A key without keys: permissions is still the contractor's to issue freely.
    let issued =
        as_key(&app, &contractor_key, Method::POST, "/keys", Some(&json!({ "userId": "customer", "acl": null }))).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{:?}", issued.body);
}

#[tokio::test]
async fn the_operators_name_and_the_route_words_are_no_key_ids() {
    let app = spawn_app().await;
    for word in ["operator", "verify", "events", "roll", "import", "me", "usage", "identities", "company"] {
        let response = app
            .send(Method::POST, &format!("/keys/{word}"), Some(&app.root_key), Some(&json!({ "userId": "u" })), &[])
            .await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{word}: {:?}", response.body);
        // `verify` and `import` are routes of their own: their bodies are refused as such.
        if word != "verify" && word != "import" {
            assert_eq!(response.error_field(), "keyId", "{word}");
        }
    }
    // The operator's events and a key's are told apart by more than the id.
    let root_id = app.me(&app.root_key).await;
    let trail = app.send(Method::GET, &format!("/keys/{root_id}/events"), Some(&app.root_key), None, &[]).await;
    let created = &events(&trail)[0];
    assert_eq!((created["actor"].as_str(), created["actorType"].as_str()), (Some("operator"), Some("operator")));
    assert_eq!(created["actorSecret"], Value::Null);
    let (id, _) = app.create_key_pair(&json!({ "userId": "u" })).await;
    let trail = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await;
    assert_eq!(events(&trail)[0]["actorType"], "key");
    assert_eq!(events(&trail)[0]["actor"], root_id.as_str());
}

#[tokio::test]
async fn refused_replays_cost_the_caller_nothing() {
    let app = spawn_app().await;
    let (_, writer) = admin_made(
        &app,
        json!({ "acl": [{ "permissions": ["keys:write", "keys:read"] }], "rateLimit": { "limit": 3, "periodSeconds": 3600 } }),
    )
    .await;
    let create = |key: &str, header: &'static str, user: &'static str| {
        let app = &app;
        let key = key.to_owned();
        async move {
            let headers = [("idempotency-key", header)];
            app.send(Method::POST, "/keys", Some(&key), Some(&json!({ "userId": user })), &headers).await
        }
    };
    let first = create(&writer, "signup-1", "customer").await;
    assert_eq!(first.status, StatusCode::CREATED);
    // An admin promotes the key the writer made; a replay would hand the writer its secret.
    let made = first.body["id"].as_str().unwrap();
    let promoted = app.patch_key(made, &json!({ "acl": [{ "permissions": ["keys:*"] }] }), &[]).await;
    assert_eq!(promoted.status, StatusCode::OK);
    assert_eq!(create(&writer, "signup-1", "customer").await.status, StatusCode::FORBIDDEN);
    assert_eq!(create(&writer, "signup-1", "someone else").await.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Two refused replays cost nothing: two more creates fit in the limit of 3, the next does not.
    assert_eq!(create(&writer, "signup-2", "b").await.status, StatusCode::CREATED);
    assert_eq!(create(&writer, "signup-3", "c").await.status, StatusCode::CREATED);
    assert_eq!(create(&writer, "signup-4", "d").await.status, StatusCode::TOO_MANY_REQUESTS);
}

impl TestApp {
    /// The id of the key `secret` belongs to, from `GET /me`.
    pub async fn me(&self, secret: &str) -> String {
        let me = self.send(Method::GET, "/me", Some(secret), None, &[]).await;
        assert_eq!(me.status, StatusCode::OK, "{:?}", me.body);
        me.body["keyId"].as_str().unwrap().to_owned()
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        use apikeys::domain::Clock;
        self.clock.now()
    }
}

#[tokio::test]
async fn an_inactive_management_key_is_bounded_too_and_a_quota_is_not_refilled_through_a_child() {
    let app = spawn_app().await;
    let expires = (app.clock_now() + TimeDelta::minutes(10)).to_rfc3339();
    let quota = json!({ "max": 100, "renewalSeconds": 3600 });
    let (_, bounded) = admin_made(&app, json!({ "acl": [{ "permissions": ["keys:*"] }], "expiresAt": expires })).await;
    let (admin_id, _) = admin_made(&app, json!({ "acl": [{ "permissions": ["keys:*"] }] })).await;
    let path = format!("/keys/{admin_id}");
    // Deactivating a looser key takes power away: allowed.
    let deactivated = as_key(&app, &bounded, Method::PATCH, &path, Some(&json!({ "status": "inactive" }))).await;
    assert_eq!(deactivated.status, StatusCode::OK, "{:?}", deactivated.body);
    // Rolling or changing it while it is inactive would hand the bounded key an unbounded one,
    // once anyone re-activates it.
    let before = app.get_key(&admin_id).await.body;
    let rolled = as_key(&app, &bounded, Method::POST, &format!("{path}/roll"), None).await;
    assert_eq!((rolled.status, rolled.error_field()), (StatusCode::FORBIDDEN, "expiresAt"), "{:?}", rolled.body);
    let changed = as_key(&app, &bounded, Method::PATCH, &path, Some(&json!({ "description": "mine" }))).await;
    assert_eq!((changed.status, changed.error_field()), (StatusCode::FORBIDDEN, "expiresAt"));
    assert_eq!(app.get_key(&admin_id).await.body, before);

    // A key held to a quota cannot give a management key its uses back through a key it made.
    let (held_id, held) =
        admin_made(&app, json!({ "acl": [{ "permissions": ["keys:*"] }], "quota": quota.clone() })).await;
    let child = as_key(
        &app,
        &held,
        Method::POST,
        "/keys",
        Some(&json!({ "userId": "child", "acl": [{ "permissions": ["keys:*"] }], "quota": quota })),
    )
    .await;
    assert_eq!(child.status, StatusCode::CREATED, "{:?}", child.body);
    let child_key = child.body["key"].as_str().unwrap();
    let refill = json!({ "quota": { "max": 100, "renewalSeconds": 7200 } });
    let refused = as_key(&app, child_key, Method::PATCH, &format!("/keys/{held_id}"), Some(&refill)).await;
    assert_eq!((refused.status, refused.error_field()), (StatusCode::FORBIDDEN, "quota"), "{:?}", refused.body);
}

#[tokio::test]
async fn a_replay_sealed_under_a_rolled_secret_and_a_taken_custom_id_cost_nothing() {
    let app = spawn_app().await;
    let (writer_id, old_secret) = admin_made(
        &app,
        json!({ "acl": [{ "permissions": ["keys:write"] }], "rateLimit": { "limit": 3, "periodSeconds": 3600 } }),
    )
    .await;
    let body = json!({ "userId": "customer" });
    let headers = [("idempotency-key", "signup-1")];
    let first = app.send(Method::POST, "/keys", Some(&old_secret), Some(&body), &headers).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let rolled = app.roll_key(&writer_id, None).await;
    let secret = rolled.body["key"].as_str().unwrap().to_owned();
    // The record is sealed under the old secret: the new one cannot open it, and is not charged.
    let again = app.send(Method::POST, "/keys", Some(&secret), Some(&body), &headers).await;
    assert_eq!((again.status, again.error_code()), (StatusCode::CONFLICT, "request_in_progress"));
    let custom = |id: &'static str| {
        let (app, secret, body) = (&app, &secret, &body);
        async move { app.send(Method::POST, &format!("/keys/{id}"), Some(secret), Some(body), &[]).await }
    };
    assert_eq!(custom("dup").await.status, StatusCode::CREATED);
    let taken = custom("dup").await;
    assert_eq!((taken.status, taken.error_code()), (StatusCode::CONFLICT, "key_exists"));
    // One use left of three: the 409s cost nothing.
    assert_eq!(custom("third").await.status, StatusCode::CREATED);
    assert_eq!(custom("fourth").await.status, StatusCode::TOO_MANY_REQUESTS);
}
