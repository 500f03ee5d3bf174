//! `POST /keys/import`: keys that already exist elsewhere, each given by the hash of its
//! plaintext, which the service never sees.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use super::fields::{JsonFields, object};
use super::input::CreateKeyInput;
use super::{FieldError, KeyType, SecretHash};

/// Keys one import may carry: each is its own transaction, so a call stays within a Lambda's
/// time and a page of answers.
pub const MAX_IMPORTED_KEYS: usize = 100;

/// An import body: each entry parsed on its own, so one bad entry is that entry's error and
/// the others are still imported.
#[derive(Debug)]
pub struct ImportInput {
    /// The entries in the body's order, each a key to import or why it is not one.
    pub keys: Vec<Result<ImportedKeyInput, FieldError>>,
}

/// One key to import: the hash of its plaintext and what a create body would give it. It is
/// a secret key: an imported plaintext is never shown, so it cannot be a publishable one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportedKeyInput {
    /// SHA-256 of the plaintext as the system it comes from keeps it.
    pub hash: SecretHash,
    /// Its user, policy and labels, as `POST /keys` reads them.
    pub input: CreateKeyInput,
}

impl ImportInput {
    /// Reads `{"keys": [...]}`: 1 to 100 entries (else 400 naming `keys`), each read on its
    /// own (its errors name it: `keys[3].hash.value`).
    pub fn parse(body: Value, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let mut fields = JsonFields::new(body)?.only(&["keys"], &[])?;
        let entries: Vec<Value> = fields.required("keys", "an array of keys")?;
        if entries.is_empty() {
            return Err(FieldError::invalid("keys", format!("keys must hold 1 to {MAX_IMPORTED_KEYS} keys")));
        }
        if entries.len() > MAX_IMPORTED_KEYS {
            return Err(FieldError::too_many("keys", MAX_IMPORTED_KEYS));
        }
        let keys = entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| ImportedKeyInput::parse(entry, now).map_err(|e| e.within(&format!("keys[{i}]"))))
            .collect();
        Ok(Self { keys })
    }
}

impl ImportedKeyInput {
    fn parse(entry: Value, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let Value::Object(mut map) = entry else {
            return Err(FieldError::invalid("", "each key must be an object"));
        };
        // A create body's fields but `type` (an imported key is secret) and the hash.
        if map.contains_key("type") {
            return Err(FieldError::unknown("type"));
        }
        let hash = map.remove("hash").ok_or_else(|| FieldError::missing("hash"))?;
        let hash = imported_hash(hash)?;
        let input = CreateKeyInput::parse(Value::Object(map), now)?;
        debug_assert_eq!(input.key_type, KeyType::Secret);
        Ok(Self { hash, input })
    }
}

/// `{"algorithm": "sha256", "encoding": "hex" | "base64", "value"}`: 32 bytes, as 64 hex
/// digits (either case) or standard base64 (padded or not).
fn imported_hash(value: Value) -> Result<SecretHash, FieldError> {
    let mut map = object(value, "hash", &["algorithm", "encoding", "value"], &[])?;
    let mut text = |name: &str| match map.remove(name) {
        None | Some(Value::Null) => Err(FieldError::missing(format!("hash.{name}"))),
        Some(Value::String(text)) => Ok(text),
        Some(_) => Err(FieldError::invalid(format!("hash.{name}"), format!("hash.{name} must be a string"))),
    };
    let (algorithm, encoding, digest) = (text("algorithm")?, text("encoding")?, text("value")?);
    if algorithm != "sha256" {
        return Err(FieldError::invalid("hash.algorithm", "hash.algorithm must be \"sha256\""));
    }
    let bytes = match encoding.as_str() {
        "hex" => hex::decode(&digest).ok(),
        "base64" => base64::engine::general_purpose::STANDARD_NO_PAD.decode(digest.trim_end_matches('=')).ok(),
        _ => return Err(FieldError::invalid("hash.encoding", "hash.encoding must be \"hex\" or \"base64\"")),
    };
    let digest: [u8; 32] = bytes.and_then(|b| b.try_into().ok()).ok_or_else(|| {
        FieldError::invalid("hash.value", format!("hash.value must be the 32 bytes of a SHA-256 digest in {encoding}"))
    })?;
    Ok(SecretHash::from_sha256(digest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z").unwrap().with_timezone(&Utc)
    }

    fn entry(hash: Value) -> Value {
        json!({ "keys": [{ "hash": hash, "userId": "u" }] })
    }

    #[test]
    fn hex_and_base64_of_one_digest_are_one_hash_and_that_of_the_plaintext() {
        let plaintext = "legacy_key_0123456789";
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(plaintext.as_bytes()).into();
        let base64 = base64::engine::general_purpose::STANDARD.encode(digest);
        let parsed = |encoding: &str, value: String| {
            let body = entry(json!({ "algorithm": "sha256", "encoding": encoding, "value": value }));
            ImportInput::parse(body, now()).unwrap().keys.remove(0).unwrap().hash
        };
        let expected = SecretHash::of_foreign(plaintext).unwrap();
        assert!(parsed("hex", hex::encode(digest)).matches(&expected));
        assert!(parsed("hex", hex::encode_upper(digest)).matches(&expected));
        assert!(parsed("base64", base64.clone()).matches(&expected));
        assert!(parsed("base64", base64.trim_end_matches('=').to_owned()).matches(&expected));
    }

    #[test]
    fn a_bad_entry_is_its_own_error_naming_it_and_a_bad_body_is_a_400() {
        let good = json!({ "algorithm": "sha256", "encoding": "hex", "value": "ab".repeat(32) });
        let body = json!({ "keys": [
            { "hash": good, "userId": "u" },
            { "hash": { "algorithm": "md5", "encoding": "hex", "value": "ab".repeat(16) }, "userId": "u" },
            { "hash": { "algorithm": "sha256", "encoding": "hex", "value": "ab".repeat(31) }, "userId": "u" },
            { "hash": { "algorithm": "sha256", "encoding": "base32", "value": "x" }, "userId": "u" },
            { "hash": good, "userId": "u", "type": "publishable" },
            { "hash": good },
            { "userId": "u" },
            7,
        ] });
        let keys = ImportInput::parse(body, now()).unwrap().keys;
        let fields: Vec<String> =
            keys.iter().map(|k| k.as_ref().err().map_or(String::new(), |e| e.field.clone())).collect();
        let expected = [
            "",
            "keys[1].hash.algorithm",
            "keys[2].hash.value",
            "keys[3].hash.encoding",
            "keys[4].type",
            "keys[5].userId",
            "keys[6].hash",
            "keys[7]",
        ];
        assert_eq!(fields, expected);
        for (body, field) in [
            (json!({ "keys": [] }), "keys"),
            (json!({ "keys": vec![json!({}); 101] }), "keys"),
            (json!({ "keys": {} }), "keys"),
            (json!({ "keys": [], "extra": 1 }), "extra"),
        ] {
            assert_eq!(ImportInput::parse(body, now()).unwrap_err().field, field);
        }
    }
}
