//! `[auth]`: every way a caller can prove who it is. Pure data, parsed and typed here;
//! `crate::layer::authn` builds the authenticator from it.

use crate::policy::tenancy::{Role, TenantId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The `[auth]` section: every way a caller can prove who it is. All lists may be empty; a
/// gateway with nothing configured refuses every request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthnConfig {
    /// Client-certificate name -> tenant and role.
    #[serde(default)]
    pub client_certs: Vec<CertIdentityConfig>,
    /// API tokens, stored as SHA-256 hashes only.
    #[serde(default)]
    pub api_tokens: Vec<ApiTokenConfig>,
    /// OIDC issuers whose JWT access tokens are accepted.
    #[serde(default)]
    pub oidc: Vec<OidcConfig>,
    /// An RFC 7662 introspection endpoint for opaque tokens.
    #[serde(default)]
    pub introspection: Option<IntrospectionConfig>,
}

/// One client-certificate identity (a SAN or the CN, exactly as the TLS layer reports it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertIdentityConfig {
    pub identity: String,
    #[serde(deserialize_with = "de_tenant")]
    pub tenant: TenantId,
    #[serde(deserialize_with = "de_role")]
    pub role: Role,
}

/// A configuration value that must never print (client secrets).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretString(String);

impl SecretString {
    pub fn new(s: impl Into<String>) -> Self {
        SecretString(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Claim names and HTTP timeout shared by the OIDC and introspection configs.
fn default_tenant_claim() -> String {
    "slurm_tenant".into()
}
fn default_role_claim() -> String {
    "slurm_role".into()
}
fn default_http_timeout() -> u64 {
    5
}

fn de_tenant<'de, D: Deserializer<'de>>(d: D) -> Result<TenantId, D::Error> {
    let s = String::deserialize(d)?;
    TenantId::parse(&s).map_err(serde::de::Error::custom)
}

fn ser_tenant<S: Serializer>(t: &TenantId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

fn de_role<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
    let s = String::deserialize(d)?;
    Role::parse(&s).map_err(serde::de::Error::custom)
}

fn ser_role<S: Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

fn de_tenant_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, TenantId>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| TenantId::parse(&v).map(|t| (k, t)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn de_role_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Role>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| Role::parse(&v).map(|r| (k, r)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn de_opt_tenants<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<TenantId>>, D::Error> {
    Option::<Vec<String>>::deserialize(d)?
        .map(|v| v.iter().map(|s| TenantId::parse(s)).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
}

fn de_opt_roles<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Role>>, D::Error> {
    Option::<Vec<String>>::deserialize(d)?
        .map(|v| v.iter().map(|s| Role::parse(s)).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
}

/// One API token as the config stores it: never the token, only its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiTokenConfig {
    /// The token's public id (the part after `sxp_`), shown in logs and audit records.
    pub id: String,
    /// Lowercase hex SHA-256 of the whole token string.
    pub sha256: String,
    #[serde(deserialize_with = "de_tenant", serialize_with = "ser_tenant")]
    pub tenant: TenantId,
    #[serde(deserialize_with = "de_role", serialize_with = "ser_role")]
    pub role: Role,
}

/// One OIDC issuer whose access tokens are accepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Exactly the `iss` its tokens carry, e.g. `https://idp.example/realms/hpc`.
    pub issuer: String,
    /// Where its keys are; when absent, read from the issuer's discovery document.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Accepted `aud` values: a token must name at least one. Required, never empty.
    pub audiences: Vec<String>,
    /// Allowed signature algorithms; `HS*` and `none` are refused at load.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Claim (or dotted path, e.g. `realm_access.roles`) naming the tenant.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Claim (or dotted path) naming the role.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// Claim value -> tenant. Empty: the value itself must be a tenant id.
    #[serde(default, deserialize_with = "de_tenant_map")]
    pub tenant_map: BTreeMap<String, TenantId>,
    /// Claim value -> role. Empty: the value itself must be a role name.
    #[serde(default, deserialize_with = "de_role_map")]
    pub role_map: BTreeMap<String, Role>,
    /// If set, the only tenants this issuer may assert (e.g. a tenant's own IdP).
    #[serde(default, deserialize_with = "de_opt_tenants")]
    pub allowed_tenants: Option<Vec<TenantId>>,
    /// If set, the only roles this issuer may assert.
    #[serde(default, deserialize_with = "de_opt_roles")]
    pub allowed_roles: Option<Vec<Role>>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, at most 300.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// When set, the header's `typ` must be this media type (compared without case and
    /// without an `application/` prefix, RFC 7515 §4.1.9): `"at+jwt"` for RFC 9068 access
    /// tokens, which keeps ID tokens and other JWTs of the same issuer out.
    #[serde(default)]
    pub typ: Option<String>,
    /// When set, a token must carry `iat`, and `exp - iat` may not exceed this: a token
    /// minted to live for months is refused even while it is unexpired.
    #[serde(default)]
    pub max_lifetime_seconds: Option<u64>,
    /// At most one JWKS fetch per this many seconds, whatever the traffic.
    #[serde(default = "default_min_refresh")]
    pub jwks_min_refresh_seconds: u64,
    /// Keys older than this are refetched on next use (the old ones serve if that fails).
    #[serde(default = "default_max_age")]
    pub jwks_max_age_seconds: u64,
    #[serde(default = "default_http_timeout")]
    pub http_timeout_seconds: u64,
    /// Extra CA certificates (PEM) to trust for the issuer's HTTPS.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into(), "EdDSA".into()]
}
pub(crate) fn default_leeway() -> u64 {
    30
}
fn default_min_refresh() -> u64 {
    30
}
fn default_max_age() -> u64 {
    3600
}

impl OidcConfig {
    /// An issuer with every optional field at its default.
    pub fn new(issuer: impl Into<String>, audiences: Vec<String>) -> OidcConfig {
        OidcConfig {
            issuer: issuer.into(),
            jwks_url: None,
            audiences,
            algorithms: default_algorithms(),
            tenant_claim: default_tenant_claim(),
            role_claim: default_role_claim(),
            tenant_map: BTreeMap::new(),
            role_map: BTreeMap::new(),
            allowed_tenants: None,
            allowed_roles: None,
            leeway_seconds: default_leeway(),
            typ: None,
            max_lifetime_seconds: None,
            jwks_min_refresh_seconds: default_min_refresh(),
            jwks_max_age_seconds: default_max_age(),
            http_timeout_seconds: default_http_timeout(),
            ca_file: None,
        }
    }
}

/// The introspection endpoint and how its answers map to principals.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionConfig {
    /// The RFC 7662 endpoint, e.g. `https://idp.example/oauth2/introspect`.
    pub url: String,
    /// This gateway's client credentials at the issuer.
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// The secret read from a file instead (exactly one of the two).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// If set, the `iss` an answer must carry.
    #[serde(default)]
    pub issuer: Option<String>,
    /// If not empty, an answer's `aud` must name one of these.
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    #[serde(default, deserialize_with = "de_tenant_map")]
    pub tenant_map: BTreeMap<String, TenantId>,
    #[serde(default, deserialize_with = "de_role_map")]
    pub role_map: BTreeMap<String, Role>,
    #[serde(default, deserialize_with = "de_opt_tenants")]
    pub allowed_tenants: Option<Vec<TenantId>>,
    #[serde(default, deserialize_with = "de_opt_roles")]
    pub allowed_roles: Option<Vec<Role>>,
    #[serde(default = "default_ttl")]
    pub cache_ttl_seconds: u64,
    #[serde(default = "default_negative_ttl")]
    pub negative_cache_ttl_seconds: u64,
    #[serde(default = "default_max_entries")]
    pub cache_max_entries: usize,
    #[serde(default = "default_in_flight")]
    pub max_in_flight: usize,
    #[serde(default = "default_http_timeout")]
    pub http_timeout_seconds: u64,
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Extra CA certificates (PEM) to trust for the endpoint's HTTPS.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// How this gateway authenticates to the introspection endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with client id and secret (RFC 6749 §2.3.1's preferred form).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
}

fn default_ttl() -> u64 {
    60
}
fn default_negative_ttl() -> u64 {
    10
}
fn default_max_entries() -> usize {
    10_000
}
fn default_in_flight() -> usize {
    16
}

impl IntrospectionConfig {
    /// An endpoint with every optional field at its default.
    pub fn new(
        url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
    ) -> IntrospectionConfig {
        IntrospectionConfig {
            url: url.into(),
            client_id: client_id.into(),
            client_secret: Some(client_secret),
            client_secret_file: None,
            client_auth: ClientAuth::Basic,
            issuer: None,
            audiences: Vec::new(),
            tenant_claim: default_tenant_claim(),
            role_claim: default_role_claim(),
            tenant_map: BTreeMap::new(),
            role_map: BTreeMap::new(),
            allowed_tenants: None,
            allowed_roles: None,
            cache_ttl_seconds: default_ttl(),
            negative_cache_ttl_seconds: default_negative_ttl(),
            cache_max_entries: default_max_entries(),
            max_in_flight: default_in_flight(),
            http_timeout_seconds: default_http_timeout(),
            leeway_seconds: default_leeway(),
            ca_file: None,
        }
    }
}
