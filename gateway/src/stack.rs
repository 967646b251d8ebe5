//! THE layer order of the HTTP stack. Every layer is here, once, with the reason it sits
//! where it does. Read from the bottom of `build` up: axum's last `.layer` is outermost.
//! TLS and the client certificate happen below the stack, in `tls.rs`'s accept loop.

use crate::layer::authn::{Authenticator, AuthnLayer};
use crate::layer::rate_limit::{PerIpLayer, PerPrincipalLayer};
use crate::policy::tenancy::{TenantId, TenantScope};
use crate::routes;
use arc_swap::ArcSwap;
use axum::Router;
use collector::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// State every route can read.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    /// `None`: no `[auth]`, every caller gets the full view (loopback or mTLS-only setups).
    pub tenancy: Option<TenancyHandle>,
    /// `None`: no `[audit]`. Otherwise every request gets a record before its answer leaves.
    pub auditor: Option<Arc<crate::layer::audit::Auditor>>,
    /// The gateway's own metrics, served on the admin listener (`crate::routes::admin`).
    pub metrics: Arc<crate::metrics::GatewayMetrics>,
    /// Encoded bodies of the newest generation, by view, format and compression.
    pub bodies: Arc<crate::serve::BodyCache>,
}

impl AppState {
    /// A store with nothing configured around it: no authentication, no audit log, fresh
    /// self-metrics. Set the other fields with struct update syntax.
    pub fn new(store: Arc<Store>) -> Self {
        AppState {
            store,
            tenancy: None,
            auditor: None,
            metrics: Default::default(),
            bodies: Default::default(),
        }
    }
}

/// The current tenancy, swapped whole on a config reload; readers never block.
#[derive(Clone)]
pub struct TenancyHandle {
    current: Arc<ArcSwap<Tenancy>>,
    /// The authentication layer reads its authenticator from here on every request.
    authn: Arc<ArcSwap<Authenticator>>,
    /// The rate-limit layers, reconfigured when a reload changes `[rate_limit]`.
    per_ip: PerIpLayer,
    per_principal: PerPrincipalLayer,
}

impl TenancyHandle {
    pub fn new(t: Arc<Tenancy>) -> Self {
        TenancyHandle {
            authn: Arc::new(ArcSwap::new(t.authn.clone())),
            per_ip: PerIpLayer::new(&t.rate_limit),
            per_principal: PerPrincipalLayer::new(&t.rate_limit),
            current: Arc::new(ArcSwap::new(t)),
        }
    }

    pub fn load(&self) -> Arc<Tenancy> {
        self.current.load_full()
    }

    /// Installs a new tenancy (tokens, issuers, tenants, policies, pseudonym key, rate
    /// limits: new limits start their counts afresh, unchanged ones keep them).
    pub fn store(&self, t: Arc<Tenancy>) {
        self.authn.store(t.authn.clone());
        if self.per_ip.reconfigure(&t.rate_limit) | self.per_principal.reconfigure(&t.rate_limit) {
            tracing::info!("rate limits changed");
        }
        self.current.store(t);
    }
}

/// Who sees what once callers are authenticated.
pub struct Tenancy {
    pub authn: Arc<Authenticator>,
    pub scopes: BTreeMap<TenantId, TenantScope>,
    /// Without it viewers are refused: they never see user names in clear.
    pub pii: Option<crate::policy::pii::Pseudonymizer>,
    /// Which role may read which view (casbin RBAC with tenants as domains).
    pub authz: Arc<crate::layer::authz::Authorizer>,
    /// Each tenant's series quota (not applied to operators' full view).
    pub quota: Arc<crate::layer::quota::Quota>,
    pub rate_limit: crate::layer::rate_limit::RateLimitConfig,
}

/// Limits of the stack.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub request_timeout: Duration,
    pub max_concurrent: usize,
}

pub fn build(state: AppState, limits: Limits) -> Router {
    // Around /metrics, outermost first: the per-IP limit (keyed by the TCP peer, never a
    // header) before any token or certificate work; authentication; then the per-tenant and
    // per-principal limits, which need the principal.
    // Tokens, issuers, tenants, policies and rate limits reload through the handle.
    let guards = state.tenancy.as_ref().map(|h| routes::Guards {
        per_ip: h.per_ip.clone(),
        authn: AuthnLayer::reloadable(h.authn.clone()),
        per_principal: h.per_principal.clone(),
    });
    let record = crate::layer::audit::AuditLayer::new(state.auditor.clone(), state.metrics.clone());
    let app = routes::router(state, guards)
        // Innermost: scrapes carry no body; anything bigger is refused before a handler runs.
        .layer(RequestBodyLimitLayer::new(16 << 10))
        // A slow client or handler cannot hold a worker forever.
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            limits.request_timeout,
        ))
        // Bounded work in flight: excess requests wait instead of exhausting memory. Global:
        // `Router::layer` wraps each route separately, so a per-layer limit would be per route.
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent,
        ));
    // Outermost: the audit record and the self-metrics see every answer, refusals and
    // timeouts included; the request is refused (fail closed) when its record cannot be
    // written.
    app.layer(record)
}
