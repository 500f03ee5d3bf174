//! Leak response over HTTP: a signed secret scanning report of a live secret key revokes it
//! (policy `revoke`) or only audits it (`notify`); an unsigned, wrongly signed or unknown-key
//! report is 401 and revokes nothing; a token of another format is `false_positive`; a company's
//! prefix leads its new keys while older ones verify, and its audit trail shows who changed its
//! settings and how. Signed checks need the server's trusted key (the in-process server's is
//! made by the suite); the settings checks a third company, the only one whose settings change.

use base64::Engine;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer;
use serde_json::{Value, json};

use crate::client::{Answer, Check, Made};

const PATH: &str = "/secret-scanning/github";

fn report(tokens: &[&str]) -> Vec<u8> {
    let matches: Vec<Value> = tokens
        .iter()
        .map(|t| json!({ "token": t, "type": "apikeys_secret", "url": "https://github.com/o/r/blob/1/.env", "source": "content" }))
        .collect();
    Value::Array(matches).to_string().into_bytes()
}

/// Posts `body` signed as the suite's trusted scanner; `None` when the target trusts none of
/// the suite's keys.
async fn signed(check: &Check, body: &[u8]) -> Option<Answer> {
    let (key, id) = check.target.scanner.as_ref()?;
    let signature: Signature = key.sign(body);
    let signature = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let call = check.call("POST", PATH).no_auth().raw(body, "application/json");
    Some(call.header("github-public-key-identifier", id).header("github-public-key-signature", &signature).send().await)
}

#[tokio::test]
async fn an_unsigned_wrongly_signed_or_unknown_key_report_is_401_and_revokes_nothing() {
    let check = Check::new();
    let made: Made = check.create(json!({ "userId": "bb-leak" })).await;
    let body = report(&[&made.key]);
    let stranger = std::iter::repeat_with(rand::random::<[u8; 32]>)
        .find_map(|b| p256::ecdsa::SigningKey::from_slice(&b).ok())
        .unwrap();
    let wrong: Signature = stranger.sign(&body);
    let wrong = base64::engine::general_purpose::STANDARD.encode(wrong.to_der().as_bytes());
    let id = check.target.scanner.as_ref().map_or("blackbox-scanner".to_owned(), |(_, id)| id.clone());
    let cases = [
        vec![],
        vec![("github-public-key-identifier", id.clone()), ("github-public-key-signature", wrong.clone())],
        vec![("github-public-key-identifier", "no-such-key".to_owned()), ("github-public-key-signature", wrong)],
    ];
    for headers in cases {
        let mut call = check.call("POST", PATH).no_auth().raw(&body, "application/json");
        for (name, value) in &headers {
            call = call.header(name, value);
        }
        let refused = call.send().await;
        assert!(refused.is_error(401, "unauthenticated"), "{headers:?}: {refused:?}");
    }
    assert_eq!(check.code_of(&made.key).await, "VALID");
    check.done().await;
}

#[tokio::test]
async fn a_signed_report_revokes_a_live_secret_key_and_answers_false_positive_for_another_format() {
    let check = Check::new();
    let made = check.create(json!({ "userId": "bb-leak" })).await;
    let other = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let Some(answer) = signed(&check, &report(&[&made.key, other])).await else {
        return check.done().await;
    };
    assert_eq!(answer.status, 200, "{answer:?}");
    let labels: Vec<&Value> = answer.body.as_array().unwrap().iter().map(|f| &f["label"]).collect();
    assert_eq!(labels, [&json!("true_positive"), &json!("false_positive")]);
    assert_eq!(check.code_of(&made.key).await, "INACTIVE", "policy revoke");
    let trail = check.get(&format!("/keys/{}/events", made.id)).await;
    assert_eq!(trail.body["data"][0]["action"], "leaked", "{trail:?}");
    let again = signed(&check, &report(&[&made.key, other])).await.unwrap();
    assert_eq!(again.body, answer.body, "the same report, the same answer");
    check.done().await;
}

/// The newest entry of the company's audit trail as `key` reads it, and the trail's `total`.
async fn newest_company_event(check: &Check, key: &str) -> (Value, u64) {
    let trail = check.call("GET", "/company/events?limit=1").key(key).send().await;
    assert_eq!(trail.status, 200, "{trail:?}");
    (trail.body["data"][0].clone(), trail.body["total"].as_u64().unwrap_or_default())
}

/// The third company: policy `notify` keeps a reported key valid (its trail shows `leaked`);
/// a prefix leads its new keys, older keys still verify, and its patterns match only its own.
/// Its audit trail shows each settings change, newest first, by the key that made it, to its
/// own keys only.
#[tokio::test]
async fn with_notify_a_reported_key_stays_valid_a_prefix_leads_new_keys_and_the_trail_shows_who() {
    let owned = Check::new();
    let check = &owned;
    let Some(third) = check.target.third_root_key.clone() else { return };
    let older = check.create_with(&third, json!({ "userId": "bb-older" })).await;
    let prefix = format!("bb{}", &uuid::Uuid::now_v7().simple().to_string()[24..32]);
    let patch = json!({ "keyPrefix": prefix, "leakPolicy": "notify" });
    let patched = check.call("PATCH", "/company").key(&third).json(&patch).send().await;
    assert_eq!(patched.status, 200, "{patched:?}");
    // A stack reused after a run that stopped early may hold notify already: the new prefix is
    // always a change.
    let actor = check.call("GET", "/me").key(&third).send().await.text("keyId").to_owned();
    let (changed, total) = newest_company_event(check, &third).await;
    assert_eq!((&changed["action"], &changed["actor"]), (&json!("settings_changed"), &json!(actor)), "{changed}");
    assert_eq!(changed["changes"]["keyPrefix"], json!(prefix), "{changed}");
    let first = check.get("/company/events").await;
    assert_eq!(first.status, 200, "{first:?}");
    assert!(!first.body.to_string().contains(&prefix), "another company's trail shows none of it: {first:?}");
    let newer = check.create_with(&third, json!({ "userId": "bb-newer" })).await;
    assert!(newer.key.starts_with(&format!("{prefix}_sk_")), "{}", newer.key);
    let third = third.as_str();
    let verify = async |key: &str| {
        let body = json!({ "key": key });
        check.call("POST", "/keys/verify").key(third).json(&body).send().await.text("code").to_owned()
    };
    assert_eq!((verify(&older.key).await, verify(&newer.key).await), ("VALID".into(), "VALID".into()));
    let company = check.call("GET", "/company").key(third).send().await;
    let pattern = regex::Regex::new(company.body["keyPatterns"]["secret"].as_str().unwrap()).unwrap();
    let theirs = check.create(json!({ "userId": "bb-theirs" })).await;
    assert!(pattern.is_match(&newer.key) && !pattern.is_match(&older.key) && !pattern.is_match(&theirs.key));

    if let Some(answer) = signed(check, &report(&[&newer.key])).await {
        assert_eq!(answer.body[0]["label"], "true_positive", "{answer:?}");
        assert_eq!(verify(&newer.key).await, "VALID", "policy notify");
        let trail = check.call("GET", &format!("/keys/{}/events", newer.id)).key(third).send().await;
        assert_eq!(trail.body["data"][0]["action"], "leaked", "{trail:?}");
    }
    let reset = json!({ "keyPrefix": null, "leakPolicy": "revoke" });
    assert_eq!(check.call("PATCH", "/company").key(third).json(&reset).send().await.status, 200);
    let (reset, now) = newest_company_event(check, third).await;
    assert_eq!(reset["changes"], json!({ "keyPrefix": null, "leakPolicy": "revoke" }), "{reset}");
    assert_eq!(now, total + 1, "one entry per change");
    let again = check.call("PATCH", "/company").key(third).json(&json!({ "leakPolicy": "revoke" })).send().await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(newest_company_event(check, third).await.1, now, "a PATCH that changes nothing records nothing");
    for made in [&older, &newer] {
        check.call("DELETE", &format!("/keys/{}", made.id)).key(third).send().await;
    }
    owned.done().await;
}
