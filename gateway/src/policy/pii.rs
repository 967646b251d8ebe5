//! Per-tenant pseudonyms for user names (and any label named in config): a viewer sees
//! `u1_` + the first 16 hex digits of HMAC-SHA256(tenant key, value) instead of the name.
//!
//! - Stable within a tenant: the same user always gets the same pseudonym, so dashboards
//!   and alerts keep working.
//! - Unlinkable across tenants: each tenant's key is derived from the site's secret and the
//!   tenant id (HMAC-SHA256(secret, "slurm-exporter/pii/v1/" + tenant)), so two tenants'
//!   pseudonyms of one user do not match and neither can compute the other's.
//! - Versioned: the `u1_` prefix names the derivation; rotating the secret or the scheme
//!   moves to `u2_` and dashboards can tell the two apart.
//! - 64 bits of the MAC: collisions are negligible for any cluster's user count, and the
//!   value cannot be reversed without the key (a dictionary of user names needs the key).

use crate::policy::tenancy::TenantId;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

type HmacSha256 = Hmac<Sha256>;

/// The version prefix of pseudonyms made by this scheme.
pub const PREFIX: &str = "u1_";

/// `u1_` + the first 8 bytes of HMAC-SHA256(key, value) in hex.
fn mac_hex(key: &[u8], value: &str) -> Option<String> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(value.as_bytes());
    let tag = mac.finalize().into_bytes();
    let mut out = String::with_capacity(PREFIX.len() + 16);
    out.push_str(PREFIX);
    for b in &tag[..8] {
        let _ = write!(out, "{b:02x}");
    }
    Some(out)
}

/// The site's pseudonymization secret and which labels it hides. Never printed.
#[derive(Clone)]
pub struct Pseudonymizer {
    secret: Vec<u8>,
    labels: BTreeSet<String>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pseudonymizer")
            .field("secret", &"<redacted>")
            .field("labels", &self.labels)
            .finish()
    }
}

impl Pseudonymizer {
    /// `labels` are hidden in addition to `user`. The secret must be at least 32 bytes.
    pub fn new(secret: Vec<u8>, labels: impl IntoIterator<Item = String>) -> Result<Self, String> {
        if secret.len() < 32 {
            return Err(format!(
                "the pseudonym secret has {} bytes; it needs at least 32 (e.g. head -c 32 /dev/urandom)",
                secret.len()
            ));
        }
        let mut labels: BTreeSet<String> = labels.into_iter().collect();
        labels.insert("user".to_owned());
        Ok(Pseudonymizer { secret, labels })
    }

    /// Reads the secret from a file (raw bytes; trailing newline kept: it is just bytes).
    pub fn from_file(
        path: &Path,
        labels: impl IntoIterator<Item = String>,
    ) -> Result<Self, String> {
        let secret =
            std::fs::read(path).map_err(|e| format!("pii.key_file {}: {e}", path.display()))?;
        Pseudonymizer::new(secret, labels)
            .map_err(|e| format!("pii.key_file {}: {e}", path.display()))
    }

    fn tenant_key(&self, tenant: &TenantId) -> Result<Vec<u8>, String> {
        let mut mac = HmacSha256::new_from_slice(&self.secret).map_err(|e| e.to_string())?;
        mac.update(b"slurm-exporter/pii/v1/");
        mac.update(tenant.as_str().as_bytes());
        Ok(mac.finalize().into_bytes().to_vec())
    }

    /// The pseudonym of `value` for `tenant`.
    pub fn pseudonym(&self, tenant: &TenantId, value: &str) -> Result<String, String> {
        mac_hex(&self.tenant_key(tenant)?, value).ok_or_else(|| "HMAC key refused".to_owned())
    }

    /// Whether a label is hidden.
    pub fn hides(&self, label: &str) -> bool {
        self.labels.contains(label)
    }

    /// A label rewrite for one tenant's view: hidden labels become pseudonyms (empty
    /// values stay empty: there is no one to hide).
    pub fn rewrite_for(
        &self,
        tenant: &TenantId,
    ) -> Result<impl Fn(&str, &str) -> Option<String> + '_, String> {
        let key = self.tenant_key(tenant)?;
        Ok(move |label: &str, value: &str| {
            if value.is_empty() || !self.labels.contains(label) {
                return None;
            }
            mac_hex(&key, value)
        })
    }

    /// Finds which of `candidates` has pseudonym `pseudonym` for `tenant` (re-identification
    /// by an authorized operator: `slurm-exporter pii lookup`).
    pub fn lookup<'a>(
        &self,
        tenant: &TenantId,
        pseudonym: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) -> Result<Option<&'a str>, String> {
        for c in candidates {
            if self.pseudonym(tenant, c)? == pseudonym {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Pseudonymizer {
        Pseudonymizer::new(vec![7u8; 32], ["account_owner".to_owned()]).expect("valid")
    }

    fn t(s: &str) -> TenantId {
        TenantId::parse(s).expect("valid")
    }

    #[test]
    fn stable_within_a_tenant_unlinkable_across_tenants() {
        let p = p();
        let a1 = p.pseudonym(&t("alpha"), "alice").expect("mac");
        let a2 = p.pseudonym(&t("alpha"), "alice").expect("mac");
        let b = p.pseudonym(&t("beta"), "alice").expect("mac");
        assert_eq!(a1, a2);
        assert_ne!(a1, b);
        assert!(
            a1.starts_with(PREFIX) && a1.len() == PREFIX.len() + 16,
            "{a1}"
        );
        assert_ne!(a1, p.pseudonym(&t("alpha"), "bob").expect("mac"));
        let other = Pseudonymizer::new(vec![8u8; 32], []).expect("valid");
        assert_ne!(
            a1,
            other.pseudonym(&t("alpha"), "alice").expect("mac"),
            "the secret matters"
        );
    }

    #[test]
    fn rewrite_hides_user_and_configured_labels_only() {
        let p = p();
        let r = p.rewrite_for(&t("alpha")).expect("key");
        assert_eq!(
            r("user", "alice"),
            Some(p.pseudonym(&t("alpha"), "alice").expect("mac"))
        );
        assert!(r("account_owner", "carol").is_some());
        assert_eq!(r("account", "physics"), None);
        assert_eq!(r("user", ""), None);
    }

    #[test]
    fn short_secrets_are_refused_and_secrets_never_print() {
        assert!(Pseudonymizer::new(vec![1; 31], []).is_err());
        assert!(!format!("{:?}", p()).contains("7, 7"));
    }

    #[test]
    fn lookup_finds_the_user_behind_a_pseudonym() {
        let p = p();
        let ps = p.pseudonym(&t("alpha"), "carol").expect("mac");
        let users = ["alice", "bob", "carol"];
        assert_eq!(
            p.lookup(&t("alpha"), &ps, users).expect("mac"),
            Some("carol")
        );
        assert_eq!(p.lookup(&t("beta"), &ps, users).expect("mac"), None);
    }
}
