//! OAuth2/OIDC access tokens as JWTs, checked against the issuer's published keys (JWKS).
//!
//! What is checked, in order: the header parses and its `alg` is on the allow-list (which can
//! never hold `none` or an HMAC algorithm: a JWKS issuer signs asymmetrically, so there is no
//! HS/RS confusion); a `kid` is present and names a JWKS key whose type, curve and `alg` fit
//! the header's `alg`; the signature; `iss` (exactly the configured issuer), `aud` (one of the
//! configured audiences), `exp` and `nbf` with a small leeway; `sub`; then tenant and role
//! from the configured claims. Header-supplied keys (`jwk`, `jku`, `x5u`, `x5c`) are ignored.
//!
//! Keys are fetched on first use (from `jwks_url`, or found through
//! `<issuer>/.well-known/openid-configuration`), cached, and refreshed when a token names an
//! unknown `kid` or the keys are older than `jwks_max_age_seconds` — but never more than once
//! per `jwks_min_refresh_seconds`, single-flight, so a flood of made-up `kid`s costs the
//! issuer at most one request per interval. A failed refresh keeps the keys we have.

use super::common::{check_url, get_json, http_client, AuthnConfigError, ClaimRules};
use crate::policy::outcome::FailureReason;
use crate::policy::tenancy::{AuthMethod, Principal};
pub use crate::settings::auth::OidcConfig;
use arc_swap::ArcSwap;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Most keys taken from one JWKS document; real issuers publish a handful.
const MAX_KEYS: usize = 64;

/// A JWKS key with what it may verify.
struct StoredKey {
    key: DecodingKey,
    /// The JWK's own `alg`, if it states one.
    alg: Option<Algorithm>,
    /// EC and OKP keys: their curve.
    curve: Option<EllipticCurve>,
}

impl StoredKey {
    fn fits(&self, alg: Algorithm) -> bool {
        if self.alg.is_some_and(|a| a != alg) || self.key.family() != alg.family() {
            return false;
        }
        matches!(
            (&self.curve, alg),
            (None, _)
                | (Some(EllipticCurve::P256), Algorithm::ES256)
                | (Some(EllipticCurve::P384), Algorithm::ES384)
                | (Some(EllipticCurve::Ed25519), Algorithm::EdDSA)
        )
    }
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<StoredKey>>,
    fetched_at: Option<Instant>,
}

struct RefreshState {
    last_attempt: Option<Instant>,
    jwks_url: Option<reqwest::Url>,
}

/// Verifies one issuer's JWTs; owns that issuer's key cache.
pub struct OidcVerifier {
    issuer: String,
    discovery_url: reqwest::Url,
    audiences: Vec<String>,
    algorithms: Vec<Algorithm>,
    rules: ClaimRules,
    leeway: u64,
    min_refresh: Duration,
    max_age: Duration,
    client: reqwest::Client,
    keys: ArcSwap<KeySet>,
    refresh: tokio::sync::Mutex<RefreshState>,
    fetches: AtomicU64,
}

impl OidcVerifier {
    pub fn new(cfg: &OidcConfig) -> Result<OidcVerifier, AuthnConfigError> {
        let what = |m: String| AuthnConfigError::new(format!("oidc {:?}: {m}", cfg.issuer));
        let issuer_url = check_url(&cfg.issuer, "issuer")?;
        let discovery_url = reqwest::Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            issuer_url.as_str().trim_end_matches('/')
        ))
        .map_err(|e| what(e.to_string()))?;
        let jwks_url = cfg
            .jwks_url
            .as_deref()
            .map(|u| check_url(u, "jwks_url"))
            .transpose()?;
        if cfg.audiences.is_empty() || cfg.audiences.iter().any(String::is_empty) {
            return Err(what("audiences: list at least one, none empty".into()));
        }
        if cfg.algorithms.is_empty() {
            return Err(what("algorithms: list at least one".into()));
        }
        let mut algorithms = Vec::new();
        for name in &cfg.algorithms {
            let alg = Algorithm::from_str(name).map_err(|_| {
                what(format!(
                    "algorithms: {name:?} is not one of RS256..512, PS256..512, ES256, ES384, EdDSA"
                ))
            })?;
            if alg.family() == jsonwebtoken::AlgorithmFamily::Hmac {
                return Err(what(format!(
                    "algorithms: {name} is a shared-secret algorithm; a JWKS issuer signs with \
                     public keys"
                )));
            }
            if !algorithms.contains(&alg) {
                algorithms.push(alg);
            }
        }
        if cfg.leeway_seconds > 300 {
            return Err(what("leeway_seconds: at most 300".into()));
        }
        if cfg.http_timeout_seconds == 0 {
            return Err(what("http_timeout_seconds: at least 1".into()));
        }
        let rules = ClaimRules::new(
            &cfg.tenant_claim,
            &cfg.role_claim,
            &cfg.tenant_map,
            &cfg.role_map,
            cfg.allowed_tenants.as_deref(),
            cfg.allowed_roles.as_deref(),
        )?;
        let client = http_client(
            Duration::from_secs(cfg.http_timeout_seconds),
            cfg.ca_file.as_deref(),
        )?;
        Ok(OidcVerifier {
            issuer: cfg.issuer.clone(),
            discovery_url,
            audiences: cfg.audiences.clone(),
            algorithms,
            rules,
            leeway: cfg.leeway_seconds,
            min_refresh: Duration::from_secs(cfg.jwks_min_refresh_seconds),
            max_age: Duration::from_secs(cfg.jwks_max_age_seconds),
            client,
            keys: ArcSwap::from_pointee(KeySet::default()),
            refresh: tokio::sync::Mutex::new(RefreshState {
                last_attempt: None,
                jwks_url,
            }),
            fetches: AtomicU64::new(0),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How many times this verifier has asked the issuer for keys (for self-metrics).
    pub fn jwks_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Checks `token` completely; see the module documentation.
    pub async fn verify(&self, token: &str) -> Result<Principal, FailureReason> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            tracing::debug!(issuer = %self.issuer, error = %e, "JWT header rejected");
            FailureReason::JwtMalformed
        })?;
        if !self.algorithms.contains(&header.alg) {
            tracing::debug!(issuer = %self.issuer, alg = ?header.alg, "JWT algorithm not allowed");
            return Err(FailureReason::JwtAlgorithmNotAllowed);
        }
        let kid = header.kid.as_deref().ok_or(FailureReason::JwtMissingKid)?;
        let key = self.key_for(kid).await?;
        if !key.fits(header.alg) {
            tracing::debug!(issuer = %self.issuer, kid, alg = ?header.alg, "JWT alg does not fit its key");
            return Err(FailureReason::JwtKeyMismatch);
        }
        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.leeway = self.leeway;
        v.validate_exp = true;
        v.validate_nbf = true;
        v.validate_aud = true;
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&self.audiences);
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &v).map_err(|e| {
            let reason = classify(&e);
            tracing::debug!(issuer = %self.issuer, kid, reason = reason.as_str(), error = %e, "JWT rejected");
            reason
        })?;
        let sub = data
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(FailureReason::JwtMissingClaim)?;
        let (tenant, role) = self.rules.resolve(&data.claims).inspect_err(|_| {
            tracing::debug!(issuer = %self.issuer, sub, "JWT tenant/role claims do not map");
        })?;
        Ok(Principal {
            id: sub.to_owned(),
            tenant,
            role,
            method: AuthMethod::Jwt,
        })
    }

    async fn key_for(&self, kid: &str) -> Result<Arc<StoredKey>, FailureReason> {
        let set = self.keys.load_full();
        let fresh = set.fetched_at.is_some_and(|t| t.elapsed() < self.max_age);
        if fresh {
            if let Some(k) = set.keys.get(kid) {
                return Ok(k.clone());
            }
        }
        let set = self.refresh().await;
        match set.keys.get(kid) {
            Some(k) => Ok(k.clone()),
            None if set.fetched_at.is_none() => Err(FailureReason::JwksUnavailable),
            None => {
                tracing::debug!(issuer = %self.issuer, kid, "JWT names an unknown key");
                Err(FailureReason::JwtUnknownKey)
            }
        }
    }

    /// Refetch the keys unless that was tried less than `min_refresh` ago. Single-flight:
    /// callers queue on the mutex and the later ones find the attempt already made.
    async fn refresh(&self) -> Arc<KeySet> {
        let mut st = self.refresh.lock().await;
        let now = Instant::now();
        if st
            .last_attempt
            .is_some_and(|t| now.duration_since(t) < self.min_refresh)
        {
            return self.keys.load_full();
        }
        st.last_attempt = Some(now);
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch(&mut st).await {
            Ok(keys) => {
                tracing::info!(issuer = %self.issuer, keys = keys.len(), "JWKS fetched");
                let set = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                });
                self.keys.store(set.clone());
                set
            }
            Err(e) => {
                tracing::warn!(issuer = %self.issuer, error = %e, "JWKS fetch failed; keeping the keys we have");
                self.keys.load_full()
            }
        }
    }

    async fn fetch(
        &self,
        st: &mut RefreshState,
    ) -> Result<HashMap<String, Arc<StoredKey>>, String> {
        let url = match &st.jwks_url {
            Some(u) => u.clone(),
            None => {
                let doc = get_json(&self.client, &self.discovery_url).await?;
                if doc.get("issuer").and_then(Value::as_str) != Some(self.issuer.as_str()) {
                    return Err(format!(
                        "discovery document at {} names another issuer",
                        self.discovery_url
                    ));
                }
                let uri = doc
                    .get("jwks_uri")
                    .and_then(Value::as_str)
                    .ok_or("discovery document has no jwks_uri")?;
                let u = check_url(uri, "jwks_uri").map_err(|e| e.to_string())?;
                st.jwks_url = Some(u.clone());
                u
            }
        };
        let doc = get_json(&self.client, &url).await?;
        parse_jwks(&doc)
    }
}

/// The usable signature keys of a JWKS document. Symmetric (`oct`) keys, encryption keys,
/// keys without a `kid` and key types we do not know are skipped, never trusted.
fn parse_jwks(doc: &Value) -> Result<HashMap<String, Arc<StoredKey>>, String> {
    let arr = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS has no \"keys\" array")?;
    let mut out = HashMap::new();
    for v in arr.iter().take(MAX_KEYS) {
        let jwk: Jwk = match serde_json::from_value(v.clone()) {
            Ok(j) => j,
            Err(e) => {
                tracing::debug!(error = %e, "skipping a JWK that does not parse");
                continue;
            }
        };
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            continue;
        }
        let alg = match jwk.common.key_algorithm.map(Algorithm::try_from) {
            None => None,
            Some(Ok(a)) => Some(a),
            Some(Err(_)) => continue,
        };
        let curve = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => None,
            AlgorithmParameters::EllipticCurve(p) => Some(p.curve.clone()),
            AlgorithmParameters::OctetKeyPair(p) => Some(p.curve.clone()),
            _ => continue,
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        if key.family() == jsonwebtoken::AlgorithmFamily::Hmac {
            continue;
        }
        if out.contains_key(&kid) {
            tracing::warn!(kid, "JWKS lists a kid twice; keeping the first");
            continue;
        }
        out.insert(kid, Arc::new(StoredKey { key, alg, curve }));
    }
    Ok(out)
}

fn classify(e: &jsonwebtoken::errors::Error) -> FailureReason {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::InvalidSignature => FailureReason::JwtBadSignature,
        K::ExpiredSignature => FailureReason::JwtExpired,
        K::ImmatureSignature => FailureReason::JwtNotYetValid,
        K::InvalidAudience => FailureReason::JwtWrongAudience,
        K::InvalidIssuer => FailureReason::JwtWrongIssuer,
        K::MissingRequiredClaim(_) => FailureReason::JwtMissingClaim,
        K::InvalidAlgorithm | K::MissingAlgorithm => FailureReason::JwtAlgorithmNotAllowed,
        _ => FailureReason::JwtMalformed,
    }
}

/// Three dot-separated parts of base64url characters (the last may be empty, as in
/// `alg: none` tokens, which are then refused by the verifier, not misrouted).
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && !parts[0].is_empty()
        && !parts[1].is_empty()
        && parts.iter().all(|p| {
            p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `iss` a JWT claims, read WITHOUT verification: used only to pick which issuer's keys
/// will verify it, never as a fact.
pub(crate) fn unverified_issuer(token: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Iss {
        iss: String,
    }
    if !looks_like_jwt(token) {
        return None;
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Iss>(token)
        .ok()
        .map(|c| c.iss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_and_unknown_algorithms_are_refused_at_load() {
        for bad in ["HS256", "HS512", "none", "rs256", ""] {
            let mut c = OidcConfig::new("https://idp.example", vec!["slurm".into()]);
            c.algorithms = vec![bad.into()];
            assert!(OidcVerifier::new(&c).is_err(), "{bad}");
        }
        let c = OidcConfig::new("https://idp.example", vec![]);
        assert!(OidcVerifier::new(&c).is_err(), "no audience");
        let c = OidcConfig::new("http://idp.example", vec!["slurm".into()]);
        assert!(
            OidcVerifier::new(&c).is_err(),
            "plain http to a remote host"
        );
        let c = OidcConfig::new("https://idp.example", vec!["slurm".into()]);
        assert!(OidcVerifier::new(&c).is_ok());
    }

    #[test]
    fn symmetric_and_encryption_keys_in_a_jwks_are_never_used() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "kid": "h", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "enc", "use": "enc",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "sig", "use": "sig",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "OKP", "crv": "Ed25519",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty": "weird", "kid": "w"}
        ]});
        let keys = parse_jwks(&doc).expect("parses");
        assert_eq!(keys.keys().collect::<Vec<_>>(), vec!["sig"]);
        let k = &keys["sig"];
        assert!(k.fits(Algorithm::EdDSA));
        assert!(!k.fits(Algorithm::RS256));
        assert!(!k.fits(Algorithm::HS256));
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
        assert!(looks_like_jwt("eyJh.eyJz."));
        assert!(!looks_like_jwt("eyJh.eyJz"));
        assert!(!looks_like_jwt("a.b.c.d"));
        assert!(!looks_like_jwt("sxp_abc"));
        assert_eq!(unverified_issuer("eyJh.eyJz.c2ln"), None);
    }
}
