//! Identities: a company's customer or owner, whom several keys can belong to. An identity
//! carries the company's `meta` (free JSON, as a key's `metadata`) and named rate limits
//! (`ratelimits`), shared by its keys' verifies.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{Change, JsonFields, bounded_text, key_part};
use super::labels::free_json;
use super::limits::{NamedLimit, named_limits};
use super::{CompanyId, FieldError, IdentityId};

/// Characters of `externalId`: the company's own id of its customer, as `userId` is capped.
pub const MAX_EXTERNAL_ID_CHARS: usize = 255;
key_part! {
    /// What an identity carries besides its `externalId`: the company's JSON and its named
    /// limits. Changed by PATCH, each as a whole.
    pub struct IdentityParts, changed by IdentityPartsChange {
        /// The company's own JSON, under the rules and cap of a key's `metadata`; `{}` empties
        /// it, `null` is refused in a PATCH.
        meta: Map<String, Value> = "meta" by meta,
        /// Up to 5 named limits; `[]` empties them, `null` is refused in a PATCH.
        ratelimits: Vec<NamedLimit> = "ratelimits" by named_limits,
    }
}

fn meta(value: Value, _: DateTime<Utc>) -> Result<Map<String, Value>, FieldError> {
    free_json(value, "meta")
}

/// How many of the company's keys, not deleted, name an identity, by status: kept on the
/// identity's item by the keys' own writes, in the same transactions, so an identity with an
/// active key is never deleted and its key lists have a `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IdentityKeys {
    /// Active keys naming it: while there is one, the identity cannot be deleted.
    pub active: u64,
    /// Inactive keys (not deleted) naming it.
    pub inactive: u64,
}

/// Everything the service keeps of an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    /// Made by the service; fixed.
    pub id: IdentityId,
    /// The only company whose root keys can see, change or name it.
    pub company_id: CompanyId,
    /// The company's own id of its customer, unique within the company.
    pub external_id: String,
    /// Its `meta` and `ratelimits`.
    pub parts: IdentityParts,
    /// When it was made; lists sort by it, newest first.
    pub created_at: DateTime<Utc>,
    /// The last write to it (not its keys' counts).
    pub updated_at: DateTime<Utc>,
    /// Bumped by every write to it; the ETag and the guard against lost updates.
    pub version: u64,
    /// Its keys, counted by their writes; never shown, never written by an identity's own write.
    pub keys: IdentityKeys,
}

impl Identity {
    /// A new identity of `company` made at `now` from a create body.
    pub fn new(company: CompanyId, input: CreateIdentityInput, now: DateTime<Utc>) -> Self {
        Self {
            id: IdentityId::generate(),
            company_id: company,
            external_id: input.external_id,
            parts: input.parts,
            created_at: now,
            updated_at: now,
            version: 1,
            keys: IdentityKeys::default(),
        }
    }

    /// The `ETag` of its current version, which `If-Match` must name.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// The identity as the API shows it: `{id, externalId, meta, ratelimits, createdAt, updatedAt}`.
    pub fn view(&self) -> IdentityView<'_> {
        IdentityView {
            id: &self.id,
            external_id: &self.external_id,
            parts: &self.parts,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

/// An identity as the API shows it (camelCase JSON).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView<'a> {
    /// As [`Identity::id`].
    pub id: &'a IdentityId,
    /// As [`Identity::external_id`].
    pub external_id: &'a str,
    /// As [`Identity::parts`], each field under its own name.
    #[serde(flatten)]
    pub parts: &'a IdentityParts,
    /// As [`Identity::created_at`].
    pub created_at: DateTime<Utc>,
    /// As [`Identity::updated_at`].
    pub updated_at: DateTime<Utc>,
}

/// Fields the server sets; naming one in a body is a 400 that says so.
const SERVER_SET: &[&str] = &["id", "createdAt", "updatedAt"];

/// The fields a create body may name.
const CREATE_FIELDS: &[&str] = &["externalId", "meta", "ratelimits"];

/// `externalId` as a body gives it: 1 to 255 characters, not only white space, no control
/// characters.
fn external_id(text: String, field: &str) -> Result<String, FieldError> {
    bounded_text(text, field, MAX_EXTERNAL_ID_CHARS, false)
}

/// The body of `POST /identities`, every field checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CreateIdentityInput {
    /// Required: the company's own id of its customer.
    pub external_id: String,
    /// `meta` and `ratelimits`, each its default when absent.
    pub parts: IdentityParts,
}

impl CreateIdentityInput {
    /// Reads a create body; the error names the first bad field, server-set and unknown fields
    /// before any value.
    pub fn parse(body: Value, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let mut f = JsonFields::new(body)?.only(CREATE_FIELDS, SERVER_SET)?;
        let raw: String = f.required("externalId", "a string")?;
        Ok(Self { external_id: external_id(raw, "externalId")?, parts: IdentityParts::parse(&mut f, now)? })
    }
}

/// The body of `PATCH /identities/{identityId}`: only the fields it names change; none may be
/// `null`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct UpdateIdentityInput {
    /// A new `externalId`, unique within the company like the first.
    pub external_id: Change<String>,
    /// The `meta` and `ratelimits` the body names.
    pub parts: IdentityPartsChange,
}

impl UpdateIdentityInput {
    /// Reads a PATCH body.
    pub fn parse(body: Value, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let mut f = JsonFields::new(body)?.only(CREATE_FIELDS, SERVER_SET)?;
        let external = f.change::<String>("externalId", "a string")?.try_map(|raw| match raw {
            Some(raw) => external_id(raw, "externalId"),
            None => Err(FieldError::invalid("externalId", "externalId cannot be null")),
        })?;
        Ok(Self { external_id: external, parts: IdentityPartsChange::parse(&mut f, now)? })
    }

    /// A PATCH that names no field: answered with the identity as it is, with no write.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether it changes the named limits (which no key may do to its own identity).
    pub fn changes_limits(&self) -> bool {
        self.parts.ratelimits.is_set()
    }

    /// `identity` as this PATCH leaves it (not yet stamped with a new version or time).
    pub fn apply(&self, identity: &Identity) -> Identity {
        let mut after = identity.clone();
        if let Change::Set(external) = &self.external_id {
            after.external_id = external.clone();
        }
        self.parts.apply(&mut after.parts);
        after
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldProblem;
    use crate::model::fields::assert_round_trip;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn every_part() -> Value {
        json!({
            "meta": { "plan": "gold", "seats": 3 },
            "ratelimits": [{ "name": "requests", "limit": 100, "periodSeconds": 60, "autoApply": false }],
        })
    }

    #[test]
    fn every_part_goes_through_body_view_record_and_patch_unchanged() {
        assert_round_trip::<IdentityParts>(&every_part(), &every_part(), now());
    }

    #[test]
    fn a_create_body_parses_with_auto_apply_true_by_default() {
        let body =
            json!({ "externalId": "cust_42", "ratelimits": [{ "name": "tokens", "limit": 5, "periodSeconds": 6e1 }] });
        let input = CreateIdentityInput::parse(body, now()).unwrap();
        assert_eq!(input.external_id, "cust_42");
        assert_eq!(
            input.parts.ratelimits,
            [NamedLimit { name: "tokens".into(), limit: 5, period_seconds: 60, auto_apply: true }]
        );
        assert!(input.parts.meta.is_empty());
    }

    #[test]
    fn errors_name_their_field_and_kind() {
        let limit = |extra: Value| {
            let mut entry = json!({ "name": "a", "limit": 1, "periodSeconds": 1 });
            entry.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            entry
        };
        let cases = [
            (json!({}), "externalId", FieldProblem::Missing),
            (json!({ "externalId": "" }), "externalId", FieldProblem::Invalid),
            (json!({ "externalId": "x".repeat(256) }), "externalId", FieldProblem::Invalid),
            (json!({ "externalId": "a\nb" }), "externalId", FieldProblem::Invalid),
            (json!({ "externalId": "x", "id": "id_1" }), "id", FieldProblem::ReadOnly),
            (json!({ "externalId": "x", "colour": 1 }), "colour", FieldProblem::Unknown),
            (json!({ "externalId": "x", "meta": { "blob": "x".repeat(4100) } }), "meta", FieldProblem::Invalid),
            (json!({ "externalId": "x", "meta": [1] }), "meta", FieldProblem::Invalid),
            (
                json!({ "externalId": "x", "ratelimits": vec![limit(json!({})); 6] }),
                "ratelimits",
                FieldProblem::TooMany,
            ),
            (json!({ "externalId": "x", "ratelimits": {} }), "ratelimits", FieldProblem::Invalid),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({})), limit(json!({ "name": "Bad" }))] }),
                "ratelimits[1].name",
                FieldProblem::Invalid,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({ "name": "a".repeat(33) }))] }),
                "ratelimits[0].name",
                FieldProblem::Invalid,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({})), limit(json!({}))] }),
                "ratelimits[1].name",
                FieldProblem::Invalid,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [{ "limit": 1, "periodSeconds": 1 }] }),
                "ratelimits[0].name",
                FieldProblem::Missing,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({ "limit": 0 }))] }),
                "ratelimits[0].limit",
                FieldProblem::Invalid,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({ "periodSeconds": 31_622_401 }))] }),
                "ratelimits[0].periodSeconds",
                FieldProblem::Invalid,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({ "autoApply": "yes" }))] }),
                "ratelimits[0].autoApply",
                FieldProblem::Invalid,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({ "cost": 1 }))] }),
                "ratelimits[0].cost",
                FieldProblem::Unknown,
            ),
            (
                json!({ "externalId": "x", "ratelimits": [limit(json!({ "remaining": 1 }))] }),
                "ratelimits[0].remaining",
                FieldProblem::ReadOnly,
            ),
        ];
        for (body, field, problem) in cases {
            let err = CreateIdentityInput::parse(body.clone(), now()).unwrap_err();
            assert_eq!((err.field.as_str(), err.problem), (field, problem), "{body}");
        }
    }

    #[test]
    fn a_patch_refuses_null_and_applies_what_it_names() {
        for name in ["externalId", "meta", "ratelimits"] {
            let err = UpdateIdentityInput::parse(json!({ name: null }), now()).unwrap_err();
            assert_eq!(err.field, name);
        }
        assert!(UpdateIdentityInput::parse(json!({}), now()).unwrap().is_empty());
        let created = CreateIdentityInput::parse(json!({ "externalId": "a", "meta": { "x": 1 } }), now()).unwrap();
        let identity = Identity::new(CompanyId::parse("acme", "c").unwrap(), created, now());
        let patch = UpdateIdentityInput::parse(json!({ "externalId": "b", "ratelimits": [] }), now()).unwrap();
        assert!(patch.changes_limits());
        let after = patch.apply(&identity);
        assert_eq!((after.external_id.as_str(), &after.parts.meta), ("b", &identity.parts.meta));
        let shown = serde_json::to_value(after.view()).unwrap();
        let names: Vec<&str> = shown.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(names, ["createdAt", "externalId", "id", "meta", "ratelimits", "updatedAt"]);
    }
}
