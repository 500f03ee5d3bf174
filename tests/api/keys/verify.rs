//! POST /keys/verify: every code, in order, with exact limits under concurrency.

use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, mistyped, spawn_app};

async fn key(app: &TestApp, fields: Value) -> (String, String) {
    let mut body = json!({ "userId": "user-7" });
    body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
    app.create_key_pair(&body).await
}

async fn code(app: &TestApp, body: Value) -> String {
    app.verify(&body).await.body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_valid_key_answers_with_its_details() {
    let app = spawn_app().await;
    let (id, secret) = key(
        &app,
        json!({
            "acl": [{ "permissions": ["orders:read", "orders:write"] }], "expiresAt": "2031-01-01T00:00:00Z"
        }),
    )
    .await;
    let answer = app.verify(&json!({ "key": secret })).await.body;
    assert_eq!(
        answer,
        json!({
            "valid": true, "code": "VALID", "keyId": id, "userId": "user-7",
            "permissions": ["orders:read", "orders:write"], "expiresAt": "2031-01-01T00:00:00Z"
        })
    );
}

#[tokio::test]
async fn malformed_unknown_and_foreign_keys_are_not_found() {
    let app = spawn_app().await;
    let (_, secret) = key(&app, json!({})).await;
    let wrong_checksum = mistyped(&secret);
    // A company that never imported: the first string not in the service's format reads
    // whether it holds imported keys (its counters), kept as long as the caller is.
    assert_eq!(code(&app, json!({ "key": "not-a-key-at-all" })).await, "NOT_FOUND");
    app.settle_calls().await;
    for malformed in ["", "sk_short", "pk_", "xx_abc", wrong_checksum.as_str(), "sk_0OIl"] {
        assert_eq!(app.verify(&json!({ "key": malformed })).await.body, json!({ "valid": false, "code": "NOT_FOUND" }));
        let nothing: Vec<String> = Vec::new();
        assert_eq!(app.calls_made().await, nothing, "the caller is kept, and {malformed:?} needs no read");
    }
    let unknown = apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret);
    assert_eq!(code(&app, json!({ "key": unknown.expose() })).await, "NOT_FOUND");
    let (_, rival_key) = app.other_company_root_key().await;
    let foreign = app.send(Method::POST, "/keys/verify", Some(&rival_key), Some(&json!({ "key": secret })), &[]).await;
    assert_eq!(foreign.body, json!({ "valid": false, "code": "NOT_FOUND" }));
}

#[tokio::test]
async fn inactive_and_expired_keys_and_their_order() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({ "expiresAt": "2030-01-01T00:10:00Z", "whitelistedIPs": ["192.0.2.1"] })).await;
    assert_eq!(code(&app, json!({ "key": secret, "ip": "192.0.2.1" })).await, "VALID");
    app.advance(600);
    assert_eq!(code(&app, json!({ "key": secret, "ip": "192.0.2.1" })).await, "EXPIRED");
    assert_eq!(
        code(&app, json!({ "key": secret, "ip": "192.0.2.2" })).await,
        "EXPIRED",
        "expiry is checked before the IP"
    );
    let patched = app.patch_key(&id, &json!({ "status": "inactive" }), &[]).await;
    assert_eq!(patched.status, StatusCode::OK);
    let answer = app.verify(&json!({ "key": secret })).await.body;
    assert_eq!(
        answer,
        json!({ "valid": false, "code": "INACTIVE", "keyId": id, "userId": "user-7" }),
        "status before expiry"
    );
}

#[tokio::test]
async fn ip_allowlists_match_addresses_and_cidr_edges() {
    let app = spawn_app().await;
    let (_, secret) =
        key(&app, json!({ "whitelistedIPs": ["203.0.113.7", "10.20.0.0/16", "2001:db8:abcd::/48", "2001:db8::1"] }))
            .await;
    for (ip, expected) in [
        ("203.0.113.7", "VALID"),
        ("203.0.113.8", "IP_NOT_ALLOWED"),
        ("10.20.0.0", "VALID"),
        ("10.20.255.255", "VALID"),
        ("10.21.0.0", "IP_NOT_ALLOWED"),
        ("10.19.255.255", "IP_NOT_ALLOWED"),
        ("2001:db8:abcd::", "VALID"),
        ("2001:db8:abcd:ffff:ffff:ffff:ffff:ffff", "VALID"),
        ("2001:db8:abce::", "IP_NOT_ALLOWED"),
        ("2001:db8::1", "VALID"),
        ("2001:db8::2", "IP_NOT_ALLOWED"),
        ("::ffff:10.20.1.1", "VALID"),
        ("::ffff:10.21.1.1", "IP_NOT_ALLOWED"),
    ] {
        assert_eq!(code(&app, json!({ "key": secret, "ip": ip })).await, expected, "{ip}");
    }
    assert_eq!(code(&app, json!({ "key": secret })).await, "IP_NOT_ALLOWED", "an allowlist needs the caller's IP");
    let bad = app
        .send(
            Method::POST,
            "/keys/verify",
            Some(&app.root_key),
            Some(&json!({ "key": secret, "ip": "10.0.0.0/8" })),
            &[],
        )
        .await;
    assert_eq!((bad.status, bad.error_field()), (StatusCode::BAD_REQUEST, "ip"));
}

#[tokio::test]
async fn permissions_and_scopes() {
    let app = spawn_app().await;
    let (_, secret) = key(
        &app,
        json!({ "acl": [
        { "scope": { "productId": ["p1", "p2"], "organizationId": ["*"] }, "permissions": ["invoices:*"] },
        { "scope": {}, "permissions": ["reports:read"] }
    ] }),
    )
    .await;
    for (request, expected) in [
        (json!({ "permissions": ["invoices:read"] }), "VALID"),
        (json!({ "permissions": ["invoices:read"], "scope": { "productId": "p2" } }), "VALID"),
        (
            json!({ "permissions": ["invoices:read"], "scope": { "productId": ["p1", "p2"], "organizationId": "any" } }),
            "VALID",
        ),
        (json!({ "permissions": ["invoices:read"], "scope": { "productId": "p3" } }), "FORBIDDEN"),
        (json!({ "permissions": ["invoices:read"], "scope": { "productId": ["p1", "p3"] } }), "FORBIDDEN"),
        (json!({ "permissions": ["reports:read"], "scope": { "productId": "p9", "planId": "gold" } }), "VALID"),
        (json!({ "permissions": ["reports:write"] }), "FORBIDDEN"),
        (json!({ "permissions": ["invoices:read", "reports:read"], "scope": { "planId": "x" } }), "VALID"),
        (json!({ "scope": { "customFieldName": "anything" } }), "VALID"),
        (json!({ "permissions": ["invoice:read"] }), "FORBIDDEN"),
    ] {
        let mut body = request.clone();
        body["key"] = json!(secret);
        assert_eq!(code(&app, body).await, expected, "{request}");
    }
    let (_, no_acl) = key(&app, json!({})).await;
    assert_eq!(
        code(&app, json!({ "key": no_acl, "permissions": ["a:b"] })).await,
        "FORBIDDEN",
        "no ACL grants nothing"
    );
    assert_eq!(
        code(&app, json!({ "key": no_acl, "scope": { "planId": "x" } })).await,
        "VALID",
        "and restricts no scope"
    );
}

#[tokio::test]
async fn a_rate_limit_counts_per_window_and_refusals_do_not_count() {
    let app = spawn_app().await;
    let (_, secret) = key(
        &app,
        json!({
            "rateLimit": { "limit": 3, "periodSeconds": 60 }, "acl": [{ "permissions": ["a:read"] }]
        }),
    )
    .await;
    assert_eq!(code(&app, json!({ "key": secret, "permissions": ["a:write"] })).await, "FORBIDDEN");
    for remaining in [2, 1, 0] {
        let answer = app.verify(&json!({ "key": secret })).await.body;
        assert_eq!(answer["code"], "VALID");
        assert_eq!(
            answer["rateLimit"],
            json!({ "limit": 3, "remaining": remaining, "resetAt": "2030-01-01T00:01:00Z" })
        );
    }
    let limited = app.verify(&json!({ "key": secret })).await.body;
    assert_eq!(limited["code"], "RATE_LIMITED");
    assert_eq!(limited["valid"], false);
    assert_eq!(limited["rateLimit"], json!({ "limit": 3, "remaining": 0, "resetAt": "2030-01-01T00:01:00Z" }));
    app.advance(60);
    assert_eq!(app.verify(&json!({ "key": secret })).await.body["rateLimit"]["remaining"], 2, "a new window");
}

#[tokio::test]
async fn thirty_parallel_verifies_of_a_limit_of_ten_admit_exactly_ten() {
    let app = spawn_app().await;
    let (_, secret) = key(&app, json!({ "rateLimit": { "limit": 10, "periodSeconds": 3600 } })).await;
    let body = json!({ "key": secret });
    let answers = futures::future::join_all((0..30).map(|_| app.verify(&body))).await;
    let valid = answers.iter().filter(|a| a.body["code"] == "VALID").count();
    let limited = answers.iter().filter(|a| a.body["code"] == "RATE_LIMITED").count();
    assert_eq!((valid, limited), (10, 20));
}

#[tokio::test]
async fn a_quota_runs_out_renews_and_follows_a_lower_max() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({ "quota": { "max": 3, "renewalSeconds": 3600 } })).await;
    for remaining in [2, 1] {
        assert_eq!(app.verify(&json!({ "key": secret })).await.body["quota"], json!({ "remaining": remaining }));
    }
    assert_eq!(app.get_key(&id).await.body["quota"]["remaining"], 1);
    let lowered = app.patch_key(&id, &json!({ "quota": { "max": 2, "renewalSeconds": 3600 } }), &[]).await;
    assert_eq!(lowered.body["quota"]["remaining"], 0, "two used of a max lowered to two");
    let exceeded = app.verify(&json!({ "key": secret })).await.body;
    assert_eq!((exceeded["code"].as_str(), &exceeded["quota"]), (Some("QUOTA_EXCEEDED"), &json!({ "remaining": 0 })));
    app.advance(3600);
    let renewed = app.verify(&json!({ "key": secret })).await.body;
    assert_eq!((renewed["code"].as_str(), &renewed["quota"]), (Some("VALID"), &json!({ "remaining": 1 })));
    let shown = app.get_key(&id).await.body;
    assert_eq!(
        shown["quota"],
        json!({ "max": 2, "remaining": 1, "renewalSeconds": 3600, "renewsAt": "2030-01-01T02:00:00Z" })
    );
}

#[tokio::test]
async fn parallel_verifies_never_overspend_a_quota() {
    let app = spawn_app().await;
    let (_, secret) = key(&app, json!({ "quota": { "max": 7 } })).await;
    let body = json!({ "key": secret });
    let answers = futures::future::join_all((0..20).map(|_| app.verify(&body))).await;
    let valid = answers.iter().filter(|a| a.body["code"] == "VALID").count();
    assert_eq!(valid, 7);
    let mut remaining: Vec<u64> = answers
        .iter()
        .filter(|a| a.body["code"] == "VALID")
        .map(|a| a.body["quota"]["remaining"].as_u64().unwrap())
        .collect();
    remaining.sort();
    assert_eq!(remaining, vec![0, 1, 2, 3, 4, 5, 6], "each use counted once");
}

#[tokio::test]
async fn a_quota_refusal_gives_the_rate_limit_back() {
    let app = spawn_app().await;
    let (id, secret) =
        key(&app, json!({ "quota": { "max": 1 }, "rateLimit": { "limit": 2, "periodSeconds": 3600 } })).await;
    assert_eq!(app.verify(&json!({ "key": secret })).await.body["rateLimit"]["remaining"], 1);
    assert_eq!(code(&app, json!({ "key": secret })).await, "QUOTA_EXCEEDED");
    app.patch_key(&id, &json!({ "quota": { "max": 2 } }), &[]).await;
    let answer = app.verify(&json!({ "key": secret })).await.body;
    assert_eq!((answer["code"].as_str(), answer["rateLimit"]["remaining"].as_u64()), (Some("VALID"), Some(0)));
}

/// A key with both limits, verified concurrently past its quota: the rate window always has
/// room for the uses the quota admits, so every refusal is `QUOTA_EXCEEDED`, never a
/// `RATE_LIMITED` caused by another refused verify's slot held for a moment; and the window
/// counts only the admitted uses. A rate limit just above the quota (11) is where a slot held
/// by a refused verify would fill the window; 1000 is the loose case.
#[tokio::test]
async fn sixty_parallel_verifies_past_a_quota_under_a_rate_limit_are_all_quota_exceeded() {
    let app = spawn_app().await;
    for rate_limit in [11, 1000] {
        let limits = json!({ "quota": { "max": 10 }, "rateLimit": { "limit": rate_limit, "periodSeconds": 3600 } });
        let (id, secret) = key(&app, limits).await;
        let body = json!({ "key": secret });
        let answers = futures::future::join_all((0..60).map(|_| app.verify(&body))).await;
        let count = |code: &str| answers.iter().filter(|a| a.body["code"] == code).count();
        assert_eq!(
            (count("VALID"), count("QUOTA_EXCEEDED"), count("RATE_LIMITED")),
            (10, 50, 0),
            "rate limit {rate_limit}"
        );
        let window =
            apikeys::model::RateLimit { limit: rate_limit, period_seconds: 3600 }.window_at(app.app.clock.now());
        let pk = apikeys::store::items::rate_pk(
            &app.company,
            &apikeys::model::KeyId::parse(&id, "id").unwrap(),
            window.number,
        );
        let stored = app.stored_item(&pk, apikeys::store::items::RATE_SK).await.expect("the rate window");
        assert_eq!(stored["used"].as_n().map(String::as_str), Ok("10"), "rate limit {rate_limit}: admitted uses only");
    }
}

/// Both limits used up: the rate limit comes first, so `RATE_LIMITED`; a verify the rate limit
/// refuses uses none of the quota; a use both admit still refreshes `lastUsedAt`.
#[tokio::test]
async fn with_both_limits_a_full_window_answers_first_and_keeps_the_quota() {
    let app = spawn_app().await;
    let limits = json!({ "quota": { "max": 3 }, "rateLimit": { "limit": 2, "periodSeconds": 60 } });
    let (id, secret) = key(&app, limits).await;
    for _ in 0..2 {
        assert_eq!(code(&app, json!({ "key": secret })).await, "VALID");
    }
    assert_eq!(app.get_key(&id).await.body["lastUsedAt"], "2030-01-01T00:00:00Z");
    for _ in 0..3 {
        assert_eq!(code(&app, json!({ "key": secret })).await, "RATE_LIMITED");
    }
    assert_eq!(app.get_key(&id).await.body["quota"]["remaining"], 1, "refused verifies used none of the quota");
    app.advance(60);
    assert_eq!(code(&app, json!({ "key": secret })).await, "VALID");
    assert_eq!(code(&app, json!({ "key": secret })).await, "QUOTA_EXCEEDED", "the window has room");
    // Quota and window both used up: the window is checked first.
    let (id2, secret2) =
        key(&app, json!({ "quota": { "max": 1 }, "rateLimit": { "limit": 1, "periodSeconds": 60 } })).await;
    assert_eq!(code(&app, json!({ "key": secret2 })).await, "VALID");
    assert_eq!(code(&app, json!({ "key": secret2 })).await, "RATE_LIMITED");
    assert_eq!(app.get_key(&id2).await.body["quota"]["remaining"], 0);
}

#[tokio::test]
async fn last_used_at_is_written_at_most_once_a_minute() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({})).await;
    assert_eq!(app.get_key(&id).await.body["lastUsedAt"], Value::Null);
    app.advance(10);
    code(&app, json!({ "key": secret })).await;
    app.settle_calls().await;
    assert_eq!(app.get_key(&id).await.body["lastUsedAt"], "2030-01-01T00:00:10Z");
    app.advance(30);
    code(&app, json!({ "key": secret })).await;
    app.settle_calls().await;
    assert_eq!(app.get_key(&id).await.body["lastUsedAt"], "2030-01-01T00:00:10Z", "within the minute: unchanged");
    app.advance(31);
    code(&app, json!({ "key": secret })).await;
    app.settle_calls().await;
    assert_eq!(app.get_key(&id).await.body["lastUsedAt"], "2030-01-01T00:01:11Z");
}

#[tokio::test]
async fn a_verify_without_limits_is_one_read_and_with_limits_one_more_write() {
    let app = spawn_app().await;
    let (_, plain) = key(&app, json!({})).await;
    let (_, limited) = key(&app, json!({ "rateLimit": { "limit": 100, "periodSeconds": 60 } })).await;
    let (_, quota) = key(&app, json!({ "quota": { "max": 100 } })).await;
    for secret in [&plain, &limited, &quota] {
        code(&app, json!({ "key": secret })).await;
    }
    app.settle_calls().await;
    code(&app, json!({ "key": plain })).await;
    assert_eq!(app.calls_made().await, vec!["GetItem"], "the caller is kept: the key's lookup alone");
    code(&app, json!({ "key": limited })).await;
    assert_eq!(app.calls_made().await, vec!["GetItem", "UpdateItem"]);
    code(&app, json!({ "key": quota })).await;
    assert_eq!(app.calls_made().await, vec!["GetItem", "UpdateItem"]);
    code(&app, json!({ "key": app.root_key })).await;
    assert_eq!(app.calls_made().await, vec!["GetItem"], "a root key verifying itself");
    // A caller not kept (its time is up): the caller's and the key's lookups in one read.
    app.advance(apikeys::settings::DEFAULT_CALLER_CACHE_SECONDS as i64);
    code(&app, json!({ "key": plain })).await;
    assert_eq!(app.calls_made().await, vec!["BatchGetItem"], "the caller's and the key's lookups in one read");
    app.advance(apikeys::settings::DEFAULT_CALLER_CACHE_SECONDS as i64);
    code(&app, json!({ "key": app.root_key })).await;
    assert_eq!(app.calls_made().await, vec!["BatchGetItem"], "one lookup, read once");
}

#[tokio::test]
async fn an_unknown_or_refused_caller_learns_nothing_of_the_key() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({})).await;
    let unknown = apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret);
    let (_, reader) = key(&app, json!({ "acl": [{ "permissions": ["keys:read"] }] })).await;
    let (_, rival) = app.other_company_root_key().await;
    let body = json!({ "key": secret });
    let cases = [
        (Some(unknown.expose().to_owned()), StatusCode::UNAUTHORIZED),
        (Some("sk_malformed".to_owned()), StatusCode::UNAUTHORIZED),
        (None, StatusCode::UNAUTHORIZED),
        (Some(reader), StatusCode::FORBIDDEN),
    ];
    for (caller, status) in cases {
        let response = app.send(Method::POST, "/keys/verify", caller.as_deref(), Some(&body), &[]).await;
        assert_eq!(response.status, status, "{caller:?}: {:?}", response.body);
        let text = response.body.to_string();
        assert!(response.body.get("error").is_some() && !text.contains("keyId") && !text.contains("valid"), "{text}");
    }
    let foreign = app.send(Method::POST, "/keys/verify", Some(&rival), Some(&body), &[]).await;
    assert_eq!(foreign.body, json!({ "valid": false, "code": "NOT_FOUND" }), "another company's key");
    app.settle_calls().await;
    assert_eq!(app.get_key(&id).await.body["lastUsedAt"], Value::Null, "the key was not used");
}

/// `cost`: what one verify takes of the quota (the rate limit still counts each verify as one);
/// a use that does not fit takes nothing and answers what is left.
#[tokio::test]
async fn a_verify_costs_its_cost_of_the_quota_and_one_of_the_rate_limit() {
    let app = spawn_app().await;
    let (id, secret) =
        key(&app, json!({ "quota": { "max": 10 }, "rateLimit": { "limit": 100, "periodSeconds": 3600 } })).await;
    let answers = [
        (4, "VALID", 6, 99),
        (4, "VALID", 2, 98),
        (4, "QUOTA_EXCEEDED", 2, 98),
        (11, "QUOTA_EXCEEDED", 2, 98),
        (0, "VALID", 2, 97),
        (2, "VALID", 0, 96),
        (0, "QUOTA_EXCEEDED", 0, 96),
    ];
    for (cost, expected, remaining, rate_remaining) in answers {
        let answer = app.verify(&json!({ "key": secret, "cost": cost })).await.body;
        assert_eq!(answer["code"], expected, "cost {cost}: {answer}");
        assert_eq!(answer["quota"], json!({ "remaining": remaining }), "cost {cost}: {answer}");
        let shown = app.get_key(&id).await.body;
        assert_eq!(shown["quota"]["remaining"], remaining, "cost {cost}: what the table holds");
        if expected == "VALID" {
            assert_eq!(answer["rateLimit"]["remaining"], rate_remaining, "cost {cost}: one verify, one use");
        }
    }
    // No quota: the cost takes nothing, and a verify is still one use of the rate limit.
    let (_, limited) = key(&app, json!({ "rateLimit": { "limit": 2, "periodSeconds": 3600 } })).await;
    assert_eq!(app.verify(&json!({ "key": limited, "cost": 10000 })).await.body["rateLimit"]["remaining"], 1);
}

#[tokio::test]
async fn a_cost_outside_0_to_10000_is_a_400_naming_it_and_counts_nothing() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({ "quota": { "max": 10 } })).await;
    for cost in [json!(10001), json!(-1), json!(1.5), json!("4"), json!(u64::MAX)] {
        let body = json!({ "key": secret, "cost": cost });
        let answer = app.send(Method::POST, "/keys/verify", Some(&app.root_key), Some(&body), &[]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{cost}: {:?}", answer.body);
        assert_eq!(answer.body["error"]["field"], "cost", "{cost}: {:?}", answer.body);
    }
    assert_eq!(app.get_key(&id).await.body["quota"]["remaining"], 10);
    // A whole number may be written with a fraction of zero, as everywhere.
    assert_eq!(app.verify(&json!({ "key": secret, "cost": 4.0 })).await.body["quota"]["remaining"], 6);
}

#[tokio::test]
async fn parallel_verifies_with_a_cost_never_overspend_a_quota_and_a_rate_refusal_gives_the_cost_back() {
    let app = spawn_app().await;
    let (id, secret) = key(&app, json!({ "quota": { "max": 10 } })).await;
    let body = json!({ "key": secret, "cost": 3 });
    let answers = futures::future::join_all((0..12).map(|_| app.verify(&body))).await;
    let valid = answers.iter().filter(|a| a.body["code"] == "VALID").count();
    assert_eq!(valid, 3, "three uses of 3 fit in 10");
    assert_eq!(app.get_key(&id).await.body["quota"]["remaining"], 1);

    // The quota takes the cost first; a full window then refuses and gives all of it back.
    let limits = json!({ "quota": { "max": 100 }, "rateLimit": { "limit": 1, "periodSeconds": 3600 } });
    let (id, secret) = key(&app, limits).await;
    assert_eq!(app.verify(&json!({ "key": secret, "cost": 30 })).await.body["quota"]["remaining"], 70);
    assert_eq!(code(&app, json!({ "key": secret, "cost": 30 })).await, "RATE_LIMITED");
    assert_eq!(app.get_key(&id).await.body["quota"]["remaining"], 70, "the refused verify's 30 given back");
}
