//! What the token verifiers share (JWT and introspection): the config error, the claim
//! mapping and outbound HTTP to issuers. A leaf: the verifiers and the authenticator import
//! it, it imports none of them.

use crate::policy::outcome::FailureReason;
use crate::policy::tenancy::{Role, TenantId};
use crate::settings::auth::SecretString;
use axum::http::{header, StatusCode};

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration the authenticator cannot be built from. Names the section and the fault.
#[derive(Debug, thiserror::Error)]
#[error("auth config: {0}")]
pub struct AuthnConfigError(pub String);

impl AuthnConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        AuthnConfigError(msg.into())
    }
}

// ---------------------------------------------------------------------------------------
// Claims -> (tenant, role), shared by JWT and introspection

/// How an issuer's claims name a tenant and a role. Values may be a string or an array of
/// strings; exactly one distinct tenant and one distinct role must result, else refusal.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    tenant_claim: Vec<String>,
    role_claim: Vec<String>,
    tenant_map: BTreeMap<String, TenantId>,
    role_map: BTreeMap<String, Role>,
    allowed_tenants: Option<HashSet<TenantId>>,
    allowed_roles: Option<HashSet<Role>>,
}

impl ClaimRules {
    pub(crate) fn new(
        tenant_claim: &str,
        role_claim: &str,
        tenant_map: &BTreeMap<String, TenantId>,
        role_map: &BTreeMap<String, Role>,
        allowed_tenants: Option<&[TenantId]>,
        allowed_roles: Option<&[Role]>,
    ) -> Result<ClaimRules, AuthnConfigError> {
        let path = |name: &str, what: &str| -> Result<Vec<String>, AuthnConfigError> {
            let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
            if parts.iter().any(String::is_empty) {
                return Err(AuthnConfigError::new(format!(
                    "{what} {name:?}: a claim name or dotted path"
                )));
            }
            Ok(parts)
        };
        Ok(ClaimRules {
            tenant_claim: path(tenant_claim, "tenant_claim")?,
            role_claim: path(role_claim, "role_claim")?,
            tenant_map: tenant_map.clone(),
            role_map: role_map.clone(),
            allowed_tenants: allowed_tenants.map(|t| t.iter().cloned().collect()),
            allowed_roles: allowed_roles.map(|r| r.iter().copied().collect()),
        })
    }

    pub(crate) fn resolve(
        &self,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(TenantId, Role), FailureReason> {
        let tenant = one(lookup(claims, &self.tenant_claim), |v| {
            if self.tenant_map.is_empty() {
                TenantId::parse(v).ok()
            } else {
                self.tenant_map.get(v).cloned()
            }
        })?;
        let role = one(lookup(claims, &self.role_claim), |v| {
            if self.role_map.is_empty() {
                Role::parse(v).ok()
            } else {
                self.role_map.get(v).copied()
            }
        })?;
        if self
            .allowed_tenants
            .as_ref()
            .is_some_and(|a| !a.contains(&tenant))
            || self
                .allowed_roles
                .as_ref()
                .is_some_and(|a| !a.contains(&role))
        {
            return Err(FailureReason::ClaimsUnmapped);
        }
        Ok((tenant, role))
    }
}

fn lookup<'a>(
    claims: &'a serde_json::Map<String, serde_json::Value>,
    path: &[String],
) -> Vec<&'a str> {
    let mut cur: Option<&serde_json::Value> = None;
    for (i, part) in path.iter().enumerate() {
        cur = if i == 0 {
            claims.get(part)
        } else {
            cur.and_then(|v| v.get(part))
        };
    }
    match cur {
        // OAuth2 scopes are one space-separated string (RFC 6749 §3.3, RFC 9068 §2.2.3).
        Some(serde_json::Value::String(s)) if path.last().is_some_and(|p| p == "scope") => {
            s.split_ascii_whitespace().collect()
        }
        Some(serde_json::Value::String(s)) => vec![s.as_str()],
        Some(serde_json::Value::Array(a)) => a.iter().filter_map(|v| v.as_str()).collect(),
        _ => Vec::new(),
    }
}

/// Exactly one distinct mapped value, or refusal: an identity that maps to two tenants (or
/// two roles) is ambiguous and must not be resolved by order.
fn one<T: PartialEq>(
    values: Vec<&str>,
    map: impl Fn(&str) -> Option<T>,
) -> Result<T, FailureReason> {
    let mut found: Option<T> = None;
    for v in values {
        if let Some(t) = map(v) {
            match &found {
                Some(prev) if *prev != t => return Err(FailureReason::ClaimsUnmapped),
                Some(_) => {}
                None => found = Some(t),
            }
        }
    }
    found.ok_or(FailureReason::ClaimsUnmapped)
}

// ---------------------------------------------------------------------------------------
// Outbound HTTP (JWKS, discovery, introspection)

/// Largest JSON document accepted from an issuer.
pub(crate) const MAX_ISSUER_BODY: usize = 256 << 10;

/// `https://` anywhere, `http://` only to a loopback host (a local test issuer or sidecar).
pub(crate) fn check_url(url: &str, what: &str) -> Result<reqwest::Url, AuthnConfigError> {
    let u = reqwest::Url::parse(url)
        .map_err(|e| AuthnConfigError::new(format!("{what} {url:?}: {e}")))?;
    let loopback = u.host_str().is_some_and(|h| {
        h.eq_ignore_ascii_case("localhost")
            || h.trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|a| a.is_loopback())
    });
    match u.scheme() {
        "https" => Ok(u),
        "http" if loopback => Ok(u),
        _ => Err(AuthnConfigError::new(format!(
            "{what} {url:?}: must be https:// (http:// only for loopback)"
        ))),
    }
}

/// A client for one issuer: timeouts, no redirects (a redirect could point key fetches
/// anywhere), extra trusted CAs from `ca_file`.
pub(crate) fn http_client(
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::Client, AuthnConfigError> {
    http_client_builder(timeout, ca_file)?
        .build()
        .map_err(|e| AuthnConfigError::new(format!("HTTP client: {e}")))
}

/// [`http_client`]'s settings, for callers that add to them (a client certificate).
pub(crate) fn http_client_builder(
    timeout: Duration,
    ca_file: Option<&Path>,
) -> Result<reqwest::ClientBuilder, AuthnConfigError> {
    let mut b = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("slurm-exporter/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca_file {
        let pem = std::fs::read(path)
            .map_err(|e| AuthnConfigError::new(format!("ca_file {}: {e}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| AuthnConfigError::new(format!("ca_file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(AuthnConfigError::new(format!(
                "ca_file {}: no certificate in it",
                path.display()
            )));
        }
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    Ok(b)
}

/// GET a JSON document, refusing non-200 answers and bodies over [`MAX_ISSUER_BODY`].
pub(crate) async fn get_json(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<serde_json::Value, String> {
    let mut res = client
        .get(url.clone())
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    if res.status() != StatusCode::OK {
        return Err(format!("GET {url}: status {}", res.status()));
    }
    let body = read_limited(&mut res, MAX_ISSUER_BODY)
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
}

pub(crate) async fn read_limited(
    res: &mut reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = res.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("body over {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub(crate) fn read_secret_file(path: &PathBuf) -> Result<SecretString, AuthnConfigError> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| AuthnConfigError::new(format!("{}: {e}", path.display())))?;
    let s = s.trim();
    if s.is_empty() {
        return Err(AuthnConfigError::new(format!(
            "{}: empty secret",
            path.display()
        )));
    }
    Ok(SecretString::new(s))
}
