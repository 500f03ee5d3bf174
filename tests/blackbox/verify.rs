//! `POST /keys/verify`: every code, in its order, and what a refused verify leaves alone.

use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::client::{Check, Failures};

#[tokio::test]
async fn a_valid_key_answers_who_it_is() {
    let check = Check::new();
    let made = check
        .create(json!({
            "userId": "verify-user",
            "acl": [{ "permissions": ["invoices:read"] }],
            "rateLimit": { "limit": 5, "periodSeconds": 3600 },
            "quota": { "max": 10 },
        }))
        .await;
    let answer = check.verify(json!({ "key": made.key, "permissions": ["invoices:read"] })).await;
    assert_eq!((&answer.body["valid"], answer.text("code")), (&json!(true), "VALID"), "{answer:?}");
    assert_eq!((answer.text("keyId"), answer.text("userId")), (made.id.as_str(), "verify-user"));
    assert_eq!((&answer.body["rateLimit"]["limit"], &answer.body["rateLimit"]["remaining"]), (&json!(5), &json!(4)));
    assert!(answer.body["rateLimit"]["resetAt"].is_string(), "{answer:?}");
    assert_eq!(answer.body["quota"]["remaining"], json!(9));
    assert!(answer.body["permissions"].as_array().unwrap().contains(&json!("invoices:read")));
    let used = check.get(&format!("/keys/{}", made.id)).await;
    assert!(used.body["lastUsedAt"].is_string(), "a valid verify sets lastUsedAt: {:?}", used.body);
    check.done().await;
}

/// Each refusal code, from a key made for it.
#[tokio::test]
async fn each_refusal_has_its_code() {
    let check = Check::new();
    let plain = check.create(json!({ "userId": "verify" })).await;
    let inactive = check.create(json!({ "userId": "verify" })).await;
    let patched =
        check.call("PATCH", &format!("/keys/{}", inactive.id)).json(&json!({ "status": "inactive" })).send().await;
    assert_eq!(patched.status, 200);
    let deleted = check.create(json!({ "userId": "verify" })).await;
    assert_eq!(check.call("DELETE", &format!("/keys/{}", deleted.id)).send().await.status, 204);
    let allowlisted =
        check.create(json!({ "userId": "verify", "whitelistedIPs": ["203.0.113.0/24", "2001:db8::/32"] })).await;
    let scoped = check
        .create(
            json!({ "userId": "verify", "acl": [{ "permissions": ["invoices:*"], "scope": { "productId": ["p1"] } }] }),
        )
        .await;
    let limited = check.create(json!({ "userId": "verify", "rateLimit": { "limit": 1, "periodSeconds": 3600 } })).await;
    let quota = check.create(json!({ "userId": "verify", "quota": { "max": 1 } })).await;
    assert_eq!(check.code_of(&limited.key).await, "VALID");
    assert_eq!(check.code_of(&quota.key).await, "VALID");
    let others = check.create_with(check.other_root(), json!({ "userId": "verify" })).await;
    let mut mistyped = plain.key.clone();
    let swapped = if &mistyped[5..6] == "a" { "b" } else { "a" };
    mistyped.replace_range(5..6, swapped);
    let rows: Vec<(&str, Value, &str)> = vec![
        ("valid", json!({ "key": plain.key }), "VALID"),
        ("malformed", json!({ "key": "sk_nothing" }), "NOT_FOUND"),
        ("a mistyped character", json!({ "key": mistyped }), "NOT_FOUND"),
        ("another company's key", json!({ "key": others.key }), "NOT_FOUND"),
        ("deactivated", json!({ "key": inactive.key }), "INACTIVE"),
        ("deleted", json!({ "key": deleted.key }), "INACTIVE"),
        ("ip in the allowlist", json!({ "key": allowlisted.key, "ip": "203.0.113.9" }), "VALID"),
        ("ipv6 in the allowlist", json!({ "key": allowlisted.key, "ip": "2001:db8::1" }), "VALID"),
        ("ipv4-mapped ipv6", json!({ "key": allowlisted.key, "ip": "::ffff:203.0.113.9" }), "VALID"),
        ("ip outside the allowlist", json!({ "key": allowlisted.key, "ip": "198.51.100.1" }), "IP_NOT_ALLOWED"),
        ("no ip for an allowlist", json!({ "key": allowlisted.key }), "IP_NOT_ALLOWED"),
        (
            "a permission the ACL grants",
            json!({ "key": scoped.key, "permissions": ["invoices:read"], "scope": { "productId": ["p1"] } }),
            "VALID",
        ),
        ("a permission outside the ACL", json!({ "key": scoped.key, "permissions": ["users:read"] }), "FORBIDDEN"),
        (
            "a scope outside the ACL",
            json!({ "key": scoped.key, "permissions": ["invoices:read"], "scope": { "productId": ["p2"] } }),
            "FORBIDDEN",
        ),
        (
            "any permission of a key without ACL",
            json!({ "key": plain.key, "permissions": ["invoices:read"] }),
            "FORBIDDEN",
        ),
        ("over its rate limit", json!({ "key": limited.key }), "RATE_LIMITED"),
        ("out of its quota", json!({ "key": quota.key }), "QUOTA_EXCEEDED"),
    ];
    let mut failures = Failures::default();
    for (what, body, code) in &rows {
        let answer = check.verify(body.clone()).await;
        let valid = answer.body["valid"] == json!(*code == "VALID");
        failures.check(answer.text("code") == *code && valid, || format!("{what}: {answer:?}"));
        if *code != "VALID" {
            failures.check(answer.body.get("keyId").is_none_or(|id| id != &json!(others.id)), || {
                format!("{what}: leaks {answer:?}")
            });
        }
    }
    failures.assert_none(rows.len());
    check.done().await;
}

/// A refused verify uses up neither the rate limit nor the quota.
#[tokio::test]
async fn a_refused_verify_uses_up_no_limit() {
    let check = Check::new();
    let made = check
        .create(json!({
            "userId": "verify",
            "whitelistedIPs": ["203.0.113.0/24"],
            "rateLimit": { "limit": 2, "periodSeconds": 3600 },
            "quota": { "max": 2 },
        }))
        .await;
    for _ in 0..3 {
        assert_eq!(check.verify(json!({ "key": made.key, "ip": "198.51.100.1" })).await.text("code"), "IP_NOT_ALLOWED");
    }
    let inside = json!({ "key": made.key, "ip": "203.0.113.1" });
    let codes = [check.verify(inside.clone()).await, check.verify(inside.clone()).await, check.verify(inside).await];
    let codes: Vec<&str> = codes.iter().map(|a| a.text("code")).collect();
    assert_eq!(codes, ["VALID", "VALID", "RATE_LIMITED"]);
    check.done().await;
}

/// A verify's `cost` is what it takes of the quota; one that does not fit takes nothing.
#[tokio::test]
async fn a_verify_takes_its_cost_of_the_quota() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "verify", "quota": { "max": 10 } })).await;
    let mut answers = Vec::new();
    for _ in 0..3 {
        let answer = check.verify(json!({ "key": made.key, "cost": 4 })).await;
        answers.push((answer.text("code").to_owned(), answer.body["quota"]["remaining"].clone()));
    }
    let expected = [("VALID", 6), ("VALID", 2), ("QUOTA_EXCEEDED", 2)].map(|(c, r)| (c.to_owned(), json!(r)));
    assert_eq!(answers, expected);
    let bad = check.call("POST", "/keys/verify").json(&json!({ "key": made.key, "cost": 10001 })).send().await;
    assert_eq!((bad.status, bad.body["error"]["field"].as_str()), (400, Some("cost")), "{bad:?}");
    check.done().await;
}

/// Past `expiresAt` a key is EXPIRED. The server's time is read from a key it just made (no
/// clock here is trusted to match the server's); the wait polls, at most 15 s.
#[tokio::test]
async fn a_key_past_its_expiry_is_expired() {
    let check = Check::new();
    let probe = check.create(json!({ "userId": "verify" })).await;
    let now: DateTime<Utc> = probe.body["createdAt"].as_str().unwrap().parse().unwrap();
    let expires = (now + TimeDelta::seconds(2)).to_rfc3339_opts(SecondsFormat::Millis, true);
    let made = check.create(json!({ "userId": "verify", "expiresAt": expires })).await;
    assert_eq!(made.body["expiresAt"], json!(expires));
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut code = check.code_of(&made.key).await;
    assert!(code == "VALID" || code == "EXPIRED", "{code}");
    while code == "VALID" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        code = check.code_of(&made.key).await;
    }
    assert_eq!(code, "EXPIRED");
    check.done().await;
}
