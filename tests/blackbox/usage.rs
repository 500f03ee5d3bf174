//! Usage over HTTP: verifications of a key show in its usage and its identity's, by outcome,
//! within the server's lag (differences.rs); a bad range is a 400 naming its parameter.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::client::{Check, unique};

/// Polls `path` until its `totals` are `expected` or the lag has passed; the last totals.
async fn totals_within(check: &Check, path: &str, expected: &Value, lag: Duration) -> Value {
    let deadline = Instant::now() + lag;
    loop {
        let usage = check.get(path).await;
        assert_eq!(usage.status, 200, "{usage:?}");
        if &usage.body["totals"] == expected || Instant::now() > deadline {
            return usage.body["totals"].clone();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn seven_valid_and_two_rate_limited_verifications_show_in_the_keys_and_identitys_usage() {
    let check = Check::new();
    // A limit of 7 an hour: 9 verifies in one window make 7 VALID and 2 RATE_LIMITED. A run that
    // straddles the hour's end counts otherwise, and is run again with a fresh key and identity.
    let (identity, key) = loop {
        let body = json!({ "externalId": unique("bb-usage") });
        let created = check.call("POST", "/identities").json(&body).send().await;
        assert_eq!(created.status, 201, "{created:?}");
        let identity = created.text("id").to_owned();
        let rate = json!({ "limit": 7, "periodSeconds": 3600 });
        let made = check.create(json!({ "userId": "bb-usage", "identityId": identity, "rateLimit": rate })).await;
        let mut codes = Vec::new();
        for _ in 0..9 {
            codes.push(check.code_of(&made.key).await);
        }
        let valid = codes.iter().filter(|c| *c == "VALID").count();
        let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
        if (valid, limited) == (7, 2) {
            break (identity, made);
        }
        assert_eq!(valid + limited, 9, "{codes:?}");
        check.call("DELETE", &format!("/keys/{}", made.id)).send().await;
        check.call("DELETE", &format!("/identities/{identity}")).send().await;
    };
    for param in ["from", "to", "granularity"] {
        let bad = check.get(&format!("/keys/{}/usage?{param}=soon", key.id)).await;
        assert!(bad.is_error(400, "invalid_field") && bad.error_field() == param, "{bad:?}");
    }
    if let Some(lag) = check.served_by().usage_lag() {
        let expected = json!({ "VALID": 7, "RATE_LIMITED": 2 });
        for path in [format!("/keys/{}/usage", key.id), format!("/identities/{identity}/usage")] {
            assert_eq!(totals_within(&check, &path, &expected, lag).await, expected, "{path} within {lag:?}");
            let days = check.get(&format!("{path}?granularity=day")).await;
            assert_eq!(days.body["totals"], expected, "{path} by day: {days:?}");
        }
    }
    assert_eq!(check.call("DELETE", &format!("/keys/{}", key.id)).send().await.status, 204);
    assert_eq!(check.call("DELETE", &format!("/identities/{identity}")).send().await.status, 204);
    check.done().await;
}
