//! Request bodies turned into typed values. Every rule about a body field lives here, so the
//! domain never sees a raw string it must check again.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{Change, JsonFields, bounded_text, concat, decode, total, whole};
use super::labels::{Labels, LabelsChange};
use super::policy::{Policy, PolicyChange};

use super::acl::{self, MAX_REQUESTED_PERMISSIONS, MAX_REQUESTED_SCOPE_VALUES};
use super::limits;
use super::{Dimension, FieldError, KeyStatus, KeyType, Scope};

pub use super::labels::{MAX_DESCRIPTION_CHARS, MAX_METADATA_BYTES, MAX_METADATA_DEPTH, MAX_TAG_CHARS, MAX_TAGS};

/// Characters of `userId`: like every field a key carries, repeated by every view, list page and
/// audit record, so capped.
pub const MAX_USER_ID_CHARS: usize = 255;
/// The longest a rolled-away secret keeps verifying: a day is enough to deploy the new one, and
/// a leaked secret must not live on for long.
pub const MAX_GRACE_PERIOD_SECONDS: u64 = 86_400;

/// Fields the server sets; naming one in a body is a 400 that says so.
const SERVER_SET: &[&str] =
    &["id", "companyId", "key", "keyPrefix", "createdAt", "updatedAt", "deletedAt", "lastUsedAt"];

/// A create body's fields: its own, then each part's.
const CREATE_PARTS: &[&[&str]] = &[&["userId", "type"], Policy::FIELDS, Labels::FIELDS];
const CREATE_FIELDS: [&str; total(CREATE_PARTS)] = concat(CREATE_PARTS);

/// A PATCH body's fields: its own, then each part's.
const UPDATE_PARTS: &[&[&str]] = &[Policy::FIELDS, &["status"], Labels::FIELDS];
const UPDATE_FIELDS: [&str; total(UPDATE_PARTS)] = concat(UPDATE_PARTS);

/// A create body, every field checked: the domain builds the key from it without checking again.
/// Fields are as on [`ApiKey`](super::ApiKey); absent and `null` mean the same here.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct CreateKeyInput {
    /// Required: who the key is for, 1 to 255 characters.
    pub user_id: String,
    /// Secret unless the body says publishable.
    pub key_type: KeyType,
    /// Each field its default when absent; a quota given is not started yet.
    pub policy: Policy,
    /// Each field its default when absent.
    pub labels: Labels,
}

impl CreateKeyInput {
    /// The fields a create body may name.
    pub const FIELDS: &[&str] = &CREATE_FIELDS;

    /// Reads a create body at `now` (which `expiresAt` must be after); the error names the first
    /// bad field, server-set and unknown fields before any value.
    pub fn parse(body: Value, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let mut f = JsonFields::new(body)?.only(Self::FIELDS, SERVER_SET)?;
        let user_id: String = f.required("userId", "a string")?;
        Ok(Self {
            user_id: bounded_text(user_id, "userId", MAX_USER_ID_CHARS, false)?,
            labels: Labels::parse(&mut f, now)?,
            key_type: f.optional("type", "\"secret\" or \"publishable\"")?.unwrap_or_default(),
            policy: Policy::parse(&mut f, now)?,
        })
    }
}

/// A PATCH body: only the fields it names change.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UpdateKeyInput {
    /// The policy fields the body names; `null` clears one (`[]` too, for a list). A new quota
    /// renewal starts a new period; a new `max` alone keeps the uses.
    pub policy: PolicyChange,
    /// The labels the body names.
    pub labels: LabelsChange,
    /// Activates or deactivates; cannot be `null`.
    pub status: Change<KeyStatus>,
}

impl UpdateKeyInput {
    /// The fields a PATCH body may name.
    pub const FIELDS: &[&str] = &UPDATE_FIELDS;
    /// Fixed at creation: changing who owns a key or what kind it is means a new key.
    const FIXED: &[&str] =
        &["id", "companyId", "key", "keyPrefix", "createdAt", "updatedAt", "deletedAt", "lastUsedAt", "userId", "type"];

    /// Reads a PATCH body at `now`, telling absent (keep), `null` (clear) and a value apart.
    pub fn parse(body: Value, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let mut f = JsonFields::new(body)?.only(Self::FIELDS, Self::FIXED)?;
        let not_null = |name: &str| FieldError::invalid(name, format!("{name} cannot be null"));
        Ok(Self {
            labels: LabelsChange::parse(&mut f, now)?,
            policy: PolicyChange::parse(&mut f, now)?,
            status: f
                .change("status", "\"active\" or \"inactive\"")?
                .try_map(|s: Option<KeyStatus>| s.ok_or_else(|| not_null("status")))?,
        })
    }

    /// A PATCH that names no field: answered with the key as it is, with no write.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters, as Stripe accepts.
#[derive(Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// The header's value; visible ASCII only, so there is no white space to trim and a retry
    /// matches only the exact same value.
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        if raw.is_empty() || raw.len() > 255 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(FieldError::invalid(
                "Idempotency-Key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// The value, for deriving the record's address and seal; never for a log.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key of the `index`-th part of a request that writes several things (an import's
    /// keys), each replayed on its own: never a header's own value, as it holds a line feed.
    #[must_use]
    pub fn part(&self, index: usize) -> Self {
        Self(format!("{}\n{index}", self.0))
    }
}

/// Reads the `If-Match` header: `None` for `*` (any version), else the version it names.
///
/// A version is written as the API sent it as an ETag: `"3"`, `W/"3"` or `3`, of 1 to 19
/// digits (openapi.yaml's pattern). White space around it is HTTP's, not the value's.
pub fn if_match(raw: &[u8]) -> Result<Option<u64>, FieldError> {
    let raw = std::str::from_utf8(raw).unwrap_or_default().trim_matches([' ', '\t']);
    if raw == "*" {
        return Ok(None);
    }
    let quoted = raw.strip_prefix("W/").unwrap_or(raw).strip_prefix('"').and_then(|v| v.strip_suffix('"'));
    let digits = quoted.unwrap_or(raw);
    if (1..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        return digits.parse().map(Some).map_err(|_| bad_if_match());
    }
    Err(bad_if_match())
}

fn bad_if_match() -> FieldError {
    FieldError::invalid("If-Match", "If-Match must be an ETag this API returned")
}

/// It may be guessable, and it unseals a stored answer that holds a secret: never print it.
impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(…)")
    }
}

/// The body of `POST /keys/{keyId}/roll`; an empty body means no grace period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct RollInput {
    /// How long the old secret keeps verifying, 0 to `MAX_GRACE_PERIOD_SECONDS`.
    pub grace_period_seconds: u64,
}

impl RollInput {
    /// Reads a roll body; `None` (no body) and `{}` both mean no grace period.
    pub fn parse(body: Option<Value>) -> Result<Self, FieldError> {
        let Some(body) = body else { return Ok(Self::default()) };
        let mut f = JsonFields::new(body)?.only(&["gracePeriodSeconds"], &[])?;
        let grace = match f.take("gracePeriodSeconds") {
            None | Some(Value::Null) => 0,
            Some(value) => whole(&value).filter(|n| *n <= MAX_GRACE_PERIOD_SECONDS).ok_or_else(|| {
                FieldError::invalid("gracePeriodSeconds", "gracePeriodSeconds must be a whole number from 0 to 86400")
            })?,
        };
        Ok(Self { grace_period_seconds: grace })
    }
}

/// The body of `POST /keys/verify`. The key itself stays a raw string: a malformed key is an
/// answer (`NOT_FOUND`), not a bad request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VerifyInput {
    /// The presented key, unchecked: verify decides what a malformed one answers.
    pub key: String,
    /// Where the key's user called from, checked against the key's allowlist.
    pub ip: Option<IpAddr>,
    /// What the call needs the key to grant, each a name without `*`.
    pub permissions: Vec<String>,
    /// Where the call acts; empty restricts nothing.
    pub scope: Scope,
    /// What the use costs the key's quota and the named limits it applies without a cost of
    /// their own (`MAX_VERIFY_COST` at most; 1 unless asked).
    pub cost: u64,
    /// Named limits of the key or its identity to apply besides those applied to every verify.
    pub ratelimits: Vec<RequestedLimit>,
}

/// A named limit a verify asks for: its name, and what the use costs it (else the verify's
/// `cost`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestedLimit {
    /// A limit name (`limits::is_limit_name`), unique within the request.
    pub name: String,
    /// 0 to `MAX_VERIFY_COST`; `None`: the verify's `cost`.
    pub cost: Option<u64>,
}

/// Named limits one verify may ask for: a key's and its identity's, all different.
pub const MAX_REQUESTED_LIMITS: usize = 2 * crate::model::MAX_NAMED_LIMITS;

/// The most one verify may cost a quota.
pub const MAX_VERIFY_COST: u64 = 10_000;

impl VerifyInput {
    /// Reads a verify body; the caps on what it may ask keep verify's work bounded.
    pub fn parse(body: Value) -> Result<Self, FieldError> {
        let mut f = JsonFields::new(body)?.only(&["key", "ip", "permissions", "scope", "cost", "ratelimits"], &[])?;
        let key: String = f.required("key", "a string")?;
        let ip = f
            .optional::<String>("ip", "a string")?
            .map(|raw| {
                raw.parse::<IpAddr>().map_err(|_| FieldError::invalid("ip", format!("'{raw}' is not an IP address")))
            })
            .transpose()?;
        let permissions: Vec<String> = f.optional("permissions", "an array of strings")?.unwrap_or_default();
        if permissions.len() > MAX_REQUESTED_PERMISSIONS {
            return Err(FieldError::too_many("permissions", MAX_REQUESTED_PERMISSIONS));
        }
        for (i, permission) in permissions.iter().enumerate() {
            acl::requested_permission(permission, &format!("permissions[{i}]"))?;
        }
        let scope = f
            .optional::<Map<String, Value>>("scope", "an object")?
            .map(requested_scope)
            .transpose()?
            .unwrap_or_default();
        let cost = verify_cost(f.take("cost"), "cost")?.unwrap_or(1);
        let ratelimits = match f.take("ratelimits") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => requested_limits(value)?,
        };
        Ok(Self { key, ip, permissions, scope, cost, ratelimits })
    }
}

/// A cost as a verify gives it: `None` when absent or `null`.
fn verify_cost(value: Option<Value>, field: &str) -> Result<Option<u64>, FieldError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(value) => whole(&value).filter(|n| *n <= MAX_VERIFY_COST).map(Some).ok_or_else(|| {
            FieldError::invalid(field, format!("{field} must be a whole number from 0 to {MAX_VERIFY_COST}"))
        }),
    }
}

/// `ratelimits` of a verify: `[{name, cost}]`, names unique, at most `MAX_REQUESTED_LIMITS`.
fn requested_limits(value: Value) -> Result<Vec<RequestedLimit>, FieldError> {
    let fields: (&[&str], &[&str]) = (&["name", "cost"], &[]);
    limits::entries_by_name(value, "an array of {name, cost}", MAX_REQUESTED_LIMITS, fields, |mut map, field, name| {
        let cost = verify_cost(map.remove("cost"), &format!("{field}.cost"))?;
        Ok(RequestedLimit { name, cost })
    })
}

/// A requested scope names each dimension with one value or a list of at most 100 values, each
/// of the scope value grammar (`*` is not a value a request can name).
fn requested_scope(raw: Map<String, Value>) -> Result<Scope, FieldError> {
    let mut scope = Scope::default();
    for (name, value) in raw {
        let field = format!("scope.{name}");
        let dimension = Dimension::parse(&name).ok_or_else(|| FieldError::unknown(&field))?;
        let values = match value {
            Value::String(one) => {
                acl::scope_value(&one, &field, false)?;
                vec![one]
            }
            other => {
                let values: Vec<String> = decode(other, &field, "a string or an array of strings")?;
                if values.len() > MAX_REQUESTED_SCOPE_VALUES {
                    return Err(FieldError::too_many(field, MAX_REQUESTED_SCOPE_VALUES));
                }
                for (j, value) in values.iter().enumerate() {
                    acl::scope_value(value, &format!("{field}[{j}]"), false)?;
                }
                values
            }
        };
        *scope.dimension_mut(dimension) = Some(values);
    }
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FieldProblem, Quota, RateLimit};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn create_err(body: Value) -> FieldError {
        CreateKeyInput::parse(body, now()).unwrap_err()
    }

    #[test]
    fn a_full_create_body_parses() {
        let input = CreateKeyInput::parse(
            json!({
                "userId": "u1", "description": "ci", "type": "publishable", "whitelistedIPs": ["10.0.0.0/8"],
                "acl": [{ "scope": { "productId": ["p1"] }, "permissions": ["orders:*"] }],
                "expiresAt": "2099-01-01T00:00:00Z", "rateLimit": { "limit": 5, "periodSeconds": 60 },
                "quota": { "max": 100, "renewalSeconds": 3600 }, "tags": ["a"], "metadata": { "plan": "gold" }
            }),
            now(),
        )
        .unwrap();
        assert_eq!(input.key_type, KeyType::Publishable);
        assert_eq!(input.policy.quota, Some(Quota::given(100, Some(3600))));
        assert_eq!(input.policy.rate_limit, Some(RateLimit { limit: 5, period_seconds: 60 }));
    }

    #[test]
    fn errors_name_their_field_and_kind() {
        let cases = [
            (json!({}), "userId", FieldProblem::Missing),
            (json!({ "userId": 7 }), "userId", FieldProblem::Invalid),
            (json!({ "userId": "u", "companyId": "c" }), "companyId", FieldProblem::ReadOnly),
            (json!({ "userId": "u", "createdAt": "x" }), "createdAt", FieldProblem::ReadOnly),
            (json!({ "userId": "u", "colour": "red" }), "colour", FieldProblem::Unknown),
            (
                json!({ "userId": "u", "whitelistedIPs": ["1.2.3.4", "nope"] }),
                "whitelistedIPs[1]",
                FieldProblem::Invalid,
            ),
            (
                json!({ "userId": "u", "acl": [{ "permissions": ["a*b"] }] }),
                "acl[0].permissions[0]",
                FieldProblem::Invalid,
            ),
            (
                json!({ "userId": "u", "rateLimit": { "limit": 0, "periodSeconds": 1 } }),
                "rateLimit.limit",
                FieldProblem::Invalid,
            ),
            (
                json!({ "userId": "u", "quota": { "max": 3, "remaining": 1 } }),
                "quota.remaining",
                FieldProblem::ReadOnly,
            ),
            (json!({ "userId": "u", "expiresAt": "2001-01-01T00:00:00Z" }), "expiresAt", FieldProblem::Invalid),
            (json!({ "userId": "u", "description": "d".repeat(256) }), "description", FieldProblem::Invalid),
            (json!({ "userId": "u", "tags": vec!["t"; 51] }), "tags", FieldProblem::TooMany),
            (json!({ "userId": "u", "metadata": { "blob": "x".repeat(4100) } }), "metadata", FieldProblem::Invalid),
            (json!({ "userId": "u", "metadata": [1] }), "metadata", FieldProblem::Invalid),
            (json!({ "userId": "u", "metadata": { "": 1 } }), "metadata", FieldProblem::Invalid),
            (json!({ "userId": "u", "metadata": { "x": [{ "": 1 }] } }), "metadata", FieldProblem::Invalid),
            (json!({ "userId": "u", "metadata": { "n": 1e300 } }), "metadata", FieldProblem::Invalid),
            (json!({ "userId": "u", "metadata": { "n": 1e-200 } }), "metadata", FieldProblem::Invalid),
        ];
        for (body, field, problem) in cases {
            let err = create_err(body.clone());
            assert_eq!((err.field.as_str(), err.problem), (field, problem), "{body}");
        }
        assert_eq!(create_err(json!([1])).field, "body");
    }

    #[test]
    fn patch_distinguishes_absent_null_and_value() {
        let p = UpdateKeyInput::parse(json!({ "description": null, "status": "inactive" }), now()).unwrap();
        assert_eq!(p.labels.description, Change::Set(None));
        assert_eq!(p.status, Change::Set(KeyStatus::Inactive));
        assert_eq!(p.policy.acl, Change::Keep);
        assert!(UpdateKeyInput::parse(json!({}), now()).unwrap().is_empty());
        assert_eq!(UpdateKeyInput::parse(json!({ "userId": "x" }), now()).unwrap_err().problem, FieldProblem::ReadOnly);
        assert_eq!(UpdateKeyInput::parse(json!({ "tags": null }), now()).unwrap_err().field, "tags");
    }

    #[test]
    fn roll_and_verify_bodies() {
        assert_eq!(RollInput::parse(None).unwrap().grace_period_seconds, 0);
        assert_eq!(RollInput::parse(Some(json!({ "gracePeriodSeconds": 60 }))).unwrap().grace_period_seconds, 60);
        assert!(RollInput::parse(Some(json!({ "gracePeriodSeconds": 86_401 }))).is_err());
        for bad in [json!(1.5), json!(-1), json!("60"), json!(86_401.0)] {
            assert_eq!(
                RollInput::parse(Some(json!({ "gracePeriodSeconds": bad }))).unwrap_err().field,
                "gracePeriodSeconds"
            );
        }
    }

    #[test]
    fn if_match_is_an_etag_or_a_star() {
        for (raw, version) in
            [("*", None), ("\"3\"", Some(3)), ("W/\"3\"", Some(3)), ("3", Some(3)), (" \"12\" ", Some(12))]
        {
            assert_eq!(if_match(raw.as_bytes()).unwrap(), version, "{raw}");
        }
        for raw in [
            "",
            "\"3",
            "3\"",
            "\"\"3\"\"",
            "W/3",
            "W/W/\"3\"",
            "+3",
            "\"\"",
            "abc",
            "12345678901234567890",
            "caf\u{e9}",
        ] {
            assert_eq!(if_match(raw.as_bytes()).unwrap_err().field, "If-Match", "{raw}");
        }
    }

    #[test]
    fn expires_at_is_rfc_3339_exactly() {
        let at = |t: &str| CreateKeyInput::parse(json!({ "userId": "u", "expiresAt": t }), now());
        assert!(at("2099-01-01T00:00:00Z").is_ok());
        assert!(at("2099-01-01T00:00:00+02:00").is_ok());
        for bad in [" 2099-01-01T00:00:00Z", "2099-01-01T00:00:00Z ", "2099-01-01", "tomorrow"] {
            assert_eq!(at(bad).unwrap_err().field, "expiresAt", "{bad}");
        }
        assert_eq!(VerifyInput::parse(json!({ "key": "k", "ip": " 10.0.0.1" })).unwrap_err().field, "ip");
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_of_zero() {
        assert_eq!(RollInput::parse(Some(json!({ "gracePeriodSeconds": 60.0 }))).unwrap().grace_period_seconds, 60);
        let input = CreateKeyInput::parse(
            json!({ "userId": "u", "rateLimit": { "limit": 5.0, "periodSeconds": 6e1 }, "quota": { "max": 1e2 } }),
            now(),
        )
        .unwrap();
        assert_eq!(input.policy.rate_limit, Some(RateLimit { limit: 5, period_seconds: 60 }));
        assert_eq!(input.policy.quota, Some(Quota::given(100, None)));
        assert!(CreateKeyInput::parse(json!({ "userId": "u", "quota": { "max": 2.5 } }), now()).is_err());
        let v = VerifyInput::parse(json!({ "key": "sk_x", "ip": "::1", "scope": { "productId": "p1" } })).unwrap();
        assert_eq!(v.scope.get(Dimension::ProductId), Some(&["p1".to_string()][..]));
        assert_eq!(VerifyInput::parse(json!({ "key": "k", "ip": "1.2.3" })).unwrap_err().field, "ip");
        assert_eq!(VerifyInput::parse(json!({ "key": "k", "scope": { "x": 1 } })).unwrap_err().field, "scope.x");
        let verify_err = |body: Value| {
            let err = VerifyInput::parse(body).unwrap_err();
            (err.field, err.problem)
        };
        let many = |n: usize| (0..n).map(|i| format!("a:{i}")).collect::<Vec<_>>();
        assert!(VerifyInput::parse(json!({ "key": "k", "permissions": many(MAX_REQUESTED_PERMISSIONS) })).is_ok());
        assert_eq!(
            verify_err(json!({ "key": "k", "permissions": many(MAX_REQUESTED_PERMISSIONS + 1) })),
            ("permissions".into(), FieldProblem::TooMany)
        );
        assert_eq!(
            verify_err(json!({ "key": "k", "permissions": ["a:read", "a:*"] })),
            ("permissions[1]".into(), FieldProblem::Invalid)
        );
        assert_eq!(
            verify_err(json!({ "key": "k", "scope": { "planId": many(MAX_REQUESTED_SCOPE_VALUES + 1) } })),
            ("scope.planId".into(), FieldProblem::TooMany)
        );
        assert_eq!(
            verify_err(json!({ "key": "k", "scope": { "planId": ["gold", "*"] } })),
            ("scope.planId[1]".into(), FieldProblem::Invalid)
        );
        assert_eq!(verify_err(json!({ "key": "k", "scope": { "planId": "" } })).0, "scope.planId");
    }
}
