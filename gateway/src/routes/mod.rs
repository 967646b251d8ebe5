//! One file per route family. Unknown paths are 404: deny by default.

pub mod admin;
pub mod federate;
pub mod health;
pub mod metrics;
pub mod pii;
pub mod view;

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

/// `/metrics` and `/federate` are behind the guards when `[auth]` is configured; health stays
/// open (it says nothing about the cluster).
pub fn router(state: AppState, guards: Option<Guards>) -> Router {
    let metrics = get(metrics::metrics);
    // The last `.layer` is the outermost: per-IP, then authn, then per-principal.
    let mut router = Router::new();
    match guards {
        Some(g) => {
            let guarded = |r: axum::routing::MethodRouter<AppState>| {
                r.layer::<_, Infallible>(g.per_principal.clone())
                    .layer::<_, Infallible>(g.authn.clone())
                    .layer::<_, Infallible>(g.per_ip.clone())
            };
            router = router
                .route("/metrics", guarded(metrics))
                .route("/federate", guarded(get(federate::federate)))
                // Re-identification exists only behind authentication (and is audited).
                .route("/admin/pii/lookup", guarded(get(pii::lookup)));
        }
        None => {
            router = router
                .route("/metrics", metrics)
                .route("/federate", get(federate::federate))
        }
    }
    router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .with_state(state)
}
