//! Who is calling: the company and root key the authorizer vouched for, and what it may do.

use crate::model::{Acl, CompanyId, Permission};

use super::DomainError;

/// A permission a route needs. `keys:*` and `*` include all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Write,
    Verify,
}

impl Need {
    pub fn as_str(self) -> &'static str {
        match self {
            Need::Read => "keys:read",
            Need::Write => "keys:write",
            Need::Verify => "keys:verify",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub company: CompanyId,
    /// The root key that made the call, or `operator` for the CLI; recorded in audit events.
    pub actor: String,
    pub permissions: Vec<Permission>,
}

impl Caller {
    pub fn operator(company: CompanyId) -> Self {
        Self { company, actor: "operator".into(), permissions: vec![Permission::all_keys()] }
    }

    pub fn require(&self, need: Need) -> Result<(), DomainError> {
        let wanted = need.as_str();
        if self.permissions.iter().any(|p| p.grants(wanted)) {
            Ok(())
        } else {
            Err(DomainError::Forbidden(format!("this key lacks the permission {wanted}")))
        }
    }

    /// A key may hand out only the management permissions it holds itself, so `keys:write`
    /// cannot mint a key with `keys:*` (or `*`) and climb to read or verify.
    pub fn may_grant(&self, acl: Option<&Acl>) -> Result<(), DomainError> {
        let granted = acl.into_iter().flat_map(|acl| acl.entries()).flat_map(|entry| entry.permissions.iter());
        for permission in granted {
            for need in [Need::Read, Need::Write, Need::Verify] {
                if permission.grants(need.as_str()) && self.require(need).is_err() {
                    return Err(DomainError::Forbidden(format!(
                        "'{}' would grant {}, which this key lacks",
                        permission.as_str(),
                        need.as_str()
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(perms: &[&str]) -> Caller {
        Caller {
            company: CompanyId::parse("c", "c").unwrap(),
            actor: "k".into(),
            permissions: perms.iter().map(|s| Permission::parse(s, "p").unwrap()).collect(),
        }
    }

    #[test]
    fn narrow_permissions_grant_only_themselves() {
        assert!(caller(&["keys:read"]).require(Need::Read).is_ok());
        assert!(caller(&["keys:read"]).require(Need::Write).is_err());
        assert!(caller(&["keys:verify"]).require(Need::Verify).is_ok());
        assert!(caller(&[]).require(Need::Read).is_err());
    }

    #[test]
    fn a_key_grants_only_management_permissions_it_holds() {
        let acl = |perms: serde_json::Value| -> Acl {
            Acl::parse(serde_json::from_value(serde_json::json!([{ "permissions": perms }])).unwrap(), "acl").unwrap()
        };
        let writer = caller(&["keys:write"]);
        assert!(writer.may_grant(Some(&acl(serde_json::json!(["keys:write", "orders:*"])))).is_ok());
        assert!(writer.may_grant(None).is_ok());
        for escalation in ["keys:*", "*", "keys:read", "k*"] {
            assert!(writer.may_grant(Some(&acl(serde_json::json!([escalation])))).is_err(), "{escalation}");
        }
        assert!(caller(&["*"]).may_grant(Some(&acl(serde_json::json!(["*"])))).is_ok());
    }

    #[test]
    fn wildcards_grant_every_key_permission() {
        for p in ["keys:*", "*"] {
            for need in [Need::Read, Need::Write, Need::Verify] {
                assert!(caller(&[p]).require(need).is_ok());
            }
        }
        assert!(caller(&["orders:*"]).require(Need::Read).is_err());
    }
}
