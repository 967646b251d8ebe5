//! Request-rate limits (GCRA, from `governor`), in two places of the stack:
//!
//! - [`PerIpLayer`], before authentication: keyed by the peer address of the TCP connection
//!   (axum's `ConnectInfo<SocketAddr>`, set by the accept loop), never by a header such as
//!   `X-Forwarded-For`, which the client writes. It bounds what an unauthenticated caller
//!   can make us spend on token, JWT and certificate work. IPv6 peers are keyed by their /64
//!   (one host usually holds a whole /64, so per-address keys would be free to rotate);
//!   IPv4-mapped IPv6 peers count as their IPv4 address.
//! - [`PerPrincipalLayer`], after authentication: two limits, per principal (tenant, id) and
//!   per tenant. The principal is checked first, so one noisy principal is stopped before it
//!   drains its tenant's budget. A request without a [`Principal`] passes untouched: the
//!   authentication layer has refused it already, or the gateway runs without `[auth]`.
//!
//! Over a limit: `429 Too Many Requests`, `Retry-After` in whole seconds (rounded up), a
//! short generic body, and a [`RateLimited`] response extension for the audit layer.
//!
//! Memory stays bounded whatever the callers do: each key store tracks at most
//! `max_tracked_keys` keys ([`BoundedStateStore`]). Keys whose bucket is full again are
//! indistinguishable from new ones and are dropped by a sweep (`retain_recent`) at most once
//! per [`SWEEP_INTERVAL`]. When the store is full of keys that are still busy, a new key
//! shares one overflow bucket with every other untracked key, until a sweep frees room:
//! tracked callers keep their own budgets, and rotating source addresses or tokens buys an
//! attacker one shared budget, not a fresh one per key, nor more memory.

pub use crate::policy::outcome::RateLimited;
use crate::policy::tenancy::{Principal, TenantId};
pub use crate::settings::sections::RateLimitConfig;
use arc_swap::ArcSwap;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::middleware::Next;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often idle keys are swept out of a store (at most; sweeps run on the request path).
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Configuration

// ---------------------------------------------------------------------------------------
// The bounded key store

/// A governor key store holding at most `max` keys (plus one shared overflow slot). Each
/// entry is the GCRA "theoretical arrival time", in nanoseconds since the limiter started
/// (0: a fresh key), exactly what governor's own stores hold.
#[derive(Debug)]
pub struct BoundedStateStore<K> {
    inner: Mutex<StoreInner<K>>,
    max: usize,
    overflowed: Arc<AtomicU64>,
}

#[derive(Debug)]
struct StoreInner<K> {
    map: HashMap<K, u64>,
    overflow: u64,
}

impl<K> BoundedStateStore<K> {
    pub fn new(max: NonZeroUsize) -> Self {
        BoundedStateStore {
            inner: Mutex::new(StoreInner {
                map: HashMap::new(),
                overflow: 0,
            }),
            max: max.get(),
            overflowed: Arc::new(AtomicU64::new(0)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StoreInner<K>> {
        // A panic while holding the lock leaves plain integers behind: still consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decisions made on the shared overflow bucket because the store was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStateStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut inner = self.lock();
        let prev = |v: u64| (v != 0).then(|| Nanos::new(v));
        if let Some(v) = inner.map.get_mut(key) {
            let (t, next) = f(prev(*v))?;
            *v = next.as_u64();
            return Ok(t);
        }
        if inner.map.len() >= self.max {
            self.overflowed.fetch_add(1, Ordering::Relaxed);
            let (t, next) = f(prev(inner.overflow))?;
            inner.overflow = next.as_u64();
            return Ok(t);
        }
        let (t, next) = f(None)?;
        inner.map.insert(key.clone(), next.as_u64());
        Ok(t)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStateStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        let below = drop_below.as_u64();
        let mut inner = self.lock();
        inner.map.retain(|_, v| *v > below);
        if inner.overflow <= below {
            inner.overflow = 0;
        }
    }

    fn shrink_to_fit(&self) {
        self.lock().map.shrink_to_fit();
    }

    fn len(&self) -> usize {
        self.lock().map.len()
    }

    fn is_empty(&self) -> bool {
        self.lock().map.is_empty()
    }
}

/// One keyed GCRA limiter over a [`BoundedStateStore`], swept on the request path.
pub struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: RateLimiter<
        K,
        BoundedStateStore<K>,
        DefaultClock,
        NoOpMiddleware<<DefaultClock as Clock>::Instant>,
    >,
    overflowed: Arc<AtomicU64>,
    started: Instant,
    /// Milliseconds since `started` of the last sweep.
    last_sweep_ms: AtomicU64,
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    pub fn new(per_minute: NonZeroU32, burst: NonZeroU32, max_keys: NonZeroUsize) -> Self {
        let quota = Quota::per_minute(per_minute).allow_burst(burst);
        let store = BoundedStateStore::new(max_keys);
        KeyedLimiter {
            overflowed: store.overflowed.clone(),
            limiter: RateLimiter::new(quota, store, DefaultClock::default()),
            started: Instant::now(),
            last_sweep_ms: AtomicU64::new(0),
        }
    }

    /// `Ok` when `key` may go on (and counts the request), else how long until it may.
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.maybe_sweep();
        self.limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Keys tracked now (at most `max_tracked_keys`; the overflow slot is not counted).
    pub fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    /// Decisions made on the shared overflow bucket because the store was full.
    pub fn overflowed(&self) -> u64 {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Drops the keys whose bucket is full again (indistinguishable from a new key).
    pub fn sweep(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    fn maybe_sweep(&self) {
        let now = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_sweep_ms.load(Ordering::Relaxed);
        let interval = u64::try_from(SWEEP_INTERVAL.as_millis()).unwrap_or(u64::MAX);
        // One request wins the race and sweeps; the others go on.
        if now.saturating_sub(last) >= interval
            && self
                .last_sweep_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.limiter.retain_recent();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Outcomes

/// `Retry-After` for a wait: whole seconds, rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    secs.max(1)
}

/// The 429: short and generic; which limit and who go to the log and the audit extension.
pub fn too_many_requests(which: RateLimited, wait: Duration) -> Response<Body> {
    let mut r = Response::new(Body::from("too many requests\n"));
    *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let h = r.headers_mut();
    h.insert(
        header::RETRY_AFTER,
        HeaderValue::from(retry_after_secs(wait)),
    );
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.extensions_mut().insert(which);
    r
}

pub use crate::policy::client::ip_key;

// ---------------------------------------------------------------------------------------
// Per-IP layer

/// Limits of one kind with the config they were made from, swapped whole when a reload
/// changes that config (the counts then start afresh).
struct Configured<T> {
    config: RateLimitConfig,
    limits: T,
}

/// Installs `make(config)` in `cell` unless the config in force is the same; true if it did.
fn reconfigure<T>(
    cell: &ArcSwap<Configured<T>>,
    config: &RateLimitConfig,
    make: impl FnOnce(&RateLimitConfig) -> T,
) -> bool {
    if cell.load().config == *config {
        return false;
    }
    cell.store(Arc::new(Configured {
        config: *config,
        limits: make(config),
    }));
    true
}

/// The per-IP limit (see the module documentation). Cheap to clone: the store is shared.
#[derive(Clone)]
pub struct PerIpLayer {
    current: Arc<ArcSwap<Configured<KeyedLimiter<IpAddr>>>>,
}

fn ip_limiter(config: &RateLimitConfig) -> KeyedLimiter<IpAddr> {
    KeyedLimiter::new(
        config.per_ip_per_minute,
        config.burst,
        config.max_tracked_keys,
    )
}

impl PerIpLayer {
    pub fn new(config: &RateLimitConfig) -> Self {
        PerIpLayer {
            current: Arc::new(ArcSwap::from_pointee(Configured {
                config: *config,
                limits: ip_limiter(config),
            })),
        }
    }

    /// A reloaded `[rate_limit]`: new limits when it changed; true if it did.
    pub fn reconfigure(&self, config: &RateLimitConfig) -> bool {
        reconfigure(&self.current, config, ip_limiter)
    }

    /// The decision for one peer address, as the layer makes it (counts the request).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        self.current.load().limits.check(&ip_key(ip))
    }

    /// Addresses tracked now.
    pub fn tracked_keys(&self) -> usize {
        self.current.load().limits.tracked_keys()
    }

    /// Decisions made on the shared overflow bucket because the store was full.
    pub fn overflowed(&self) -> u64 {
        self.current.load().limits.overflowed()
    }
}

/// The per-IP limit as middleware: `axum::middleware::from_fn_with_state(layer, per_ip)`.
pub async fn per_ip(
    State(limit): State<PerIpLayer>,
    req: Request<Body>,
    next: Next,
) -> Response<Body> {
    // The accept loop always attaches the peer address; without it we cannot tell callers
    // apart, so we refuse rather than put everyone in one bucket silently.
    let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        tracing::error!(
            "no peer address on the request: the accept loop must attach ConnectInfo<SocketAddr>"
        );
        let mut r = Response::new(Body::from("error\n"));
        *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        return r;
    };
    if let Err(wait) = limit.check_ip(peer.ip()) {
        tracing::info!(peer = %peer.ip(), retry_after_ms = wait.as_millis() as u64, "rate limited (ip)");
        return too_many_requests(RateLimited::Ip, wait);
    }
    next.run(req).await
}

// ---------------------------------------------------------------------------------------
// Per-tenant and per-principal layer

/// The per-tenant and per-principal limits (see the module documentation).
#[derive(Clone)]
pub struct PerPrincipalLayer {
    current: Arc<ArcSwap<Configured<PrincipalLimits>>>,
}

struct PrincipalLimits {
    tenant: KeyedLimiter<TenantId>,
    principal: KeyedLimiter<(TenantId, String)>,
}

impl PrincipalLimits {
    fn check(&self, p: &Principal) -> Result<(), (RateLimited, Duration)> {
        self.principal
            .check(&(p.tenant.clone(), p.id.clone()))
            .map_err(|w| (RateLimited::Principal, w))?;
        self.tenant
            .check(&p.tenant)
            .map_err(|w| (RateLimited::Tenant, w))
    }
}

fn principal_limits(config: &RateLimitConfig) -> PrincipalLimits {
    PrincipalLimits {
        tenant: KeyedLimiter::new(
            config.per_tenant_per_minute,
            config.burst,
            config.max_tracked_keys,
        ),
        principal: KeyedLimiter::new(
            config.per_principal_per_minute,
            config.burst,
            config.max_tracked_keys,
        ),
    }
}

impl PerPrincipalLayer {
    pub fn new(config: &RateLimitConfig) -> Self {
        PerPrincipalLayer {
            current: Arc::new(ArcSwap::from_pointee(Configured {
                config: *config,
                limits: principal_limits(config),
            })),
        }
    }

    /// A reloaded `[rate_limit]`: new limits when it changed; true if it did.
    pub fn reconfigure(&self, config: &RateLimitConfig) -> bool {
        reconfigure(&self.current, config, principal_limits)
    }

    /// The decision for one principal, as the layer makes it (counts the request).
    pub fn check_principal(&self, p: &Principal) -> Result<(), (RateLimited, Duration)> {
        self.current.load().limits.check(p)
    }

    /// Tenants tracked now.
    pub fn tracked_tenants(&self) -> usize {
        self.current.load().limits.tenant.tracked_keys()
    }

    /// Principals tracked now.
    pub fn tracked_principals(&self) -> usize {
        self.current.load().limits.principal.tracked_keys()
    }
}

/// The per-tenant and per-principal limits as middleware, after authentication:
/// `axum::middleware::from_fn_with_state(layer, per_principal)`.
pub async fn per_principal(
    State(limit): State<PerPrincipalLayer>,
    req: Request<Body>,
    next: Next,
) -> Response<Body> {
    if let Some(p) = req.extensions().get::<Principal>() {
        if let Err((which, wait)) = limit.check_principal(p) {
            tracing::info!(
                limit = which.as_str(),
                tenant = %p.tenant,
                principal = %p.id,
                retry_after_ms = wait.as_millis() as u64,
                "rate limited"
            );
            let mut res = too_many_requests(which, wait);
            res.extensions_mut().insert(p.clone());
            return res;
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::sections::{nz32, nzusize};

    #[test]
    fn a_reload_changes_the_limits_and_only_a_change_resets_them() {
        let one = RateLimitConfig {
            per_ip_per_minute: nz32(1),
            burst: nz32(1),
            ..RateLimitConfig::default()
        };
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let layer = PerIpLayer::new(&one);
        let shared = layer.clone();
        assert!(layer.check_ip(ip).is_ok());
        assert!(layer.check_ip(ip).is_err(), "one a minute");
        assert!(!shared.reconfigure(&one), "the same config changes nothing");
        assert!(layer.check_ip(ip).is_err(), "and keeps the counts");
        let more = RateLimitConfig {
            per_ip_per_minute: nz32(600),
            burst: nz32(5),
            ..one
        };
        assert!(shared.reconfigure(&more));
        for _ in 0..5 {
            assert!(
                layer.check_ip(ip).is_ok(),
                "every clone sees the new limits"
            );
        }
        let p = Principal {
            id: "x".into(),
            tenant: TenantId::parse("t").expect("tenant"),
            role: crate::policy::tenancy::Role::Viewer,
            method: crate::policy::tenancy::AuthMethod::ApiToken,
        };
        let pl = PerPrincipalLayer::new(&one);
        assert!(pl.check_principal(&p).is_ok());
        assert!(pl.check_principal(&p).is_err());
        assert!(pl.reconfigure(&RateLimitConfig {
            per_principal_per_minute: nz32(600),
            per_tenant_per_minute: nz32(600),
            ..more
        }));
        assert!(pl.check_principal(&p).is_ok());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2001)), 3);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().expect("ip");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("ip");
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("ip");
        assert_eq!(ip_key(mapped), "192.0.2.7".parse::<IpAddr>().expect("ip"));
    }

    #[test]
    fn config_defaults_and_refusals() {
        let c: RateLimitConfig = toml::from_str("").expect("defaults");
        assert_eq!(c, RateLimitConfig::default());
        let c: RateLimitConfig = toml::from_str("per_ip_per_minute = 5").expect("one field");
        assert_eq!(c.per_ip_per_minute.get(), 5);
        assert!(toml::from_str::<RateLimitConfig>("burst = 0").is_err());
        assert!(toml::from_str::<RateLimitConfig>("per_ip = 5").is_err());
    }

    #[test]
    fn a_full_store_shares_one_overflow_bucket_and_keeps_known_keys() {
        let l = KeyedLimiter::<u32>::new(nz32(60), nz32(2), nzusize(3));
        for k in 0..3 {
            assert!(l.check(&k).is_ok());
        }
        assert_eq!(l.tracked_keys(), 3);
        // Known keys keep their own bucket.
        assert!(l.check(&0).is_ok());
        assert!(l.check(&0).is_err());
        // New keys share the overflow bucket (burst 2), whatever their number.
        assert!(l.check(&100).is_ok());
        assert!(l.check(&101).is_ok());
        assert!(l.check(&102).is_err());
        assert_eq!(l.tracked_keys(), 3);
        assert_eq!(l.overflowed(), 3);
    }
}
