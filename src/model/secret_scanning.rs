//! GitHub's secret scanning partner program, the pure parts: the public keys GitHub signs its
//! reports with (`TrustedKeys`, from the `SECRET_SCANNING_PUBLIC_KEYS` setting), the check of a
//! report's signature, the report itself (`ScanReport`) and the feedback the endpoint answers
//! with (`Feedback`). No I/O and no HTTP types: the endpoint hands in the two headers and the
//! raw body.
//!
//! What GitHub sends (its partner program documentation): a `POST` whose body is a JSON array
//! of matches, `[{"token", "type", "url", "source"}]`, signed with `ECDSA-NIST-P256V1-SHA256`
//! over the raw body; the signature is base64 of its ASN.1 DER form in
//! `Github-Public-Key-Signature`, the key is the one whose `key_identifier` is in
//! `Github-Public-Key-Identifier`, out of the document served at
//! `https://api.github.com/meta/public_keys/secret_scanning`. The answer it takes is an array
//! of `{"token_hash", "token_type", "label"}`, `token_hash` being SHA-256 of the token.

use std::fmt;

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::FieldError;

/// Keys one `SECRET_SCANNING_PUBLIC_KEYS` document may hold. GitHub's has held two (a current
/// key and the one before it); the cap keeps a pasted document of something else from making
/// every report a long search.
pub const MAX_TRUSTED_KEYS: usize = 20;
/// The longest `key_identifier` (and `Github-Public-Key-Identifier`) accepted, in characters.
/// GitHub's are 64 hex digits (a SHA-256).
pub const MAX_KEY_IDENTIFIER_CHARS: usize = 256;
/// The longest `Github-Public-Key-Signature` accepted, in characters. A P-256 signature in DER
/// is at most 72 bytes, 96 in base64; anything near this is not one.
pub const MAX_SIGNATURE_CHARS: usize = 1024;

/// Matches one report may carry; more is refused as a whole (400 naming `body`), so the work
/// of one call (a few reads and writes per token, several tokens at a time) stays within API
/// Gateway's 30 s. GitHub asks that an endpoint take "a large number of matches".
pub const MAX_REPORTED_TOKENS: usize = 500;
/// The longest `token` accepted, in characters: far above any key this service issues.
pub const MAX_TOKEN_CHARS: usize = 1024;
/// The longest `type` accepted, in characters (the name the partner registered).
pub const MAX_TOKEN_TYPE_CHARS: usize = 128;
/// The longest `url` accepted, in characters.
pub const MAX_URL_CHARS: usize = 2048;
/// The longest `source` accepted, in characters (`content`, `commit`, `pull_request_comment`…).
pub const MAX_SOURCE_CHARS: usize = 64;
/// The largest report body, in bytes, that the endpoint should read before refusing it (413),
/// and that `ScanReport::parse` accepts. 500 matches each at every cap above, unescaped, come
/// to about 1.6 MiB, so 2 MiB never refuses a report whose matches each fit; even with every
/// byte escaped in the event API Gateway sends, it stays below Lambda's 6 MB payload.
pub const MAX_REPORT_BYTES: usize = 2 * 1024 * 1024;

/// The public keys a report's signature may be made with: the document GitHub's
/// secret-scanning public-keys endpoint serves, `{"public_keys": [{"key_identifier", "key",
/// "is_current"}]}`, parsed once (from the `SECRET_SCANNING_PUBLIC_KEYS` setting).
///
/// Every key of the document is trusted, `is_current` or not: GitHub names the key it signed
/// with, and a key it has retired stays in its document while reports signed with it may still
/// arrive. An operator retires a key by taking it out of the setting.
#[derive(Clone, PartialEq, Eq)]
pub struct TrustedKeys {
    keys: Vec<(String, VerifyingKey)>,
}

/// Why a report's signature is refused. Each is a 401 before anything is looked up; the
/// variant is for the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureRefusal {
    /// `Github-Public-Key-Identifier` or `Github-Public-Key-Signature` is absent or empty.
    #[error("the Github-Public-Key-Identifier and Github-Public-Key-Signature headers are both required")]
    Missing,
    /// `Github-Public-Key-Identifier` names no key of `SECRET_SCANNING_PUBLIC_KEYS`.
    #[error("Github-Public-Key-Identifier names no trusted key")]
    UnknownKey,
    /// `Github-Public-Key-Signature` is not standard base64 of a DER-encoded ECDSA signature.
    #[error("Github-Public-Key-Signature is not a base64 DER ECDSA signature")]
    Malformed,
    /// A well-formed signature that the named key did not make over this body.
    #[error("Github-Public-Key-Signature does not match the body")]
    Invalid,
}

impl TrustedKeys {
    /// Reads GitHub's public-keys document: 1 to `MAX_TRUSTED_KEYS` keys, each with a
    /// non-empty `key_identifier` (at most `MAX_KEY_IDENTIFIER_CHARS`, no two alike) and a
    /// `key` that is an ECDSA P-256 public key as SPKI PEM (`-----BEGIN PUBLIC KEY-----`).
    /// Fields it does not know (`is_current`, any GitHub adds) are ignored. The error names the
    /// entry and says what is wrong with it.
    pub fn parse(document: &str) -> Result<Self, String> {
        let expected = r#"must be a JSON object {"public_keys": [{"key_identifier", "key"}]}"#;
        let document: Value = serde_json::from_str(document).map_err(|e| format!("{expected}: {e}"))?;
        let Some(Value::Array(entries)) = document.get("public_keys") else {
            return Err(format!("{expected}: public_keys is missing or not an array"));
        };
        if entries.is_empty() {
            return Err("public_keys is empty: no report could ever be trusted".into());
        }
        if entries.len() > MAX_TRUSTED_KEYS {
            return Err(format!("public_keys holds at most {MAX_TRUSTED_KEYS} keys, not {}", entries.len()));
        }
        let mut keys: Vec<(String, VerifyingKey)> = Vec::with_capacity(entries.len());
        for (i, entry) in entries.iter().enumerate() {
            let text = |name: &str| match entry.get(name) {
                Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.as_str()),
                _ => Err(format!("public_keys[{i}].{name} must be a non-empty string")),
            };
            let identifier = text("key_identifier")?;
            if identifier.chars().count() > MAX_KEY_IDENTIFIER_CHARS {
                return Err(format!(
                    "public_keys[{i}].key_identifier must be at most {MAX_KEY_IDENTIFIER_CHARS} characters"
                ));
            }
            if keys.iter().any(|(known, _)| known == identifier) {
                return Err(format!("public_keys[{i}].key_identifier '{identifier}' is there twice"));
            }
            let key = VerifyingKey::from_public_key_pem(text("key")?.trim()).map_err(|e| {
                format!("public_keys[{i}].key must be an ECDSA P-256 public key in PEM (BEGIN PUBLIC KEY): {e}")
            })?;
            keys.push((identifier.to_owned(), key));
        }
        Ok(Self { keys })
    }

    /// Whether `body` was signed by the trusted key `key_identifier` names, with
    /// `signature_base64` (the two headers, as received). Checks, in order: both headers
    /// present and non-empty (`Missing`), the identifier one of the trusted keys
    /// (`UnknownKey`), the signature standard base64 of a DER ECDSA signature (`Malformed`),
    /// and the signature made by that key over SHA-256 of `body`, the raw bytes as received
    /// (`Invalid`). Over-long headers are refused before any decoding.
    pub fn verify(
        &self,
        key_identifier: Option<&str>,
        signature_base64: Option<&str>,
        body: &[u8],
    ) -> Result<(), SignatureRefusal> {
        fn present(header: Option<&str>) -> Option<&str> {
            header.filter(|value| !value.trim().is_empty())
        }
        let (Some(key_identifier), Some(signature_base64)) = (present(key_identifier), present(signature_base64))
        else {
            return Err(SignatureRefusal::Missing);
        };
        // Byte lengths bound the work before anything is counted: a longer identifier cannot
        // be a trusted one (each is at most MAX_KEY_IDENTIFIER_CHARS characters, 4 bytes each).
        if key_identifier.len() > MAX_KEY_IDENTIFIER_CHARS * 4 {
            return Err(SignatureRefusal::UnknownKey);
        }
        let key = self
            .keys
            .iter()
            .find(|(identifier, _)| identifier == key_identifier)
            .map(|(_, key)| key)
            .ok_or(SignatureRefusal::UnknownKey)?;
        if signature_base64.len() > MAX_SIGNATURE_CHARS {
            return Err(SignatureRefusal::Malformed);
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature_base64)
            .map_err(|_| SignatureRefusal::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| SignatureRefusal::Malformed)?;
        key.verify(body, &signature).map_err(|_| SignatureRefusal::Invalid)
    }

    /// The trusted keys' identifiers, in the document's order (for start-up logs and
    /// operators: which keys this instance trusts).
    pub fn identifiers(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|(identifier, _)| identifier.as_str())
    }
}

impl fmt::Debug for TrustedKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedKeys").field("identifiers", &self.identifiers().collect::<Vec<_>>()).finish()
    }
}

/// A report from GitHub's secret scanning: a JSON array of matches. Never made: `parse` gives
/// the matches themselves.
pub enum ScanReport {}

/// One match GitHub reported: a string that fits a registered pattern, found in public.
///
/// Its `Debug` never shows `token` (a leaked secret, maybe a live key): only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct ReportedToken {
    /// The matched string, as found: 1 to `MAX_TOKEN_CHARS` characters. A secret until proved
    /// otherwise: never logged, stored or answered (its SHA-256 is, `token_hash_hex`).
    pub token: String,
    /// `type`: the name of the pattern it matched, as registered with GitHub (1 to
    /// `MAX_TOKEN_TYPE_CHARS` characters); the feedback's `token_type`.
    pub token_type: String,
    /// `url`: where it was found (up to `MAX_URL_CHARS`); `None` when absent, `null` or empty
    /// (GitHub documents it "may be empty").
    pub url: Option<String>,
    /// `source`: what it was found in (`content`, `commit`, `issue_comment`, `npm`…, up to
    /// `MAX_SOURCE_CHARS`); `None` when absent, `null` or empty (older reports have none).
    pub source: Option<String>,
}

impl fmt::Debug for ReportedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReportedToken")
            .field("token", &format_args!("<{} characters, redacted>", self.token.chars().count()))
            .field("token_type", &self.token_type)
            .field("url", &self.url)
            .field("source", &self.source)
            .finish()
    }
}

impl ScanReport {
    /// Reads a report body: a JSON array (at most `MAX_REPORT_BYTES`) of up to
    /// `MAX_REPORTED_TOKENS` objects, each with a string `token` and `type` and optional
    /// string `url` and `source`, within their caps. Fields GitHub may add are ignored. An
    /// empty array is an empty report. A body that is not such an array is refused as a whole,
    /// naming `body`; an entry that is wrong names it and its field (`body[2].token`). No
    /// message ever holds a token.
    pub fn parse(body: &[u8]) -> Result<Vec<ReportedToken>, FieldError> {
        let shape = "the body must be a JSON array of {\"token\", \"type\", \"url\", \"source\"}";
        if body.len() > MAX_REPORT_BYTES {
            return Err(FieldError::invalid("body", format!("the body must be at most {MAX_REPORT_BYTES} bytes")));
        }
        // serde_json's syntax errors name a line and column, never the text: no token leaks.
        let Ok(Value::Array(entries)) = serde_json::from_slice::<Value>(body) else {
            return Err(FieldError::invalid("body", shape));
        };
        if entries.len() > MAX_REPORTED_TOKENS {
            return Err(FieldError::too_many("body", MAX_REPORTED_TOKENS));
        }
        entries
            .into_iter()
            .enumerate()
            .map(|(i, entry)| ReportedToken::parse(entry).map_err(|e| e.within(&format!("body[{i}]"))))
            .collect()
    }
}

impl ReportedToken {
    fn parse(entry: Value) -> Result<Self, FieldError> {
        let Value::Object(mut map) = entry else {
            return Err(FieldError::invalid("", "each match must be an object"));
        };
        let mut text = |name: &str, max: usize, required: bool| match map.remove(name) {
            None | Some(Value::Null) if required => Err(FieldError::missing(name)),
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if text.is_empty() && required => {
                Err(FieldError::invalid(name, format!("{name} must not be empty")))
            }
            Some(Value::String(text)) if text.is_empty() => Ok(None),
            Some(Value::String(text)) if text.chars().count() > max => {
                Err(FieldError::invalid(name, format!("{name} must be at most {max} characters")))
            }
            Some(Value::String(text)) => Ok(Some(text)),
            Some(_) => Err(FieldError::invalid(name, format!("{name} must be a string"))),
        };
        let token = text("token", MAX_TOKEN_CHARS, true)?;
        let token_type = text("type", MAX_TOKEN_TYPE_CHARS, true)?;
        let url = text("url", MAX_URL_CHARS, false)?;
        let source = text("source", MAX_SOURCE_CHARS, false)?;
        match (token, token_type) {
            (Some(token), Some(token_type)) => Ok(Self { token, token_type, url, source }),
            // `required` turns an absent or empty one into an error above.
            _ => Err(FieldError::invalid("", "each match must have a token and a type")),
        }
    }
}

/// SHA-256 of `token`, as 64 lowercase hex digits: the feedback's `token_hash` (GitHub takes
/// "the SHA-256 hashed form of the raw token"), so the answer never holds the token itself.
pub fn token_hash_hex(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a reported token was a real credential: the feedback's `label`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Label {
    /// `true_positive`: it is (or was) a key this service issued.
    TruePositive,
    /// `false_positive`: it is not.
    FalsePositive,
}

/// One entry of the endpoint's answer, the partner program's feedback array:
/// `{"token_hash", "token_type", "label"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Feedback {
    /// `token_hash_hex` of the reported token.
    pub token_hash: String,
    /// The reported `type`, as GitHub sent it.
    pub token_type: String,
    /// The verdict on the token.
    pub label: Label,
}

impl Feedback {
    /// The feedback on one reported token.
    pub fn new(reported: &ReportedToken, label: Label) -> Self {
        Self { token_hash: token_hash_hex(&reported.token), token_type: reported.token_type.clone(), label }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldProblem;
    use p256::ecdsa::SigningKey;
    use p256::ecdsa::signature::Signer;
    use p256::elliptic_curve::Generate;
    use proptest::prelude::*;
    use serde_json::json;

    /// GitHub's documented sample delivery (docs: "Sample HTTP POST sent to verify endpoint")
    /// and the key it names, as api.github.com/meta/public_keys/secret_scanning serves it.
    const SAMPLE_KEY_ID: &str = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c";
    const SAMPLE_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYAGMWO8XgCamYKMJS6jc/qgvSlAd\nAjPuDPRcXU22YxgBrz+zoN19MzuRyW87qEt9/AmtoNP5GrobzUvQSyJFVw==\n-----END PUBLIC KEY-----\n";
    const SAMPLE_BODY: &str =
        r#"[{"source":"commit","token":"some_token","type":"some_type","url":"https://example.com/base-repo-url/"}]"#;
    const SAMPLE_SIGNATURE: &str =
        "MEQCIQDaMKqrGnE27S0kgMrEK0eYBmyG0LeZismAEz/BgZyt7AIfXt9fErtRS4XaeSt/AO1RtBY66YcAdjxji410VQV4xg==";
    /// The key before it, still in GitHub's document with `is_current: false`.
    const OLD_KEY_ID: &str = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a";
    const OLD_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE9MJJHnMfn2+H4xL4YaPDA4RpJqUq\nkCmRCBnYERxZanmcpzQSXs1X/AljlKkbJ8qpVIW4clayyef9gWhFbNHWAA==\n-----END PUBLIC KEY-----\n";

    /// A P-384 key in SPKI PEM: a well-formed public key of the wrong curve.
    const P384_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEHJrdt687aWGGpiTPuvoI/Egtpeiux6d+\n1+0LADgUTnr9YXXDxmVoM4mv44xk/f0fOQW82hQdVKwta/T9mmYfKlOXhN12N2rd\nMepbIhPkdHYQNhYXHDpjBInBcqqdwxWI\n-----END PUBLIC KEY-----\n";
    /// An Ed25519 key in SPKI PEM: not ECDSA at all.
    const ED25519_KEY: &str = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAMyh5+PWxMMTyk9ro+yTr+Z/3/Oe2orPj6DJsfkXIAZM=\n-----END PUBLIC KEY-----\n";

    fn document(keys: &[(&str, &str)]) -> String {
        let keys: Vec<Value> = keys
            .iter()
            .enumerate()
            .map(|(i, (id, pem))| json!({ "key_identifier": id, "key": pem, "is_current": i == 0 }))
            .collect();
        json!({ "public_keys": keys }).to_string()
    }

    fn new_key() -> SigningKey {
        SigningKey::generate_from_rng(&mut rand::rng())
    }

    /// The key's public half as GitHub serves its own: SPKI (id-ecPublicKey, prime256v1, the
    /// uncompressed point) in PEM, 64 base64 characters a line. Written out here rather than
    /// by the crate that parses it, so the test does not trust the parser to check itself.
    fn pem(key: &SigningKey) -> String {
        let mut der = hex::decode("3059301306072a8648ce3d020106082a8648ce3d030107034200").unwrap();
        der.extend_from_slice(key.verifying_key().to_sec1_point(false).as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = b64.as_bytes().chunks(64).map(|line| std::str::from_utf8(line).unwrap()).collect();
        format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"))
    }

    fn sign(key: &SigningKey, body: &[u8]) -> String {
        let signature: Signature = key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    struct Fixture {
        keys: TrustedKeys,
        signer: SigningKey,
        other: SigningKey,
    }

    fn fixture() -> Fixture {
        let signer = new_key();
        let other = new_key();
        let keys = TrustedKeys::parse(&document(&[("current", &pem(&signer)), ("previous", &pem(&other))])).unwrap();
        Fixture { keys, signer, other }
    }

    #[test]
    fn githubs_documented_sample_delivery_verifies() {
        let keys = TrustedKeys::parse(&document(&[(SAMPLE_KEY_ID, SAMPLE_KEY), (OLD_KEY_ID, OLD_KEY)])).unwrap();
        assert_eq!(keys.identifiers().collect::<Vec<_>>(), [SAMPLE_KEY_ID, OLD_KEY_ID]);
        assert_eq!(keys.verify(Some(SAMPLE_KEY_ID), Some(SAMPLE_SIGNATURE), SAMPLE_BODY.as_bytes()), Ok(()));
        // The same delivery with one byte changed, or named with the other key, is refused.
        let tampered = SAMPLE_BODY.replace("some_token", "some_tokem");
        assert_eq!(
            keys.verify(Some(SAMPLE_KEY_ID), Some(SAMPLE_SIGNATURE), tampered.as_bytes()),
            Err(SignatureRefusal::Invalid)
        );
        assert_eq!(
            keys.verify(Some(OLD_KEY_ID), Some(SAMPLE_SIGNATURE), SAMPLE_BODY.as_bytes()),
            Err(SignatureRefusal::Invalid)
        );
        // The key before it, with the sample of the Python validation example proposed to the
        // same page (github/docs pull request 18776): a signature whose r has a leading zero.
        let old_body = br#"[{"token":"some_token","type":"some_type","url":"some_url"}]"#;
        let old_signature =
            "MEUCIQDKZokqnCjrRtw0tni+2Ltvl/uiMJ1EGumEsp1BsNr32AIgQY1YXD2nlj+XNfGK4rBfkMJ1JDOQcYXxa2sY8FNkrKc=";
        assert_eq!(keys.verify(Some(OLD_KEY_ID), Some(old_signature), old_body), Ok(()));
        assert_eq!(keys.verify(Some(SAMPLE_KEY_ID), Some(old_signature), old_body), Err(SignatureRefusal::Invalid));
        // Its body parses as the report it is.
        let report = ScanReport::parse(SAMPLE_BODY.as_bytes()).unwrap();
        assert_eq!(
            report,
            [ReportedToken {
                token: "some_token".into(),
                token_type: "some_type".into(),
                url: Some("https://example.com/base-repo-url/".into()),
                source: Some("commit".into()),
            }]
        );
    }

    #[test]
    fn a_body_signed_by_a_trusted_key_verifies_with_either_key() {
        let f = fixture();
        let body = br#"[{"token":"sk_x","type":"acme_secret_key"}]"#;
        assert_eq!(f.keys.verify(Some("current"), Some(&sign(&f.signer, body)), body), Ok(()));
        assert_eq!(f.keys.verify(Some("previous"), Some(&sign(&f.other, body)), body), Ok(()), "not current: trusted");
        assert_eq!(f.keys.verify(Some("current"), Some(&sign(&f.signer, b"")), b""), Ok(()), "an empty body too");
    }

    #[test]
    fn a_tampered_body_or_the_wrong_key_is_invalid() {
        let f = fixture();
        let body = br#"[{"token":"sk_x","type":"acme_secret_key"}]"#;
        let signature = sign(&f.signer, body);
        let tampered = br#"[{"token":"sk_y","type":"acme_secret_key"}]"#;
        assert_eq!(f.keys.verify(Some("current"), Some(&signature), tampered), Err(SignatureRefusal::Invalid));
        assert_eq!(f.keys.verify(Some("previous"), Some(&signature), body), Err(SignatureRefusal::Invalid));
        let stranger = new_key();
        assert_eq!(
            f.keys.verify(Some("current"), Some(&sign(&stranger, body)), body),
            Err(SignatureRefusal::Invalid),
            "signed by a key not in the document, named as a trusted one"
        );
        // Whitespace added around a JSON body changes what was signed.
        let mut spaced = body.to_vec();
        spaced.push(b'\n');
        assert_eq!(f.keys.verify(Some("current"), Some(&signature), &spaced), Err(SignatureRefusal::Invalid));
    }

    #[test]
    fn an_unknown_identifier_is_refused_before_the_signature_is_read() {
        let f = fixture();
        let body = b"[]";
        for identifier in ["next", "Current", " current", &"x".repeat(MAX_KEY_IDENTIFIER_CHARS * 4 + 1)] {
            assert_eq!(
                f.keys.verify(Some(identifier), Some(&sign(&f.signer, body)), body),
                Err(SignatureRefusal::UnknownKey),
                "{identifier}"
            );
            assert_eq!(f.keys.verify(Some(identifier), Some("!!"), body), Err(SignatureRefusal::UnknownKey));
        }
    }

    #[test]
    fn a_missing_or_empty_header_is_missing() {
        let f = fixture();
        let body = b"[]";
        let signature = sign(&f.signer, body);
        for (identifier, signature) in [
            (None, Some(signature.as_str())),
            (Some("current"), None),
            (None, None),
            (Some(""), Some(signature.as_str())),
            (Some("current"), Some("")),
            (Some("  "), Some(signature.as_str())),
            (Some("unknown"), None),
        ] {
            assert_eq!(f.keys.verify(identifier, signature, body), Err(SignatureRefusal::Missing), "{identifier:?}");
        }
    }

    #[test]
    fn a_signature_that_is_not_base64_der_is_malformed() {
        // A fixed key and body (signatures are deterministic, RFC 6979) whose base64 is padded,
        // so taking the padding away is a change.
        let signer = SigningKey::from_slice(&[7u8; 32]).unwrap();
        let keys = TrustedKeys::parse(&document(&[("current", &pem(&signer))])).unwrap();
        let body = br#"[{"token":"sk_x","type":"t"}]"#;
        let signature: Signature = signer.sign(body);
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let der = sign(&signer, body);
        assert!(der.ends_with('='), "{der}");
        assert_eq!(keys.verify(Some("current"), Some(&der), body), Ok(()));
        for malformed in [
            "not base64!".to_owned(),
            der.trim_end_matches('=').to_owned(), // unpadded: not what GitHub sends
            der.replace('+', "-").replace('/', "_") + "-_", // URL-safe alphabet
            b64(b"hello"),
            b64(&signature.to_bytes()), // fixed 64 bytes r||s: GitHub sends DER
            b64(&[signature.to_der().as_bytes(), b"\0"].concat()), // DER with trailing bytes
            b64(&[0u8; 72]),
            "A".repeat(MAX_SIGNATURE_CHARS + 4),
        ] {
            assert_eq!(
                keys.verify(Some("current"), Some(&malformed), body),
                Err(SignatureRefusal::Malformed),
                "{malformed}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any change to a signed body (a byte flipped, one added or one taken away) is refused.
        #[test]
        fn any_change_to_a_signed_body_is_refused(
            body in proptest::collection::vec(any::<u8>(), 1..512),
            index in any::<prop::sample::Index>(),
            flip in 1u8..=255,
            change in 0..3u8,
        ) {
            let signer = SigningKey::from_slice(&[7u8; 32]).unwrap();
            let keys = TrustedKeys::parse(&document(&[("k", &pem(&signer))])).unwrap();
            let signature = sign(&signer, &body);
            prop_assert_eq!(keys.verify(Some("k"), Some(&signature), &body), Ok(()));
            let mut changed = body.clone();
            let at = index.index(body.len());
            match change {
                0 => changed[at] ^= flip,
                1 => changed.insert(at, flip),
                _ => { changed.remove(at); }
            }
            prop_assert_eq!(keys.verify(Some("k"), Some(&signature), &changed), Err(SignatureRefusal::Invalid));
        }

        /// Whatever the headers hold, verify answers and never panics.
        #[test]
        fn any_headers_are_answered_without_panicking(
            identifier in proptest::option::of(".{0,300}"),
            signature in proptest::option::of("[A-Za-z0-9+/=]{0,200}|.{0,50}"),
            body in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let keys = TrustedKeys::parse(&document(&[(SAMPLE_KEY_ID, SAMPLE_KEY)])).unwrap();
            prop_assert!(keys.verify(identifier.as_deref(), signature.as_deref(), &body).is_err());
        }

        /// A report body of any bytes is parsed or refused, never a panic.
        #[test]
        fn any_report_body_is_answered_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = ScanReport::parse(&body);
        }
    }

    #[test]
    fn a_keys_document_is_read_with_unknown_fields_ignored() {
        let signer = new_key();
        let with_extras = json!({
            "public_keys": [{ "key_identifier": "k1", "key": pem(&signer), "is_current": true, "added": "x" }],
            "etag": "abc",
        });
        let keys = TrustedKeys::parse(&with_extras.to_string()).unwrap();
        assert_eq!(keys.identifiers().collect::<Vec<_>>(), ["k1"]);
        let without_is_current = json!({ "public_keys": [{ "key_identifier": "k1", "key": pem(&signer) }] });
        assert_eq!(TrustedKeys::parse(&without_is_current.to_string()), Ok(keys.clone()));
        assert_eq!(format!("{keys:?}"), r#"TrustedKeys { identifiers: ["k1"] }"#);
        let max: Vec<(String, String)> = (0..MAX_TRUSTED_KEYS).map(|i| (format!("k{i}"), pem(&signer))).collect();
        let max: Vec<(&str, &str)> = max.iter().map(|(id, key)| (id.as_str(), key.as_str())).collect();
        assert_eq!(TrustedKeys::parse(&document(&max)).unwrap().identifiers().count(), MAX_TRUSTED_KEYS);
    }

    #[test]
    fn a_keys_document_that_is_not_githubs_is_an_error_naming_what_is_wrong() {
        let signer = new_key();
        let key = pem(&signer);
        let too_many: Vec<(String, String)> = (0..=MAX_TRUSTED_KEYS).map(|i| (format!("k{i}"), key.clone())).collect();
        let too_many: Vec<(&str, &str)> = too_many.iter().map(|(id, key)| (id.as_str(), key.as_str())).collect();
        let long_id = "x".repeat(MAX_KEY_IDENTIFIER_CHARS + 1);
        for (document, expected) in [
            ("".to_owned(), "must be a JSON object"),
            ("not json".to_owned(), "must be a JSON object"),
            ("[]".to_owned(), "public_keys is missing"),
            (r#"{"public_keys": {}}"#.to_owned(), "public_keys is missing or not an array"),
            (r#"{"public_keys": []}"#.to_owned(), "public_keys is empty"),
            (document(&too_many), "at most 20 keys"),
            (json!({ "public_keys": ["k"] }).to_string(), "public_keys[0].key_identifier must be a non-empty string"),
            (json!({ "public_keys": [{ "key": key }] }).to_string(), "public_keys[0].key_identifier"),
            (document(&[("", &key)]), "public_keys[0].key_identifier must be a non-empty string"),
            (document(&[(&long_id, &key)]), "at most 256 characters"),
            (document(&[("k", &key), ("k", &key)]), "public_keys[1].key_identifier 'k' is there twice"),
            (json!({ "public_keys": [{ "key_identifier": "k" }] }).to_string(), "public_keys[0].key must be"),
            (json!({ "public_keys": [{ "key_identifier": "k", "key": 5 }] }).to_string(), "public_keys[0].key must be"),
            (document(&[("k", &key), ("p384", P384_KEY)]), "public_keys[1].key must be an ECDSA P-256 public key"),
            (document(&[("ed25519", ED25519_KEY)]), "public_keys[0].key must be an ECDSA P-256 public key"),
            (document(&[("k", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")]), "P-256"),
            (document(&[("k", &key.replace("PUBLIC KEY", "CERTIFICATE"))]), "P-256"),
            (document(&[("k", "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE")]), "P-256"),
        ] {
            let error = TrustedKeys::parse(&document).unwrap_err();
            assert!(error.contains(expected), "{document}: {error}");
        }
    }

    #[test]
    fn a_report_is_read_as_github_sends_it() {
        let body = json!([
            { "token": "sk_a", "type": "acme_secret_key", "url": "https://github.com/o/r/blob/1/f", "source": "content" },
            { "token": "sk_b", "type": "acme_secret_key", "url": "", "source": "npm", "future_field": [1, 2] },
            { "token": "sk_c", "type": "acme_secret_key" },
            { "token": "sk_d", "type": "acme_secret_key", "url": null, "source": null },
        ]);
        let report = ScanReport::parse(body.to_string().as_bytes()).unwrap();
        let tokens: Vec<&str> = report.iter().map(|t| t.token.as_str()).collect();
        assert_eq!(tokens, ["sk_a", "sk_b", "sk_c", "sk_d"]);
        assert_eq!(report[0].url.as_deref(), Some("https://github.com/o/r/blob/1/f"));
        assert_eq!(report[0].source.as_deref(), Some("content"));
        assert_eq!((report[1].url.as_deref(), report[1].source.as_deref()), (None, Some("npm")), "empty url is none");
        assert_eq!((&report[2].url, &report[2].source), (&None, &None), "older reports have no source");
        assert_eq!((&report[3].url, &report[3].source), (&None, &None));
        assert!(report.iter().all(|t| t.token_type == "acme_secret_key"));
        assert_eq!(ScanReport::parse(b"[]").unwrap(), [], "an empty report is no work");
        let pretty = serde_json::to_vec_pretty(&body).unwrap();
        assert_eq!(ScanReport::parse(&pretty).unwrap(), report);
    }

    #[test]
    fn a_report_at_its_caps_is_read() {
        let entry = json!({
            "token": "t".repeat(MAX_TOKEN_CHARS),
            "type": "y".repeat(MAX_TOKEN_TYPE_CHARS),
            "url": "u".repeat(MAX_URL_CHARS),
            "source": "s".repeat(MAX_SOURCE_CHARS),
        });
        let body = serde_json::to_vec(&vec![entry; MAX_REPORTED_TOKENS]).unwrap();
        assert!(body.len() < MAX_REPORT_BYTES, "the recommended cap admits a report at every cap");
        assert_eq!(ScanReport::parse(&body).unwrap().len(), MAX_REPORTED_TOKENS);
        // Characters, not bytes: a 1024-character token of 2-byte characters fits.
        let wide = json!([{ "token": "é".repeat(MAX_TOKEN_CHARS), "type": "t" }]);
        assert_eq!(ScanReport::parse(wide.to_string().as_bytes()).unwrap()[0].token.chars().count(), MAX_TOKEN_CHARS);
    }

    #[test]
    fn a_report_that_is_not_githubs_names_the_body_or_the_entry_and_never_the_token() {
        let secret = "sk_live_secret_value";
        let entry = |fields: Value| json!([{ "token": "sk_ok", "type": "t" }, fields]).to_string();
        let too_many =
            serde_json::to_string(&vec![json!({ "token": secret, "type": "t" }); MAX_REPORTED_TOKENS + 1]).unwrap();
        for (body, field, problem) in [
            (String::new(), "body", FieldProblem::Invalid),
            ("not json".into(), "body", FieldProblem::Invalid),
            (format!("[{{\"token\": \"{secret}\", \"type\": \"t\"}}"), "body", FieldProblem::Invalid),
            (json!({ "token": secret, "type": "t" }).to_string(), "body", FieldProblem::Invalid),
            ("null".into(), "body", FieldProblem::Invalid),
            (too_many, "body", FieldProblem::TooMany),
            (entry(json!(secret)), "body[1]", FieldProblem::Invalid),
            (entry(json!({ "type": "t" })), "body[1].token", FieldProblem::Missing),
            (entry(json!({ "token": null, "type": "t" })), "body[1].token", FieldProblem::Missing),
            (entry(json!({ "token": "", "type": "t" })), "body[1].token", FieldProblem::Invalid),
            (entry(json!({ "token": 12345, "type": "t" })), "body[1].token", FieldProblem::Invalid),
            (
                entry(json!({ "token": "x".repeat(MAX_TOKEN_CHARS + 1), "type": "t" })),
                "body[1].token",
                FieldProblem::Invalid,
            ),
            (entry(json!({ "token": secret })), "body[1].type", FieldProblem::Missing),
            (entry(json!({ "token": secret, "type": "" })), "body[1].type", FieldProblem::Invalid),
            (entry(json!({ "token": secret, "type": ["t"] })), "body[1].type", FieldProblem::Invalid),
            (
                entry(json!({ "token": secret, "type": "t".repeat(MAX_TOKEN_TYPE_CHARS + 1) })),
                "body[1].type",
                FieldProblem::Invalid,
            ),
            (entry(json!({ "token": secret, "type": "t", "url": 5 })), "body[1].url", FieldProblem::Invalid),
            (
                entry(json!({ "token": secret, "type": "t", "url": "u".repeat(MAX_URL_CHARS + 1) })),
                "body[1].url",
                FieldProblem::Invalid,
            ),
            (entry(json!({ "token": secret, "type": "t", "source": {} })), "body[1].source", FieldProblem::Invalid),
            (
                entry(json!({ "token": secret, "type": "t", "source": "s".repeat(MAX_SOURCE_CHARS + 1) })),
                "body[1].source",
                FieldProblem::Invalid,
            ),
        ] {
            let error = ScanReport::parse(body.as_bytes()).unwrap_err();
            assert_eq!((error.field.as_str(), error.problem), (field, problem), "{body:.80}: {error}");
            assert!(!error.to_string().contains(secret), "{error}");
        }
        let huge = vec![b' '; MAX_REPORT_BYTES + 1];
        assert_eq!(ScanReport::parse(&huge).unwrap_err().field, "body");
    }

    #[test]
    fn a_reported_tokens_debug_never_shows_the_token() {
        let body =
            br#"[{"token":"sk_live_secret_value","type":"acme_secret_key","url":"https://x","source":"content"}]"#;
        let report = ScanReport::parse(body).unwrap();
        let shown = format!("{report:?} {:#?}", report[0]);
        assert!(!shown.contains("sk_live_secret_value"), "{shown}");
        assert!(shown.contains("acme_secret_key") && shown.contains("https://x") && shown.contains("20 characters"));
    }

    #[test]
    fn feedback_is_githubs_format_with_the_tokens_sha256_in_hex() {
        // SHA-256("some_token"), as `printf some_token | sha256sum` gives it.
        let hash = "9a45520a1213f15016d2d768b5fb3d904492a44ee274b44d4de8803e00fb536a";
        let computed = token_hash_hex("some_token");
        assert_eq!(computed.len(), 64);
        assert!(computed.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "lowercase hex");
        assert_eq!(computed, hash);
        let report = ScanReport::parse(SAMPLE_BODY.as_bytes()).unwrap();
        let feedback =
            vec![Feedback::new(&report[0], Label::TruePositive), Feedback::new(&report[0], Label::FalsePositive)];
        assert_eq!(
            serde_json::to_value(&feedback).unwrap(),
            json!([
                { "token_hash": hash, "token_type": "some_type", "label": "true_positive" },
                { "token_hash": hash, "token_type": "some_type", "label": "false_positive" },
            ])
        );
        assert!(!serde_json::to_string(&feedback).unwrap().contains("some_token"));
    }
}
