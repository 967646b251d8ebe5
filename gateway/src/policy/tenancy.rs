//! Who is asking, for which tenant, with which role: the typed values every layer after
//! authentication passes along as request extensions. Parsed once, never re-parsed from
//! headers; secrets never print.

use std::fmt;

/// A tenant's identifier: lowercase letters, digits, `-` and `_`, 1 to 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(s: &str) -> Result<TenantId, String> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if ok {
            Ok(TenantId(s.to_owned()))
        } else {
            Err(format!(
                "tenant id {s:?}: use 1-64 characters of a-z, 0-9, '-' and '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The roles of the RBAC model (`policies/model.conf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Own series, user names pseudonymized.
    Viewer,
    /// Own series, own users in clear.
    Admin,
    /// The whole cluster, the exporter's health.
    Operator,
    /// The audit log only.
    Auditor,
    /// Usage reports.
    Billing,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Admin,
        Role::Operator,
        Role::Auditor,
        Role::Billing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Billing => "billing",
        }
    }

    pub fn parse(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("role {s:?}: one of viewer, admin, operator, auditor, billing"))
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a principal proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMethod {
    /// A client certificate; the identity is its SAN or CN.
    ClientCert,
    /// An API token; the identity is the token's id (never the token).
    ApiToken,
    /// An OAuth2/OIDC JWT; the identity is its subject.
    Jwt,
    /// An opaque OAuth2 token checked by introspection.
    Introspection,
}

/// An authenticated caller. Built only by the authentication layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable, loggable identity: certificate SAN/CN, token id, JWT `sub`.
    pub id: String,
    pub tenant: TenantId,
    pub role: Role,
    pub method: AuthMethod,
}

/// What a tenant may see: its accounts (and their users), the partitions and cluster-wide
/// series it is granted. Series without an owner a tenant holds are never shown: deny by
/// default. The exporter's own health is for operators only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantScope {
    pub tenant: TenantId,
    pub accounts: std::collections::BTreeSet<String>,
    pub partitions: std::collections::BTreeSet<String>,
    /// Cluster-wide families (cluster totals, nodes, scheduler).
    pub cluster: bool,
}

impl TenantScope {
    pub fn allows(&self, owner: &collector::store::Owner) -> bool {
        use collector::store::Owner;
        match owner {
            Owner::Exporter => false,
            Owner::Cluster => self.cluster,
            Owner::Partition(p) => self.partitions.contains(&**p),
            Owner::Account(a) => self.accounts.contains(&**a),
            Owner::User { account, .. } => self.accounts.contains(&**account),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collector::store::Owner;

    #[test]
    fn a_tenant_sees_its_accounts_and_grants_and_nothing_else() {
        let scope = TenantScope {
            tenant: TenantId::parse("alpha").expect("valid"),
            accounts: ["physics".to_owned()].into(),
            partitions: ["gpu".to_owned()].into(),
            cluster: false,
        };
        assert!(scope.allows(&Owner::Account("physics".into())));
        assert!(scope.allows(&Owner::User {
            account: "physics".into(),
            user: "alice".into()
        }));
        assert!(scope.allows(&Owner::Partition("gpu".into())));
        assert!(!scope.allows(&Owner::Account("chemistry".into())));
        assert!(!scope.allows(&Owner::User {
            account: "chemistry".into(),
            user: "alice".into()
        }));
        assert!(!scope.allows(&Owner::Partition("cpu".into())));
        assert!(
            !scope.allows(&Owner::Cluster),
            "cluster-wide only when granted"
        );
        assert!(!scope.allows(&Owner::Exporter), "operators only");
    }

    #[test]
    fn tenant_ids_are_checked() {
        assert!(TenantId::parse("physics-dept_2").is_ok());
        for bad in ["", "Physics", "a b", "a/b", "ä", &"x".repeat(65)] {
            assert!(TenantId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_round_trip_and_reject_unknown() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Ok(r));
        }
        assert!(Role::parse("root").is_err());
        assert!(Role::parse("Viewer").is_err());
    }
}
