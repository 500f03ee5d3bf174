//! A company's own settings: the prefix of its keys, what a reported leak does, and the
//! patterns a secret scanner registers to recognise its keys.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FieldError;

/// Characters of a company's key prefix.
pub const KEY_PREFIX_CHARS: std::ops::RangeInclusive<usize> = 2..=16;

/// A company's key prefix: 2 to 16 of `a-z 0-9`; its keys read `<prefix>_sk_…` and
/// `<prefix>_pk_…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// `field` names the input in the error. `sk` and `pk` are the markers themselves, so no
    /// prefix.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let fits = KEY_PREFIX_CHARS.contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && !matches!(raw, "sk" | "pk");
        if fits {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::invalid(field, format!("{field} must be 2 to 16 of a-z 0-9, other than sk and pk")))
        }
    }

    /// The prefix as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyPrefix {
    type Error = FieldError;
    fn try_from(raw: String) -> Result<Self, FieldError> {
        Self::parse(&raw, "keyPrefix")
    }
}

impl From<KeyPrefix> for String {
    fn from(prefix: KeyPrefix) -> String {
        prefix.0
    }
}

impl std::fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a leak report of one of the company's live keys does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeakPolicy {
    /// The default: the key is deleted at once.
    #[default]
    Revoke,
    /// The key stays active; the report is audited and published.
    Notify,
}

/// A company's settings, as `GET /company` shows them (with `keyPatterns`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanySettings {
    /// `None`: keys read `sk_…` / `pk_…`.
    pub key_prefix: Option<KeyPrefix>,
    /// What a reported leak does.
    pub leak_policy: LeakPolicy,
    /// Changes so far (0 for a company that never changed them): `ETag` and `If-Match`.
    pub version: u64,
}

/// The base58 alphabet of the random part and the checksum, as a regex class.
const BASE58_CLASS: &str = "[1-9A-HJ-NP-Za-km-z]";

impl CompanySettings {
    /// The `ETag` of this version, which `If-Match` must name (as a key's and an identity's).
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The regular expressions a secret scanner registers for the company's secret and
    /// publishable keys: the prefix (if any), the marker, then 38 to 52 base58 characters (the
    /// random part and the checksum), between word boundaries, so another company's prefix
    /// that ends with this one's does not match.
    pub fn key_patterns(&self) -> [(&'static str, String); 2] {
        let start = self.key_prefix.as_ref().map_or(String::new(), |p| format!("{p}_"));
        let pattern = |marker: &str| format!(r"\b{start}{marker}_{BASE58_CLASS}{{38,52}}\b");
        [("secret", pattern("sk")), ("publishable", pattern("pk"))]
    }
}

/// A `PATCH /company` body: `keyPrefix` (a prefix, or `null` for none) and `leakPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompanySettingsChange {
    /// `Some(None)`: back to no prefix.
    pub key_prefix: Option<Option<KeyPrefix>>,
    /// A new policy.
    pub leak_policy: Option<LeakPolicy>,
}

impl CompanySettingsChange {
    /// From a JSON object; any other field, or a value of the wrong kind, is an error naming it.
    pub fn parse(body: Value) -> Result<Self, FieldError> {
        let Value::Object(fields) = body else {
            return Err(FieldError::invalid("", "the body must be a JSON object"));
        };
        Self::from_fields(fields)
    }

    fn from_fields(fields: Map<String, Value>) -> Result<Self, FieldError> {
        let mut change = Self::default();
        for (name, value) in fields {
            match name.as_str() {
                "keyPrefix" => {
                    change.key_prefix = Some(match value {
                        Value::Null => None,
                        Value::String(raw) => Some(KeyPrefix::parse(&raw, "keyPrefix")?),
                        _ => return Err(FieldError::invalid("keyPrefix", "keyPrefix must be a string or null")),
                    });
                }
                "leakPolicy" => {
                    change.leak_policy = Some(match value.as_str() {
                        Some("revoke") => LeakPolicy::Revoke,
                        Some("notify") => LeakPolicy::Notify,
                        _ => return Err(FieldError::invalid("leakPolicy", "leakPolicy must be revoke or notify")),
                    });
                }
                "keyPatterns" => return Err(FieldError::read_only("keyPatterns")),
                _ => return Err(FieldError::unknown(name)),
            }
        }
        Ok(change)
    }

    /// The settings after the change.
    pub fn applied_to(&self, before: &CompanySettings) -> CompanySettings {
        CompanySettings {
            key_prefix: self.key_prefix.clone().unwrap_or_else(|| before.key_prefix.clone()),
            leak_policy: self.leak_policy.unwrap_or(before.leak_policy),
            version: before.version + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_prefix_is_2_to_16_lowercase_letters_or_digits() {
        for good in ["ab", "acmeco", "a1b2c3d4e5f6g7h8"] {
            assert!(KeyPrefix::parse(good, "keyPrefix").is_ok(), "{good}");
        }
        for bad in ["a", "Acme", "acme_co", "acme-co", "a1b2c3d4e5f6g7h8x", "", "ümlaut", "sk", "pk"] {
            assert_eq!(KeyPrefix::parse(bad, "keyPrefix").unwrap_err().field, "keyPrefix", "{bad}");
        }
    }

    #[test]
    fn a_change_names_its_bad_field() {
        let cases = [
            (json!({ "keyPrefix": 3 }), "keyPrefix"),
            (json!({ "leakPolicy": "ignore" }), "leakPolicy"),
            (json!({ "keyPatterns": [] }), "keyPatterns"),
            (json!({ "prefix": "x" }), "prefix"),
        ];
        for (body, field) in cases {
            assert_eq!(CompanySettingsChange::parse(body).unwrap_err().field, field);
        }
        let change = CompanySettingsChange::parse(json!({ "keyPrefix": null, "leakPolicy": "notify" })).unwrap();
        let before = CompanySettings { key_prefix: KeyPrefix::parse("old", "k").ok(), ..Default::default() };
        let after = change.applied_to(&before);
        assert_eq!((after.key_prefix, after.leak_policy, after.version), (None, LeakPolicy::Notify, 1));
    }

    #[test]
    fn patterns_start_at_a_word_boundary_with_the_prefix() {
        let settings = CompanySettings { key_prefix: KeyPrefix::parse("acmeco", "k").ok(), ..Default::default() };
        let [(_, secret), (_, publishable)] = settings.key_patterns();
        assert!(secret.starts_with(r"\bacmeco_sk_"));
        assert!(publishable.starts_with(r"\bacmeco_pk_"));
        let [(_, plain), _] = CompanySettings::default().key_patterns();
        assert!(plain.starts_with(r"\bsk_"));
    }
}
