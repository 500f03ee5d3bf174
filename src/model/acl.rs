//! Access control lists: permissions with wildcards, limited to scopes.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::FieldError;

// The caps on every list that verify or a write iterates (docs/api.md, "Bounded work per request"). Verify's work
// is linear in what it is given (`Acl::allows_counted`); these keep that small, keep a key's
// item well under DynamoDB's 400 KB, and keep a page of 100 keys or events under Lambda's 6 MB
// answer (tests/api/security/bounds.rs).
/// Entries of one ACL.
pub const MAX_ACL_ENTRIES: usize = 20;
/// Permissions of one ACL, all entries together (so also of one entry).
pub const MAX_ACL_PERMISSIONS: usize = 64;
/// Scope values of one ACL, all entries and dimensions together (so also of one entry or dimension).
pub const MAX_ACL_SCOPE_VALUES: usize = 64;
/// Permissions one verify may ask for.
pub const MAX_REQUESTED_PERMISSIONS: usize = 50;
/// Values one verify may name in each scope dimension.
pub const MAX_REQUESTED_SCOPE_VALUES: usize = 100;
/// Characters of one permission: a name, not a document.
pub const MAX_PERMISSION_LEN: usize = 128;
/// Characters of one scope value: an id of the company's product, plan or organization.
pub const MAX_SCOPE_VALUE_LEN: usize = 128;

/// The management API's namespace: the permissions this service itself checks.
pub const MANAGEMENT_NAMESPACE: &str = "keys:";

/// A permission an ACL grants: `*`, an exact name, or a prefix ending in `*` (`invoices:*`).
///
/// A name is made of `A-Z a-z 0-9 . _ : -` only, so a permission can never hold a separator
/// (`,`, space, quote) that a later join and split could read as two permissions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission(String);

/// What a permission may be made of, besides a trailing `*`.
pub fn is_permission_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

impl Permission {
    /// A permission of an ACL, as a body gives it; `field` names it in the error.
    pub fn parse(raw: &str, field: &str) -> Result<Self, FieldError> {
        let name = raw.strip_suffix('*').unwrap_or(raw);
        let well_formed = raw.len() <= MAX_PERMISSION_LEN && (raw == "*" || !name.is_empty());
        if !well_formed || !name.chars().all(is_permission_char) {
            return Err(FieldError::invalid(
                field,
                format!(
                    "{field} must be `*`, or 1 to {MAX_PERMISSION_LEN} characters of A-Z a-z 0-9 . _ : - \
                     optionally ending in `*`"
                ),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    /// `keys:*`: the whole management API, as the operator CLI grants it.
    pub fn all_keys() -> Self {
        Self("keys:*".into())
    }

    /// The permission as written, `*` included: what the API shows and verify answers.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a wildcard that reaches every name under `namespace` (`*`, `k*` and
    /// `keys:*` all reach the whole of `keys:`).
    pub fn reaches_all_of(&self, namespace: &str) -> bool {
        self.0.strip_suffix('*').is_some_and(|prefix| namespace.starts_with(prefix))
    }

    /// Whether holding this permission allows `requested`.
    pub fn grants(&self, requested: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => requested.starts_with(prefix),
            None => self.0 == requested,
        }
    }
}

impl TryFrom<String> for Permission {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, FieldError> {
        Self::parse(&s, "permission")
    }
}

impl From<Permission> for String {
    fn from(p: Permission) -> String {
        p.0
    }
}

/// A permission a verify asks for: a name of the permission grammar, without `*` (a request names
/// what it needs; only an ACL grants by prefix).
pub fn requested_permission(raw: &str, field: &str) -> Result<(), FieldError> {
    if raw.is_empty() || raw.len() > MAX_PERMISSION_LEN || !raw.chars().all(is_permission_char) {
        return Err(FieldError::invalid(
            field,
            format!("{field} must be 1 to {MAX_PERMISSION_LEN} characters of A-Z a-z 0-9 . _ : - (no `*`)"),
        ));
    }
    Ok(())
}

/// What a scope value may be made of: visible ASCII but `"`, `\` and `*` (so a value never needs
/// escaping in JSON, and `*` stays the ACL's wildcard).
fn is_scope_value_char(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '*')
}

/// A scope value: 1 to 128 such characters. In an ACL (`wildcard_ok`) `*` alone means any value.
pub fn scope_value(raw: &str, field: &str, wildcard_ok: bool) -> Result<(), FieldError> {
    let wildcard = wildcard_ok && raw == "*";
    if !wildcard && (raw.is_empty() || raw.len() > MAX_SCOPE_VALUE_LEN || !raw.chars().all(is_scope_value_char)) {
        let star = if wildcard_ok { ", or `*` alone for any value" } else { "" };
        return Err(FieldError::invalid(
            field,
            format!(
                "{field} must be 1 to {MAX_SCOPE_VALUE_LEN} visible ASCII characters other than \", \\ and *{star}"
            ),
        ));
    }
    Ok(())
}

/// A dimension of a scope: where an ACL entry applies, and where a verified call acts. The one
/// place the dimensions and their JSON names are written; scopes, their parsers, their stored
/// form and the error messages all go through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dimension {
    /// A dimension the company defines for itself; the contract gives it no fixed meaning.
    CustomFieldName,
    /// The company's product ids.
    ProductId,
    /// The company's plan ids.
    PlanId,
    /// The company's organization ids.
    OrganizationId,
}

impl Dimension {
    /// Every dimension, in the order scopes are read, written and checked.
    pub const ALL: [Dimension; 4] =
        [Dimension::CustomFieldName, Dimension::ProductId, Dimension::PlanId, Dimension::OrganizationId];

    /// The JSON names, in `ALL` order.
    pub const NAMES: [&'static str; 4] = ["customFieldName", "productId", "planId", "organizationId"];

    /// The dimension's JSON name.
    pub fn name(self) -> &'static str {
        Self::NAMES[self.index()]
    }

    /// The dimension a JSON name names, if any.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Every JSON name, comma-separated, for error messages.
    pub fn names() -> String {
        Self::NAMES.join(", ")
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where an ACL entry applies, or where a verified call acts: a list of values per dimension. A
/// dimension left out (or empty) is not restricted; in JSON, one left out is not written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope([Option<Vec<String>>; Dimension::ALL.len()]);

impl Scope {
    /// This scope with `dimension` listing `values`.
    #[must_use]
    pub fn with(mut self, dimension: Dimension, values: Vec<String>) -> Self {
        self.0[dimension.index()] = Some(values);
        self
    }

    /// What a dimension lists; `None` when it is left out.
    pub fn get(&self, dimension: Dimension) -> Option<&[String]> {
        self.0[dimension.index()].as_deref()
    }

    /// The dimensions with what each lists, in `Dimension::ALL` order.
    pub fn dimensions(&self) -> [(Dimension, Option<&[String]>); Dimension::ALL.len()] {
        Dimension::ALL.map(|d| (d, self.get(d)))
    }

    /// The list of a dimension, for parsers filling a scope in.
    pub fn dimension_mut(&mut self, dimension: Dimension) -> &mut Option<Vec<String>> {
        &mut self.0[dimension.index()]
    }

    fn values(&self) -> usize {
        self.dimensions().iter().map(|(_, values)| values.map_or(0, <[String]>::len)).sum()
    }

    /// Every value the request names must be listed by this scope (or by `*`) in its dimension.
    /// Nested loops, kept as the reference the set-based `Acl::allows_counted` is tested against.
    #[cfg(test)]
    fn admits(&self, requested: &Scope) -> bool {
        self.dimensions().iter().zip(requested.dimensions()).all(|((_, allowed), (_, asked))| match (allowed, asked) {
            (_, None) | (None | Some([]), _) => true,
            (Some(allowed), Some(asked)) => asked.iter().all(|value| allowed.iter().any(|a| a == "*" || a == value)),
        })
    }
}

/// An object of the dimensions present, by their JSON names.
impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let present = self.dimensions().into_iter().filter_map(|(d, values)| Some((d, values?)));
        let mut map = serializer.serialize_map(Some(present.clone().count()))?;
        for (dimension, values) in present {
            map.serialize_entry(dimension.name(), values)?;
        }
        map.end()
    }
}

/// An object only (never a list of values in order); a name that is no dimension, or one named
/// twice, is an error; `null` is a dimension left out.
impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScopeVisitor;
        impl<'de> serde::de::Visitor<'de> for ScopeVisitor {
            type Value = Scope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "an object with keys {}", Dimension::names())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Scope, A::Error> {
                let mut scope = Scope::default();
                let mut seen = [false; Dimension::ALL.len()];
                while let Some(name) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let dimension = Dimension::parse(&name)
                        .ok_or_else(|| serde::de::Error::unknown_field(&name, &Dimension::NAMES))?;
                    if std::mem::replace(&mut seen[dimension.index()], true) {
                        return Err(serde::de::Error::custom(format!("duplicate field `{}`", dimension.name())));
                    }
                    *scope.dimension_mut(dimension) = map.next_value()?;
                }
                Ok(scope)
            }
        }
        deserializer.deserialize_map(ScopeVisitor)
    }
}

/// Permissions granted together, and where they apply: a key made for two products with
/// different rights holds two entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclEntry {
    /// Where the permissions apply; the default restricts nothing.
    #[serde(default)]
    pub scope: Scope,
    /// What the entry grants, within its scope.
    pub permissions: Vec<Permission>,
}

/// A key's ACL. `null` on a key means it carries no permissions at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Acl(Vec<AclEntry>);

impl Acl {
    /// Entries as a body gives them, held to the caps and the scope grammar; an error names the
    /// first field over a cap (`acl[3].permissions`, `acl[2].scope.productId`) or the bad value
    /// (`acl[0].scope.planId[1]`).
    pub fn parse(entries: Vec<AclEntry>, field: &str) -> Result<Self, FieldError> {
        if entries.len() > MAX_ACL_ENTRIES {
            return Err(FieldError::too_many(field, MAX_ACL_ENTRIES));
        }
        let (mut permissions, mut values) = (0, 0);
        for (i, entry) in entries.iter().enumerate() {
            permissions += entry.permissions.len();
            if permissions > MAX_ACL_PERMISSIONS {
                return Err(in_all(format!("{field}[{i}].permissions"), MAX_ACL_PERMISSIONS, "permissions"));
            }
            for (name, list) in entry.scope.dimensions() {
                let list = list.unwrap_or_default();
                let dimension = format!("{field}[{i}].scope.{}", name.name());
                values += list.len();
                if values > MAX_ACL_SCOPE_VALUES {
                    return Err(in_all(dimension, MAX_ACL_SCOPE_VALUES, "scope values"));
                }
                for (j, value) in list.iter().enumerate() {
                    scope_value(value, &format!("{dimension}[{j}]"), true)?;
                }
            }
        }
        Ok(Self(entries))
    }

    /// The ACL a root key gets from the operator CLI: the whole management API.
    pub fn root() -> Self {
        Self(vec![AclEntry { scope: Scope::default(), permissions: vec![Permission::all_keys()] }])
    }

    /// The entries in the order they were given, as the API shows them.
    pub fn entries(&self) -> &[AclEntry] {
        &self.0
    }

    /// Every permission the ACL lists, entry after entry.
    pub fn permissions(&self) -> impl Iterator<Item = &Permission> {
        self.0.iter().flat_map(|entry| entry.permissions.iter())
    }

    /// Each requested permission needs one entry that grants it and whose scope admits the request;
    /// with no permission requested, a scope alone needs one entry admitting it.
    pub fn allows(&self, requested: &[String], scope: &Scope) -> bool {
        self.allows_counted(requested, scope).0
    }

    /// `allows`, with the set insertions and lookups it made: at most the ACL's entries,
    /// permissions and scope values, plus the request's scope values, plus for each requested
    /// permission one exact lookup and one lookup per wildcard length it could match (at most its
    /// length + 1). Linear in the request and the ACL, whatever their shape.
    pub fn allows_counted(&self, requested: &[String], scope: &Scope) -> (bool, usize) {
        let mut work = 0;
        let admitting = self.entries_admitting(scope, &mut work);
        if requested.is_empty() {
            return (admitting.iter().any(|admits| *admits), work);
        }
        // The grants of the entries that admit the scope: exact names, and wildcard prefixes
        // (`invoices:` for `invoices:*`, `` for `*`) with the lengths they come in.
        let (mut exact, mut prefixes, mut lengths) = (HashSet::new(), HashSet::new(), Vec::new());
        for (entry, _) in self.0.iter().zip(&admitting).filter(|(_, admits)| **admits) {
            for permission in &entry.permissions {
                work += 1;
                match permission.as_str().strip_suffix('*') {
                    Some(prefix) => {
                        if prefixes.insert(prefix) {
                            lengths.push(prefix.len());
                        }
                    }
                    None => {
                        exact.insert(permission.as_str());
                    }
                }
            }
        }
        lengths.sort_unstable();
        lengths.dedup();
        let allowed = requested.iter().all(|wanted| {
            work += 1;
            exact.contains(wanted.as_str())
                || lengths.iter().take_while(|n| **n <= wanted.len()).any(|n| {
                    work += 1;
                    wanted.is_char_boundary(*n) && prefixes.contains(&wanted[..*n])
                })
        });
        (allowed, work)
    }

    /// Which entries admit the requested scope. Per dimension, the asked values go in a set once;
    /// each entry's allowed values are then looked up in it, and the entry admits the dimension
    /// if it lists `*` or every asked value. No entry is compared with every asked value.
    fn entries_admitting(&self, scope: &Scope, work: &mut usize) -> Vec<bool> {
        let mut admitting = vec![true; self.0.len()];
        for (d, (_, asked)) in scope.dimensions().into_iter().enumerate() {
            let asked: HashSet<&str> = asked.unwrap_or_default().iter().map(String::as_str).collect();
            *work += asked.len();
            if asked.is_empty() {
                continue;
            }
            for (entry, admits) in self.0.iter().zip(admitting.iter_mut()) {
                let allowed = entry.scope.dimensions()[d].1.unwrap_or_default();
                if !*admits || allowed.is_empty() {
                    continue;
                }
                let mut listed = HashSet::new();
                let mut wildcard = false;
                for value in allowed {
                    *work += 1;
                    wildcard |= value == "*";
                    if let Some(found) = asked.get(value.as_str()) {
                        listed.insert(*found);
                    }
                }
                *admits = wildcard || listed.len() == asked.len();
            }
        }
        admitting
    }

    /// How many values the ACL's scopes list, all entries together.
    pub fn scope_values(&self) -> usize {
        self.0.iter().map(|entry| entry.scope.values()).sum()
    }

    /// How many permissions the ACL lists, all entries together.
    pub fn permission_count(&self) -> usize {
        self.permissions().count()
    }
}

/// A list over a cap that counts the whole ACL: named where the count went over.
fn in_all(field: String, max: usize, what: &str) -> FieldError {
    let message = format!("{field} goes over the {max} {what} an ACL holds in all");
    FieldError { message, ..FieldError::too_many(field, max) }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn perm(s: &str) -> Permission {
        Permission::parse(s, "p").unwrap()
    }

    fn acl(json: serde_json::Value) -> Acl {
        Acl::parse(serde_json::from_value(json).unwrap(), "acl").unwrap()
    }

    fn scope(json: serde_json::Value) -> Scope {
        serde_json::from_value(json).unwrap()
    }

    fn asked(ps: &[&str]) -> Vec<String> {
        ps.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn wildcards_grant_by_prefix_and_star_grants_all() {
        assert!(perm("*").grants("anything:at-all"));
        assert!(perm("invoices:*").grants("invoices:read"));
        assert!(!perm("invoices:*").grants("invoice:read"));
        assert!(perm("invoices:read").grants("invoices:read"));
        assert!(!perm("invoices:read").grants("invoices:readall"));
    }

    #[test]
    fn stars_inside_a_permission_are_rejected() {
        for bad in ["", "a*b", "**", "a b", "keys:x,*", "keys:read,keys:*", "a\"", "a;b", "é", "a\n", &"p".repeat(129)]
        {
            assert!(Permission::parse(bad, "acl[0].permissions[0]").is_err(), "{bad}");
        }
    }

    #[test]
    fn the_grammar_accepts_names_and_trailing_stars() {
        for good in ["*", "keys:*", "keys:read", "a.b_c-d:e", "k*", &"p".repeat(128)] {
            assert_eq!(perm(good).as_str(), good);
        }
    }

    #[test]
    fn an_empty_scope_allows_every_scope() {
        let a = acl(serde_json::json!([{ "scope": {}, "permissions": ["orders:read"] }]));
        assert!(a.allows(&asked(&["orders:read"]), &scope(serde_json::json!({ "productId": ["p9"] }))));
        assert!(!a.allows(&asked(&["orders:write"]), &Scope::default()));
    }

    #[test]
    fn a_scope_value_outside_the_key_scope_is_refused() {
        let a = acl(serde_json::json!([
            { "scope": { "productId": ["p1", "p2"], "planId": ["*"] }, "permissions": ["orders:*"] }
        ]));
        let ok = scope(serde_json::json!({ "productId": ["p2"], "planId": ["gold"] }));
        let outside = scope(serde_json::json!({ "productId": ["p1", "p3"] }));
        assert!(a.allows(&asked(&["orders:read"]), &ok));
        assert!(!a.allows(&asked(&["orders:read"]), &outside));
        assert!(a.allows(&[], &ok));
        assert!(!a.allows(&[], &outside));
        let org = scope(serde_json::json!({ "organizationId": ["o1"], "customFieldName": ["x"] }));
        assert!(a.allows(&asked(&["orders:read"]), &org));
    }

    #[test]
    fn each_permission_may_come_from_a_different_entry() {
        let a = acl(serde_json::json!([
            { "permissions": ["a:read"] },
            { "scope": { "productId": ["p1"] }, "permissions": ["b:write"] }
        ]));
        assert!(a.allows(&asked(&["a:read", "b:write"]), &scope(serde_json::json!({ "productId": ["p1"] }))));
        assert!(!a.allows(&asked(&["a:read", "b:write"]), &scope(serde_json::json!({ "productId": ["p2"] }))));
    }

    #[test]
    fn caps_name_the_field_that_goes_over() {
        let entry = |permissions: usize, values: usize| {
            serde_json::json!({
                "scope": { "productId": (0..values).map(|v| format!("p{v}")).collect::<Vec<_>>() },
                "permissions": (0..permissions).map(|p| format!("a:{p}")).collect::<Vec<_>>(),
            })
        };
        let parse = |entries: Vec<serde_json::Value>| {
            Acl::parse(serde_json::from_value(serde_json::Value::Array(entries)).unwrap(), "acl")
        };
        assert!(parse(vec![entry(MAX_ACL_PERMISSIONS, MAX_ACL_SCOPE_VALUES)]).is_ok());
        assert!(parse((0..MAX_ACL_ENTRIES).map(|_| entry(1, 1)).collect()).is_ok());
        let over = |entries, field: &str| {
            let err = parse(entries).unwrap_err();
            assert_eq!((err.field.as_str(), err.problem), (field, crate::model::FieldProblem::TooMany));
        };
        over((0..=MAX_ACL_ENTRIES).map(|_| entry(1, 0)).collect(), "acl");
        over(vec![entry(MAX_ACL_PERMISSIONS + 1, 0)], "acl[0].permissions");
        over(vec![entry(40, 0), entry(0, 0), entry(40, 0)], "acl[2].permissions");
        over(vec![entry(0, 40), entry(0, 40)], "acl[1].scope.productId");
        for (bad, field) in [("", "acl[0].scope.productId[1]"), ("a b", "acl[0].scope.productId[1]")] {
            let entries = serde_json::json!([{ "scope": { "productId": ["ok", bad] }, "permissions": [] }]);
            assert_eq!(Acl::parse(serde_json::from_value(entries).unwrap(), "acl").unwrap_err().field, field);
        }
    }

    #[test]
    fn scope_values_and_requested_permissions_have_a_grammar() {
        for good in ["p1", "prod_basic", "auth0|5f7c", "a@b.example", "org/team-1", &"v".repeat(128)] {
            assert!(scope_value(good, "v", false).is_ok(), "{good}");
        }
        assert!(scope_value("*", "v", true).is_ok(), "the ACL's wildcard");
        for bad in ["", "*", "a*", "a b", "a\"b", "a\\b", "é", "a\n", &"v".repeat(129)] {
            assert!(scope_value(bad, "v", false).is_err(), "{bad:?}");
        }
        assert!(scope_value("a*", "v", true).is_err(), "`*` only alone");
        for good in ["keys:read", "a.b_c-d:e", &"p".repeat(128)] {
            assert!(requested_permission(good, "p").is_ok(), "{good}");
        }
        for bad in ["", "*", "keys:*", "a,b", "a b", "é", &"p".repeat(129)] {
            assert_eq!(requested_permission(bad, "permissions[3]").unwrap_err().field, "permissions[3]", "{bad:?}");
        }
    }

    /// Today's rule as nested loops: the reference the set-based matcher must agree with.
    fn allows_by_loops(acl: &Acl, requested: &[String], scope: &Scope) -> bool {
        if requested.is_empty() {
            return acl.entries().iter().any(|entry| entry.scope.admits(scope));
        }
        requested.iter().all(|wanted| {
            acl.entries().iter().any(|e| e.scope.admits(scope) && e.permissions.iter().any(|p| p.grants(wanted)))
        })
    }

    /// The largest request and the ACL a verify may meet under the caps, shaped to cost the most:
    /// every entry admits the scope (so every grant is collected), scope lists at their caps, and
    /// every requested permission is granted only by the longest of 64 wildcards of different
    /// lengths (so each probes every length before it is found, and none ends the loop early).
    fn worst_case() -> (Acl, Vec<String>, Scope) {
        let long = |tag: &str, i: usize| format!("{tag}{i}:{}", "x".repeat(MAX_SCOPE_VALUE_LEN))[..120].to_owned();
        let per_entry = MAX_ACL_SCOPE_VALUES / MAX_ACL_ENTRIES;
        let mut entries: Vec<AclEntry> = (0..MAX_ACL_ENTRIES)
            .map(|_| AclEntry {
                scope: Scope::default().with(
                    Dimension::ProductId,
                    (0..per_entry).map(|v| if v == 0 { "*".into() } else { long("p", v) }).collect(),
                ),
                permissions: Vec::new(),
            })
            .collect();
        let longest = MAX_ACL_PERMISSIONS;
        entries[0].permissions = (1..longest).map(|n| perm(&format!("{}*", "r".repeat(n)))).collect();
        entries[0].permissions.push(perm(&format!("{}*", "q".repeat(longest))));
        let acl = Acl::parse(entries, "acl").unwrap();
        let requested: Vec<String> =
            (0..MAX_REQUESTED_PERMISSIONS).map(|i| format!("{}{i:03}", "q".repeat(MAX_PERMISSION_LEN - 3))).collect();
        let scope = Dimension::ALL.into_iter().zip(["c", "p", "l", "o"]).fold(Scope::default(), |scope, (d, tag)| {
            scope.with(d, (0..MAX_REQUESTED_SCOPE_VALUES).map(|v| long(tag, v)).collect())
        });
        (acl, requested, scope)
    }

    /// What the bound is stated in: the request's permission characters (each may be probed at
    /// every length) and scope values, and the ACL's entries, permissions and scope values.
    fn size(acl: &Acl, requested: &[String], scope: &Scope) -> usize {
        let asked: usize = requested.iter().map(|p| p.len() + 1).sum::<usize>() + scope.values();
        asked + acl.entries().len() + acl.permission_count() + acl.scope_values()
    }

    #[test]
    fn the_largest_verify_the_caps_allow_does_linear_work() {
        let (acl, requested, scope) = worst_case();
        let (allowed, work) = acl.allows_counted(&requested, &scope);
        assert!(allowed);
        assert_eq!(allowed, allows_by_loops(&acl, &requested, &scope));
        let size = size(&acl, &requested, &scope);
        eprintln!("worst verify: {work} lookups, size {size}");
        assert!(work <= 2 * size, "{work} lookups for a request and ACL of size {size}");
        // Comparing every pair, as `allows_by_loops` does, costs up to permissions x entries x asked
        // x allowed values.
        let loops = requested.len() * acl.entries().len() * scope.values() * acl.scope_values();
        assert!(work * 1000 < loops, "{work} lookups, where the loops made up to {loops} comparisons");
    }

    fn arbitrary_scope(values: &'static [&'static str]) -> impl Strategy<Value = Scope> {
        let dimension = prop::option::of(prop::collection::vec(prop::sample::select(values), 0..4));
        (dimension.clone(), dimension.clone(), dimension.clone(), dimension).prop_map(|(c, p, l, o)| {
            let mut scope = Scope::default();
            for (dimension, values) in Dimension::ALL.into_iter().zip([c, p, l, o]) {
                *scope.dimension_mut(dimension) = values.map(|v| v.into_iter().map(str::to_owned).collect());
            }
            scope
        })
    }

    const GRANTS: &[&str] = &["*", "a*", "a:*", "a:b*", "a:b", "a:bc", "b:*", "b:c", "ab", "a"];
    const ASKS: &[&str] = &["a", "a:b", "a:bc", "a:c", "ab", "b:c", "b", "c:d", "a:", "b:cd"];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Random ACLs and requests over a small alphabet (so they often overlap): the sets answer
        /// exactly as the loops did, with work within twice the size of request and ACL.
        #[test]
        fn sets_answer_as_the_loops_did_in_linear_work(
            entries in prop::collection::vec(
                (arbitrary_scope(&["p1", "p2", "*"]), prop::collection::vec(prop::sample::select(GRANTS), 0..4)),
                0..5,
            ),
            requested in prop::collection::vec(prop::sample::select(ASKS), 0..5),
            scope in arbitrary_scope(&["p1", "p2", "p3"]),
        ) {
            let entries = entries
                .into_iter()
                .map(|(scope, permissions)| AclEntry { scope, permissions: permissions.into_iter().map(perm).collect() })
                .collect();
            let acl = Acl::parse(entries, "acl").unwrap();
            let requested: Vec<String> = requested.into_iter().map(str::to_owned).collect();
            let (allowed, work) = acl.allows_counted(&requested, &scope);
            prop_assert_eq!(allowed, allows_by_loops(&acl, &requested, &scope));
            prop_assert!(work <= 2 * size(&acl, &requested, &scope).max(1));
        }
    }
}
