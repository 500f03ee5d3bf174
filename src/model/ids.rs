//! Identifiers. They end up in item keys, paths and URLs, so all share one safe alphabet and length.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::FieldError;

const MAX_ID_LEN: usize = 64;

fn is_safe_id(s: &str) -> bool {
    (1..=MAX_ID_LEN).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

macro_rules! safe_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id as it appears in paths, item keys and answers.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

safe_id!(
    /// The company that owns keys. A call's company comes only from its root key (or the
    /// operator's own inputs), never from the request, so no caller can name another company.
    CompanyId
);
safe_id!(
    /// A key's id, unique within its company: a UUID v7 or a custom id.
    KeyId
);
safe_id!(
    /// An identity's id: `id_` and the 32 hex digits of a UUID v7, made by the service only, so
    /// it never reads as a key's id or a route word.
    IdentityId
);

impl CompanyId {
    /// A company id from an operator's input or a stored value; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        if is_safe_id(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::invalid(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"))
        }
    }
}

impl TryFrom<String> for CompanyId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s, "companyId")
    }
}

/// Words the service uses for itself, so they can never name a key: the operator's audit actor,
/// and the route words under and beside `/keys/` (taken or planned), so no key's id reads as
/// a route or as the operator.
pub const RESERVED_KEY_IDS: &[&str] =
    &["operator", "verify", "import", "events", "roll", "usage", "me", "keys", "identities", "company", "console"];

impl KeyId {
    /// Time-ordered, so ids sort roughly by creation and index writes spread.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// A custom id chosen by the caller (or an id from a path or cursor): the alphabet, and
    /// none of the reserved words.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        if RESERVED_KEY_IDS.contains(&raw) {
            return Err(FieldError::invalid(field, format!("'{raw}' is reserved")));
        }
        Self::parse_stored(raw, field)
    }

    /// An id as stored: the alphabet only, so an item written before a word was reserved
    /// still reads.
    fn parse_stored(raw: &str, field: &str) -> Result<Self, FieldError> {
        if !is_safe_id(raw) {
            return Err(FieldError::invalid(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, _ or -"));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// What an identity id is made of after its `id_` prefix: a UUID v7 in 32 lowercase hex digits.
const IDENTITY_ID_PREFIX: &str = "id_";

impl IdentityId {
    /// Time-ordered, like a generated key id, with a prefix that tells it apart from one.
    pub fn generate() -> Self {
        Self(format!("{IDENTITY_ID_PREFIX}{}", uuid::Uuid::now_v7().simple()))
    }

    /// An id from a path, a body or a stored value: `id_` and 32 lowercase hex digits (openapi.yaml's
    /// `IdentityId` pattern); `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let hex = raw.strip_prefix(IDENTITY_ID_PREFIX).unwrap_or_default();
        if hex.len() == 32 && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(FieldError::invalid(
                field,
                format!("{field} must be id_ and 32 lowercase hex digits, as the service made it"),
            ))
        }
    }

    /// The same id as a list cursor holds it: lists page by item ids of the key id's alphabet.
    pub fn as_cursor(&self) -> KeyId {
        KeyId(self.0.clone())
    }
}

impl TryFrom<String> for IdentityId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s, "identityId")
    }
}

impl TryFrom<String> for KeyId {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse_stored(&s, "id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_accept_the_documented_alphabet_only() {
        assert!(KeyId::parse("Abc_09-z", "id").is_ok());
        assert!(KeyId::parse(&"a".repeat(64), "id").is_ok());
        for bad in ["", "a b", "a/b", "a#b", "ключ", &"a".repeat(65)] {
            let err = KeyId::parse(bad, "keyId").unwrap_err();
            assert_eq!(err.field, "keyId");
        }
    }

    #[test]
    fn the_services_own_words_are_reserved_as_key_ids() {
        for word in RESERVED_KEY_IDS {
            assert_eq!(KeyId::parse(word, "keyId").unwrap_err().field, "keyId", "{word}");
        }
        assert!(KeyId::parse("verify", "keyId").is_err());
        assert!(KeyId::parse("operator", "keyId").is_err());
        assert!(KeyId::try_from("operator".to_owned()).is_ok(), "a stored id reads whatever is reserved since");
        assert!(CompanyId::parse("verify", "companyId").is_ok());
    }

    #[test]
    fn identity_ids_are_the_services_own() {
        let id = IdentityId::generate();
        assert_eq!(id.as_str().len(), 35);
        assert_eq!(IdentityId::parse(id.as_str(), "identityId").unwrap(), id);
        assert!(id < IdentityId::generate(), "time-ordered");
        for bad in ["", "id_", "id_0123", "key_0123456789abcdef0123456789abcdef", "id_0123456789ABCDEF0123456789abcdef"]
        {
            assert_eq!(IdentityId::parse(bad, "identityId").unwrap_err().field, "identityId", "{bad}");
        }
        assert_eq!(id.as_cursor().as_str(), id.as_str());
    }

    #[test]
    fn generated_ids_are_time_ordered_uuids() {
        let a = KeyId::generate();
        let b = KeyId::generate();
        assert_eq!(a.as_str().len(), 36);
        assert!(a < b);
    }
}
