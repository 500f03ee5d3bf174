//! The permission model as an attacker with a weaker key of the same company would try it:
//! escalation through a permission's spelling, acting on a stronger key, replaying a stronger
//! key's create, locking the company out, and spending nothing on refused calls.

use lambda_http::http::{Method, StatusCode};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestResponse, spawn_app};

/// A key of the test company with this ACL (created by the `keys:*` root key): `(id, secret)`.
async fn key_with(app: &TestApp, permissions: &[&str]) -> (String, String) {
    key_from(app, json!({ "userId": "svc", "acl": [{ "permissions": permissions }] })).await
}

async fn key_from(app: &TestApp, body: Value) -> (String, String) {
    app.create_key_pair(&body).await
}

/// Everything a refused call must leave as it was: the key as shown, its audit trail, the
/// company's counters and the number of items in the table.
async fn snapshot(app: &TestApp, id: &str) -> (Value, Value, (i64, i64), usize) {
    let mut key = app.get_key(id).await.body;
    key.as_object_mut().unwrap().remove("lastUsedAt");
    let events = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await;
    app.settle_calls().await;
    (key, events.body["total"].clone(), app.counters().await, app.item_count().await)
}

fn assert_refused(response: &TestResponse, status: StatusCode, what: &str) {
    assert_eq!(response.status, status, "{what}: {:?}", response.body);
    assert!(response.body.get("key").is_none(), "{what}: a refused answer carries no secret");
}

#[tokio::test]
async fn a_permission_with_a_separator_is_a_400_naming_it() {
    let app = spawn_app().await;
    let (_, writer) = key_with(&app, &["keys:write"]).await;
    let items = app.item_count().await;
    for (acl, field) in [
        (json!([{ "permissions": ["keys:x,*"] }]), "acl[0].permissions[0]"),
        (
            json!([{ "permissions": ["orders:read"] }, { "permissions": ["a", "keys:read,keys:*"] }]),
            "acl[1].permissions[1]",
        ),
        (json!([{ "permissions": ["keys: *"] }]), "acl[0].permissions[0]"),
        (json!([{ "permissions": ["[\"*\"]"] }]), "acl[0].permissions[0]"),
    ] {
        let response =
            app.send(Method::POST, "/keys", Some(&writer), Some(&json!({ "userId": "u", "acl": acl })), &[]).await;
        assert_refused(&response, StatusCode::BAD_REQUEST, &acl.to_string());
        assert_eq!((response.error_code(), response.error_field()), ("invalid_field", field), "{acl}");
    }
    assert_eq!(app.item_count().await, items, "nothing was written");
}

#[tokio::test]
async fn a_writer_cannot_roll_change_delete_or_reactivate_a_stronger_key() {
    let app = spawn_app().await;
    let (_, writer) = key_with(&app, &["keys:write"]).await;
    let (admin, _) = key_with(&app, &["keys:*"]).await;
    let (reader, _) = key_with(&app, &["keys:read", "orders:*"]).await;
    let (star, _) = key_with(&app, &["*"]).await;
    let (dormant, _) = key_with(&app, &["keys:verify"]).await;
    assert_eq!(app.patch_key(&dormant, &json!({ "status": "inactive" }), &[]).await.status, StatusCode::OK);

    for target in [&admin, &reader, &star, &dormant] {
        let before = snapshot(&app, target).await;
        let attempts = [
            (Method::POST, format!("/keys/{target}/roll"), None),
            (Method::PATCH, format!("/keys/{target}"), Some(json!({ "status": "active" }))),
            (Method::PATCH, format!("/keys/{target}"), Some(json!({ "whitelistedIPs": null, "expiresAt": null }))),
            (Method::PATCH, format!("/keys/{target}"), Some(json!({ "acl": [{ "permissions": ["keys:write"] }] }))),
            (Method::DELETE, format!("/keys/{target}"), None),
            (Method::DELETE, format!("/keys/{target}?force=true"), None),
        ];
        for (method, path, body) in attempts {
            let response = app.send(method.clone(), &path, Some(&writer), body.as_ref(), &[]).await;
            assert_refused(&response, StatusCode::FORBIDDEN, &format!("{method} {path}"));
            assert_eq!(response.error_code(), "forbidden");
        }
        assert_eq!(snapshot(&app, target).await, before, "{target} is unchanged");
    }
}

#[tokio::test]
async fn a_writer_manages_keys_no_stronger_than_itself() {
    let app = spawn_app().await;
    let (writer_id, writer) = key_with(&app, &["keys:write"]).await;
    let (service, _) = key_from(&app, json!({ "userId": "svc", "acl": [{ "permissions": ["orders:*"] }] })).await;
    let (peer, _) = key_with(&app, &["keys:write", "orders:read"]).await;
    for target in [&service, &peer] {
        let rolled = app.send(Method::POST, &format!("/keys/{target}/roll"), Some(&writer), None, &[]).await;
        assert_eq!(rolled.status, StatusCode::OK, "{target}: {:?}", rolled.body);
        let patch = json!({ "description": "managed" });
        let patched = app.send(Method::PATCH, &format!("/keys/{target}"), Some(&writer), Some(&patch), &[]).await;
        assert_eq!(patched.status, StatusCode::OK, "{target}");
        let deleted = app.send(Method::DELETE, &format!("/keys/{target}"), Some(&writer), None, &[]).await;
        assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{target}");
    }
    // Its own ACL: it may narrow it, not widen it.
    let widen = json!({ "acl": [{ "permissions": ["keys:write", "keys:read"] }] });
    let response = app.send(Method::PATCH, &format!("/keys/{writer_id}"), Some(&writer), Some(&widen), &[]).await;
    assert_refused(&response, StatusCode::FORBIDDEN, "widening its own ACL");
    let narrow = json!({ "acl": [{ "permissions": ["keys:write"] }, { "permissions": ["orders:read"] }] });
    let response = app.send(Method::PATCH, &format!("/keys/{writer_id}"), Some(&writer), Some(&narrow), &[]).await;
    assert_eq!(response.status, StatusCode::OK, "{:?}", response.body);
}

#[tokio::test]
async fn a_replay_goes_only_to_the_key_that_made_the_request() {
    let app = spawn_app().await;
    let (_, writer) = key_with(&app, &["keys:write"]).await;
    let (_, other_writer) = key_with(&app, &["keys:write"]).await;
    let header = [("idempotency-key", "create-admin-2030")];
    let admin_body = json!({ "userId": "ops", "acl": [{ "permissions": ["keys:*"] }] });
    let first = app.send(Method::POST, "/keys", Some(&app.root_key), Some(&admin_body), &header).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let items = app.item_count().await;

    // The writer knows the header and the body: the rule refuses it before any replay.
    let replay = app.send(Method::POST, "/keys", Some(&writer), Some(&admin_body), &header).await;
    assert_refused(&replay, StatusCode::FORBIDDEN, "a writer replaying the admin's create");
    assert_eq!(app.item_count().await, items);

    // A create the writer may make: its header is its own, so another writer's same header
    // and body make another key rather than reading back the first one's secret.
    let body = json!({ "userId": "billing", "acl": [{ "permissions": ["orders:*"] }] });
    let header = [("idempotency-key", "billing-key")];
    let mine = app.send(Method::POST, "/keys", Some(&writer), Some(&body), &header).await;
    let again = app.send(Method::POST, "/keys", Some(&writer), Some(&body), &header).await;
    let theirs = app.send(Method::POST, "/keys", Some(&other_writer), Some(&body), &header).await;
    assert_eq!(
        (mine.status, again.status, theirs.status),
        (StatusCode::CREATED, StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(again.body, mine.body, "the same key's retry is a replay");
    assert_ne!(theirs.body["id"], mine.body["id"], "another key's request is not");
    assert_ne!(theirs.body["key"], mine.body["key"]);
}

/// The root key's id, from the company's only key at the start.
async fn root_key_id(app: &TestApp) -> String {
    let listed = app.list_keys("?status=all").await;
    assert_eq!(listed.body["total"], 1);
    listed.body["data"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_last_admin_key_is_not_lost_by_accident() {
    let app = spawn_app().await;
    let root = root_key_id(&app).await;
    let (_, writer) = key_with(&app, &["keys:write", "keys:read"]).await;
    let before = snapshot(&app, &root).await;
    let lockouts = [
        (Method::DELETE, None),
        (Method::PATCH, Some(json!({ "status": "inactive" }))),
        (Method::PATCH, Some(json!({ "acl": [{ "permissions": ["keys:write", "keys:read"] }] }))),
    ];
    for (method, body) in &lockouts {
        let response =
            app.send(method.clone(), &format!("/keys/{root}"), Some(&app.root_key), body.as_ref(), &[]).await;
        assert_refused(&response, StatusCode::CONFLICT, &format!("{method} {body:?}"));
        assert!(response.body["error"]["message"].as_str().unwrap().contains("force=true"), "{:?}", response.body);
    }
    assert_eq!(snapshot(&app, &root).await, before, "the refused writes changed nothing");

    // With a second admin, the first may go; the second is then the last.
    let (second, second_key) = key_with(&app, &["*"]).await;
    let deactivated = app.patch_key(&root, &json!({ "status": "inactive" }), &[]).await;
    assert_eq!(deactivated.status, StatusCode::OK, "{:?}", deactivated.body);
    let last = app.send(Method::DELETE, &format!("/keys/{second}"), Some(&second_key), None, &[]).await;
    assert_refused(&last, StatusCode::CONFLICT, "the second admin deleting itself");
    // Re-activating the first is allowed (the second still holds `*`), and counts it again.
    let activate = json!({ "status": "active" });
    let reactivated = app.send(Method::PATCH, &format!("/keys/{root}"), Some(&second_key), Some(&activate), &[]).await;
    assert_eq!(reactivated.status, StatusCode::OK);
    let last = app.send(Method::DELETE, &format!("/keys/{second}"), Some(&second_key), None, &[]).await;
    assert_eq!(last.status, StatusCode::NO_CONTENT, "no longer the last: {:?}", last.body);

    // Said plainly, the company may lock itself out; the operator CLI can mint a new root key.
    let forced = app.send(Method::DELETE, &format!("/keys/{root}?force=true"), Some(&app.root_key), None, &[]).await;
    assert_eq!(forced.status, StatusCode::NO_CONTENT, "{:?}", forced.body);
    let locked_out = app.send(Method::GET, "/keys", Some(&writer), None, &[]).await;
    assert_eq!(locked_out.status, StatusCode::OK, "other keys keep their own permissions");
    for bad in ["?force=yes", "?force=true&force=true", "?forced=true"] {
        let response = app.send(Method::DELETE, &format!("/keys/{root}{bad}"), Some(&writer), None, &[]).await;
        assert_eq!(response.status, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn refused_calls_cost_the_caller_nothing() {
    let app = spawn_app().await;
    let root = root_key_id(&app).await;
    let limited = json!({ "limit": 2, "periodSeconds": 3600 });
    let acl = json!([{ "permissions": ["keys:read", "keys:write"] }]);
    let (caller_id, caller) = key_from(&app, json!({ "userId": "svc", "acl": acl, "rateLimit": limited })).await;
    let (quota_id, quota_caller) = key_from(
        &app,
        json!({ "userId": "svc", "acl": [{ "permissions": ["keys:write"] }], "quota": { "max": 1, "renewalSeconds": 3600 } }),
    )
    .await;
    for _ in 0..5 {
        let verify = app.send(Method::POST, "/keys/verify", Some(&caller), Some(&json!({ "key": "sk_x" })), &[]).await;
        assert_eq!(verify.status, StatusCode::FORBIDDEN, "no keys:verify");
        let stronger = app.send(Method::POST, &format!("/keys/{root}/roll"), Some(&caller), None, &[]).await;
        assert_eq!(stronger.status, StatusCode::FORBIDDEN, "the management rule");
        let escalate = json!({ "userId": "u", "acl": [{ "permissions": ["keys:*"] }] });
        let refused = app.send(Method::POST, "/keys", Some(&quota_caller), Some(&escalate), &[]).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
    }
    app.settle_calls().await;
    for id in [&caller_id, &quota_id] {
        assert_eq!(app.get_key(id).await.body["lastUsedAt"], Value::Null, "{id}: refused calls leave no trace");
    }
    // The whole allowance is still there.
    let get = |key: String| {
        let app = &app;
        async move { app.send(Method::GET, "/keys?limit=1", Some(&key), None, &[]).await.status }
    };
    assert_eq!([get(caller.clone()).await, get(caller.clone()).await], [StatusCode::OK, StatusCode::OK]);
    assert_eq!(get(caller).await, StatusCode::TOO_MANY_REQUESTS);
    let body = json!({ "userId": "u" });
    let first = app.send(Method::POST, "/keys", Some(&quota_caller), Some(&body), &[]).await;
    let second = app.send(Method::POST, "/keys", Some(&quota_caller), Some(&body), &[]).await;
    assert_eq!((first.status, second.status), (StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS));
    app.settle_calls().await;
    assert!(app.get_key(&caller_id).await.body["lastUsedAt"].is_string(), "an allowed call is recorded");
}

// --- The property: no management operation hands its caller more than it holds. ---

/// Permissions an ACL may be drawn from: the management ones, wildcards reaching into them,
/// the company's own, and (only in what a call asks to grant) spellings that hide a separator.
const HELD: &[&str] =
    &["keys:read", "keys:write", "keys:verify", "keys:*", "*", "k*", "keys*", "keys:r*", "keys:x", "orders:*"];
const SMUGGLED: &[&str] = &["keys:x,*", "keys:read,keys:verify", "orders:read,keys:*"];

fn acl_of(vocabulary: &'static [&'static str]) -> impl Strategy<Value = Vec<Vec<&'static str>>> {
    prop::collection::vec(prop::collection::vec(prop::sample::select(vocabulary), 1..3), 0..3)
}

fn granted() -> impl Strategy<Value = Vec<Vec<&'static str>>> {
    let mixed: &'static [&'static str] = Box::leak([HELD, SMUGGLED, SMUGGLED].concat().into_boxed_slice());
    acl_of(mixed)
}

fn acl_json(entries: &[Vec<&str>]) -> Value {
    Value::Array(entries.iter().map(|permissions| json!({ "permissions": permissions })).collect())
}

#[derive(Debug, Clone)]
enum Operation {
    Create(Vec<Vec<&'static str>>),
    ChangeAcl(Vec<Vec<&'static str>>),
    ChangeOwnAcl(Vec<Vec<&'static str>>),
    Reactivate,
    Roll,
    Delete,
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        granted().prop_map(Operation::Create),
        granted().prop_map(Operation::ChangeAcl),
        granted().prop_map(Operation::ChangeOwnAcl),
        Just(Operation::Reactivate),
        Just(Operation::Roll),
        Just(Operation::Delete),
    ]
}

/// What a credential can do in the management API, tried for real: `[read, write, verify]`.
async fn powers(app: &TestApp, credential: &str) -> [bool; 3] {
    let allowed = |response: TestResponse| response.status != StatusCode::FORBIDDEN && response.status.as_u16() != 401;
    let read = app.send(Method::GET, "/keys?limit=1", Some(credential), None, &[]).await;
    let patch = json!({ "description": "x" });
    let write = app.send(Method::PATCH, "/keys/no-such-key", Some(credential), Some(&patch), &[]).await;
    let verify = app.send(Method::POST, "/keys/verify", Some(credential), Some(&json!({ "key": "sk_x" })), &[]).await;
    [allowed(read), allowed(write), allowed(verify)]
}

/// One case: the root key makes A and B, A performs `operation`, and every credential A ends
/// up holding or receiving may do no more than A could before.
async fn no_escalation_case(
    app: &TestApp,
    a_acl: &[Vec<&'static str>],
    b_acl: &[Vec<&'static str>],
    operation: &Operation,
) -> Result<(), TestCaseError> {
    let (a_id, a_key) = key_from(app, json!({ "userId": "a", "acl": acl_json(a_acl) })).await;
    let (b_id, _) = key_from(app, json!({ "userId": "b", "acl": acl_json(b_acl) })).await;
    if matches!(operation, Operation::Reactivate) {
        let deactivated = app.patch_key(&b_id, &json!({ "status": "inactive" }), &[]).await;
        prop_assert_eq!(deactivated.status, StatusCode::OK);
    }
    let own = powers(app, &a_key).await;
    let send = |method: Method, path: String, body: Option<Value>| {
        let a_key = a_key.clone();
        async move { app.send(method, &path, Some(&a_key), body.as_ref(), &[]).await }
    };
    let response = match operation {
        Operation::Create(acl) => {
            send(Method::POST, "/keys".into(), Some(json!({ "userId": "c", "acl": acl_json(acl) }))).await
        }
        Operation::ChangeAcl(acl) => {
            send(Method::PATCH, format!("/keys/{b_id}"), Some(json!({ "acl": acl_json(acl) }))).await
        }
        Operation::ChangeOwnAcl(acl) => {
            send(Method::PATCH, format!("/keys/{a_id}?force=true"), Some(json!({ "acl": acl_json(acl) }))).await
        }
        Operation::Reactivate => {
            send(Method::PATCH, format!("/keys/{b_id}"), Some(json!({ "status": "active" }))).await
        }
        Operation::Roll => send(Method::POST, format!("/keys/{b_id}/roll"), None).await,
        Operation::Delete => send(Method::DELETE, format!("/keys/{b_id}?force=true"), None).await,
    };
    prop_assert!(response.status.as_u16() < 500, "{:?} answered {}: {:?}", operation, response.status, response.body);
    let mut credentials = vec![("A itself".to_owned(), a_key.clone())];
    if let Some(secret) = response.body.get("key").and_then(Value::as_str) {
        credentials.push((format!("what {operation:?} handed A"), secret.to_owned()));
    }
    for (what, credential) in credentials {
        let got = powers(app, &credential).await;
        for (need, (has, had)) in ["keys:read", "keys:write", "keys:verify"].iter().zip(got.iter().zip(own)) {
            prop_assert!(
                !has || had,
                "{} can {} though A ({:?}) could not, after {:?} on B ({:?}): {:?}",
                what,
                need,
                a_acl,
                operation,
                b_acl,
                response.body
            );
        }
    }
    Ok(())
}

#[test]
fn no_management_operation_hands_its_caller_more_than_it_holds() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let app = runtime.block_on(spawn_app());
    let mut runner = TestRunner::new(Config { cases: 128, failure_persistence: None, ..Config::default() });
    let strategy = (acl_of(HELD), acl_of(HELD), operation());
    runner
        .run(&strategy, |(a_acl, b_acl, operation)| {
            runtime.block_on(no_escalation_case(&app, &a_acl, &b_acl, &operation))
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// --- Edges of the rule: a refused patch costs nothing, a replay hands out no key promoted
// since, no key loosens its own guards. ---

#[tokio::test]
async fn a_patch_refused_by_the_rule_on_the_new_acl_costs_nothing() {
    let app = spawn_app().await;
    let limited = json!({ "limit": 1, "periodSeconds": 3600 });
    let acl = json!([{ "permissions": ["keys:write"] }]);
    let (_, writer) = key_from(&app, json!({ "userId": "w", "acl": acl, "rateLimit": limited })).await;
    let (plain, _) = key_from(&app, json!({ "userId": "svc" })).await;
    let escalate = json!({ "acl": [{ "permissions": ["keys:*"] }] });
    let refused = app.send(Method::PATCH, &format!("/keys/{plain}"), Some(&writer), Some(&escalate), &[]).await;
    assert_refused(&refused, StatusCode::FORBIDDEN, "granting keys:*");
    let allowed = json!({ "description": "fine" });
    let patched = app.send(Method::PATCH, &format!("/keys/{plain}"), Some(&writer), Some(&allowed), &[]).await;
    assert_eq!(patched.status, StatusCode::OK, "the refused call did not use up the limit of 1");
}

#[tokio::test]
async fn a_create_replay_does_not_hand_out_a_key_promoted_since() {
    let app = spawn_app().await;
    let (_, writer) = key_with(&app, &["keys:write"]).await;
    let header = [("idempotency-key", "svc-1")];
    let body = json!({ "userId": "svc" });
    let first = app.send(Method::POST, "/keys", Some(&writer), Some(&body), &header).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let id = first.body["id"].as_str().unwrap();
    let promote = json!({ "acl": [{ "permissions": ["keys:*"] }] });
    assert_eq!(app.patch_key(id, &promote, &[]).await.status, StatusCode::OK);
    let replay = app.send(Method::POST, "/keys", Some(&writer), Some(&body), &header).await;
    assert_refused(&replay, StatusCode::FORBIDDEN, "replaying the create of a key that is now an admin");
}

#[tokio::test]
async fn no_key_loosens_its_own_limits_expiry_or_allowlist() {
    let app = spawn_app().await;
    let body = json!({
        "userId": "w",
        "acl": [{ "permissions": ["keys:write", "keys:read"] }],
        "rateLimit": { "limit": 50, "periodSeconds": 3600 },
        "quota": { "max": 50 },
        "expiresAt": "2030-06-01T00:00:00Z",
        "whitelistedIPs": ["203.0.113.0/24"],
    });
    let (id, writer) = key_from(&app, body).await;
    let before = snapshot(&app, &id).await;
    for loosen in [
        json!({ "rateLimit": null }),
        json!({ "quota": { "max": 1000000 } }),
        json!({ "expiresAt": null }),
        json!({ "whitelistedIPs": null }),
    ] {
        let response = app.send(Method::PATCH, &format!("/keys/{id}"), Some(&writer), Some(&loosen), &[]).await;
        assert_refused(&response, StatusCode::FORBIDDEN, &loosen.to_string());
    }
    assert_eq!(snapshot(&app, &id).await, before);
    let described = json!({ "description": "its own description is fine" });
    let own = app.send(Method::PATCH, &format!("/keys/{id}"), Some(&writer), Some(&described), &[]).await;
    assert_eq!(own.status, StatusCode::OK);
    assert_eq!(app.patch_key(&id, &json!({ "rateLimit": null }), &[]).await.status, StatusCode::OK, "another key may");
}
