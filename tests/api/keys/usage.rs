//! Usage: verify's lines, delivered as the subscription filter delivers them, counted once per
//! key and identity by hour and day; `GET /keys/{keyId}/usage` and
//! `GET /identities/{identityId}/usage` reading them back, within the caller's company only.

use apikeys::domain::verify::VerifyCode;
use apikeys::entry::http::metrics::verify_outcome;
use apikeys::entry::usage_aggregator::handle_logs;
use apikeys::model::usage::{Granularity, Outcome, UsageOwner, UsageRange, Verification, tally};
use apikeys::model::{CompanyId, IdentityId, KeyId};
use apikeys::store::{UsageAdded, UsageHistory};
use aws_lambda_events::event::cloudwatch_logs::LogsEvent;
use chrono::TimeDelta;
use lambda_http::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, log_batch, spawn_app, start_time};

const CODES: [(VerifyCode, Outcome); 7] = [
    (VerifyCode::Valid, Outcome::Valid),
    (VerifyCode::RateLimited, Outcome::RateLimited),
    (VerifyCode::QuotaExceeded, Outcome::QuotaExceeded),
    (VerifyCode::Forbidden, Outcome::Forbidden),
    (VerifyCode::Expired, Outcome::Expired),
    (VerifyCode::Inactive, Outcome::Inactive),
    (VerifyCode::IpNotAllowed, Outcome::IpNotAllowed),
];

/// Verify's line for a verification of `key` (of `identity`) that ended `outcome`.
fn verify_line(company: &CompanyId, key: &str, identity: Option<&str>, outcome: Outcome) -> String {
    let code = CODES.iter().find(|(_, o)| *o == outcome).unwrap().0;
    let usage = Verification {
        company: company.clone(),
        key_id: KeyId::parse(key, "keyId").unwrap(),
        identity_id: identity.map(|id| IdentityId::parse(id, "identityId").unwrap()),
        outcome,
        at: start_time(),
    };
    verify_outcome("apikeys-verify_key", code, Some(&usage), start_time()).to_string()
}

fn logs_event(batch: Value) -> LogsEvent {
    // As the runtime reads it: from the bytes (the data is decoded borrowing them).
    serde_json::from_str(&batch.to_string()).expect("a subscription delivery")
}

impl TestApp {
    async fn usage(&self, path: &str, query: &str) -> crate::helpers::TestResponse {
        self.send(Method::GET, &format!("{path}/usage{query}"), Some(&self.root_key), None, &[]).await
    }
}

#[tokio::test]
async fn a_batch_counts_for_the_key_and_its_identity_by_hour_and_day_once_however_often_delivered() {
    let app = spawn_app().await;
    let identity = app.create_identity("cust_1").await["id"].as_str().unwrap().to_owned();
    let key = app.create_key(&json!({ "userId": "u", "identityId": identity })).await;
    let key = key["id"].as_str().unwrap().to_owned();
    let company = app.company.clone();
    // Five hours after the key and identity were made.
    app.advance(5 * 3600);
    let hour = |h: i64| start_time() + TimeDelta::hours(5 - h);
    // 7 VALID three hours ago, 2 RATE_LIMITED two hours ago; a NOT_FOUND line (no usage), a
    // log message and a line of another shape in between count for nothing.
    let valid = verify_line(&company, &key, Some(&identity), Outcome::Valid);
    let limited = verify_line(&company, &key, Some(&identity), Outcome::RateLimited);
    let not_found = verify_outcome("apikeys-verify_key", VerifyCode::NotFound, None, start_time()).to_string();
    let earlier: Vec<&str> =
        [valid.as_str(); 7].into_iter().chain([not_found.as_str(), "START RequestId: x"]).collect();
    // A line with a usage but not verify's metric directive (not verify's line) counts nothing.
    let forged = format!(r#"{{"usage": {{"company": "{company}", "keyId": "{key}", "outcome": "VALID"}}}}"#);
    let later = [limited.as_str(), limited.as_str(), r#"{"usage": {"company": "acme"}}"#, forged.as_str()];
    let deliveries = [logs_event(log_batch(&earlier, hour(3))), logs_event(log_batch(&later, hour(2)))];

    for delivery in &deliveries {
        let added = handle_logs(&app.app.store, delivery).await.unwrap();
        // An hour and a day, of the key and of the identity.
        assert_eq!(added, UsageAdded { written: 4, already_added: 0 });
    }
    for delivery in &deliveries {
        let again = handle_logs(&app.app.store, delivery).await.unwrap();
        assert_eq!(again, UsageAdded { written: 0, already_added: 4 }, "a redelivered batch adds nothing");
    }

    let at = |h: i64| hour(h).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let hours = json!([
        { "start": at(3), "counts": { "VALID": 7 } },
        { "start": at(2), "counts": { "RATE_LIMITED": 2 } },
    ]);
    for path in [format!("/keys/{key}"), format!("/identities/{identity}")] {
        let usage = app.usage(&path, "").await;
        assert_eq!(usage.status, StatusCode::OK, "{:?}", usage.body);
        assert_eq!(
            usage.body,
            json!({
                "granularity": "hour",
                "from": at(24),
                "to": at(0),
                "totals": { "VALID": 7, "RATE_LIMITED": 2 },
                "buckets": hours,
            }),
            "{path}: the last 24 hours by default, empty hours left out"
        );
        let days = app.usage(&path, "?granularity=day&from=2029-12-01T00:00:00Z").await;
        assert_eq!(
            days.body["buckets"],
            json!([{ "start": "2030-01-01T00:00:00Z", "counts": { "VALID": 7, "RATE_LIMITED": 2 } }])
        );
        let one_hour = app.usage(&path, &format!("?from={}&to={}", at(2), at(1))).await;
        assert_eq!(one_hour.body["totals"], json!({ "RATE_LIMITED": 2 }), "from's hour in, to excluded");
        let before = app.usage(&path, &format!("?from=2029-12-30T00:00:00Z&to={}", at(3))).await;
        assert_eq!(before.body["totals"], json!({}), "nothing counted then");
        assert_eq!(before.body["buckets"], json!([]));
    }
}

#[tokio::test]
async fn a_delivery_cut_short_after_its_first_part_adds_only_the_rest_when_delivered_again() {
    let app = spawn_app().await;
    let store = &app.app.store;
    let company = app.company.clone();
    // 60 keys: 120 increments (an hour and a day each), two transactions of up to 99.
    let verifications: Vec<Verification> = (0..60)
        .map(|i| Verification {
            company: company.clone(),
            key_id: KeyId::parse(&format!("key-{i:02}"), "keyId").unwrap(),
            identity_id: None,
            outcome: Outcome::Valid,
            at: start_time(),
        })
        .collect();
    let increments = tally(&verifications);
    assert_eq!(increments.len(), 120);
    let first_part = store.add_usage("batch-1", &increments[..99]).await.unwrap();
    assert_eq!(first_part, UsageAdded { written: 99, already_added: 0 });
    let whole = store.add_usage("batch-1", &increments).await.unwrap();
    assert_eq!(whole, UsageAdded { written: 21, already_added: 99 });
    let range = UsageRange::parse([("granularity", "day")], start_time() + TimeDelta::hours(1)).unwrap();
    for v in &verifications {
        let buckets = store.read_usage(&company, &UsageOwner::Key(v.key_id.clone()), &range).await.unwrap();
        let counted: Vec<(Granularity, u64)> =
            buckets.iter().map(|b| (range.granularity, b.counts[&Outcome::Valid])).collect();
        assert_eq!(counted, [(Granularity::Day, 1)], "{}: counted once", v.key_id);
    }
}

#[tokio::test]
async fn every_outcome_but_not_found_is_counted_under_its_code() {
    let app = spawn_app().await;
    let key = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    let lines: Vec<String> = CODES.iter().map(|(_, outcome)| verify_line(&app.company, &key, None, *outcome)).collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    app.advance(3600);
    handle_logs(&app.app.store, &logs_event(log_batch(&lines, start_time() + TimeDelta::minutes(5)))).await.unwrap();
    let usage = app.usage(&format!("/keys/{key}"), "").await;
    let expected: serde_json::Map<String, Value> =
        CODES.iter().map(|(code, _)| (code.as_str().to_owned(), json!(1))).collect();
    assert_eq!(usage.body["totals"], Value::Object(expected));
}

#[tokio::test]
async fn a_bad_range_is_a_400_naming_its_parameter() {
    let app = spawn_app().await;
    let key = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    let month_ago = (start_time() - TimeDelta::days(32)).to_rfc3339();
    let year_ago = (start_time() - TimeDelta::days(367)).to_rfc3339();
    let cases = [
        ("?from=yesterday", "from"),
        ("?to=2030-01-01", "to"),
        ("?granularity=week", "granularity"),
        ("?from=2030-01-01T00:00:00Z&to=2029-12-31T00:00:00Z", "to"),
        (&format!("?from={month_ago}") as &str, "from"),
        (&format!("?granularity=day&from={year_ago}"), "from"),
        ("?limit=10", "limit"),
        ("?from=2029-12-31T00:00:00Z&from=2029-12-31T01:00:00Z", "from"),
    ];
    for (query, field) in cases {
        for path in [format!("/keys/{key}"), "/identities/id_0190a5e4c3b27d5e9f1a2b3c4d5e6f70".to_owned()] {
            let refused = app.usage(&path, &query.replace('+', "%2B")).await;
            assert_eq!((refused.status, refused.error_field()), (StatusCode::BAD_REQUEST, field), "{path}{query}");
        }
    }
}

#[tokio::test]
async fn usage_is_read_only_by_a_key_that_may_read_keys_of_the_same_company() {
    let app = spawn_app().await;
    let key = app.create_key(&json!({ "userId": "u" })).await["id"].as_str().unwrap().to_owned();
    let path = format!("/keys/{key}/usage");
    let (_, verifier) =
        app.create_key_pair(&json!({ "userId": "v", "acl": [{ "permissions": ["keys:verify"] }] })).await;
    let (_, reader) = app.create_key_pair(&json!({ "userId": "r", "acl": [{ "permissions": ["keys:read"] }] })).await;
    let (_, rival) = app.other_company_root_key().await;
    let as_key = async |caller: &str, path: &str| app.send(Method::GET, path, Some(caller), None, &[]).await.status;
    assert_eq!(as_key(&reader, &path).await, StatusCode::OK);
    assert_eq!(as_key(&verifier, &path).await, StatusCode::FORBIDDEN);
    assert_eq!(as_key(&rival, &path).await, StatusCode::NOT_FOUND, "another company's key is none");
    assert_eq!(as_key(&app.root_key, "/keys/no-such-key/usage").await, StatusCode::NOT_FOUND);
    let no_identity = "/identities/id_0190a5e4c3b27d5e9f1a2b3c4d5e6f70/usage";
    assert_eq!(as_key(&app.root_key, no_identity).await, StatusCode::NOT_FOUND);
    assert_eq!(app.send(Method::GET, &path, None, None, &[]).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_does_not_show_what_was_counted_before_it_was_made() {
    let app = spawn_app().await;
    // Counted for the id `reused` an hour before a key with that id is made (an older key with
    // the same custom id, since gone from the table).
    let earlier = verify_line(&app.company, "reused", None, Outcome::Valid);
    handle_logs(&app.app.store, &logs_event(log_batch(&[earlier.as_str()], start_time() - TimeDelta::hours(1))))
        .await
        .unwrap();
    let body = json!({ "userId": "u" });
    let created = app.send(Method::POST, "/keys/reused", Some(&app.root_key), Some(&body), &[]).await;
    assert_eq!(created.status, StatusCode::CREATED);
    app.advance(3600);
    let now = verify_line(&app.company, "reused", None, Outcome::Valid);
    handle_logs(&app.app.store, &logs_event(log_batch(&[now.as_str()], start_time() + TimeDelta::minutes(1))))
        .await
        .unwrap();
    let usage = app.usage("/keys/reused", "").await;
    assert_eq!(usage.body["totals"], json!({ "VALID": 1 }), "{:?}", usage.body);
}
