//! Access control lists: permissions with wildcards, limited to scopes.

use serde::{Deserialize, Serialize};

use super::FieldError;

pub const MAX_ACL_ENTRIES: usize = 100;
pub const MAX_PERMISSIONS: usize = 1000;
const MAX_PERMISSION_LEN: usize = 128;

/// `*`, an exact name, or a prefix ending in `*` (`invoices:*`). A name is made of
/// `A-Z a-z 0-9 . _ : -` only, so a permission can never hold a separator (`,`, space, quote)
/// that a later join and split could read as two permissions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Permission(String);

/// What a permission may be made of, besides a trailing `*`.
pub fn is_permission_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')
}

impl Permission {
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

    pub fn as_str(&self) -> &str {
        &self.0
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

/// Where an ACL entry applies. A dimension left out (or empty) is not restricted.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scope {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_field_name: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization_id: Option<Vec<String>>,
}

impl Scope {
    fn dimensions(&self) -> [(&'static str, &Option<Vec<String>>); 4] {
        [
            ("customFieldName", &self.custom_field_name),
            ("productId", &self.product_id),
            ("planId", &self.plan_id),
            ("organizationId", &self.organization_id),
        ]
    }

    /// Every value the request names must be listed by this scope (or by `*`) in its dimension.
    pub fn admits(&self, requested: &Scope) -> bool {
        self.dimensions().iter().zip(requested.dimensions()).all(|((_, allowed), (_, asked))| {
            match (allowed.as_deref(), asked.as_deref()) {
                (_, None) | (None, _) | (Some([]), _) => true,
                (Some(allowed), Some(asked)) => {
                    asked.iter().all(|value| allowed.iter().any(|a| a == "*" || a == value))
                }
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclEntry {
    #[serde(default)]
    pub scope: Scope,
    pub permissions: Vec<Permission>,
}

/// A key's ACL. `null` on a key means it carries no permissions at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Acl(Vec<AclEntry>);

impl Acl {
    pub fn parse(entries: Vec<AclEntry>, field: &str) -> Result<Self, FieldError> {
        if entries.len() > MAX_ACL_ENTRIES {
            return Err(FieldError::too_many(field, MAX_ACL_ENTRIES));
        }
        let permissions: usize = entries.iter().map(|e| e.permissions.len()).sum();
        if permissions > MAX_PERMISSIONS {
            return Err(FieldError::too_many(format!("{field}[].permissions"), MAX_PERMISSIONS));
        }
        Ok(Self(entries))
    }

    /// The ACL a root key gets from the operator CLI: the whole management API.
    pub fn root() -> Self {
        Self(vec![AclEntry { scope: Scope::default(), permissions: vec![Permission::all_keys()] }])
    }

    pub fn entries(&self) -> &[AclEntry] {
        &self.0
    }

    /// Each requested permission needs one entry that grants it and whose scope admits the request;
    /// with no permission requested, a scope alone needs one entry admitting it.
    pub fn allows(&self, requested: &[String], scope: &Scope) -> bool {
        if requested.is_empty() {
            return self.0.iter().any(|entry| entry.scope.admits(scope));
        }
        requested.iter().all(|wanted| {
            self.0.iter().any(|entry| entry.scope.admits(scope) && entry.permissions.iter().any(|p| p.grants(wanted)))
        })
    }

    /// Every permission of the ACL in `namespace:` (or granting it, like `*`), for the authorizer's context.
    pub fn permissions_in(&self, namespace: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .0
            .iter()
            .flat_map(|entry| entry.permissions.iter())
            .filter(|p| {
                p.as_str().starts_with(namespace)
                    || p.as_str().strip_suffix('*').is_some_and(|prefix| namespace.starts_with(prefix))
            })
            .map(|p| p.as_str().to_owned())
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

#[cfg(test)]
mod tests {
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
        ps.iter().map(|s| s.to_string()).collect()
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
    fn namespace_permissions_for_the_authorizer() {
        let a = acl(serde_json::json!([{ "permissions": ["keys:read", "orders:*", "keys", "keys:verify"] }]));
        assert_eq!(a.permissions_in("keys:"), vec!["keys:read", "keys:verify"]);
        assert_eq!(acl(serde_json::json!([{ "permissions": ["*"] }])).permissions_in("keys:"), vec!["*"]);
        assert_eq!(Acl::root().permissions_in("keys:"), vec!["keys:*"]);
    }
}
