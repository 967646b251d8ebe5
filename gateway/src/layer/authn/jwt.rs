//! OAuth2/OIDC access tokens as JWTs, checked against the issuer's published keys (JWKS).
//!
//! What is checked, in order: header and payload are JSON objects with no key twice, at any
//! depth (parsers disagree on which copy wins, so a token with two `sub` or two tenant claims
//! could mean one thing to its issuer's tools and another here); the header's `alg` is on the
//! allow-list (which can never hold `none` or an HMAC algorithm: a JWKS issuer signs
//! asymmetrically, so there is no HS/RS confusion); its `typ`, when `typ` is configured
//! (RFC 9068 access tokens say `at+jwt`, so an ID token cannot pass for one); a `kid` is
//! present and names a JWKS key whose type, curve and `alg` fit the header's `alg`; the
//! signature; `iss` (exactly the configured issuer), `aud` (one of the configured audiences),
//! `exp` and `nbf` with a small leeway; `iat` not in the future beyond the leeway, and, with
//! `max_lifetime_seconds`, present and no more than that before `exp`; `sub`; then tenant and
//! role from the configured claims. Header-supplied keys (`jwk`, `jku`, `x5u`, `x5c`) are
//! ignored.
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
    /// The required `typ`, normalized ([`media_type`]).
    typ: Option<String>,
    max_lifetime: Option<u64>,
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
        let typ = match cfg.typ.as_deref().map(media_type) {
            Some(t) if t.is_empty() || t.contains(char::is_whitespace) => {
                return Err(what(format!(
                    "typ: {:?} is not a media type such as \"at+jwt\"",
                    cfg.typ.as_deref().unwrap_or_default()
                )))
            }
            t => t,
        };
        if cfg.max_lifetime_seconds == Some(0) {
            return Err(what("max_lifetime_seconds: at least 1".into()));
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
            typ,
            max_lifetime: cfg.max_lifetime_seconds,
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
        no_duplicate_keys(token).inspect_err(|r| {
            tracing::debug!(issuer = %self.issuer, reason = r.as_str(), "JWT JSON rejected");
        })?;
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            tracing::debug!(issuer = %self.issuer, error = %e, "JWT header rejected");
            FailureReason::JwtMalformed
        })?;
        if !self.algorithms.contains(&header.alg) {
            tracing::debug!(issuer = %self.issuer, alg = ?header.alg, "JWT algorithm not allowed");
            return Err(FailureReason::JwtAlgorithmNotAllowed);
        }
        if let Some(want) = &self.typ {
            if header.typ.as_deref().map(media_type).as_ref() != Some(want) {
                tracing::debug!(issuer = %self.issuer, typ = ?header.typ, "JWT typ refused");
                return Err(FailureReason::JwtWrongType);
            }
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
        self.check_iat(&data.claims)?;
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

    /// `iat` not in the future beyond the leeway; with a maximum lifetime, `iat` present and
    /// `exp - iat` within it (`exp` is required and checked by then).
    fn check_iat(&self, claims: &Map<String, Value>) -> Result<(), FailureReason> {
        let iat = match claims.get("iat") {
            None => None,
            Some(v) => Some(v.as_f64().ok_or(FailureReason::JwtMalformed)?),
        };
        let now = jsonwebtoken::get_current_timestamp() as f64;
        if iat.is_some_and(|t| t > now + self.leeway as f64) {
            tracing::debug!(issuer = %self.issuer, ?iat, "JWT issued in the future");
            return Err(FailureReason::JwtIssuedInFuture);
        }
        if let Some(max) = self.max_lifetime {
            let iat = iat.ok_or(FailureReason::JwtMissingClaim)?;
            let exp = claims
                .get("exp")
                .and_then(Value::as_f64)
                .ok_or(FailureReason::JwtMissingClaim)?;
            if exp - iat > max as f64 {
                tracing::debug!(issuer = %self.issuer, lifetime = exp - iat, max, "JWT lives too long");
                return Err(FailureReason::JwtLifetimeTooLong);
            }
        }
        Ok(())
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

/// A media type as RFC 7515 §4.1.9 compares `typ`: without case, `application/` implied.
fn media_type(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    match t.strip_prefix("application/") {
        Some(rest) => rest.to_owned(),
        None => t,
    }
}

/// The header and the payload are JSON objects in which no object, at any depth, names a key
/// twice. Checked on the raw bytes: every JSON parser we hand them to would silently keep
/// one copy.
fn no_duplicate_keys(token: &str) -> Result<(), FailureReason> {
    use base64::Engine;
    let mut parts = token.split('.');
    for part in [parts.next(), parts.next()] {
        let json = part
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .ok_or(FailureReason::JwtMalformed)?;
        match serde_json::from_slice::<UniqueKeys>(&json) {
            Ok(UniqueKeys::Object) => {}
            Ok(UniqueKeys::Other) => return Err(FailureReason::JwtMalformed),
            Err(e) if e.to_string().starts_with(DUPLICATE) => {
                return Err(FailureReason::JwtDuplicateKey)
            }
            Err(_) => return Err(FailureReason::JwtMalformed),
        }
    }
    Ok(())
}

const DUPLICATE: &str = "duplicate key";

/// Any JSON value, refused when an object in it names a key twice.
enum UniqueKeys {
    Object,
    Other,
}

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(UniqueKeysVisitor)
    }
}

struct UniqueKeysVisitor;

impl<'de> serde::de::Visitor<'de> for UniqueKeysVisitor {
    type Value = UniqueKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys::Other)
    }
    fn visit_i64<E>(self, _: i64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys::Other)
    }
    fn visit_u64<E>(self, _: u64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys::Other)
    }
    fn visit_f64<E>(self, _: f64) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys::Other)
    }
    fn visit_str<E>(self, _: &str) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys::Other)
    }
    fn visit_unit<E>(self) -> Result<UniqueKeys, E> {
        Ok(UniqueKeys::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<UniqueKeys, A::Error> {
        while a.next_element::<UniqueKeys>()?.is_some() {}
        Ok(UniqueKeys::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<UniqueKeys, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = a.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key.clone().into_owned()) {
                return Err(serde::de::Error::custom(format_args!(
                    "{DUPLICATE} {key:?}"
                )));
            }
            a.next_value::<UniqueKeys>()?;
        }
        Ok(UniqueKeys::Object)
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
    fn duplicate_keys_are_found_at_any_depth_escaped_or_not() {
        use base64::Engine;
        let b = |j: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(j);
        let tok = |h: &str, p: &str| format!("{}.{}.c2ln", b(h), b(p));
        let h = r#"{"alg":"RS256","kid":"k"}"#;
        assert_eq!(
            no_duplicate_keys(&tok(h, r#"{"sub":"a","x":[{"a":1,"b":{"c":2}}]}"#)),
            Ok(())
        );
        for (header, payload) in [
            (h, r#"{"sub":"a","sub":"b"}"#),
            (h, r#"{"sub":"a","\u0073ub":"b"}"#),
            (h, r#"{"realm":{"roles":["viewer"],"roles":["operator"]}}"#),
            (h, r#"{"a":[{"t":1,"t":2}]}"#),
            (
                r#"{"alg":"RS256","kid":"k","kid":"other"}"#,
                r#"{"sub":"a"}"#,
            ),
        ] {
            assert_eq!(
                no_duplicate_keys(&tok(header, payload)),
                Err(FailureReason::JwtDuplicateKey),
                "{header} {payload}"
            );
        }
        for (header, payload) in [(h, "[1]"), (h, "\"s\""), (h, "{"), ("null", "{}")] {
            assert_eq!(
                no_duplicate_keys(&tok(header, payload)),
                Err(FailureReason::JwtMalformed),
                "{header} {payload}"
            );
        }
        assert_eq!(
            no_duplicate_keys("!!.??.x"),
            Err(FailureReason::JwtMalformed)
        );
    }

    #[test]
    fn typ_compares_as_a_media_type() {
        assert_eq!(media_type("at+jwt"), "at+jwt");
        assert_eq!(media_type("application/AT+JWT"), "at+jwt");
        assert_ne!(media_type("JWT"), "at+jwt");
        let mut c = OidcConfig::new("https://idp.example", vec!["slurm".into()]);
        c.typ = Some(" ".into());
        assert!(OidcVerifier::new(&c).is_err());
        c.typ = Some("at+jwt".into());
        c.max_lifetime_seconds = Some(0);
        assert!(OidcVerifier::new(&c).is_err());
        c.max_lifetime_seconds = Some(3600);
        assert!(OidcVerifier::new(&c).is_ok());
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
