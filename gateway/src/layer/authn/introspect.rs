//! Opaque OAuth2 access tokens, checked by asking the issuer (RFC 7662 token introspection)
//! through the `oauth2` crate over our own reqwest client.
//!
//! A token is accepted when the issuer says `active: true`, its `exp`/`nbf` (if given) hold,
//! its `token_type` (if given) is `Bearer`, its `iss` and `aud` match what is configured, and
//! its tenant and role claims map. Answers are cached briefly, keyed by the token's SHA-256
//! (never the token): positive answers for at most `cache_ttl_seconds` and never past the
//! token's `exp`, negative ones for `negative_cache_ttl_seconds`; the cache holds at most
//! `cache_max_entries`, oldest evicted first. An unreachable issuer is a refusal that is not
//! cached. At most `max_in_flight` introspection calls run at once.

use super::common::{
    check_url, http_client, read_limited, read_secret_file, AuthnConfigError, ClaimRules,
};
use crate::policy::outcome::FailureReason;
use crate::policy::tenancy::{AuthMethod, Principal};
pub use crate::settings::auth::{ClientAuth, IntrospectionConfig};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenResponse, BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, IntrospectionUrl,
    RequestTokenError, StandardRevocableToken, StandardTokenIntrospectionResponse,
    TokenIntrospectionResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every field of an introspection answer beyond RFC 7662's, kept for the claim mapping.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraFields {
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

impl oauth2::ExtraTokenFields for ExtraFields {}

type Answer = StandardTokenIntrospectionResponse<ExtraFields, BasicTokenType>;

type IntrospectClient = oauth2::Client<
    BasicErrorResponse,
    BasicTokenResponse,
    Answer,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
>;

// ---------------------------------------------------------------------------------------
// The oauth2 <-> reqwest adapter

/// `oauth2`'s async HTTP client interface over our reqwest 0.13 (the crate's built-in
/// adapter targets reqwest 0.12). Bodies are bounded; the client follows no redirects.
#[derive(Debug, Clone)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
    max_body: usize,
}

impl ReqwestHttpClient {
    pub fn new(client: reqwest::Client, max_body: usize) -> Self {
        ReqwestHttpClient { client, max_body }
    }
}

/// A failed exchange with the issuer. Its text never includes a request body (where the
/// token is).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

impl<'c> oauth2::AsyncHttpClient<'c> for ReqwestHttpClient {
    type Error = HttpError;
    type Future =
        Pin<Box<dyn Future<Output = Result<oauth2::HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request)
                .map_err(|e| HttpError(format!("building the request: {e}")))?;
            let mut res = self
                .client
                .execute(request)
                .await
                .map_err(|e| HttpError(e.to_string()))?;
            let mut builder = oauth2::http::Response::builder().status(res.status());
            for (name, value) in res.headers() {
                builder = builder.header(name, value);
            }
            let body = read_limited(&mut res, self.max_body)
                .await
                .map_err(HttpError)?;
            builder.body(body).map_err(|e| HttpError(e.to_string()))
        })
    }
}

// ---------------------------------------------------------------------------------------
// The cache

type Outcome = Result<Principal, FailureReason>;

struct Cached {
    expires: Instant,
    seq: u64,
    outcome: Outcome,
}

/// Bounded: at most `max` entries; when full, expired entries go first, then the oldest.
struct Cache {
    map: HashMap<[u8; 32], Cached>,
    order: VecDeque<([u8; 32], u64)>,
    seq: u64,
    max: usize,
}

impl Cache {
    fn new(max: usize) -> Cache {
        Cache {
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            max,
        }
    }

    fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<Outcome> {
        match self.map.get(key) {
            Some(c) if c.expires > now => Some(c.outcome.clone()),
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        }
    }

    fn insert(&mut self, key: [u8; 32], ttl: Duration, outcome: Outcome, now: Instant) {
        if self.max == 0 || ttl.is_zero() {
            return;
        }
        if self.map.len() >= self.max && !self.map.contains_key(&key) {
            self.map.retain(|_, c| c.expires > now);
        }
        while self.map.len() >= self.max && !self.map.contains_key(&key) {
            let Some((old, seq)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&old).is_some_and(|c| c.seq == seq) {
                self.map.remove(&old);
            }
        }
        self.seq += 1;
        self.map.insert(
            key,
            Cached {
                expires: now + ttl,
                seq: self.seq,
                outcome,
            },
        );
        self.order.push_back((key, self.seq));
        // Entries removed on expiry leave stale queue items; drop them before they pile up.
        if self.order.len() > 2 * self.max {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|c| c.seq == *s));
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

// ---------------------------------------------------------------------------------------
// The introspector

/// Checks opaque tokens at one RFC 7662 endpoint.
pub struct Introspector {
    client: IntrospectClient,
    http: ReqwestHttpClient,
    issuer: Option<String>,
    audiences: Vec<String>,
    rules: ClaimRules,
    ttl: Duration,
    negative_ttl: Duration,
    leeway: u64,
    cache: Mutex<Cache>,
    in_flight: tokio::sync::Semaphore,
    calls: AtomicU64,
}

impl Introspector {
    pub fn new(cfg: &IntrospectionConfig) -> Result<Introspector, AuthnConfigError> {
        let url = check_url(&cfg.url, "introspection url")?;
        let secret = match (&cfg.client_secret, &cfg.client_secret_file) {
            (Some(s), None) => s.clone(),
            (None, Some(p)) => read_secret_file(p)?,
            _ => {
                return Err(AuthnConfigError::new(
                    "introspection: set exactly one of client_secret, client_secret_file",
                ))
            }
        };
        if cfg.client_id.is_empty() {
            return Err(AuthnConfigError::new("introspection: client_id is empty"));
        }
        if cfg.max_in_flight == 0 || cfg.http_timeout_seconds == 0 {
            return Err(AuthnConfigError::new(
                "introspection: max_in_flight and http_timeout_seconds must be at least 1",
            ));
        }
        if cfg.cache_ttl_seconds > 600 || cfg.negative_cache_ttl_seconds > 600 {
            return Err(AuthnConfigError::new(
                "introspection: cache TTLs are at most 600 seconds (a revoked token must stop \
                 working soon)",
            ));
        }
        if cfg.leeway_seconds > 300 {
            return Err(AuthnConfigError::new(
                "introspection: leeway_seconds at most 300",
            ));
        }
        let rules = ClaimRules::new(
            &cfg.tenant_claim,
            &cfg.role_claim,
            &cfg.tenant_map,
            &cfg.role_map,
            cfg.allowed_tenants.as_deref(),
            cfg.allowed_roles.as_deref(),
        )?;
        let client = oauth2::Client::new(ClientId::new(cfg.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose().to_owned()))
            .set_auth_type(match cfg.client_auth {
                ClientAuth::Basic => AuthType::BasicAuth,
                ClientAuth::RequestBody => AuthType::RequestBody,
            })
            .set_introspection_url(IntrospectionUrl::from_url(url));
        let http = ReqwestHttpClient::new(
            http_client(
                Duration::from_secs(cfg.http_timeout_seconds),
                cfg.ca_file.as_deref(),
            )?,
            super::common::MAX_ISSUER_BODY,
        );
        Ok(Introspector {
            client,
            http,
            issuer: cfg.issuer.clone(),
            audiences: cfg.audiences.clone(),
            rules,
            ttl: Duration::from_secs(cfg.cache_ttl_seconds),
            negative_ttl: Duration::from_secs(cfg.negative_cache_ttl_seconds),
            leeway: cfg.leeway_seconds,
            cache: Mutex::new(Cache::new(cfg.cache_max_entries)),
            in_flight: tokio::sync::Semaphore::new(cfg.max_in_flight),
            calls: AtomicU64::new(0),
        })
    }

    /// How many introspection requests this introspector has sent (for self-metrics).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Entries in the answer cache now.
    pub fn cached(&self) -> usize {
        self.lock_cache().len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The cache holds no invariant a panicking holder could break half-way.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub async fn introspect(&self, token: &str) -> Result<Principal, FailureReason> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.lock_cache().get(&key, Instant::now()) {
            return hit;
        }
        let _permit = self
            .in_flight
            .acquire()
            .await
            .map_err(|_| FailureReason::IntrospectionUnavailable)?;
        // Someone may have asked about the same token while we waited.
        if let Some(hit) = self.lock_cache().get(&key, Instant::now()) {
            return hit;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let access = AccessToken::new(token.to_owned());
        let answer = self
            .client
            .introspect(&access)
            .set_token_type_hint("access_token")
            .request_async(&self.http)
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %describe(&e), "token introspection failed");
                return Err(FailureReason::IntrospectionUnavailable);
            }
        };
        let (outcome, ttl) = self.judge(&answer);
        if let Err(reason) = &outcome {
            tracing::debug!(reason = reason.as_str(), "introspected token refused");
        }
        self.lock_cache()
            .insert(key, ttl, outcome.clone(), Instant::now());
        outcome
    }

    /// The verdict on one answer, and how long it may be cached.
    fn judge(&self, a: &Answer) -> (Outcome, Duration) {
        let refuse = |r| (Err(r), self.negative_ttl);
        if !a.active() {
            return refuse(FailureReason::IntrospectionInactive);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        let leeway = i64::try_from(self.leeway).unwrap_or(0);
        let mut ttl = self.ttl;
        if let Some(exp) = a.exp() {
            let left = exp.timestamp().saturating_sub(now);
            if left.saturating_add(leeway) <= 0 {
                return refuse(FailureReason::IntrospectionRejected);
            }
            ttl = ttl.min(Duration::from_secs(u64::try_from(left).unwrap_or(0)));
        }
        if a.nbf()
            .is_some_and(|nbf| nbf.timestamp() > now.saturating_add(leeway))
        {
            return refuse(FailureReason::IntrospectionRejected);
        }
        if a.token_type().is_some_and(|t| *t != BasicTokenType::Bearer) {
            return refuse(FailureReason::IntrospectionRejected);
        }
        if let Some(want) = &self.issuer {
            if a.iss() != Some(want.as_str()) {
                return refuse(FailureReason::IntrospectionRejected);
            }
        }
        if !self.audiences.is_empty()
            && !a
                .aud()
                .is_some_and(|aud| aud.iter().any(|x| self.audiences.contains(x)))
        {
            return refuse(FailureReason::IntrospectionRejected);
        }
        let Some(id) = a
            .sub()
            .or(a.username())
            .map(str::to_owned)
            .or_else(|| a.client_id().map(|c| c.as_str().to_owned()))
            .filter(|s| !s.is_empty())
        else {
            return refuse(FailureReason::IntrospectionRejected);
        };
        // Standard and extra fields together, so any of them can name the tenant or role.
        let claims = match serde_json::to_value(a) {
            Ok(Value::Object(m)) => m,
            _ => return refuse(FailureReason::IntrospectionRejected),
        };
        match self.rules.resolve(&claims) {
            Ok((tenant, role)) => (
                Ok(Principal {
                    id,
                    tenant,
                    role,
                    method: AuthMethod::Introspection,
                }),
                ttl,
            ),
            Err(r) => refuse(r),
        }
    }
}

/// A loggable description of a failed introspection, without response bodies.
fn describe<RE: std::error::Error>(e: &RequestTokenError<RE, BasicErrorResponse>) -> String {
    match e {
        RequestTokenError::ServerResponse(r) => format!("issuer answered error {:?}", r.error()),
        RequestTokenError::Request(e) => format!("request failed: {e}"),
        RequestTokenError::Parse(e, _) => format!("answer did not parse: {e}"),
        RequestTokenError::Other(s) => s.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::authn::SecretString;
    use crate::policy::tenancy::{Role, TenantId};

    fn p(id: &str) -> Outcome {
        Ok(Principal {
            id: id.into(),
            tenant: TenantId::parse("t").expect("tenant"),
            role: Role::Viewer,
            method: AuthMethod::Introspection,
        })
    }

    #[test]
    fn cache_is_bounded_and_expires() {
        let now = Instant::now();
        let mut c = Cache::new(3);
        for i in 0u8..10 {
            c.insert([i; 32], Duration::from_secs(60), p("x"), now);
            assert!(c.len() <= 3);
            assert!(c.order.len() <= 6);
        }
        assert!(c.get(&[9; 32], now).is_some());
        assert!(c.get(&[0; 32], now).is_none(), "oldest evicted");
        assert!(
            c.get(&[9; 32], now + Duration::from_secs(61)).is_none(),
            "expired"
        );
        c.insert([1; 32], Duration::ZERO, p("x"), now);
        assert!(c.get(&[1; 32], now).is_none(), "zero TTL is not cached");
        let mut off = Cache::new(0);
        off.insert([1; 32], Duration::from_secs(60), p("x"), now);
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn secrets_do_not_print() {
        let cfg = IntrospectionConfig::new(
            "https://idp.example/introspect",
            "gw",
            SecretString::new("hunter2"),
        );
        assert!(!format!("{cfg:?}").contains("hunter2"));
    }

    #[test]
    fn exactly_one_secret_source() {
        let mut cfg = IntrospectionConfig::new(
            "https://idp.example/introspect",
            "gw",
            SecretString::new("s"),
        );
        assert!(Introspector::new(&cfg).is_ok());
        cfg.client_secret_file = Some("/nonexistent".into());
        assert!(Introspector::new(&cfg).is_err());
        cfg.client_secret = None;
        assert!(Introspector::new(&cfg).is_err(), "unreadable file");
        cfg.client_secret_file = None;
        assert!(Introspector::new(&cfg).is_err(), "no secret");
    }
}
