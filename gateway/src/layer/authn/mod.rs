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

mod common;
pub mod introspect;
pub mod jwt;
pub mod token;

pub use crate::policy::outcome::{AuthnFailure, FailureReason};
use crate::policy::tenancy::{AuthMethod, Principal, Role, TenantId};
pub use crate::settings::auth::{AuthnConfig, CertIdentityConfig, SecretString};
use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::middleware::Next;
pub use common::AuthnConfigError;
pub(crate) use common::{http_client, http_client_builder};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

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
// Outcomes

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
// The middleware

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

/// Authentication as middleware: `axum::middleware::from_fn_with_state(layer,
/// authenticate_request)`. The principal goes into the request's extensions (the
/// `Authorization` header is removed) and into the response's, for the audit layer; a
/// refusal is [`rejection_response`].
pub async fn authenticate_request(
    State(layer): State<AuthnLayer>,
    mut req: Request<Body>,
    next: Next,
) -> Response<Body> {
    let authn = layer.authn.load_full();
    // An explicit `CertIdentity` wins; else the TLS loop's `PeerIdentity`.
    let cert = req.extensions().get::<CertIdentity>().cloned().or_else(|| {
        req.extensions()
            .get::<crate::tls::PeerIdentity>()
            .map(CertIdentity::from)
    });
    match authn.authenticate(req.headers(), cert.as_ref()).await {
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
            let mut res = next.run(req).await;
            res.extensions_mut().insert(principal);
            res
        }
        Err(reason) => {
            tracing::info!(reason = reason.as_str(), "authentication refused");
            rejection_response(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::common::{check_url, ClaimRules};
    use super::*;
    use std::collections::BTreeMap;

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
