//! A key's policy: what it may do, from where, until when and how often. Verify enforces it, a
//! caller bounds the keys it makes by its own, and no key changes its own (but its ACL).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

use super::fields::{decode, key_part, object, whole_number};
use super::limits::{MAX_WINDOW_SECONDS, NamedLimit, named_limits};
use super::{Acl, AclEntry, Dimension, FieldError, IdentityId, IpAllowlist, Permission, Quota, RateLimit, Scope};

key_part! {
    /// What bounds a key: changed by PATCH (but not by the key itself, its ACL aside), read by
    /// verify.
    pub struct Policy, changed by PolicyChange {
        /// Callers' addresses a verify must come from; `None` (also for `[]`): any.
        whitelisted_ips: Option<IpAllowlist> = "whitelistedIPs" by ip_list,
        /// What the key may do and where; `None` (also for `[]`) grants nothing.
        acl: Option<Acl> = "acl" by acl,
        /// From then on the key is `EXPIRED`; in the future when given; `None`: never.
        expires_at: Option<DateTime<Utc>> = "expiresAt" by future,
        /// Verifies per fixed window; `None`: unlimited.
        rate_limit: Option<RateLimit> = "rateLimit" by rate_limit,
        /// Verifies per period (or in all); `None`: unlimited. A body gives its settings; the
        /// write that takes it decides when it starts (`Quota::starting`). The view shows it
        /// with what remains of it (`QuotaView`), not when it started.
        quota: Option<Quota> = "quota" by quota,
        /// The identity (a company's customer or owner) the key belongs to; `None`: none. It
        /// must be an identity of the key's company when the write commits; its named limits
        /// are to bound the key, so no key moves itself to another.
        identity_id: Option<IdentityId> = "identityId" by identity,
        /// Up to 5 named limits of the key's own, applied by its verifies beside its identity's
        /// (a name on both applies the key's). Items written before they existed have none.
        #[serde(default)]
        ratelimits: Vec<NamedLimit> = "ratelimits" by named_limits,
    }
}

/// The one policy field a key may change on itself: the management rule already holds an ACL
/// to what the key holds.
const SELF_SET: &str = "acl";

impl Policy {
    /// Whether a PATCH changes a field no key changes on itself: any but its ACL, or a root key
    /// could lift what an admin set on it.
    pub fn guards(change: &PolicyChange) -> bool {
        PolicyChange { acl: super::Change::Keep, ..change.clone() } != PolicyChange::default()
    }

    /// The names of the fields `guards` looks at, for the refusal to name them.
    pub fn guarded_fields() -> impl Iterator<Item = &'static str> {
        Self::FIELDS.iter().copied().filter(|name| *name != SELF_SET)
    }
}

fn ip_list(value: Value, _: DateTime<Utc>) -> Result<Option<IpAllowlist>, FieldError> {
    let entries: Vec<String> = decode(value, "whitelistedIPs", "an array of strings")?;
    IpAllowlist::parse(&entries, "whitelistedIPs")
}

/// `None` for an empty list: `[]` means the same as `null` (no permissions, no scope limit),
/// as `[]` does for whitelistedIPs.
fn acl(value: Value, _: DateTime<Utc>) -> Result<Option<Acl>, FieldError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct RawEntry {
        /// Read as JSON first: serde would take an array as a struct's fields in order, so
        /// `"scope": [null, null]` must be refused here rather than read as an empty scope.
        #[serde(default)]
        scope: Option<Value>,
        permissions: Vec<String>,
    }
    let entries: Vec<Value> = decode(value, "acl", "an array of ACL entries")?;
    if entries.len() > super::acl::MAX_ACL_ENTRIES {
        return Err(FieldError::too_many("acl", super::acl::MAX_ACL_ENTRIES));
    }
    let parsed = entries
        .into_iter()
        .enumerate()
        .map(|(i, raw)| {
            let field = format!("acl[{i}]");
            let expected = format!("an object {{scope, permissions}} with scope keys {}", Dimension::names());
            let entry: RawEntry = decode(raw, &field, &expected)?;
            let permissions = entry
                .permissions
                .iter()
                .enumerate()
                .map(|(j, p)| Permission::parse(p, &format!("{field}.permissions[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            let scope = match entry.scope {
                None | Some(Value::Null) => Scope::default(),
                Some(scope @ Value::Object(_)) => decode(
                    scope,
                    &format!("{field}.scope"),
                    &format!("an object with keys {}, each a list of strings", Dimension::names()),
                )?,
                Some(_) => {
                    return Err(FieldError::invalid(
                        format!("{field}.scope"),
                        format!("{field}.scope must be an object"),
                    ));
                }
            };
            Ok(AclEntry { scope, permissions })
        })
        .collect::<Result<Vec<_>, FieldError>>()?;
    (!parsed.is_empty()).then(|| Acl::parse(parsed, "acl")).transpose()
}

/// RFC 3339 exactly, as openapi.yaml's `format: date-time` says (chrono's own reading also
/// takes white space around it), and after `now`.
fn future(value: Value, now: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, FieldError> {
    let at: String = decode(value, "expiresAt", "an RFC 3339 date-time")?;
    let at = DateTime::parse_from_rfc3339(&at)
        .map_err(|_| FieldError::invalid("expiresAt", "expiresAt must be an RFC 3339 date-time"))?
        .with_timezone(&Utc);
    if at <= now {
        return Err(FieldError::invalid("expiresAt", "expiresAt must be in the future"));
    }
    Ok(Some(at))
}

fn rate_limit(value: Value, _: DateTime<Utc>) -> Result<Option<RateLimit>, FieldError> {
    let mut map = object(value, "rateLimit", &["limit", "periodSeconds"], &["remaining", "resetAt"])?;
    let limit = whole_number(&mut map, "rateLimit", "limit", u64::from(u32::MAX))?
        .ok_or_else(|| FieldError::missing("rateLimit.limit"))?;
    let period_seconds = whole_number(&mut map, "rateLimit", "periodSeconds", MAX_WINDOW_SECONDS)?
        .ok_or_else(|| FieldError::missing("rateLimit.periodSeconds"))?;
    Ok(Some(RateLimit { limit, period_seconds }))
}

/// The id's form only: whether it names an identity of the caller's company is the write's to
/// check, when it commits.
fn identity(value: Value, _: DateTime<Utc>) -> Result<Option<IdentityId>, FieldError> {
    let raw: String = decode(value, "identityId", "a string")?;
    IdentityId::parse(&raw, "identityId").map(Some)
}

/// Its settings only: `remaining` and `renewsAt` are the server's, and when it starts is the
/// write's to say, so a retried request reads as the same quota.
fn quota(value: Value, _: DateTime<Utc>) -> Result<Option<Quota>, FieldError> {
    let mut map = object(value, "quota", &["max", "renewalSeconds"], &["remaining", "renewsAt"])?;
    let max =
        whole_number(&mut map, "quota", "max", u64::from(u32::MAX))?.ok_or_else(|| FieldError::missing("quota.max"))?;
    let renewal_seconds = whole_number(&mut map, "quota", "renewalSeconds", MAX_WINDOW_SECONDS)?;
    Ok(Some(Quota::given(max, renewal_seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Change;
    use crate::model::fields::{JsonFields, assert_round_trip};
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    /// A value of every policy field as a body gives it.
    fn every_field() -> Value {
        json!({
            "whitelistedIPs": ["10.0.0.0/8", "2001:db8::1"],
            "acl": [{ "scope": { "productId": ["p1"] }, "permissions": ["orders:*"] }],
            "expiresAt": "2099-01-01T00:00:00Z",
            "rateLimit": { "limit": 5, "periodSeconds": 60 },
            "quota": { "max": 100, "renewalSeconds": 3600 },
            "identityId": "id_0190a5e4c3b27d5e9f1a2b3c4d5e6f70",
            "ratelimits": [{ "name": "tokens", "limit": 100, "periodSeconds": 60, "autoApply": false }],
        })
    }

    /// What the part holds (and its item stores) of `every_field()`: a quota given has not
    /// started yet.
    fn stored(body: &Value) -> Value {
        let mut stored = body.clone();
        stored["quota"]["startedAt"] = json!(DateTime::<Utc>::UNIX_EPOCH);
        stored
    }

    fn fields(body: Value) -> JsonFields {
        JsonFields::new(body).unwrap()
    }

    #[test]
    fn every_policy_field_goes_through_body_record_and_patch_unchanged() {
        assert_round_trip::<Policy>(&every_field(), &stored(&every_field()), now());
    }

    #[test]
    fn null_clears_a_policy_field_and_absent_keeps_it() {
        let policy = Policy::parse(&mut fields(every_field()), now()).unwrap();
        // A list is emptied by `[]`, as tags are: `null` is no list.
        let refused = PolicyChange::parse(&mut fields(json!({ "ratelimits": null })), now()).unwrap_err();
        assert_eq!(refused.field, "ratelimits");
        for name in Policy::FIELDS.iter().filter(|name| **name != "ratelimits") {
            let mut cleared = policy.clone();
            PolicyChange::parse(&mut fields(json!({ *name: null })), now()).unwrap().apply(&mut cleared);
            assert_eq!(serde_json::to_value(&cleared).unwrap()[name], Value::Null, "{name}");
        }
        let absent = PolicyChange::parse(&mut fields(json!({})), now()).unwrap();
        assert_eq!(absent, PolicyChange::default(), "an absent field is kept");
    }

    #[test]
    fn serialize_entries_writes_the_serde_form_but_what_it_is_told_to_write_its_own_way() {
        let policy = Policy::parse(&mut fields(every_field()), now()).unwrap();
        let written = |own_way: &str| {
            let mut out = serde_json::Serializer::new(Vec::new());
            let mut map = serde::Serializer::serialize_map(&mut out, None).unwrap();
            policy
                .serialize_entries(&mut map, |name, map| {
                    (name == own_way)
                        .then(|| serde::ser::SerializeMap::serialize_entry(map, name, "own"))
                        .transpose()
                        .map(|done| done.is_some())
                })
                .unwrap();
            serde::ser::SerializeMap::end(map).unwrap();
            serde_json::from_slice::<Value>(&out.into_inner()).unwrap()
        };
        assert_eq!(written(""), serde_json::to_value(&policy).unwrap());
        let mut expected = serde_json::to_value(&policy).unwrap();
        expected["quota"] = json!("own");
        assert_eq!(written("quota"), expected);
    }

    #[test]
    fn a_key_changes_on_itself_only_its_acl() {
        for name in Policy::FIELDS {
            let cleared = if *name == "ratelimits" { json!([]) } else { Value::Null };
            let change = PolicyChange::parse(&mut fields(json!({ *name: cleared })), now()).unwrap();
            assert_eq!(Policy::guards(&change), *name != "acl", "{name}");
        }
        assert!(!Policy::guards(&PolicyChange { acl: Change::Set(None), ..PolicyChange::default() }));
        let guarded: Vec<&str> = Policy::guarded_fields().collect();
        for name in ["whitelistedIPs", "expiresAt", "rateLimit", "quota", "identityId", "ratelimits"] {
            assert!(guarded.contains(&name), "{name} guarded");
        }
        assert!(!guarded.contains(&"acl"));
    }
}
