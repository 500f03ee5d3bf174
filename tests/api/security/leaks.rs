//! Leak response: a company's own key prefix (`GET`/`PATCH /company`) and GitHub's secret
//! scanning reports (`POST /secret-scanning/github`), signed with a key pair made here.

use std::sync::Arc;

use apikeys::model::secret_scanning::TrustedKeys;
use base64::Engine;
use lambda_http::http::{Method, Request as HttpRequest, StatusCode};
use lambda_http::{Body, Request};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::{TestApp, TestResponse, TransactionFault, mistyped, spawn_app};

/// A scanner's key pair, its identifier, and the document of trusted keys holding its public half.
pub struct Scanner {
    pub key: SigningKey,
    pub id: &'static str,
}

impl Scanner {
    pub fn new() -> Self {
        // 32 random bytes are a P-256 scalar but for a chance of about 2^-32: draw again then.
        let key = std::iter::repeat_with(rand::random::<[u8; 32]>).find_map(|b| SigningKey::from_slice(&b).ok());
        Self { key: key.unwrap(), id: "test-scanner-key-1" }
    }

    /// SPKI PEM of the public half, as GitHub serves its own.
    pub fn document(&self) -> String {
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(self.key.verifying_key().to_sec1_point(false).as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
        json!({ "public_keys": [{ "key_identifier": self.id, "key": pem, "is_current": true }] }).to_string()
    }

    pub fn sign(&self, body: &[u8]) -> String {
        let signature: Signature = self.key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }
}

/// A report of `tokens` as GitHub sends it, each found at the same place.
fn report(tokens: &[&str]) -> Vec<u8> {
    report_at(tokens.iter().map(|token| (*token, "https://github.com/o/r/blob/x/.env")))
}

/// A report of (token, url) matches as GitHub sends it.
fn report_at<'a>(matches: impl Iterator<Item = (&'a str, &'a str)>) -> Vec<u8> {
    let matches: Vec<Value> = matches
        .map(|(token, url)| json!({ "token": token, "type": "apikeys_secret", "url": url, "source": "content" }))
        .collect();
    Value::Array(matches).to_string().into_bytes()
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TestApp {
    fn trusting(mut self, scanner: &Scanner) -> Self {
        self.app.scanning_keys = Some(Arc::new(TrustedKeys::parse(&scanner.document()).unwrap()));
        self
    }

    async fn scan(&self, body: &[u8], headers: &[(&str, &str)]) -> TestResponse {
        let mut builder = HttpRequest::builder().method(Method::POST).uri("/secret-scanning/github");
        builder = builder.header("content-type", "application/json");
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let request: Request = builder.body(Body::Binary(body.to_vec())).unwrap();
        self.send_request(request).await
    }

    async fn signed_scan(&self, scanner: &Scanner, body: &[u8]) -> TestResponse {
        let signature = scanner.sign(body);
        self.scan(body, &[("github-public-key-identifier", scanner.id), ("github-public-key-signature", &signature)])
            .await
    }

    async fn code_of(&self, key: &str) -> String {
        self.verify(&json!({ "key": key })).await.body["code"].as_str().unwrap().to_owned()
    }

    async fn actions(&self, id: &str) -> Vec<String> {
        let events = self.send(Method::GET, &format!("/keys/{id}/events"), Some(&self.root_key), None, &[]).await;
        events.body["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect()
    }

    async fn patch_company(&self, key: &str, body: &Value, headers: &[(&str, &str)]) -> TestResponse {
        self.send(Method::PATCH, "/company", Some(key), Some(body), headers).await
    }

    /// How many `leaked` records the key's audit trail holds, over every page of it.
    async fn leaks_audited(&self, id: &str) -> usize {
        let mut path = format!("/keys/{id}/events?limit=100");
        let mut leaked = 0;
        loop {
            let page = self.send(Method::GET, &path, Some(&self.root_key), None, &[]).await;
            assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
            leaked += page.body["data"].as_array().unwrap().iter().filter(|e| e["action"] == "leaked").count();
            match page.body["nextUrl"].as_str() {
                Some(next) => path = next.to_owned(),
                None => return leaked,
            }
        }
    }

    /// The app with a client meeting `faults` (`script_transactions`), still trusting `scanner`.
    async fn faulty(mut self, scanner: &Scanner, faults: Vec<TransactionFault>) -> Self {
        self.script_transactions(faults).await;
        self.trusting(scanner)
    }

    /// How many DynamoDB calls of each operation were made since the last look.
    async fn calls_by_operation(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counted = std::collections::BTreeMap::new();
        for operation in self.calls_made().await {
            *counted.entry(operation).or_default() += 1;
        }
        counted
    }
}

/// `(operation, calls)` pairs as `calls_by_operation` counts them.
fn calls(counted: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    counted.iter().map(|(operation, n)| ((*operation).to_owned(), *n)).collect()
}

#[tokio::test]
async fn a_reported_live_key_is_revoked_once_and_answered_the_same_again() {
    let scanner = Scanner::new();
    let app = spawn_app().await.trusting(&scanner);
    let (id, secret) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    let body =
        report(&[&secret, "ghp_not_one_of_ours_0123456789", "sk_1111111111111111111111111111111111111111111111"]);
    let first = app.signed_scan(&scanner, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(
        first.body,
        json!([
            { "token_hash": token_hash(&secret), "token_type": "apikeys_secret", "label": "true_positive" },
            { "token_hash": token_hash("ghp_not_one_of_ours_0123456789"), "token_type": "apikeys_secret", "label": "false_positive" },
            { "token_hash": token_hash("sk_1111111111111111111111111111111111111111111111"), "token_type": "apikeys_secret", "label": "false_positive" },
        ])
    );
    assert_eq!(app.code_of(&secret).await, "INACTIVE", "policy revoke: deleted at once");
    assert_eq!(app.actions(&id).await, ["leaked", "created"]);
    let events = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await;
    assert_eq!(events.body["data"][0]["changes"]["leakUrl"], "https://github.com/o/r/blob/x/.env");
    assert_eq!(events.body["data"][0]["changes"]["status"], "inactive");
    assert_eq!(events.body["data"][0]["actorType"], "operator");
    let schema = crate::contract::openapi::spec().pointer("/components/schemas/KeyEventList").unwrap();
    let errors =
        crate::contract::openapi::conforms(schema, &events.body, crate::contract::openapi::Direction::Response);
    assert_eq!(errors, Vec::<String>::new(), "a leaked event as openapi.yaml describes it");

    let again = app.signed_scan(&scanner, &body).await;
    assert_eq!((again.status, &again.body), (StatusCode::OK, &first.body), "the same answer");
    assert_eq!(app.actions(&id).await, ["leaked", "created"], "nothing more written");
    let text = format!("{:?}", first.body);
    assert!(!text.contains(&secret), "no plaintext in the answer");
}

#[tokio::test]
async fn the_companys_last_admin_key_and_a_secret_in_its_grace_period_are_revoked_too() {
    let scanner = Scanner::new();
    let app = spawn_app().await.trusting(&scanner);
    // The root key is the company's only admin key; a verify-only key checks it afterwards.
    let (_, verifier) =
        app.create_key_pair(&json!({ "userId": "v", "acl": [{ "permissions": ["keys:verify"] }] })).await;
    let answer = app.signed_scan(&scanner, &report(&[&app.root_key])).await;
    assert_eq!(answer.body[0]["label"], "true_positive");
    let asked = json!({ "key": app.root_key });
    let checked = app.send(Method::POST, "/keys/verify", Some(&verifier), Some(&asked), &[]).await;
    assert_eq!(checked.body["code"], "INACTIVE");

    let app = spawn_app().await.trusting(&scanner);
    let (id, old) = app.create_key_pair(&json!({ "userId": "rolled" })).await;
    let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 3600 }))).await;
    let new = rolled.body["key"].as_str().unwrap().to_owned();
    assert_eq!(app.code_of(&old).await, "VALID", "the old secret serves its grace");
    let answer = app.signed_scan(&scanner, &report(&[&old])).await;
    assert_eq!(answer.body[0]["label"], "true_positive");
    // The key is deleted, its old secret forgotten: neither verifies.
    assert_eq!((app.code_of(&old).await, app.code_of(&new).await), ("NOT_FOUND".into(), "INACTIVE".into()));
}

#[tokio::test]
async fn with_policy_notify_the_key_stays_valid_and_the_leak_is_audited_once() {
    let scanner = Scanner::new();
    let app = notifying_app(&scanner).await;
    let (id, secret) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    let body = report(&[&secret]);
    for _ in 0..2 {
        let answer = app.signed_scan(&scanner, &body).await;
        assert_eq!(answer.body[0]["label"], "true_positive");
    }
    assert_eq!(app.code_of(&secret).await, "VALID");
    assert_eq!(app.actions(&id).await, ["leaked", "created"], "once, though reported twice");
}

/// An app trusting `scanner` whose company's leak policy is `notify`.
async fn notifying_app(scanner: &Scanner) -> TestApp {
    let app = spawn_app().await.trusting(scanner);
    let patched = app.patch_company(&app.root_key, &json!({ "leakPolicy": "notify" }), &[]).await;
    assert_eq!((patched.status, &patched.body["leakPolicy"]), (StatusCode::OK, &json!("notify")), "{:?}", patched.body);
    app
}

/// A request's headers, as (name, value).
type Headers<'a> = Vec<(&'a str, &'a str)>;

#[tokio::test]
async fn an_unsigned_wrongly_signed_or_unknown_key_report_is_401_and_revokes_nothing() {
    let scanner = Scanner::new();
    let app = spawn_app().await.trusting(&scanner);
    let (_, secret) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    let body = report(&[&secret]);
    let good = scanner.sign(&body);
    let other = Scanner::new().sign(&body);
    let tampered = report(&[&secret, "x"]);
    let cases: [(&[u8], Headers<'_>); 6] = [
        (&body, vec![]),
        (&body, vec![("github-public-key-identifier", scanner.id)]),
        (&body, vec![("github-public-key-identifier", scanner.id), ("github-public-key-signature", &other)]),
        (&body, vec![("github-public-key-identifier", "someone-else"), ("github-public-key-signature", &good)]),
        (&body, vec![("github-public-key-identifier", scanner.id), ("github-public-key-signature", "not base64!")]),
        (&tampered, vec![("github-public-key-identifier", scanner.id), ("github-public-key-signature", &good)]),
    ];
    let items = app.item_count().await;
    for (body, headers) in cases {
        let refused = app.scan(body, &headers).await;
        assert_eq!(
            (refused.status, refused.error_code()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{headers:?}"
        );
    }
    // A root key is no signature either.
    let with_key = app.send(Method::POST, "/secret-scanning/github", Some(&app.root_key), Some(&json!([])), &[]).await;
    assert_eq!(with_key.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.code_of(&secret).await, "VALID");
    assert_eq!(app.item_count().await, items, "nothing written");
    // A server that trusts no scanner refuses every report.
    let untrusting = spawn_app().await;
    let refused = untrusting.signed_scan(&scanner, &body).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_company_prefix_leads_new_keys_while_older_keys_still_verify() {
    let app = spawn_app().await;
    let (_, older) = app.create_key_pair(&json!({ "userId": "before" })).await;
    let company = app.send(Method::GET, "/company", Some(&app.root_key), None, &[]).await;
    assert_eq!(company.status, StatusCode::OK);
    assert_eq!((&company.body["keyPrefix"], &company.body["leakPolicy"]), (&Value::Null, &json!("revoke")));
    assert_eq!(company.header("etag"), "\"0\"");

    let prefix = format!("p{}", &uuid::Uuid::now_v7().simple().to_string()[20..32]);
    let patched = app.patch_company(&app.root_key, &json!({ "keyPrefix": prefix }), &[("if-match", "\"0\"")]).await;
    assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
    assert_eq!(patched.header("etag"), "\"1\"");
    let (id, newer) = app.create_key_pair(&json!({ "userId": "after" })).await;
    assert!(newer.starts_with(&format!("{prefix}_sk_")), "{newer}");
    assert_eq!(app.get_key(&id).await.body["keyPrefix"].as_str().unwrap().len(), prefix.len() + 1 + 7);
    assert_eq!((app.code_of(&older).await, app.code_of(&newer).await), ("VALID".into(), "VALID".into()));
    let rolled = app.roll_key(&id, None).await.body["key"].as_str().unwrap().to_owned();
    assert!(rolled.starts_with(&format!("{prefix}_sk_")));
    // A mistyped prefixed key is refused with no read.
    app.settle_calls().await;
    assert_eq!(app.code_of(&mistyped(&rolled)).await, "NOT_FOUND");

    let patterns = app.send(Method::GET, "/company", Some(&app.root_key), None, &[]).await.body["keyPatterns"].clone();
    let secret = regex::Regex::new(patterns["secret"].as_str().unwrap()).unwrap();
    assert!(secret.is_match(&rolled) && !secret.is_match(&older), "{patterns}");
    let (_, rival) = app.other_company_root_key().await;
    let (_, theirs) = {
        let made = app.send(Method::POST, "/keys", Some(&rival), Some(&json!({ "userId": "r" })), &[]).await;
        ((), made.body["key"].as_str().unwrap().to_owned())
    };
    assert!(!secret.is_match(&theirs));
    // Another company cannot take the prefix; this one's stale If-Match is 412.
    let taken = app.patch_company(&rival, &json!({ "keyPrefix": prefix }), &[]).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{:?}", taken.body);
    let stale = app.patch_company(&app.root_key, &json!({ "leakPolicy": "notify" }), &[("if-match", "\"0\"")]).await;
    assert_eq!(stale.status, StatusCode::PRECONDITION_FAILED);
}

#[tokio::test]
async fn only_a_key_holding_all_of_keys_changes_the_companys_settings_and_bad_input_names_its_field() {
    let app = spawn_app().await;
    let (_, writer) =
        app.create_key_pair(&json!({ "userId": "w", "acl": [{ "permissions": ["keys:write", "keys:read"] }] })).await;
    let refused = app.patch_company(&writer, &json!({ "leakPolicy": "notify" }), &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{:?}", refused.body);
    let read = app.send(Method::GET, "/company", Some(&writer), None, &[]).await;
    assert_eq!((read.status, &read.body["leakPolicy"]), (StatusCode::OK, &json!("revoke")), "unchanged");
    for (body, field) in [
        (json!({ "keyPrefix": "A" }), "keyPrefix"),
        (json!({ "keyPrefix": "sk" }), "keyPrefix"),
        (json!({ "leakPolicy": "ignore" }), "leakPolicy"),
        (json!({ "keyPatterns": {} }), "keyPatterns"),
        (json!({ "owner": "x" }), "owner"),
    ] {
        let bad = app.patch_company(&app.root_key, &body, &[]).await;
        assert_eq!((bad.status, bad.error_field()), (StatusCode::BAD_REQUEST, field), "{body}");
    }
    // A retry under the same Idempotency-Key is answered as the first, once.
    let once = [("idempotency-key", "company-1")];
    let first = app.patch_company(&app.root_key, &json!({ "leakPolicy": "notify" }), &once).await;
    let second = app.patch_company(&app.root_key, &json!({ "leakPolicy": "notify" }), &once).await;
    assert_eq!((first.status, &first.body), (second.status, &second.body));
    assert_eq!(app.send(Method::GET, "/company", Some(&app.root_key), None, &[]).await.header("etag"), "\"1\"");
}

#[tokio::test]
async fn a_publishable_key_is_public_by_design_so_its_report_revokes_nothing() {
    let scanner = Scanner::new();
    let app = spawn_app().await.trusting(&scanner);
    let (_, publishable) = app.create_key_pair(&json!({ "userId": "web", "type": "publishable" })).await;
    let answer = app.signed_scan(&scanner, &report(&[&publishable])).await;
    assert_eq!(answer.body[0]["label"], "false_positive");
    assert_eq!(app.code_of(&publishable).await, "VALID");
}

#[tokio::test]
async fn a_holder_who_rolled_the_leaked_key_away_loses_it_and_a_repeated_report_answers_the_same() {
    let scanner = Scanner::new();
    let app = spawn_app().await.trusting(&scanner);
    let (id, leaked) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    // Rolled by whoever holds it, and the grace is over: the leaked secret no longer verifies,
    // but its lookup is kept until its TTL, and names a live key.
    let rolled = app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 60 }))).await;
    let theirs = rolled.body["key"].as_str().unwrap().to_owned();
    app.advance(120);
    assert_eq!(app.code_of(&leaked).await, "NOT_FOUND");
    let body = report(&[&leaked]);
    let first = app.signed_scan(&scanner, &body).await;
    assert_eq!(first.body[0]["label"], "true_positive", "{:?}", first.body);
    assert_eq!(app.code_of(&theirs).await, "INACTIVE", "the key is revoked, its new secret too");
    let again = app.signed_scan(&scanner, &body).await;
    assert_eq!(again.body, first.body, "answered the same once the old secret's lookup is gone");
    assert_eq!(app.actions(&id).await, ["leaked", "rolled", "created"]);
}

#[tokio::test]
#[ignore = "heavy (hundreds of calls, many at once): make test runs it after the other tests, alone"]
async fn a_report_of_the_most_matches_is_judged_whole_and_answered_in_its_order() {
    use apikeys::model::secret_scanning::{MAX_REPORT_BYTES, MAX_REPORTED_TOKENS};
    let scanner = Scanner::new();
    let app = spawn_app().await.trusting(&scanner);
    // Twelve keys of one company, judged at once (their writes meet on its counters), one of
    // them reported by its new and its old secret together, one reported three times.
    let mut keys = Vec::new();
    for i in 0..12 {
        keys.push(app.create_key_pair(&json!({ "userId": format!("u{i}") })).await);
    }
    let (rolled_id, old_secret) = keys[0].clone();
    let new_secret = app.roll_key(&rolled_id, Some(&json!({ "gracePeriodSeconds": 3600 }))).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let unknown: Vec<String> = (0..40)
        .map(|_| apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret).expose().to_owned())
        .collect();
    // The new secret comes first: its revocation must not turn the old one into a stranger.
    let mut matches: Vec<(String, bool)> = vec![(new_secret.clone(), true)];
    matches.extend(keys.iter().map(|(_, secret)| (secret.clone(), true)));
    matches.extend([keys[1].1.clone(), keys[1].1.clone()].map(|secret| (secret, true)));
    matches.extend(unknown.into_iter().map(|token| (token, false)));
    matches.extend((matches.len()..MAX_REPORTED_TOKENS).map(|i| (format!("ghp_not_ours_{i}"), false)));
    let urls: Vec<String> = (0..matches.len()).map(|i| format!("https://github.com/o/r/blob/{i}/.env")).collect();
    let body = report_at(matches.iter().zip(&urls).map(|((token, _), url)| (token.as_str(), url.as_str())));

    let answer = app.signed_scan(&scanner, &body).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let expected: Vec<Value> = matches
        .iter()
        .map(|(token, ours)| {
            let label = if *ours { "true_positive" } else { "false_positive" };
            json!({ "token_hash": token_hash(token), "token_type": "apikeys_secret", "label": label })
        })
        .collect();
    let answered = answer.body.as_array().unwrap();
    assert_eq!(answered.len(), expected.len());
    let wrong = answered.iter().zip(&expected).position(|(got, want)| got != want);
    assert_eq!(wrong, None, "one entry per match, in the report's order");
    for (_, secret) in &keys[1..] {
        assert_eq!(app.code_of(secret).await, "INACTIVE");
    }
    for (id, _) in &keys {
        let leaked = app.actions(id).await.into_iter().filter(|action| action == "leaked").count();
        assert_eq!(leaked, 1, "{id}: revoked once, however many of its secrets or places were reported");
    }
    // The rolled key is deleted, its old secret forgotten.
    assert_eq!(
        (app.code_of(&old_secret).await, app.code_of(&new_secret).await),
        ("NOT_FOUND".into(), "INACTIVE".into())
    );

    // One more match is refused whole, and so is a body over the cap; nothing is written.
    let (_, live) = app.create_key_pair(&json!({ "userId": "later" })).await;
    let items = app.item_count().await;
    let too_many = report(&vec![live.as_str(); MAX_REPORTED_TOKENS + 1]);
    let refused = app.signed_scan(&scanner, &too_many).await;
    assert_eq!((refused.status, &refused.body["error"]["field"]), (StatusCode::BAD_REQUEST, &json!("body")));
    let huge = format!("[{}]", " ".repeat(MAX_REPORT_BYTES));
    let refused = app.signed_scan(&scanner, huge.as_bytes()).await;
    assert_eq!(refused.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(refused.body["error"]["message"], "the body is larger than 2048 KiB");
    assert_eq!((app.code_of(&live).await, app.item_count().await), ("VALID".into(), items));
}

#[tokio::test]
async fn with_policy_notify_one_token_found_at_three_places_in_one_report_is_audited_three_times() {
    let scanner = Scanner::new();
    let app = notifying_app(&scanner).await;
    let (id, secret) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    let places = ["https://github.com/o/r/1", "https://github.com/o/r/2", "https://github.com/o/r/3"];
    let body = report_at(places.iter().map(|url| (secret.as_str(), *url)));
    let answer = app.signed_scan(&scanner, &body).await;
    assert_eq!(answer.body.as_array().map(Vec::len), Some(3), "{:?}", answer.body);
    assert!(answer.body.as_array().unwrap().iter().all(|entry| entry["label"] == "true_positive"));
    assert_eq!(app.actions(&id).await, ["leaked", "leaked", "leaked", "created"]);
    let events = app.send(Method::GET, &format!("/keys/{id}/events"), Some(&app.root_key), None, &[]).await;
    let mut urls: Vec<&str> = events.body["data"].as_array().unwrap()[..3]
        .iter()
        .map(|e| e["changes"]["leakUrl"].as_str().unwrap())
        .collect();
    urls.sort_unstable();
    assert_eq!(urls, places);
    assert_eq!(app.code_of(&secret).await, "VALID");
}

#[tokio::test]
#[ignore = "heavy (hundreds of calls, many at once): make test runs it after the other tests, alone"]
async fn one_token_found_at_many_places_reads_its_companys_policy_once_and_after_a_revoke_only_marks_each_place() {
    // GitHub may report one token at hundreds of places: one key's matches run one after
    // another, so each place must cost as little as it can. The policy is read once per key;
    // once the key is revoked, a later place costs a read of the key (still deleted) and its
    // marker, not a policy read, a key read and an idempotency read.
    const PLACES: usize = 40;
    let scanner = Scanner::new();
    let urls: Vec<String> = (0..PLACES).map(|i| format!("https://github.com/o/fork{i}/blob/x/.env")).collect();
    for policy in ["revoke", "notify"] {
        let app = spawn_app().await.trusting(&scanner);
        let patched = app.patch_company(&app.root_key, &json!({ "leakPolicy": policy }), &[]).await;
        assert_eq!(patched.status, StatusCode::OK, "{:?}", patched.body);
        let (id, secret) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
        let body = report_at(urls.iter().map(|url| (secret.as_str(), url.as_str())));
        app.settle_calls().await;
        let answer = app.signed_scan(&scanner, &body).await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert!(answer.body.as_array().unwrap().iter().all(|entry| entry["label"] == "true_positive"));
        // Looked up: each place's marker and its token's lookup.
        let looked_up = 2 * PLACES;
        let expected = if policy == "revoke" {
            // The policy; the revoke (the key, the idempotency record, the transaction); each
            // later place: the key read again; every place: its marker.
            calls(&[("GetItem", looked_up + 1 + 2 + (PLACES - 1)), ("TransactWriteItems", 1), ("PutItem", PLACES)])
        } else {
            // The policy; each place: the key, the idempotency record, the audit's transaction
            // and the marker.
            calls(&[("GetItem", looked_up + 1 + 2 * PLACES), ("TransactWriteItems", PLACES), ("PutItem", PLACES)])
        };
        assert_eq!(app.calls_by_operation().await, expected, "policy {policy}");
        assert_eq!(app.leaks_audited(&id).await, if policy == "revoke" { 1 } else { PLACES }, "policy {policy}");
    }
}

#[tokio::test]
#[ignore = "heavy (hundreds of calls, many at once): make test runs it after the other tests, alone"]
async fn a_report_whose_revocations_keep_conflicting_fails_whole_and_its_redelivery_revokes_each_key_once() {
    // Twenty keys of one company revoked 8 at a time all move its counters item: on AWS their
    // transactions can conflict. Here every attempt of every revocation conflicts, so each
    // exhausts its retries: the report is a 503 that writes nothing, and GitHub's redelivery
    // revokes each key once.
    const KEYS: usize = 20;
    const ATTEMPTS_PER_TRANSACTION: usize = 6;
    let scanner = Scanner::new();
    let app = spawn_app().await;
    let mut keys = Vec::new();
    for i in 0..KEYS {
        keys.push(app.create_key_pair(&json!({ "userId": format!("u{i}") })).await);
    }
    let app = app.faulty(&scanner, vec![TransactionFault::Conflict; KEYS * ATTEMPTS_PER_TRANSACTION]).await;
    let secrets: Vec<&str> = keys.iter().map(|(_, secret)| secret.as_str()).collect();
    let body = report(&secrets);
    let items = app.item_count().await;
    let failed = app.signed_scan(&scanner, &body).await;
    assert_eq!((failed.status, failed.error_code()), (StatusCode::SERVICE_UNAVAILABLE, "service_unavailable"));
    assert_eq!(app.item_count().await, items, "nothing written");

    let again = app.signed_scan(&scanner, &body).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert!(again.body.as_array().unwrap().iter().all(|entry| entry["label"] == "true_positive"));
    for (id, secret) in &keys {
        assert_eq!(app.code_of(secret).await, "INACTIVE");
        assert_eq!(app.actions(id).await, ["leaked", "created"]);
    }
    let third = app.signed_scan(&scanner, &body).await;
    assert_eq!((third.status, &third.body), (StatusCode::OK, &again.body), "answered the same, nothing more written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_overlapping_reports_delivered_at_once_audit_each_place_once() {
    // Lambda may run two deliveries at once, on two instances: a key's new and old secret,
    // at places both reports hold, are acted on once per place however the two interleave.
    let scanner = Scanner::new();
    let app = notifying_app(&scanner).await;
    let (id, old) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    let new =
        app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 3600 }))).await.body["key"].as_str().unwrap().to_owned();
    let other = app.other_instance().trusting(&scanner);
    let place = |i: usize| format!("https://github.com/o/r/blob/{i}/.env");
    let places: Vec<String> = (0..4).map(place).collect();
    let first = report_at(
        [(new.as_str(), places[0].as_str()), (new.as_str(), &places[1]), (old.as_str(), &places[2])].into_iter(),
    );
    let second = report_at(
        [(old.as_str(), places[2].as_str()), (new.as_str(), &places[1]), (new.as_str(), &places[3])].into_iter(),
    );
    let (a, b) = tokio::join!(app.signed_scan(&scanner, &first), other.signed_scan(&scanner, &second));
    for answer in [&a, &b] {
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert!(
            answer.body.as_array().unwrap().iter().all(|entry| entry["label"] == "true_positive"),
            "{:?}",
            answer.body
        );
    }
    let leaked = app.actions(&id).await.into_iter().filter(|action| action == "leaked").count();
    assert_eq!(leaked, places.len(), "each place once");
    assert_eq!((app.code_of(&new).await, app.code_of(&old).await), ("VALID".into(), "VALID".into()));
}

#[tokio::test]
#[ignore = "known problem: a revoke forgets the key's old secret (its lookup is deleted), so a redelivery after a \
            failure answers that secret false_positive; run with --ignored"]
async fn a_report_redelivered_after_a_marker_put_failed_still_answers_the_keys_old_secret_true_positive() {
    // The report's first match (the key's old secret, in its grace) revokes the key, then its
    // marker's put fails: the report is a 503. GitHub delivers it again: the new secret is
    // known (a deleted key's), but the old one's lookup went with the revoke.
    let scanner = Scanner::new();
    let app = spawn_app().await;
    let (id, old) = app.create_key_pair(&json!({ "userId": "rolled" })).await;
    let new =
        app.roll_key(&id, Some(&json!({ "gracePeriodSeconds": 3600 }))).await.body["key"].as_str().unwrap().to_owned();
    let app = app.faulty(&scanner, vec![TransactionFault::PutRefused]).await;
    let body =
        report_at([(old.as_str(), "https://github.com/o/r/1"), (new.as_str(), "https://github.com/o/r/2")].into_iter());
    let failed = app.signed_scan(&scanner, &body).await;
    assert_eq!(failed.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", failed.body);
    assert_eq!(app.code_of(&new).await, "INACTIVE", "the revoke itself went through");

    let again = app.signed_scan(&scanner, &body).await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    let labels: Vec<&Value> = again.body.as_array().unwrap().iter().map(|entry| &entry["label"]).collect();
    assert_eq!(labels, [&json!("true_positive"), &json!("true_positive")], "the same labels the first delivery meant");
    assert_eq!(app.actions(&id).await, ["leaked", "rolled", "created"]);
}

#[tokio::test]
#[ignore = "heavy (hundreds of calls, many at once): make test runs it after the other tests, alone"]
async fn a_report_that_outlasts_its_deadline_leaves_the_rest_to_its_redeliveries_which_finish_it_once() {
    // One key found at many places, policy notify: its matches are acted on one after another,
    // so a report of hundreds would outlast the function's 29 s (about 40 s on DynamoDB Local
    // for 500). The matches not started by the deadline are `Unavailable` (the report a 503),
    // and each redelivery goes on from the markers of those done, so every place is audited
    // exactly once in the end.
    use std::time::Duration;

    use apikeys::domain::DomainError;
    use apikeys::domain::keys::LeakReport;
    use apikeys::domain::leaks::{Verdict, judge_report};
    use tokio::time::Instant;

    const PLACES: usize = 30;
    let scanner = Scanner::new();
    let app = notifying_app(&scanner).await;
    let (id, secret) = app.create_key_pair(&json!({ "userId": "leaky" })).await;
    let unknown = apikeys::model::PlaintextKey::generate(apikeys::model::KeyType::Secret).expose().to_owned();
    let place = |i: usize| LeakReport { url: Some(format!("https://github.com/o/r{i}/blob/x/.env")), source: None };
    let mut matches: Vec<(&str, LeakReport)> = (0..PLACES).map(|i| (secret.as_str(), place(i))).collect();
    matches.push((unknown.as_str(), place(PLACES)));
    let now = app.app.clock.now();

    // No time left: nothing is looked up or written.
    let items = app.item_count().await;
    let verdicts = judge_report(&app.app.store, &matches, now, Some(Instant::now())).await;
    assert!(verdicts.iter().all(|verdict| matches!(verdict, Err(DomainError::Unavailable))));
    assert_eq!(app.item_count().await, items, "nothing written");

    // Deliveries with twice the time of the one before (however fast or loaded this machine
    // is, the first ones run out): each answers soon after its deadline, and together they act
    // on every place once.
    let mut deliveries: u32 = 0;
    let verdicts = loop {
        deliveries += 1;
        assert!(deliveries <= 16, "the deliveries finish the report");
        let budget = Duration::from_millis(25) * 2u32.pow(deliveries);
        let started = Instant::now();
        let verdicts = judge_report(&app.app.store, &matches, now, Some(started + budget)).await;
        assert!(started.elapsed() < budget + Duration::from_secs(5), "answered soon after the deadline");
        if verdicts.iter().all(Result::is_ok) {
            break verdicts;
        }
        assert!(verdicts.iter().all(|verdict| matches!(verdict, Ok(_) | Err(DomainError::Unavailable))));
    };
    let labels: Vec<Verdict> = verdicts.into_iter().map(Result::unwrap).collect();
    assert!(labels[..PLACES].iter().all(|label| *label == Verdict::TruePositive));
    assert_eq!(labels[PLACES], Verdict::FalsePositive);
    assert_eq!(app.leaks_audited(&id).await, PLACES, "each place audited once, over {deliveries} deliveries");
    // Without a deadline (outside Lambda) nothing is left: the same report again is answered
    // from its markers.
    let again = judge_report(&app.app.store, &matches, now, None).await;
    assert!(again.into_iter().map(Result::unwrap).eq(labels));
}
