//! Authentication: turns the one credential a request carries into exactly one typed
//! [`Principal`], or answers 401 (400 for a malformed request) before anything else runs.
//!
//! The methods are tried in one fixed order; the first credential *presented* decides, and a
//! presented credential that fails is a 401, never a fall-through to a weaker method:
//!
//! 0. More than one `Authorization` header: 400 (`invalid_request`), whatever else is there.
//!    "First wins" would let a proxy and the gateway disagree about who is asking.
//! 1. Client certificate: the [`CertIdentity`] extension the TLS accept loop attached (it is
//!    only there when the chain verified against the client CA). Names are looked up in
//!    `client_certs`; names mapping to two different (tenant, role) pairs are refused. An
//!    unmapped certificate falls through to step 2 (TLS may only be transport there), and is
//!    a 401 when no bearer token follows.
//! 2. `Authorization: Bearer <token>`, routed by the token's shape, never by trial:
//!    - `sxp_...`: an API token ([`token`]); such a token is never sent to an issuer.
//!    - three dot-separated parts whose (unverified) `iss` names a configured OIDC issuer: a
//!      JWT checked against that issuer's JWKS ([`jwt`]).
//!    - anything else: RFC 7662 introspection ([`introspect`]), if configured.
//! 3. Nothing presented: 401 (deny by default).
//!
//! Failures answer with a short generic body and `WWW-Authenticate: Bearer`; the reason goes to
//! tracing (never the token) and into the response's [`AuthnFailure`] extension for the audit
//! layer. On success the [`Principal`] is a request extension for later layers and a response
//! extension for outer ones, and the `Authorization` header is removed so nothing downstream
//! can log or forward it.

pub mod introspect;
pub mod jwt;
pub mod token;

use crate::tenancy::{AuthMethod, Principal, Role, TenantId};
use arc_swap::ArcSwap;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::{Deserialize, Deserializer, Serializer};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The verified client-certificate names of the connection (SAN DNS/URI/email entries, then
/// the subject CN). The layer reads this request extension, or else the TLS accept loop's
/// `crate::tls::PeerIdentity`, which is only attached when the chain verified against the
/// configured client CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity(pub Vec<String>);

impl From<String> for CertIdentity {
    fn from(name: String) -> Self {
        CertIdentity(vec![name])
    }
}

/// The TLS accept loop's [`PeerIdentity`](crate::tls::PeerIdentity): SANs, then the CN.
impl From<&crate::tls::PeerIdentity> for CertIdentity {
    fn from(id: &crate::tls::PeerIdentity) -> Self {
        CertIdentity(id.names().map(str::to_owned).collect())
    }
}

// ---------------------------------------------------------------------------------------
// Configuration

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
    pub api_tokens: Vec<token::ApiTokenConfig>,
    /// OIDC issuers whose JWT access tokens are accepted.
    #[serde(default)]
    pub oidc: Vec<jwt::OidcConfig>,
    /// An RFC 7662 introspection endpoint for opaque tokens.
    #[serde(default)]
    pub introspection: Option<introspect::IntrospectionConfig>,
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

/// A configuration the authenticator cannot be built from. Names the section and the fault.
#[derive(Debug, thiserror::Error)]
#[error("auth config: {0}")]
pub struct AuthnConfigError(pub String);

impl AuthnConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        AuthnConfigError(msg.into())
    }
}

pub(crate) fn de_tenant<'de, D: Deserializer<'de>>(d: D) -> Result<TenantId, D::Error> {
    let s = String::deserialize(d)?;
    TenantId::parse(&s).map_err(serde::de::Error::custom)
}

pub(crate) fn ser_tenant<S: Serializer>(t: &TenantId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

pub(crate) fn de_role<'de, D: Deserializer<'de>>(d: D) -> Result<Role, D::Error> {
    let s = String::deserialize(d)?;
    Role::parse(&s).map_err(serde::de::Error::custom)
}

pub(crate) fn ser_role<S: Serializer>(r: &Role, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.as_str())
}

pub(crate) fn de_tenant_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, TenantId>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| TenantId::parse(&v).map(|t| (k, t)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

pub(crate) fn de_role_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Role>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(k, v)| Role::parse(&v).map(|r| (k, r)))
        .collect::<Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_tenants<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<TenantId>>, D::Error> {
    Option::<Vec<String>>::deserialize(d)?
        .map(|v| v.iter().map(|s| TenantId::parse(s)).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
}

pub(crate) fn de_opt_roles<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Role>>, D::Error> {
    Option::<Vec<String>>::deserialize(d)?
        .map(|v| v.iter().map(|s| Role::parse(s)).collect())
        .transpose()
        .map_err(serde::de::Error::custom)
}

// ---------------------------------------------------------------------------------------
// Outcomes

/// Why a request was refused. Goes to tracing and, as [`AuthnFailure`], to the response's
/// extensions for the audit layer; the client sees only the status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureReason {
    NoCredentials,
    DuplicateAuthorization,
    MalformedAuthorization,
    UnsupportedScheme,
    CertNotMapped,
    CertAmbiguous,
    ApiTokenMalformed,
    ApiTokenUnknown,
    ApiTokenMismatch,
    /// A bearer token no configured method can check.
    NoVerifier,
    JwtMalformed,
    JwtUnknownIssuer,
    JwtAlgorithmNotAllowed,
    JwtMissingKid,
    JwtUnknownKey,
    JwtKeyMismatch,
    JwksUnavailable,
    JwtBadSignature,
    JwtExpired,
    JwtNotYetValid,
    JwtWrongAudience,
    JwtWrongIssuer,
    JwtMissingClaim,
    /// The header's `typ` is not the configured one (e.g. an ID token where `at+jwt` is due).
    JwtWrongType,
    /// `iat` later than now plus the leeway.
    JwtIssuedInFuture,
    /// `exp - iat` over `max_lifetime_seconds`.
    JwtLifetimeTooLong,
    /// A key twice in one JSON object of the header or the payload.
    JwtDuplicateKey,
    /// Tenant or role claim missing, unmapped, ambiguous or not allowed for this issuer.
    ClaimsUnmapped,
    IntrospectionInactive,
    IntrospectionRejected,
    IntrospectionUnavailable,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        use FailureReason::*;
        match self {
            NoCredentials => "no_credentials",
            DuplicateAuthorization => "duplicate_authorization",
            MalformedAuthorization => "malformed_authorization",
            UnsupportedScheme => "unsupported_scheme",
            CertNotMapped => "cert_not_mapped",
            CertAmbiguous => "cert_ambiguous",
            ApiTokenMalformed => "api_token_malformed",
            ApiTokenUnknown => "api_token_unknown",
            ApiTokenMismatch => "api_token_mismatch",
            NoVerifier => "no_verifier",
            JwtMalformed => "jwt_malformed",
            JwtUnknownIssuer => "jwt_unknown_issuer",
            JwtAlgorithmNotAllowed => "jwt_algorithm_not_allowed",
            JwtMissingKid => "jwt_missing_kid",
            JwtUnknownKey => "jwt_unknown_key",
            JwtKeyMismatch => "jwt_key_mismatch",
            JwksUnavailable => "jwks_unavailable",
            JwtBadSignature => "jwt_bad_signature",
            JwtExpired => "jwt_expired",
            JwtNotYetValid => "jwt_not_yet_valid",
            JwtWrongAudience => "jwt_wrong_audience",
            JwtWrongIssuer => "jwt_wrong_issuer",
            JwtMissingClaim => "jwt_missing_claim",
            JwtWrongType => "jwt_wrong_type",
            JwtIssuedInFuture => "jwt_issued_in_future",
            JwtLifetimeTooLong => "jwt_lifetime_too_long",
            JwtDuplicateKey => "jwt_duplicate_key",
            ClaimsUnmapped => "claims_unmapped",
            IntrospectionInactive => "introspection_inactive",
            IntrospectionRejected => "introspection_rejected",
            IntrospectionUnavailable => "introspection_unavailable",
        }
    }

    /// 400 for a request that is malformed as HTTP, 401 for everything else.
    pub fn status(self) -> StatusCode {
        match self {
            FailureReason::DuplicateAuthorization | FailureReason::MalformedAuthorization => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Response extension on every refusal, for the audit layer outside this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthnFailure {
    pub reason: FailureReason,
}

/// The generic refusal: status, `WWW-Authenticate: Bearer`, a one-word body.
pub fn rejection_response(reason: FailureReason) -> Response<Body> {
    let status = reason.status();
    let (challenge, body) = match (status, reason) {
        (StatusCode::BAD_REQUEST, _) => (
            r#"Bearer realm="slurm-exporter", error="invalid_request""#,
            "bad request\n",
        ),
        (_, FailureReason::NoCredentials) => (r#"Bearer realm="slurm-exporter""#, "unauthorized\n"),
        _ => (
            r#"Bearer realm="slurm-exporter", error="invalid_token""#,
            "unauthorized\n",
        ),
    };
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.extensions_mut().insert(AuthnFailure { reason });
    res
}

// ---------------------------------------------------------------------------------------
// The authenticator

/// What the authenticator has cost its issuers so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthnStats {
    /// JWKS (and discovery) fetch attempts, all issuers.
    pub jwks_fetches: u64,
    /// Introspection requests sent.
    pub introspection_calls: u64,
    /// Introspection answers cached now.
    pub introspection_cached: usize,
}

/// Upper bound on a bearer token; real ones are well under 2 KiB.
const MAX_TOKEN_LEN: usize = 4096;

/// Every configured method, built once from [`AuthnConfig`]; cheap to share behind an `Arc`.
pub struct Authenticator {
    certs: HashMap<String, (TenantId, Role)>,
    tokens: token::ApiTokens,
    oidc: Vec<jwt::OidcVerifier>,
    introspection: Option<introspect::Introspector>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("client_certs", &self.certs.len())
            .field("api_tokens", &self.tokens.len())
            .field("oidc_issuers", &self.oidc.len())
            .field("introspection", &self.introspection.is_some())
            .finish()
    }
}

impl Authenticator {
    /// Validates the whole configuration (files read, URLs checked, algorithms allowed) and
    /// builds the HTTP clients. Makes no network call: JWKS are fetched on first use.
    pub fn new(cfg: &AuthnConfig) -> Result<Authenticator, AuthnConfigError> {
        let mut certs = HashMap::new();
        for c in &cfg.client_certs {
            if c.identity.is_empty() {
                return Err(AuthnConfigError::new("client_certs: empty identity"));
            }
            if certs
                .insert(c.identity.clone(), (c.tenant.clone(), c.role))
                .is_some()
            {
                return Err(AuthnConfigError::new(format!(
                    "client_certs: identity {:?} listed twice",
                    c.identity
                )));
            }
        }
        let tokens = token::ApiTokens::new(&cfg.api_tokens)?;
        let mut oidc = Vec::new();
        for o in &cfg.oidc {
            if oidc
                .iter()
                .any(|v: &jwt::OidcVerifier| v.issuer() == o.issuer)
            {
                return Err(AuthnConfigError::new(format!(
                    "oidc: issuer {:?} listed twice",
                    o.issuer
                )));
            }
            oidc.push(jwt::OidcVerifier::new(o)?);
        }
        let introspection = cfg
            .introspection
            .as_ref()
            .map(introspect::Introspector::new)
            .transpose()?;
        Ok(Authenticator {
            certs,
            tokens,
            oidc,
            introspection,
        })
    }

    /// Decides who is asking. `headers` are the request's; `cert` the connection's verified
    /// client-certificate names, if any. See the module documentation for the order.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        cert: Option<&CertIdentity>,
    ) -> Result<Principal, FailureReason> {
        let mut values = headers.get_all(header::AUTHORIZATION).iter();
        let authorization = values.next();
        if values.next().is_some() {
            return Err(FailureReason::DuplicateAuthorization);
        }

        if let Some(cert) = cert {
            match self.cert_principal(cert) {
                Ok(p) => return Ok(p),
                Err(FailureReason::CertNotMapped) if authorization.is_some() => {
                    tracing::debug!("client certificate not mapped; trying the bearer token");
                }
                Err(e) => return Err(e),
            }
        }

        let Some(value) = authorization else {
            return Err(FailureReason::NoCredentials);
        };
        let token = parse_bearer(value)?;

        if token.starts_with(token::TOKEN_PREFIX) {
            return self.tokens.verify(token);
        }
        if let Some(iss) = jwt::unverified_issuer(token) {
            if let Some(v) = self.oidc.iter().find(|v| v.issuer() == iss) {
                return v.verify(token).await;
            }
        }
        match &self.introspection {
            Some(i) => i.introspect(token).await,
            None if jwt::looks_like_jwt(token) && !self.oidc.is_empty() => {
                Err(FailureReason::JwtUnknownIssuer)
            }
            None => Err(FailureReason::NoVerifier),
        }
    }

    /// Counters for the gateway's self-metrics.
    pub fn stats(&self) -> AuthnStats {
        AuthnStats {
            jwks_fetches: self.oidc.iter().map(jwt::OidcVerifier::jwks_fetches).sum(),
            introspection_calls: self.introspection.as_ref().map_or(0, |i| i.calls()),
            introspection_cached: self.introspection.as_ref().map_or(0, |i| i.cached()),
        }
    }

    fn cert_principal(&self, cert: &CertIdentity) -> Result<Principal, FailureReason> {
        let mut found: Option<(&String, &(TenantId, Role))> = None;
        for name in &cert.0 {
            if let Some(entry) = self.certs.get_key_value(name) {
                match found {
                    Some((_, prev)) if prev != entry.1 => return Err(FailureReason::CertAmbiguous),
                    Some(_) => {}
                    None => found = Some(entry),
                }
            }
        }
        let (name, (tenant, role)) = found.ok_or(FailureReason::CertNotMapped)?;
        Ok(Principal {
            id: name.clone(),
            tenant: tenant.clone(),
            role: *role,
            method: AuthMethod::ClientCert,
        })
    }
}

/// `Bearer <b64token>` (RFC 6750 §2.1): scheme case-insensitive, the token's characters
/// checked, the length bounded.
fn parse_bearer(value: &HeaderValue) -> Result<&str, FailureReason> {
    let s = value
        .to_str()
        .map_err(|_| FailureReason::MalformedAuthorization)?;
    let (scheme, rest) = s.split_once(' ').ok_or(FailureReason::UnsupportedScheme)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(FailureReason::UnsupportedScheme);
    }
    let token = rest.trim_matches(' ');
    let body = token.trim_end_matches('=');
    let ok = !body.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
    if ok {
        Ok(token)
    } else {
        Err(FailureReason::MalformedAuthorization)
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

// ---------------------------------------------------------------------------------------
// The tower layer

/// Authenticates every request (see the module documentation). Wraps an [`Authenticator`]
/// that can be swapped atomically on reload.
#[derive(Clone)]
pub struct AuthnLayer {
    authn: Arc<ArcSwap<Authenticator>>,
}

impl AuthnLayer {
    pub fn new(authn: Arc<Authenticator>) -> Self {
        AuthnLayer {
            authn: Arc::new(ArcSwap::new(authn)),
        }
    }

    /// A layer reading the authenticator from `handle` on every request, so a config reload
    /// is `handle.store(Arc::new(Authenticator::new(&new)?))`.
    pub fn reloadable(handle: Arc<ArcSwap<Authenticator>>) -> Self {
        AuthnLayer { authn: handle }
    }
}

impl<S> tower::Layer<S> for AuthnLayer {
    type Service = AuthnService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthnService {
            inner,
            authn: self.authn.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthnService<S> {
    inner: S,
    authn: Arc<ArcSwap<Authenticator>>,
}

impl<S, B> tower::Service<Request<B>> for AuthnService<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let authn = self.authn.load_full();
        // The clone we were polled ready with goes into the future; a fresh clone stays.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            // An explicit `CertIdentity` wins; else the TLS loop's `PeerIdentity`.
            let cert = req.extensions().get::<CertIdentity>().cloned().or_else(|| {
                req.extensions()
                    .get::<crate::tls::PeerIdentity>()
                    .map(CertIdentity::from)
            });
            let outcome = authn.authenticate(req.headers(), cert.as_ref()).await;
            match outcome {
                Ok(principal) => {
                    tracing::debug!(
                        principal = %principal.id,
                        tenant = %principal.tenant,
                        role = %principal.role,
                        method = ?principal.method,
                        "authenticated"
                    );
                    req.headers_mut().remove(header::AUTHORIZATION);
                    req.extensions_mut().insert(principal.clone());
                    let mut res = inner.call(req).await?;
                    res.extensions_mut().insert(principal);
                    Ok(res)
                }
                Err(reason) => {
                    tracing::info!(reason = reason.as_str(), "authentication refused");
                    Ok(rejection_response(reason))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("static header")
    }

    #[test]
    fn bearer_parsing_is_strict() {
        assert_eq!(
            parse_bearer(&hv("Bearer abc.def-_~+/==")),
            Ok("abc.def-_~+/==")
        );
        assert_eq!(parse_bearer(&hv("bearer abc")), Ok("abc"));
        assert_eq!(
            parse_bearer(&hv("Basic dXNlcjpwdw==")),
            Err(FailureReason::UnsupportedScheme)
        );
        for bad in ["Bearer ", "Bearer a b", "Bearer a,b", "Bearer ==="] {
            assert_eq!(
                parse_bearer(&hv(bad)),
                Err(FailureReason::MalformedAuthorization),
                "{bad:?}"
            );
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(
            parse_bearer(&hv(&long)),
            Err(FailureReason::MalformedAuthorization)
        );
    }

    #[test]
    fn claims_must_name_exactly_one_tenant_and_role() {
        let tenant_map = BTreeMap::new();
        let mut role_map = BTreeMap::new();
        role_map.insert("slurm-viewers".to_owned(), Role::Viewer);
        role_map.insert("slurm-ops".to_owned(), Role::Operator);
        let rules = ClaimRules::new(
            "slurm_tenant",
            "realm_access.roles",
            &tenant_map,
            &role_map,
            None,
            None,
        )
        .expect("rules");
        let claims = |v: serde_json::Value| v.as_object().cloned().expect("object");
        let ok = claims(serde_json::json!({
            "slurm_tenant": "physics",
            "realm_access": {"roles": ["offline_access", "slurm-viewers"]}
        }));
        assert_eq!(
            rules.resolve(&ok),
            Ok((TenantId::parse("physics").expect("t"), Role::Viewer))
        );
        let two_roles = claims(serde_json::json!({
            "slurm_tenant": "physics",
            "realm_access": {"roles": ["slurm-ops", "slurm-viewers"]}
        }));
        assert_eq!(
            rules.resolve(&two_roles),
            Err(FailureReason::ClaimsUnmapped)
        );
        let no_tenant = claims(serde_json::json!({"realm_access": {"roles": ["slurm-ops"]}}));
        assert_eq!(
            rules.resolve(&no_tenant),
            Err(FailureReason::ClaimsUnmapped)
        );
        let bad_tenant = claims(serde_json::json!({
            "slurm_tenant": "Physics!",
            "realm_access": {"roles": ["slurm-ops"]}
        }));
        assert_eq!(
            rules.resolve(&bad_tenant),
            Err(FailureReason::ClaimsUnmapped)
        );
    }

    #[test]
    fn allowed_lists_bound_what_an_issuer_may_assert() {
        let physics = TenantId::parse("physics").expect("t");
        let rules = ClaimRules::new(
            "t",
            "r",
            &BTreeMap::new(),
            &BTreeMap::new(),
            Some(std::slice::from_ref(&physics)),
            Some(&[Role::Viewer]),
        )
        .expect("rules");
        let c = |t: &str, r: &str| {
            serde_json::json!({"t": t, "r": r})
                .as_object()
                .cloned()
                .expect("object")
        };
        assert_eq!(
            rules.resolve(&c("physics", "viewer")),
            Ok((physics, Role::Viewer))
        );
        assert_eq!(
            rules.resolve(&c("physics", "operator")),
            Err(FailureReason::ClaimsUnmapped)
        );
        assert_eq!(
            rules.resolve(&c("chemistry", "viewer")),
            Err(FailureReason::ClaimsUnmapped)
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_url("https://idp.example/jwks", "jwks_url").is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", "jwks_url").is_ok());
        assert!(check_url("http://[::1]:8080/jwks", "jwks_url").is_ok());
        assert!(check_url("http://localhost/jwks", "jwks_url").is_ok());
        assert!(check_url("http://idp.example/jwks", "jwks_url").is_err());
        assert!(check_url("file:///etc/passwd", "jwks_url").is_err());
    }
}
