//! Key material: generation, the checksum that rejects a mistyped key without a database read,
//! and the hash that is all the table keeps of a secret key.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::company::KeyPrefix;

/// Random bytes per key: 256 bits, as Stripe's and GitHub's keys carry at least.
const RANDOM_BYTES: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
/// Characters of the plaintext kept in the clear to recognise a key: `sk_` plus four.
const VISIBLE_PREFIX_LEN: usize = 7;

/// Whether a key is a secret (kept only as a hash) or publishable (meant for browsers and apps,
/// so shown again); the plaintext's `sk_`/`pk_` marker says which.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// The default: shown once at create or roll, and the only kind that can be a root key.
    #[default]
    Secret,
    /// Not a secret: stored in plaintext and shown in every view of the key.
    Publishable,
}

impl KeyType {
    fn marker(self) -> &'static str {
        match self {
            KeyType::Secret => "sk_",
            KeyType::Publishable => "pk_",
        }
    }
}

/// A plaintext key. Its Debug never shows the secret, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PlaintextKey(String);

impl fmt::Debug for PlaintextKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlaintextKey({}…)", self.visible_prefix())
    }
}

impl PlaintextKey {
    /// `sk_` or `pk_`, base58 of 32 bytes from the thread's CSPRNG, then a 6-character CRC-32.
    pub fn generate(kind: KeyType) -> Self {
        Self::generate_for(kind, None)
    }

    /// As `generate`, after the company's prefix and `_` when it has one: `acmeco_sk_…`. The
    /// checksum covers the prefix too.
    pub fn generate_for(kind: KeyType, prefix: Option<&KeyPrefix>) -> Self {
        let mut bytes = [0u8; RANDOM_BYTES];
        rand::fill(&mut bytes);
        let mut key = String::with_capacity(17 + 3 + 44 + CHECKSUM_LEN);
        if let Some(prefix) = prefix {
            key.push_str(prefix.as_str());
            key.push('_');
        }
        key.push_str(kind.marker());
        key.push_str(&bs58::encode(bytes).into_string());
        let checksum = checksum_of(&key);
        key.push_str(&checksum);
        Self(key)
    }

    /// Accepts only what `generate_for` can make, with any company's prefix or none; anything
    /// else is not a key and costs no read.
    pub fn parse(raw: &str) -> Option<(KeyType, Self)> {
        if !raw.is_ascii() {
            return None;
        }
        let marked = marker_start(raw)?;
        let body = &raw[marked..];
        let kind = if body.starts_with("sk_") {
            KeyType::Secret
        } else if body.starts_with("pk_") {
            KeyType::Publishable
        } else {
            return None;
        };
        if body.len() < 3 + 32 + CHECKSUM_LEN || body.len() > 3 + 46 + CHECKSUM_LEN {
            return None;
        }
        let (unchecked, checksum) = raw.split_at(raw.len() - CHECKSUM_LEN);
        let random = bs58::decode(&unchecked[marked + 3..]).into_vec().ok()?;
        let checksum_matches: bool = checksum_of(unchecked).as_bytes().ct_eq(checksum.as_bytes()).into();
        (random.len() == RANDOM_BYTES && checksum_matches).then(|| (kind, Self(raw.to_owned())))
    }

    /// The plaintext itself, for the one answer that carries it; named so every use stands out.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The `keyPrefix` shown in lists and logs (the company's prefix if any, `sk_`, and four
    /// characters): enough to recognise a key, far too little to guess it.
    pub fn visible_prefix(&self) -> &str {
        let marker = marker_start(&self.0).unwrap_or(0);
        &self.0[..marker + VISIBLE_PREFIX_LEN]
    }

    /// What the table keeps of the key and looks it up by: one SHA-256, enough for 256 random
    /// bits (no salt or slow hash is needed for a secret nobody chose).
    pub fn hash(&self) -> SecretHash {
        SecretHash::of_text(&self.0)
    }
}

/// Where a key's `sk_`/`pk_` marker starts: 0 without a prefix; after `<prefix>_` with one (a
/// prefix is never `sk` or `pk`, so the first `_` tells them apart).
fn marker_start(raw: &str) -> Option<usize> {
    match raw.find('_') {
        Some(2) if raw.starts_with("sk_") || raw.starts_with("pk_") => Some(0),
        Some(end) if KeyPrefix::parse(&raw[..end], "keyPrefix").is_ok() => Some(end + 1),
        _ => None,
    }
}

fn checksum_of(text: &str) -> String {
    let mut value = u64::from(crc32fast::hash(text.as_bytes()));
    let mut out = [b'1'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE58[(value % 58) as usize];
        value /= 58;
    }
    out.iter().map(|&b| b as char).collect()
}

/// SHA-256 of a plaintext key, hex. Like the key, it is never printed: its Debug is redacted.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

/// Characters of a presented key not in the service's format that verify still looks up (a key
/// imported by its hash): visible ASCII, as long as keys of other systems run.
pub const FOREIGN_KEY_CHARS: std::ops::RangeInclusive<usize> = 8..=512;

impl SecretHash {
    /// The hash of an imported key, as the system it came from gave its SHA-256.
    pub fn from_sha256(digest: [u8; 32]) -> Self {
        Self(hex::encode(digest))
    }

    /// The hash a presented string not in the service's format is filed under, if it may be an
    /// imported key's plaintext (`FOREIGN_KEY_CHARS` of visible ASCII); `None`: nothing to look up.
    pub fn of_foreign(presented: &str) -> Option<Self> {
        let visible = presented.bytes().all(|b| b.is_ascii_graphic());
        (visible && FOREIGN_KEY_CHARS.contains(&presented.len())).then(|| Self::of_text(presented))
    }

    /// The SHA-256 of a plaintext, whichever system made it.
    fn of_text(plaintext: &str) -> Self {
        Self::from_sha256(Sha256::digest(plaintext.as_bytes()).into())
    }

    /// The hex digest, for the store's item keys; never for a log.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares without leaking through timing how much of the hash matched.
    pub fn matches(&self, other: &SecretHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_back_with_their_type() {
        for kind in [KeyType::Secret, KeyType::Publishable] {
            let key = PlaintextKey::generate(kind);
            let (parsed_kind, parsed) = PlaintextKey::parse(key.expose()).expect("own key parses");
            assert_eq!(parsed_kind, kind);
            assert_eq!(parsed, key);
            assert!(key.expose().starts_with(kind.marker()));
        }
    }

    #[test]
    fn one_changed_character_fails_the_checksum() {
        let key = PlaintextKey::generate(KeyType::Secret);
        let mut chars: Vec<char> = key.expose().chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let changed: String = chars.into_iter().collect();
        assert!(PlaintextKey::parse(&changed).is_none());
    }

    #[test]
    fn debug_output_hides_the_secret_and_the_hash() {
        let key = PlaintextKey::generate(KeyType::Secret);
        let printed = format!("{key:?} {:?}", key.hash());
        assert!(!printed.contains(key.expose()));
        assert!(!printed.contains(key.hash().as_str()));
        assert!(printed.contains(key.visible_prefix()));
    }

    #[test]
    fn hash_is_sha256_hex_and_distinct_per_key() {
        let a = PlaintextKey::generate(KeyType::Secret);
        let b = PlaintextKey::generate(KeyType::Secret);
        assert_eq!(a.hash().as_str().len(), 64);
        assert!(a.hash().matches(&a.hash()));
        assert!(!a.hash().matches(&b.hash()));
    }

    #[test]
    fn a_companys_prefix_leads_its_keys_and_the_checksum_covers_it() {
        let prefix = KeyPrefix::parse("acmeco", "keyPrefix").unwrap();
        for kind in [KeyType::Secret, KeyType::Publishable] {
            let key = PlaintextKey::generate_for(kind, Some(&prefix));
            assert!(key.expose().starts_with(&format!("acmeco_{}", kind.marker())), "{key:?}");
            assert_eq!(PlaintextKey::parse(key.expose()).map(|(k, p)| (k, p == key)), Some((kind, true)));
            assert_eq!(key.visible_prefix().len(), "acmeco_".len() + VISIBLE_PREFIX_LEN);
            // Another company's prefix on the same body fails the checksum: no read.
            let moved = key.expose().replacen("acmeco_", "rival_", 1);
            assert!(PlaintextKey::parse(&moved).is_none());
            let stripped = key.expose().trim_start_matches("acmeco_");
            assert!(PlaintextKey::parse(stripped).is_none());
        }
        for bad in ["Acme_sk_x", "a_sk_x", "toolongprefixabcd_sk_x", "acme-co_sk_x", "_sk_x", "acmeco__sk_x"] {
            assert!(PlaintextKey::parse(bad).is_none(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn a_prefixed_key_with_one_character_changed_is_refused(at in 0usize..60, to in "[a-z0-9_]") {
            let key = PlaintextKey::generate_for(KeyType::Secret, KeyPrefix::parse("acme", "k").ok().as_ref());
            let mut chars: Vec<char> = key.expose().chars().collect();
            let at = at % chars.len();
            let to = to.chars().next().unwrap();
            prop_assume!(chars[at] != to);
            chars[at] = to;
            let changed: String = chars.into_iter().collect();
            prop_assert!(PlaintextKey::parse(&changed).is_none());
        }

        #[test]
        fn arbitrary_text_never_panics_and_rarely_parses(raw in ".{0,80}") {
            let _ = PlaintextKey::parse(&raw);
        }

        #[test]
        fn keyish_text_with_a_wrong_checksum_is_rejected(body in "[1-9A-HJ-NP-Za-km-z]{43}", sum in "[1-9A-HJ-NP-Za-km-z]{6}") {
            let raw = format!("sk_{body}{sum}");
            let expected = checksum_of(&format!("sk_{body}"));
            prop_assume!(sum != expected);
            prop_assert!(PlaintextKey::parse(&raw).is_none());
        }
    }
}
