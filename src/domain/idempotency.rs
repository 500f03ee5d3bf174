//! Idempotent writes: every write that changes state or returns what a client cannot get again
//! (create, roll, update, delete) may carry an `Idempotency-Key`, and a retry within 24 hours
//! gets the first answer. An answer can hold a plaintext secret, so the table keeps it only
//! sealed with a key derived from the header, which the table never stores.
//!
//! Both halves are typed: a request is recognised by its parsed input (not the bytes of its
//! body), and what is sealed is the operation's typed answer (`keys::WrittenKey`, written as the
//! store's record of it, or nothing for a delete), never the HTTP answer: the http layer shows a
//! replay as it shows a first answer.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, TimeDelta, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::IdempotencyKey;
use crate::store::IdempotencyRecord;

use super::Caller;

/// How long a first answer is replayed, as Stripe does.
pub const REPLAY_WINDOW: TimeDelta = TimeDelta::hours(24);
const NONCE_LEN: usize = 12;

/// The format of what is sealed, stored inside it. A record of another format is not opened (a
/// retry under its header is then answered 409 until the record lapses, never written twice).
const SEALED_FORMAT: u32 = 3;

/// What a record seals: an answer, with the format it is written in.
#[derive(Serialize, Deserialize)]
struct Sealed<A> {
    format: u32,
    answer: A,
}

/// A write request that carried an `Idempotency-Key`: where its record is, what identifies the
/// request, and the key that seals its answer.
pub struct IdempotentRequest {
    lookup: String,
    fingerprint: String,
    seal_key: [u8; 32],
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.len().to_be_bytes());
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl IdempotentRequest {
    /// `request` names the operation and its target (`update abc`), so the same header on
    /// another operation or key is another request; `input` is the request's parsed input,
    /// so two bodies that mean the same (spacing, key order, a default spelled out) are the same
    /// request. A header is the caller's own: the same header from another root key of the
    /// company is another request, so no key can replay (and read the secret of) another key's
    /// write.
    pub fn new(caller: &Caller, header: &IdempotencyKey, request: &str, input: &impl Serialize) -> Self {
        // The actor's type is hashed with its id: the operator's requests and a key's never
        // share a namespace, whatever the ids.
        let actor_type: &[u8] = match caller.actor_type() {
            crate::model::ActorType::Key => b"key",
            crate::model::ActorType::Operator => b"operator",
        };
        let (company, header) = (caller.company.as_str().as_bytes(), header.as_str().as_bytes());
        let actor = [actor_type, b"\0", caller.actor.as_bytes()].concat();
        let actor = actor.as_slice();
        // The derived serde form of an input is canonical: fields in declaration order, maps
        // (metadata) with sorted keys. An input that cannot be serialized (none can today) gets
        // a fingerprint of its own, never a shared empty one: another request under the same
        // header is then 422, never answered with this one's answer (and secret).
        let input = serde_json::to_vec(input).unwrap_or_else(|_| {
            let mut unique = [0u8; 32];
            rand::fill(&mut unique);
            unique.to_vec()
        });
        Self {
            lookup: hex::encode(digest(&[b"lookup", company, actor, header])),
            fingerprint: hex::encode(digest(&[b"request", request.as_bytes(), &input])),
            seal_key: digest(&[b"seal", company, actor, header, caller.seal.as_bytes()]),
        }
    }

    /// Where the record of this request is stored: company, caller and header hashed, so the
    /// table holds no header in clear.
    pub fn lookup(&self) -> &str {
        &self.lookup
    }

    /// The record to save with the write: its fingerprint and its answer, sealed.
    pub fn record(&self, answer: &impl Serialize, now: DateTime<Utc>) -> IdempotencyRecord {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let cipher = ChaCha20Poly1305::new(&Key::from(self.seal_key));
        let plain = serde_json::to_vec(&Sealed { format: SEALED_FORMAT, answer }).unwrap_or_default();
        let sealed = cipher.encrypt(&Nonce::from(nonce), plain.as_slice()).unwrap_or_default();
        IdempotencyRecord {
            lookup: self.lookup.clone(),
            fingerprint: self.fingerprint.clone(),
            sealed_response: [nonce.as_slice(), &sealed].concat(),
            expires_at: now + REPLAY_WINDOW,
        }
    }

    /// `Some(Ok(answer))` for a retry, `Some(Err(()))` for another request under the same header,
    /// `None` when the record has lapsed or cannot be opened (another caller's, another format).
    pub fn replay<A: DeserializeOwned>(&self, record: &IdempotencyRecord, now: DateTime<Utc>) -> Option<Result<A, ()>> {
        if record.expires_at <= now {
            return None;
        }
        if record.fingerprint != self.fingerprint || record.sealed_response.len() < NONCE_LEN {
            return Some(Err(()));
        }
        let (nonce, sealed) = record.sealed_response.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let cipher = ChaCha20Poly1305::new(&Key::from(self.seal_key));
        let plain = cipher.decrypt(&Nonce::from(nonce), sealed).ok()?;
        let sealed: Sealed<A> = serde_json::from_slice(&plain).ok()?;
        (sealed.format == SEALED_FORMAT).then_some(Ok(sealed.answer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn request(header: &str, input: Value) -> IdempotentRequest {
        let caller = Caller::operator(crate::model::CompanyId::parse("acme", "c").unwrap());
        IdempotentRequest::new(&caller, &IdempotencyKey::parse(header).unwrap(), "create ", &input)
    }

    #[test]
    fn a_retry_gets_the_sealed_answer_back_and_the_record_hides_it() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let first = request("abc", json!({ "userId": "u" }));
        let answer = json!({ "id": "k", "key": "sk_secret" });
        let record = first.record(&answer, now);
        assert!(!String::from_utf8_lossy(&record.sealed_response).contains("sk_secret"));
        assert!(!record.lookup.contains("abc"));
        let retry = request("abc", json!({ "userId": "u" }));
        assert_eq!(retry.replay(&record, now), Some(Ok(answer)));
        assert_eq!(request("abc", json!({ "userId": "v" })).replay::<Value>(&record, now), Some(Err(())));
        assert_eq!(retry.replay::<Value>(&record, now + REPLAY_WINDOW), None);
    }

    #[test]
    fn the_header_alone_does_not_unseal_an_answer() {
        // Company, actor and header can all be read or guessed from the table; the secret the
        // caller presented cannot.
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let header = IdempotencyKey::parse("42").unwrap();
        let company = crate::model::CompanyId::parse("acme", "c").unwrap();
        let caller = |presented: &str| Caller {
            seal: crate::domain::caller::SealMaterial::of(presented),
            ..Caller::operator(company.clone())
        };
        let input = json!({ "userId": "u" });
        let answer = json!({ "key": "sk_secret" });
        let record = IdempotentRequest::new(&caller("sk_root"), &header, "create ", &input).record(&answer, now);
        let guesser = IdempotentRequest::new(&Caller::operator(company.clone()), &header, "create ", &input);
        assert_eq!(guesser.lookup(), record.lookup, "the same header finds the record");
        assert_eq!(guesser.replay::<Value>(&record, now), None, "but cannot open it");
        let owner = IdempotentRequest::new(&caller("sk_root"), &header, "create ", &input);
        assert_eq!(owner.replay(&record, now), Some(Ok(answer)));
    }

    #[test]
    fn a_record_sealed_in_another_format_is_not_opened() {
        // A record of another format: here the HTTP answer itself, `{"body": …, "version": …}`.
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let request = request("abc", json!({ "userId": "u" }));
        let mut record = request.record(&(), now);
        let nonce = [7u8; NONCE_LEN];
        let cipher = ChaCha20Poly1305::new(&Key::from(request.seal_key));
        let old = json!({ "body": { "id": "k" }, "version": 1 }).to_string();
        let sealed = cipher.encrypt(&Nonce::from(nonce), old.as_bytes()).unwrap();
        record.sealed_response = [nonce.as_slice(), &sealed].concat();
        assert_eq!(request.replay::<Value>(&record, now), None);
        assert_eq!(request.replay::<()>(&request.record(&(), now), now), Some(Ok(())), "a delete's record opens");
    }

    /// An input the fingerprint cannot serialize, standing for any two different requests.
    struct Unserializable(&'static str);

    impl Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom(self.0))
        }
    }

    #[test]
    fn two_inputs_that_cannot_be_serialized_are_never_the_same_request() {
        // If serializing an input ever fails, the fingerprint must not fall back to one shared
        // value: the second request would then be answered with the first one's answer.
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let caller = Caller::operator(crate::model::CompanyId::parse("acme", "c").unwrap());
        let header = IdempotencyKey::parse("abc").unwrap();
        let first = IdempotentRequest::new(&caller, &header, "create ", &Unserializable("first"));
        let record = first.record(&json!({ "key": "sk_first" }), now);
        let other = IdempotentRequest::new(&caller, &header, "create ", &Unserializable("other"));
        assert_eq!(other.replay::<Value>(&record, now), Some(Err(())), "another request under the header: 422");
    }

    #[test]
    fn a_written_key_is_sealed_as_the_store_records_it_and_opens_as_it_was() {
        // The sealed key is the key item's own record: its names are the item's, which
        // tests/api/contract/item_layout.rs pins, so no second list of them is kept here.
        let company = crate::model::CompanyId::parse("acme", "c").unwrap();
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let (key, plaintext) = crate::model::ApiKey::plain_for_tests(company, crate::model::KeyId::generate(), now);
        let written = crate::domain::keys::WrittenKey { key, plaintext: Some(plaintext), as_of: now };
        let sealed = serde_json::to_value(Sealed { format: SEALED_FORMAT, answer: &written }).unwrap();
        let names = |value: &Value| value.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&sealed), ["answer", "format"]);
        assert_eq!(names(&sealed["answer"]), ["asOf", "key", "plaintext"]);
        let stored = serde_json::to_value(crate::store::records::KeyRecord::from_model(&written.key)).unwrap();
        assert_eq!(sealed["answer"]["key"], stored);
        let request = request("abc", json!({ "userId": "u" }));
        let record = request.record(&written, now);
        assert_eq!(request.replay(&record, now), Some(Ok(written)));
    }
}
