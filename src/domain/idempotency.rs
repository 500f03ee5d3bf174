//! Idempotent writes: every write that changes state or returns what a client cannot get again
//! (create, roll, update, delete) may carry an `Idempotency-Key`, and a retry within 24 hours
//! gets the first answer. An answer can hold a plaintext secret, so the table keeps it only
//! sealed with a key derived from the header, which the table never stores.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::model::IdempotencyKey;
use crate::store::IdempotencyRecord;

use super::Caller;
use super::keys::Answer;

/// How long a first answer is replayed, as Stripe does.
pub const REPLAY_WINDOW: TimeDelta = TimeDelta::hours(24);
const NONCE_LEN: usize = 12;

/// A write request that carried an `Idempotency-Key`.
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
    /// `request` names the operation and its target (`PATCH /keys/abc`), so the same header on
    /// another operation or key is another request; `body` is compared as parsed JSON (keys
    /// sorted), so spacing and key order do not matter. A header is the caller's own: the same
    /// header from another root key of the company is another request, so no key can replay
    /// (and read the secret of) another key's write.
    pub fn new(caller: &Caller, header: &IdempotencyKey, request: &str, body: &Value) -> Self {
        let (company, actor, header) =
            (caller.company.as_str().as_bytes(), caller.actor.as_bytes(), header.as_str().as_bytes());
        Self {
            lookup: hex::encode(digest(&[b"lookup", company, actor, header])),
            fingerprint: hex::encode(digest(&[b"request", request.as_bytes(), body.to_string().as_bytes()])),
            seal_key: digest(&[b"seal", company, actor, header, caller.seal.as_bytes()]),
        }
    }

    pub fn lookup(&self) -> &str {
        &self.lookup
    }

    pub fn record(&self, answer: &Answer, now: DateTime<Utc>) -> IdempotencyRecord {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce);
        let cipher = ChaCha20Poly1305::new(&Key::from(self.seal_key));
        let plain = serde_json::to_vec(answer).unwrap_or_default();
        let sealed = cipher.encrypt(&Nonce::from(nonce), plain.as_slice()).unwrap_or_default();
        IdempotencyRecord {
            lookup: self.lookup.clone(),
            fingerprint: self.fingerprint.clone(),
            sealed_response: [nonce.as_slice(), &sealed].concat(),
            expires_at: now + REPLAY_WINDOW,
        }
    }

    /// `Some(Ok(answer))` for a retry, `Some(Err(()))` for another request under the same header,
    /// `None` when the record has lapsed.
    pub fn replay(&self, record: &IdempotencyRecord, now: DateTime<Utc>) -> Option<Result<Answer, ()>> {
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
        serde_json::from_slice(&plain).ok().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(header: &str, body: Value) -> IdempotentRequest {
        let caller = Caller::operator(crate::model::CompanyId::parse("acme", "c").unwrap());
        IdempotentRequest::new(&caller, &IdempotencyKey::parse(header).unwrap(), "POST /keys", &body)
    }

    #[test]
    fn a_retry_gets_the_sealed_answer_back_and_the_record_hides_it() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let first = request("abc", json!({ "userId": "u" }));
        let answer = Answer { body: json!({ "id": "k", "key": "sk_secret" }), version: Some(1) };
        let record = first.record(&answer, now);
        assert!(!String::from_utf8_lossy(&record.sealed_response).contains("sk_secret"));
        assert!(!record.lookup.contains("abc"));
        let retry = request("abc", json!({ "userId": "u" }));
        assert_eq!(retry.replay(&record, now), Some(Ok(answer)));
        assert_eq!(request("abc", json!({ "userId": "v" })).replay(&record, now), Some(Err(())));
        assert_eq!(retry.replay(&record, now + REPLAY_WINDOW), None);
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
        let body = json!({ "userId": "u" });
        let answer = Answer { body: json!({ "key": "sk_secret" }), version: Some(1) };
        let record = IdempotentRequest::new(&caller("sk_root"), &header, "create ", &body).record(&answer, now);
        let guesser = IdempotentRequest::new(&Caller::operator(company.clone()), &header, "create ", &body);
        assert_eq!(guesser.lookup(), record.lookup, "the same header finds the record");
        assert_eq!(guesser.replay(&record, now), None, "but cannot open it");
        let owner = IdempotentRequest::new(&caller("sk_root"), &header, "create ", &body);
        assert_eq!(owner.replay(&record, now), Some(Ok(answer)));
    }
}
