//! The key and its parts, with the rules that make a value valid. No I/O here.

// Every public value and rule says what it is for: the next engineer reads these first.
#![warn(missing_docs)]

pub mod acl;
mod audit;
pub mod company;
mod error;
pub mod events;
pub mod fields;
mod identity;
mod ids;
pub mod import;
pub mod input;
pub mod ip;
mod key;
pub mod labels;
pub mod limits;
pub mod page;
pub mod policy;
mod secret;
pub mod secret_scanning;
pub mod usage;

pub use acl::{Acl, AclEntry, Dimension, Permission, Scope};
pub use audit::{ActingSecret, ActorType, AuditAction, AuditEvent, SecretRole};
pub use error::{FieldError, FieldProblem};
pub use fields::Change;
pub use identity::{
    CreateIdentityInput, Identity, IdentityKeys, IdentityParts, IdentityPartsChange, IdentityView,
    MAX_EXTERNAL_ID_CHARS, UpdateIdentityInput,
};
pub use ids::{CompanyId, IdentityId, KeyId, RESERVED_KEY_IDS};
pub use import::{ImportInput, ImportedKeyInput, MAX_IMPORTED_KEYS};
pub use input::{CreateKeyInput, IdempotencyKey, RollInput, UpdateKeyInput, VerifyInput};
pub use ip::IpAllowlist;
pub use key::{ApiKey, KeyStatus, KeyView, LAST_USED_GRANULARITY, PolicyView, PreviousSecret, QuotaView};
pub use labels::{Labels, LabelsChange};
pub use limits::{MAX_LIMIT_NAME_CHARS, MAX_NAMED_LIMITS, NamedLimit, Quota, QuotaUsage, RateLimit, Window};
pub use page::{Cursor, PageRequest, StatusFilter};
pub use policy::{Policy, PolicyChange};
pub use secret::{KeyType, PlaintextKey, SecretHash};
pub use secret_scanning::{
    Feedback, Label, MAX_REPORT_BYTES, MAX_REPORTED_TOKENS, ReportedToken, ScanReport, SignatureRefusal, TrustedKeys,
    token_hash_hex,
};
