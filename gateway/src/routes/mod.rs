//! One file per route family. Unknown paths are 404: deny by default.

pub mod health;
pub mod metrics;

use crate::layer::authn::AuthnLayer;
use crate::layer::rate_limit::{PerIpLayer, PerPrincipalLayer};
use crate::stack::AppState;
use axum::routing::get;
use axum::Router;
use std::convert::Infallible;

/// The layers that guard `/metrics` when `[auth]` is configured.
pub struct Guards {
    pub per_ip: PerIpLayer,
    pub authn: AuthnLayer,
    pub per_principal: PerPrincipalLayer,
}

/// `/metrics` is behind the guards when `[auth]` is configured; health stays open (it says
/// nothing about the cluster).
pub fn router(state: AppState, guards: Option<Guards>) -> Router {
    let metrics = get(metrics::metrics);
    // The last `.layer` is the outermost: per-IP, then authn, then per-principal.
    let metrics = match guards {
        Some(g) => metrics
            .layer::<_, Infallible>(g.per_principal)
            .layer::<_, Infallible>(g.authn)
            .layer::<_, Infallible>(g.per_ip),
        None => metrics,
    };
    Router::new()
        .route("/metrics", metrics)
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}
