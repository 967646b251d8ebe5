//! The state every route reads ([`AppState`]) and the tenancy that reloads under it
//! ([`TenancyHandle`]): built from [`Settings`] here, once at start-up and again by every
//! reload, so the two can never build it differently.

use crate::layer::audit::Auditor;
use crate::layer::authn::Authenticator;
use crate::layer::authz::Authorizer;
use crate::layer::quota::Quota;
use crate::layer::rate_limit::{PerIpLayer, PerPrincipalLayer, RateLimitConfig};
use crate::metrics::GatewayMetrics;
use crate::policy::pii::Pseudonymizer;
use crate::policy::tenancy::{TenantId, TenantScope};
use crate::serve::BodyCache;
use crate::settings::Settings;
use arc_swap::ArcSwap;
use collector::store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// State every route can read.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<Store>,
    /// `None`: no `[auth]`, every caller gets the full view (loopback or mTLS-only setups).
    pub tenancy: Option<TenancyHandle>,
    /// `None`: no `[audit]`. Otherwise every request gets a record before its answer leaves.
    pub auditor: Option<Arc<Auditor>>,
    /// The gateway's own metrics, served on the admin listener (`crate::routes::admin`).
    pub metrics: Arc<GatewayMetrics>,
    /// Encoded bodies of the newest generation, by view, format and compression.
    pub bodies: Arc<BodyCache>,
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
    pub authn: Arc<ArcSwap<Authenticator>>,
    /// The rate-limit layers, reconfigured when a reload changes `[rate_limit]`.
    pub per_ip: PerIpLayer,
    pub per_principal: PerPrincipalLayer,
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
    pub pii: Option<Pseudonymizer>,
    /// Which role may read which view (casbin RBAC with tenants as domains).
    pub authz: Arc<Authorizer>,
    /// Each tenant's series quota (not applied to operators' full view).
    pub quota: Arc<Quota>,
    pub rate_limit: RateLimitConfig,
}

impl Tenancy {
    /// The authenticator, policies and tenant scopes, when `[auth]` is configured. Checked
    /// at start-up and by every reload: no network calls, every file and value verified.
    pub async fn from_settings(cfg: &Settings) -> Result<Option<Arc<Tenancy>>, String> {
        let Some(auth) = &cfg.auth else {
            return Ok(None);
        };
        let policies = cfg.policies.as_ref().ok_or("[auth] needs [policies]")?;
        let authz = Authorizer::load(&policies.model, &policies.policy)
            .await
            .map_err(|e| format!("policies: {e}"))?;
        let pii = cfg
            .pii
            .as_ref()
            .map(|p| Pseudonymizer::from_file(&p.key_file, p.labels.clone()))
            .transpose()?;
        Ok(Some(Arc::new(Tenancy {
            authn: Arc::new(Authenticator::new(auth).map_err(|e| e.to_string())?),
            scopes: cfg.tenant_scopes()?,
            pii,
            authz: Arc::new(authz),
            quota: Arc::new(Quota::new(cfg.quota)),
            rate_limit: cfg.rate_limit,
        })))
    }
}
