//! A company's own settings: the prefix of its keys, what a reported leak does, and the
//! patterns a secret scanner registers to recognise its keys; and the audit trail of their
//! changes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{FieldError, KeyId};

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

/// A `PATCH /company` body: `keyPrefix` (a prefix, or `null` for none) and `leakPolicy`; and,
/// serialized, an audit record's `changes`: the fields it holds with their new values (a
/// prefix set back to none as `null`), the others left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanySettingsChange {
    /// `Some(None)`: back to no prefix.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<Option<KeyPrefix>>,
    /// A new policy.
    #[serde(skip_serializing_if = "Option::is_none")]
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

    /// Only the fields whose value differs from `before` to `after`: what a write records.
    pub fn between(before: &CompanySettings, after: &CompanySettings) -> Self {
        Self {
            key_prefix: (after.key_prefix != before.key_prefix).then(|| after.key_prefix.clone()),
            leak_policy: (after.leak_policy != before.leak_policy).then_some(after.leak_policy),
        }
    }

    /// Every field, at the settings' values: the whole settings as a change.
    pub fn whole(settings: &CompanySettings) -> Self {
        Self { key_prefix: Some(settings.key_prefix.clone()), leak_policy: Some(settings.leak_policy) }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.key_prefix.is_none() && self.leak_policy.is_none()
    }
}

/// What kind of change a company audit record is. Shown in snake_case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanyAction {
    /// A `PATCH /company` that changed `keyPrefix`, `leakPolicy` or both.
    SettingsChanged,
}

/// One change of a company's settings, as `GET /company/events` shows it: who, when, and the
/// fields it changed. It names nothing of another company: the trail is read only by the
/// company's own keys, from its own partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CompanyEvent {
    /// The record's own id, a UUID v7: the trail pages by it in time order.
    pub id: KeyId,
    /// What kind of change this was.
    pub action: CompanyAction,
    /// The id of the company's key that made the change.
    pub actor: String,
    /// When the change took effect, by the domain's clock.
    pub at: DateTime<Utc>,
    /// The fields changed, with their new values (a record written before only the changed
    /// fields were kept holds the whole settings after the change).
    pub changes: CompanySettingsChange,
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
    fn a_change_between_two_settings_holds_only_what_differs() {
        let prefixed =
            |raw: &str| CompanySettings { key_prefix: KeyPrefix::parse(raw, "k").ok(), ..Default::default() };
        let before = prefixed("old");
        let notify = CompanySettings { leak_policy: LeakPolicy::Notify, ..before.clone() };
        let changes = |after: &CompanySettings| serde_json::to_value(CompanySettingsChange::between(&before, after));
        assert_eq!(changes(&notify).unwrap(), json!({ "leakPolicy": "notify" }));
        assert_eq!(changes(&prefixed("new")).unwrap(), json!({ "keyPrefix": "new" }));
        assert_eq!(changes(&CompanySettings::default()).unwrap(), json!({ "keyPrefix": null }), "none again: null");
        assert!(CompanySettingsChange::between(&before, &before).is_empty());
        let whole = serde_json::to_value(CompanySettingsChange::whole(&CompanySettings::default())).unwrap();
        assert_eq!(whole, json!({ "keyPrefix": null, "leakPolicy": "revoke" }));
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
