//! The typed name of a view: everything a served body depends on besides the generation and
//! the exposition format. The body cache and the quota plans are keyed by it, so two callers
//! share a body exactly when their keys are equal.
//!
//! A key must name every input of the body. Today those are the tenant (its scope as
//! configured), whether user names are in clear, and the series quota. Inputs a reload can
//! change under the same tenant (the scope itself, the pseudonym key id, the hidden labels)
//! are to be added as fields of [`TenantKey`]; the caches need no change for that.

use super::tenancy::TenantId;
use std::fmt;

/// How user names are shown in a tenant's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Names {
    /// In clear (`metrics:clear-names`: the tenant's admins).
    Clear,
    /// As the tenant's pseudonyms (everyone else).
    Pseudonyms,
}

impl Names {
    /// The word the audit record and the logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Names::Clear => "clear",
            Names::Pseudonyms => "pseudonyms",
        }
    }
}

/// One tenant's view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantKey {
    pub tenant: TenantId,
    pub names: Names,
    /// The series quota the view is planned under.
    pub quota: usize,
}

/// Which series a body holds and how their labels are written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ViewKey {
    /// The whole store, names in clear: no `[auth]`, or the `metrics:all` grant.
    All,
    /// One tenant's scope.
    Tenant(TenantKey),
}

impl fmt::Display for ViewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViewKey::All => f.write_str("all"),
            ViewKey::Tenant(t) => write!(f, "{}:{}:quota={}", t.names.as_str(), t.tenant, t.quota),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn keys_differ_in_every_field() {
        let t = |name: &str, names, quota| {
            ViewKey::Tenant(TenantKey {
                tenant: TenantId::parse(name).expect("valid"),
                names,
                quota,
            })
        };
        let keys = [
            ViewKey::All,
            t("a", Names::Clear, 10),
            t("b", Names::Clear, 10),
            t("a", Names::Pseudonyms, 10),
            t("a", Names::Clear, 11),
        ];
        let distinct: HashSet<_> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        let shown: HashSet<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown.len(),
            keys.len(),
            "the display names each key apart too"
        );
        assert_eq!(t("a", Names::Clear, 10), t("a", Names::Clear, 10));
    }
}
